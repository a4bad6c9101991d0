"""The seed x sweep axis sharded over several devices: four CPU devices in a subprocess give the single-device results."""

import json
import os
import subprocess
import sys

import cli
import rejax_ppo
from rejax_ppo import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["--env", "CartPole-v1", "--num-seeds", "3", "--total-timesteps", "2000", "--eval-freq", "1000", "--num-envs",
         "4", "--num-steps", "50", "--num-epochs", "2", "--num-minibatches", "2", "--sweep", "learning_rate=1e-3,3e-3"]


def four_devices():
    """The test environment plus four host devices, beside whatever XLA_FLAGS it already has (common.py adds its own)."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4".strip()
    return {**os.environ, "XLA_FLAGS": flags}


def test_both_xla_flags_reach_the_backend():
    code = "import common, jax, os; print(len(jax.devices()), os.environ['XLA_FLAGS'])"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=four_devices(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    count, flags = result.stdout.split(" ", 1)
    assert count == "4" and "--xla_cpu_enable_concurrency_optimized_scheduler=false" in flags


def test_four_devices_equal_one_device_with_padding(tmp_path):
    # 3 seeds x 2 settings = 6 runs over 4 devices (--cpu-devices): padded to 8, the padding dropped again.
    result = subprocess.run([sys.executable, os.path.join(ROOT, "rejax_ppo.py"), *FLAGS, "--cpu-devices", "4", "--out",
                             str(tmp_path / "four")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "sharded over 4 devices (2 padding runs)" in result.stdout
    args = cli.make_args_class(Config)(
        env="CartPole-v1", num_seeds=3, total_timesteps=2000, eval_freq=1000, num_envs=4, num_steps=50, num_epochs=2,
        num_minibatches=2, sweep=("learning_rate=1e-3,3e-3",), out=str(tmp_path / "one"))
    cli.run("ppo", Config, rejax_ppo.train, rejax_ppo.PPO.eval_callback, args)
    four, one = (json.loads((tmp_path / name / "curves.json").read_text()) for name in ("four", "one"))
    assert len(four["eval_return"]) == 6 and four["runs"] == one["runs"]
    assert four["eval_return"] == one["eval_return"] and four["train_return"] == one["train_return"]  # bit for bit
    summary = json.loads((tmp_path / "four" / "summary.json").read_text())
    assert summary["num_devices"] == 4 and len(summary["final_return_per_seed"]) == 6
