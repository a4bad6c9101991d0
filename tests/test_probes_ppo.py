"""PPO on environments with known answers: time-limit truncation vs termination, and the five probe environments.

Each test compiles one training run and vmaps it over the environment variants (a leaf of the env params)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rejax_ppo
from probe_envs import Params, ProbeEnv, TimeLimitEnv

FAST = dict(num_envs=8, num_steps=16, num_epochs=4, num_minibatches=2, learning_rate=3e-3, ent_coef=0.0, gamma=0.9,
            total_timesteps=49_152, eval_freq=49_152, num_eval_episodes=2, max_grad_norm=10.0)


def train_variants(env, params):
    """Train one agent per entry of the batched `params`; return (config, batched train state, value, act)."""
    config = rejax_ppo.Config.make(env=env, env_params=jax.tree_util.tree_map(lambda x: x[0], params), **FAST)
    axes = jax.tree_util.tree_map(lambda _: None, config).replace(env_params=0)
    batched = config.replace(env_params=params)
    states, _ = jax.jit(jax.vmap(rejax_ppo.train, in_axes=(axes, None)))(batched, jax.random.PRNGKey(0))
    network = rejax_ppo.PPO.network(config)

    def value(i, obs):
        return network.apply(jax.tree_util.tree_map(lambda x: x[i], states.params), jnp.asarray(obs, jnp.float32))[1]

    def act(i, obs):
        state = jax.tree_util.tree_map(lambda x: x[i], states)
        return rejax_ppo.make_act(config, state)(jnp.asarray(obs, jnp.float32), jax.random.PRNGKey(0))

    return value, act


def test_time_limit_truncation_bootstraps_and_termination_does_not():
    value, _ = train_variants(TimeLimitEnv(), Params(max_steps_in_episode=jnp.array([5, 5]),
                                                     terminal=jnp.array([False, True]), probe=jnp.array([1, 1])))
    obs = np.linspace(0, 0.8, 5)[:, None]  # time 0..4 of 5
    # Truncated after 5 steps, reward 1 forever: every state is worth 1 / (1 - gamma) = 10. Treating the time limit
    # as termination would give the discounted steps left instead: 4.1, 3.4, 2.7, 1.9, 1.0.
    np.testing.assert_allclose(value(0, obs), 10.0, rtol=0.1)
    # The 5th step is terminal: V(t) = (1 - gamma^(5 - t)) / (1 - gamma), no bootstrap past it.
    np.testing.assert_allclose(value(1, obs), (1 - 0.9 ** (5 - np.arange(5))) / 0.1, atol=0.3)


@pytest.mark.parametrize("continuous", [False, True])
def test_probes(continuous):
    probe = ProbeEnv(continuous)
    value, act = train_variants(probe, Params(max_steps_in_episode=jnp.full(5, 10), terminal=jnp.zeros(5, bool),
                                              probe=jnp.arange(1, 6)))
    gamma, both = 0.9, np.array([[-1.0], [1.0]])
    np.testing.assert_allclose(value(0, np.zeros((1, 1))), 1.0, atol=0.05)  # 1: constant reward
    np.testing.assert_allclose(value(1, both), [-1.0, 1.0], atol=0.1)  # 2: reward = observation
    np.testing.assert_allclose(value(2, np.array([[0.0], [1.0]])), [gamma, 1.0], atol=0.1)  # 3: delayed reward
    assert bool(probe.good_action(act(3, np.zeros(1))))  # 4: the good action is learned ...
    np.testing.assert_allclose(value(3, np.zeros((1, 1))), 1.0, atol=0.2)  # ... and V -> 1
    assert bool(probe.good_action(act(4, np.ones(1))))  # 5: the good action depends on the observation
    assert not bool(probe.good_action(act(4, -np.ones(1))))
    np.testing.assert_allclose(value(4, both), [1.0, 1.0], atol=0.2)
