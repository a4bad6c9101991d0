"""The seed x sweep axis sharded over several devices: four CPU devices in a subprocess give the single-device
results, and a train state with a zero-size leaf runs over two."""

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


# CartPole whose state also holds a zero-size array, as MuJoCo Playground's state holds mocap_pos (shape (0, 3)) when a
# model has no mocap bodies; the CLI's run over 2 devices, in a subprocess, with the env given in place of a name.
ZERO_SIZE_RUN = """
import dataclasses, sys
import jax, jax.numpy as jnp
from flax import struct
from gymnax.environments.classic_control.cartpole import CartPole, EnvState
import cli, common, rejax_ppo

@struct.dataclass
class State(EnvState):
    empty: jax.Array

def with_empty(state):
    return State(**{f.name: getattr(state, f.name) for f in dataclasses.fields(EnvState)}, empty=jnp.zeros((0, 3)))

class ZeroSizeLeafCartPole(CartPole):
    def reset_env(self, key, params):
        obs, state = super().reset_env(key, params)
        return obs, with_empty(state)

    def step_env(self, key, state, action, params):
        obs, state, reward, done, info = super().step_env(key, state, action, params)
        return obs, with_empty(state), reward, done, info

make_env = common.make_env
common.make_env = lambda name, **kw: ((ZeroSizeLeafCartPole(), CartPole().default_params) if name == "zero-size"
                                      else make_env(name, **kw))
args = cli.make_args_class(rejax_ppo.Config)(env="zero-size", num_seeds=2, total_timesteps=400, eval_freq=200,
    num_envs=2, num_steps=50, num_epochs=1, num_minibatches=1, num_eval_episodes=1, out=sys.argv[1])
_, _, summary = cli.run("ppo", rejax_ppo.Config, rejax_ppo.train, rejax_ppo.PPO.eval_callback, args)
assert summary["num_devices"] == 2 and len(summary["final_return_per_seed"]) == 2, summary
"""


def test_a_zero_size_leaf_in_the_env_state_runs_over_two_devices(tmp_path):
    """jax hands a zero-size output back replicated whatever the out_specs say; the interval program must take it so
    (cli.compile_programs). Without that, every multi-device run on MuJoCo Playground failed with a sharding error."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()
    result = subprocess.run([sys.executable, "-c", ZERO_SIZE_RUN, str(tmp_path / "run")], cwd=ROOT,
                            env={**os.environ, "XLA_FLAGS": flags, "PYTHONPATH": ROOT}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sharded over 2 devices" in result.stdout
