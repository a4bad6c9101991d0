"""Shared test setup: the repository root on sys.path, so tests import common and rejax_*.py as a user would.

XLA:CPU's multi-threaded Eigen is turned off for the suite (and the CLI subprocesses it starts, which inherit the
environment). The hangs we saw (every thread idle) turned out to be jaxlib 0.10.2's batched LAPACK QR waiting on
XLA:CPU's thread pool from inside it; PPO's orthogonal initialisation no longer calls it, and this flag stays as a
second guard for CI, where a hang costs the whole run. common.py leaves it on for users (~15 % faster for one seed).

The CLI runs the suite starts keep their compiled programs in a compile cache of this session's own (a fresh temporary
folder, so no run depends on what an earlier session left): a command run twice compiles once.
"""

import os
import sys
import tempfile

_FLAG = "--xla_cpu_multi_thread_eigen=false"
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("REJAX_COMPILE_CACHE", tempfile.mkdtemp(prefix="rejax-test-compile-cache-"))
