"""Shared test setup: the repository root on sys.path, so tests import common and rejax_*.py as a user would."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
