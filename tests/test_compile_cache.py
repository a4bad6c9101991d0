"""The compile cache: a rerun of a command, and a rerun with another numeric hyperparameter, compile nothing new: they
load the two training programs that the first run kept (`cli.kept_programs_path`), without tracing them (the
programs hold no host callback, and the config is their input, not a constant).
These runs leave the optimisation level to the CLI (`cli.compiler_options`), as a user's command does: the rest of the
suite sets it in XLA_FLAGS, where the CLI's own choice is not used."""

import importlib
import json
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp

import cli
import rejax_ppo

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
    loaded = "training programs loaded" in result.stdout
    return sorted(os.listdir(cache)), json.loads((tmp_path / name / "curves.json").read_text()), loaded


def test_rerun_and_other_hyperparameters_load_the_compiled_programs(tmp_path):
    first, curves, loaded = run(tmp_path, "first")
    assert first == ["rejax-programs"] and not loaded, first  # jax's own cache is off: it cannot feed this one
    assert len(os.listdir(tmp_path / "cache" / "rejax-programs")) == 1
    again, same, loaded = run(tmp_path, "again")
    assert again == first and same["eval_return"] == curves["eval_return"] and loaded
    other, changed, loaded = run(tmp_path, "other", "--learning-rate", "0.003", "--gamma", "0.95")
    assert other == first and changed["eval_return"] != curves["eval_return"] and loaded
    assert len(os.listdir(tmp_path / "cache" / "rejax-programs")) == 1


def test_kept_programs_are_named_by_what_builds_them(tmp_path, monkeypatch):
    """Another static setting, env option, input shape or touched code file gives another name; a numeric
    hyperparameter (an input of the programs) does not."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "probe_module.py").write_text("X = 1\n")
    importlib.import_module("probe_module")
    args = types.SimpleNamespace(env="CartPole-v1", env_kwargs="{}")
    config = rejax_ppo.Config.make("CartPole-v1")
    inputs = {"key": jax.random.split(jax.random.PRNGKey(0), 2), "index": jnp.arange(2)}

    def name(args=args, inputs=inputs, **changes):
        return cli.kept_programs_path(str(tmp_path), "ppo", args, inputs, config.replace(**changes))

    base = name()
    assert name(learning_rate=0.1, gamma=0.5) == base
    assert name(num_envs=8) != base and name(activation="relu") != base
    assert name(args=types.SimpleNamespace(env="CartPole-v1", env_kwargs='{"x": 1}')) != base
    assert name(inputs={**inputs, "key": jax.random.split(jax.random.PRNGKey(0), 3)}) != base
    os.utime(tmp_path / "probe_module.py", ns=(0, 0))
    assert name() != base
    assert cli.kept_programs_path(None, "ppo", args, inputs, config) is None


def test_programs_that_do_not_load_are_compiled_again(tmp_path):
    (tmp_path / "broken.pkl").write_bytes(b"not a program")
    assert cli.load_programs(str(tmp_path / "broken.pkl"), {}, None) is None
    assert cli.load_programs(str(tmp_path / "missing.pkl"), {}, None) is None


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


def test_jax_cache_is_off_in_one_process(tmp_path):
    """A program that jax loads from its own persistent cache cannot be serialized again (jaxlib 0.10.2 drops its
    kernels; the copy fails when run with "Function ... not found"), so in one process the kept programs are the only
    layer and every kept program is one this process compiled."""
    code = f"import cli, jax; cli.use_compile_cache({str(tmp_path)!r}); print(jax.config.jax_enable_compilation_cache)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr[-2000:]
