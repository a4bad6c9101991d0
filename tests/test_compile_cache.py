"""The compile cache: a rerun of a command, and a rerun with another numeric hyperparameter, compile nothing new (the
training programs hold no host callback, so jax keeps them on disk, and the config is their input, not a constant).
These runs leave the optimisation level to the CLI (`cli.compiler_options`), as a user's command does: the rest of the
suite sets it in XLA_FLAGS, where the CLI's own choice is not used."""

import json
import os
import subprocess
import sys

import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["--env", "CartPole-v1", "--num-seeds", "2", "--total-timesteps", "2000", "--eval-freq", "1000", "--num-envs",
         "4", "--num-steps", "50", "--num-epochs", "2", "--num-minibatches", "2"]


def user_xla_flags() -> dict:
    """The environment without the suite's --xla_backend_optimization_level."""
    flags = [flag for flag in os.environ.get("XLA_FLAGS", "").split() if "xla_backend_optimization_level" not in flag]
    return {**os.environ, "XLA_FLAGS": " ".join(flags)}


def run(tmp_path, name, *extra):
    cache = tmp_path / "cache"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "rejax_ppo.py"), *FLAGS, *extra, "--compile-cache",
                             str(cache), "--out", str(tmp_path / name)], capture_output=True, text=True, timeout=300,
                            env=user_xla_flags())
    assert result.returncode == 0, result.stderr[-2000:]
    return sorted(os.listdir(cache)), json.loads((tmp_path / name / "curves.json").read_text())


def test_rerun_and_other_hyperparameters_load_the_compiled_programs(tmp_path):
    first, curves = run(tmp_path, "first")
    assert any(entry.startswith("jit_") for entry in first), first
    again, same = run(tmp_path, "again")
    assert again == first and same["eval_return"] == curves["eval_return"]
    other, changed = run(tmp_path, "other", "--learning-rate", "0.003", "--gamma", "0.95")
    assert other == first and changed["eval_return"] != curves["eval_return"]


def test_off_keeps_nothing(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "rejax_ppo.py"), *FLAGS, "--compile-cache", "off",
                             "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / ".cache" / "rejax").exists() and "compiled in" in result.stdout


def test_the_cli_compiles_at_level_2_unless_xla_flags_set_a_level(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    assert cli.compiler_options() == {"xla_backend_optimization_level": 2}
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3")
    assert cli.compiler_options() is None
