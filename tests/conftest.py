"""Shared test setup: the repository root on sys.path, so tests import common and rejax_*.py as a user would.

XLA:CPU's multi-threaded Eigen is turned off for the suite (and the CLI subprocesses it starts, which inherit the
environment): under heavy load one test run hung with every thread idle, a known XLA:CPU thread-pool wedge that
single-threaded Eigen avoids. common.py leaves it on for users, where it is ~15 % faster for one seed.
"""

import os
import sys

_FLAG = "--xla_cpu_multi_thread_eigen=false"
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
