"""brax environments behind the gymnax interface: errors, truncation, a learning run and a hopper smoke run."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import common
import rejax_ppo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_unknown_brax_env_lists_the_available_ones():
    with pytest.raises(ValueError, match="did you mean 'brax/hopper'.*available: ant"):
        common.make_env("brax/hoper")


def test_brax_env_on_a_discrete_only_algorithm_is_refused():
    from rejax_dqn import Config as DQNConfig

    env, params = common.make_env("brax/inverted_pendulum")
    with pytest.raises(ValueError, match="DQN needs discrete actions"):
        DQNConfig.make(env=env, env_params=params)


def test_brax_time_limit_is_a_truncation():
    env, params = common.make_env("brax/inverted_pendulum", episode_length=3)
    obs, state = jax.jit(common.reset_envs, static_argnums=(0, 3))(env, params, jax.random.PRNGKey(0), 2)
    step = jax.jit(common.step_envs, static_argnums=0)  # compiled once: brax's physics run eagerly took minutes
    for t in range(3):
        obs, state, reward, terminated, truncated, final_obs = step(env, params, jax.random.PRNGKey(t), state,
                                                                    jnp.zeros((2, 1)))
    assert truncated.all() and not terminated.any()


def test_episode_length_counts_physics_steps_as_in_brax():
    """brax's EpisodeWrapper truncates when steps + action_repeat reaches episode_length: 10 physics steps with
    action_repeat 3 are 4 agent steps (ceil(10 / 3)), each summing the rewards of its 3 physics steps."""
    env, params = common.make_env("brax/inverted_pendulum", episode_length=10, action_repeat=3)
    assert params.max_steps_in_episode == 4
    obs, state = jax.jit(common.reset_envs, static_argnums=(0, 3))(env, params, jax.random.PRNGKey(0), 2)
    step = jax.jit(common.step_envs, static_argnums=0)
    truncations = []
    for t in range(4):
        obs, state, reward, terminated, truncated, _ = step(env, params, jax.random.PRNGKey(t), state,
                                                            jnp.zeros((2, 1)))
        truncations.append(bool(truncated.all()))
        assert np.allclose(reward, 3.0) and not terminated.any()  # inverted_pendulum pays 1 per physics step upright
    assert truncations == [False, False, False, True]


def test_swimmer_gets_the_backend_it_has_and_a_wrong_one_is_named():
    env, _ = common.make_env("brax/swimmer")  # brax 0.14.2 has only the generalized backend for swimmer
    assert env.env.backend == "generalized"
    with pytest.raises(ValueError, match="brax/swimmer has no 'positional' backend; pass one of generalized"):
        common.make_env("brax/swimmer", backend="positional")


def test_ppo_learns_brax_inverted_pendulum():
    env, params = common.make_env("brax/inverted_pendulum")
    config = rejax_ppo.Config.make(env=env, env_params=params)
    assert config.normalize_observations  # the tuned defaults for brax/inverted_pendulum apply
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    _, evaluation = jax.jit(jax.vmap(rejax_ppo.train, in_axes=(None, 0)))(config, keys)
    returns = np.asarray(evaluation["return"])[:, -1].mean(-1)
    print("brax/inverted_pendulum final returns:", returns)
    assert returns.min() >= 900  # every one of 24 seeds (3 batches of 8) ended at 1000 with these defaults


@pytest.mark.slow  # a fresh interpreter compiling hopper's physics: 4.5-5.5 min on the slower 2-core CPU
def test_ppo_cli_on_brax_hopper_writes_results(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "rejax_ppo.py"), "--env", "brax/hopper", "--num-seeds", "1",
         "--total-timesteps", "256", "--eval-freq", "256", "--num-envs", "4", "--num-steps", "32",
         "--num-minibatches", "2", "--num-epochs", "1", "--num-eval-episodes", "1", "--env-kwargs",
         '{"episode_length": 50}', "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["env"] == "brax/hopper" and np.isfinite(summary["final_return_mean"])
    assert (tmp_path / "run" / "learning_curve.png").exists()


@pytest.mark.slow  # a fresh interpreter compiling hopper's physics: 5-7 min on the slower 2-core CPU
def test_sac_cli_on_brax_hopper_writes_results(tmp_path):
    """The off-policy path through brax: random warm-up, gradient steps, evaluation, results folder."""
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "rejax_sac.py"), "--env", "brax/hopper", "--num-seeds", "1",
         "--total-timesteps", "64", "--learning-starts", "32", "--eval-freq", "32", "--num-envs", "2",
         "--batch-size", "16", "--buffer-size", "64", "--num-eval-episodes", "1", "--env-kwargs",
         '{"episode_length": 50}', "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["env"] == "brax/hopper" and np.isfinite(summary["final_return_mean"])
    assert (tmp_path / "run" / "learning_curve.png").exists()
