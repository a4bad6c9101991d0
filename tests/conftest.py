"""Shared test setup: the repository root on sys.path, so tests import common and rejax_*.py as a user would.

XLA:CPU's multi-threaded Eigen is turned off for the suite (and the CLI subprocesses it starts, which inherit the
environment). The hangs we saw (every thread idle) turned out to be jaxlib 0.10.2's batched LAPACK QR waiting on
XLA:CPU's thread pool from inside it; PPO's orthogonal initialisation no longer calls it, and this flag stays as a
second guard for CI, where a hang costs the whole run. common.py leaves it on for users (~15 % faster for one seed).
Every program of the suite is compiled at LLVM's optimisation level 2, as the CLI compiles its own
(`cli.compiler_options`): the suite is compile-bound, and this halves each program's compile time.

The CLI runs the suite starts keep their compiled programs in a compile cache of this session's own (a fresh temporary
folder, so no run depends on what an earlier session left): a command run twice compiles once.

Two tiers. The default one is what CI runs (the README's test command, spread over the cores by pytest-xdist, a test
file per worker so that module fixtures are computed once). Tests marked `slow` are skipped there, with that reason in
the report: each costs minutes of pure training on a 2-core CPU, and together they would double CI's time on the
slower machines of that kind. `--runslow` runs them too (`python -m pytest -q -n auto --dist loadfile tests
--runslow`); the closing notes record when they last passed.
"""

import os
import sys
import tempfile

import pytest

for _FLAG in ("--xla_cpu_multi_thread_eigen=false", "--xla_backend_optimization_level=2"):
    if _FLAG.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("REJAX_COMPILE_CACHE", tempfile.mkdtemp(prefix="rejax-test-compile-cache-"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run the tests marked slow (minutes of training each)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes of training on a 2-core CPU; skipped unless --runslow is given")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow tier: run it with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
