"""common.py: environments, wrappers, evaluation and the run plumbing shared by every algorithm file."""

import importlib
import importlib.util
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_unknown_env_lists_close_names():
    with pytest.raises(ValueError, match="did you mean 'Acrobot-v1'"):
        common.make_env("Acrobat-v1")


def test_step_envs_reports_truncation_apart_from_termination():
    env, params = common.make_env("Pendulum-v1")  # never terminates; truncated after max_steps_in_episode
    params = params.replace(max_steps_in_episode=3)
    obs, state = common.reset_envs(env, params, jax.random.PRNGKey(0), 2)
    for t in range(3):
        obs, state, reward, terminated, truncated, final_obs = common.step_envs(
            env, params, jax.random.PRNGKey(t), state, jnp.zeros((2, 1)))
    assert not terminated.any() and truncated.all()
    assert not np.allclose(obs, final_obs)  # obs is the reset observation, final_obs the one before the reset


def test_step_envs_takes_step_batch_from_the_env_class_not_through_a_wrapper():
    """An env's own step_batch (craftax's optimistic resets) is used; a wrapper whose __getattr__ forwards to the
    env inside keeps its own step, which would otherwise be bypassed."""

    class Batched:
        def step_batch(self, keys, state, action, params):
            return state, state, jnp.full(3, 7.0), action > 0, action < 0, {"final_observation": state}

    class Wrapper:  # as gymnax's wrappers: unknown attributes come from the wrapped env
        def __init__(self, env):
            self._env = env

        def __getattr__(self, name):
            return getattr(self._env, name)

        def step(self, key, state, action, params):
            return state, state, action * 2.0, action > 0, action < 0, {"final_observation": state}

    keys, action = jax.random.split(jax.random.PRNGKey(0), 3), jnp.array([1.0, -1.0, 0.0])
    np.testing.assert_array_equal(common.step_envs(Batched(), None, keys, jnp.zeros(3), action)[2], [7.0] * 3)
    _, _, reward, terminated, truncated, _ = common.step_envs(Wrapper(Batched()), None, keys, jnp.zeros(3), action)
    np.testing.assert_array_equal(reward, [2.0, -2.0, 0.0])
    np.testing.assert_array_equal(terminated, [True, False, False])


def test_episode_stats_record_finished_episodes():
    stats = common.EpisodeStats.create(2)
    stats = stats.update(jnp.array([1.0, 2.0]), jnp.array([False, False]))
    stats = stats.update(jnp.array([1.0, 2.0]), jnp.array([True, False]))
    np.testing.assert_allclose(stats.last_return, [2.0, np.nan])
    np.testing.assert_allclose(stats.episode_return, [0.0, 4.0])


def test_running_mean_std_matches_numpy():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(3, 50, 4)).astype(np.float32)
    stats = common.RunningMeanStd.create((4,))
    for chunk in data:
        stats = stats.update(jnp.asarray(chunk))
    flat = data.reshape(-1, 4)
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-4)
    np.testing.assert_allclose(stats.var, flat.var(0), rtol=1e-3)


def test_evaluate_counts_each_episode_once():
    env, params = common.make_env("CartPole-v1")
    lengths, returns = common.evaluate(lambda obs, rng: jnp.int32(0), jax.random.PRNGKey(0), env, params, 4, 500)
    np.testing.assert_allclose(lengths, returns)  # reward 1 per step
    assert (lengths > 5).all() and (lengths < 50).all()  # always pushing left fails fast


def test_get_agent_rejects_unknown_algorithm():
    with pytest.raises(ValueError, match="choose one of"):
        common.get_agent("a2c")


def test_track_without_login_logs_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    env.update(WANDB_DIR=str(tmp_path), HOME=str(tmp_path))  # no ~/.netrc: no login
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "rejax_ppo.py"), "--track", "--num-seeds", "2", "--total-timesteps", "1000",
         "--eval-freq", "500", "--num-envs", "2", "--num-steps", "50", "--num-minibatches", "2", "--out",
         str(tmp_path / "run")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "logging offline" in result.stdout
    runs = [d for d in os.listdir(tmp_path / "wandb") if d.startswith("offline-run")]
    assert len(runs) == 1 and any(f.endswith(".wandb") for f in os.listdir(tmp_path / "wandb" / runs[0]))


@pytest.mark.parametrize("algo", ["dqn", "iqn", "pqn"])
def test_q_learners_evaluate_epsilon_greedy_at_eval_epsilon(algo):
    module = importlib.import_module(f"rejax_{algo}")
    small = {} if algo == "pqn" else dict(buffer_size=1_000)  # DQN's and IQN's default buffer: 100k rows
    cls, config = getattr(module, algo.upper()), module.Config.make("CartPole-v1", num_eval_episodes=2, **small)
    train_state, rng = cls.init(config, jax.random.PRNGKey(2)), jax.random.PRNGKey(9)
    for epsilon in (0.0, 0.5, 1.0):
        evaluation = cls.eval_callback(config.replace(eval_epsilon=epsilon), train_state, rng)
        expected = common.evaluate_policy(cls.make_act(config, train_state, epsilon), config, train_state, rng)
        np.testing.assert_array_equal(evaluation["length"], expected["length"])


def test_every_tuned_entry_makes_a_valid_config():
    """Config.make validates: a misspelt or out-of-range value in any TUNED entry fails here, not in a user's run.
    Entries of a suite that is not installed are left out (tests/test_suites.py reports that suite as skipped)."""
    for algo in ("ppo", "dqn", "iqn", "pqn", "sac", "td3", "ddpg"):
        module = importlib.import_module(f"rejax_{algo}")
        for env, entry in module.TUNED.items():
            suite = env.split("/")[0] if "/" in env and not env.startswith("brax/") else None
            if suite is not None and importlib.util.find_spec(suite) is None:
                continue
            config = module.Config.make(env)
            assert all(getattr(config, name) == value for name, value in entry.items()), (algo, env)
