"""normalize_rewards: the return statistics against a numpy restatement of gym's NormalizeReward, where they live
in the train state, and learning on CartPole-v1 with its rewards multiplied by 1,000 (raw returns reported)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import common
import rejax_ppo
import rejax_sac

SCALE = 1_000.0


class ScaledRewardCartPole:
    """CartPole-v1 with every reward multiplied by SCALE; not in any tuned table, so tests pass CartPole's values."""

    name = "CartPole-v1-x1000"

    def __init__(self):
        self.env, self.params = common.make_env("CartPole-v1")

    @property
    def default_params(self):
        return self.params

    def reset(self, key, params=None):
        return self.env.reset(key, params)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        return obs, state, reward * SCALE, terminated, truncated, info

    def action_space(self, params=None):
        return self.env.action_space(params)

    def observation_space(self, params=None):
        return self.env.observation_space(params)


def gym_normalize_reward(rewards, dones, gamma, epsilon=1e-8):
    """gym 0.26's NormalizeReward.step over a vector env, restated in numpy: returns <- returns * gamma + rewards;
    update the running mean/var of returns; scale rewards by 1 / sqrt(var + eps); then zero the finished returns."""
    mean, var, count = 0.0, 1.0, 1e-4
    returns, scaled = np.zeros(rewards.shape[1]), []
    for reward, done in zip(rewards, dones):
        returns = returns * gamma + reward
        batch_mean, batch_var, batch_count = returns.mean(), returns.var(), returns.shape[0]
        delta, total = batch_mean - mean, count + batch_count
        m2 = var * count + batch_var * batch_count + delta**2 * count * batch_count / total
        mean, var, count = mean + delta * batch_count / total, m2 / total, total
        scaled.append(reward / np.sqrt(var + epsilon))
        returns[done] = 0.0
    return np.array(scaled), returns, var


def test_return_stats_match_gym_normalize_reward():
    rng = np.random.default_rng(0)
    rewards = rng.normal(2.0, 3.0, size=(7, 3)).astype(np.float32)
    dones = np.zeros((7, 3), bool)
    dones[2, 0] = dones[4, 1] = dones[5, 0] = True  # episode ends in the middle of the sequence
    expected, returns, var = gym_normalize_reward(rewards, dones, gamma=0.9)

    stats, scaled = common.ReturnStats.create(3), []
    for reward, done in zip(rewards, dones):
        stats = stats.update(jnp.asarray(reward), jnp.asarray(done), 0.9)
        scaled.append(stats.scale(jnp.asarray(reward)))
    np.testing.assert_allclose(np.array(scaled), expected, rtol=1e-5)
    np.testing.assert_allclose(stats.ret, returns, rtol=1e-5)
    np.testing.assert_allclose(stats.rms.var, var, rtol=1e-5)
    assert stats.rms.mean != 0.0  # the mean is tracked but never subtracted


@pytest.fixture(scope="module")
def wrapped_env():
    return ScaledRewardCartPole()


def test_stats_live_in_the_train_state_and_evaluation_leaves_them(wrapped_env):
    config = rejax_ppo.Config.make(env=wrapped_env, normalize_rewards=True, total_timesteps=1_000, eval_freq=500,
                                   num_envs=4, num_steps=50, num_epochs=1, num_minibatches=2, num_eval_episodes=2)
    ts = rejax_ppo.PPO.init(config, jax.random.PRNGKey(0))
    assert isinstance(ts.reward_stats, common.ReturnStats) and ts.reward_stats.ret.shape == (4,)
    ts = jax.jit(lambda ts: rejax_ppo.PPO.train_iteration(config, ts))(ts)
    assert float(ts.reward_stats.rms.count) == pytest.approx(200, abs=1e-3)  # 50 steps of 4 envs
    assert float(ts.reward_stats.rms.var) > 1e4  # returns of rewards of 1,000
    before = jax.tree_util.tree_leaves(ts)
    evaluation = rejax_ppo.PPO.eval_callback(config, ts, jax.random.PRNGKey(1))
    assert all(np.array_equal(a, b) for a, b in zip(before, jax.tree_util.tree_leaves(ts)))
    assert np.all(np.asarray(evaluation["return"]) % SCALE == 0)  # raw returns: whole multiples of 1,000
    off = rejax_ppo.Config.make(env=wrapped_env, normalize_rewards=False, total_timesteps=1_000, eval_freq=500,
                                num_envs=4, num_steps=50, num_epochs=1, num_minibatches=2)
    ts = jax.jit(lambda ts: rejax_ppo.PPO.train_iteration(off, ts))(rejax_ppo.PPO.init(off, jax.random.PRNGKey(0)))
    assert float(ts.reward_stats.rms.count) == pytest.approx(1e-4)  # frozen when the switch is off


def train_seeds(module, config, seeds):
    train = jax.jit(jax.vmap(module.train, in_axes=(None, 0)))
    _, evaluation = train(config, jax.random.split(jax.random.PRNGKey(0), seeds))
    return np.asarray(evaluation["return"])  # [seeds, evals + 1, episodes]


def test_ppo_learns_cartpole_with_rewards_times_1000(wrapped_env):
    # benchmarks/normalize_rewards.py: 4 of 4 seeds at 500,000; with the switch off, 103,800-119,500.
    config = rejax_ppo.Config.make(env=wrapped_env, normalize_rewards=True, **rejax_ppo.TUNED["CartPole-v1"])
    returns = train_seeds(rejax_ppo, config, 3)
    final = returns[:, -1].mean(-1)
    assert (final >= 0.95 * 500 * SCALE).all(), final  # raw (x1000) returns: 475,000 of 500,000
    assert returns.max() <= 500 * SCALE


def test_sac_learns_cartpole_with_rewards_times_1000(wrapped_env):
    # Off-policy: rewards scaled when sampled. benchmarks/normalize_rewards.py: 8 of 8 seeds at 500,000 (off: 9,400);
    # DQN at its CartPole values is less sure of it: 6 of 8 (383,900 and 222,600), so it is not asserted here.
    config = rejax_sac.Config.make(env=wrapped_env, normalize_rewards=True, **rejax_sac.TUNED["CartPole-v1"])
    returns = train_seeds(rejax_sac, config, 2)
    final = returns[:, -1].mean(-1)
    assert (final >= 0.95 * 500 * SCALE).all(), final

TINY = {
    "pqn": ("CartPole-v1", dict(total_timesteps=400, eval_freq=200, num_envs=2, num_steps=50, num_minibatches=2)),
    "iqn": ("CartPole-v1", dict(total_timesteps=400, eval_freq=200, num_envs=2, learning_starts=100, buffer_size=400,
                                batch_size=8, num_tau_samples=4, num_tau_prime_samples=4, num_quantile_samples=4)),
    "sac": ("Pendulum-v1", dict(total_timesteps=200, eval_freq=50, num_envs=2, learning_starts=100, buffer_size=400,
                                batch_size=16, hidden_layer_sizes=(16,))),
    "ddpg": ("Pendulum-v1", dict(total_timesteps=200, eval_freq=50, num_envs=2, learning_starts=100, buffer_size=400,
                                 batch_size=16, hidden_layer_sizes=(16,))),
    "td3": ("Pendulum-v1", dict(total_timesteps=200, eval_freq=50, num_envs=2, learning_starts=100, buffer_size=400,
                                batch_size=16, hidden_layer_sizes=(16,))),
}


@pytest.mark.parametrize("algo", list(TINY))
def test_every_algorithm_counts_every_env_step_in_its_return_stats(algo):
    train, config_cls = common.get_agent(algo)
    env, overrides = TINY[algo]
    config = config_cls.make(env, normalize_rewards=True, num_eval_episodes=2, **overrides)
    ts, evaluation = jax.jit(train)(config, jax.random.PRNGKey(0))
    # Each step of num_envs envs adds num_envs returns (warm-up included); the stats are 1e-4 at the start.
    assert float(ts.reward_stats.rms.count) == pytest.approx(config.total_env_steps, abs=0.01)
    assert float(ts.reward_stats.rms.var) != 1.0 and np.isfinite(np.asarray(evaluation["return"])).all()
