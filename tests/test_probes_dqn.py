"""DQN on environments with known answers: time-limit truncation vs termination, and the five probe environments.

Each test compiles one training run and vmaps it over the environment variants (a leaf of the env params). DQN has no
state-value function, so the tests read Q(s, a) of both actions; its policy is the greedy one."""

import jax.numpy as jnp
import numpy as np

import rejax_dqn
from probe_envs import (PROBES, TIME_LIMIT, ProbeEnv, TimeLimitEnv, assert_probes, assert_time_limit_values,
                        no_evaluation, train_variants, variant)

GAMMA = 0.9
FAST = dict(num_envs=4, batch_size=64, buffer_size=10_000, learning_starts=256, hidden_layer_sizes=(32, 32),
            learning_rate=3e-3, tau=0.05, gamma=GAMMA, loss="mse", exploration_fraction=0.2,
            total_timesteps=8_000, eval_freq=8_000, eval_callback=no_evaluation)


def train(env, params):
    """Train on every variant of `params`; return q(i, obs [n, 1]) -> Q-values [n, 2] of variant i."""
    config = rejax_dqn.Config.make(env=env, env_params=variant(params, 0), **FAST)
    states = train_variants(rejax_dqn.train, config, params)
    network = rejax_dqn.DQN.network(config)
    return lambda i, obs: np.asarray(network.apply(variant(states, i).params, jnp.asarray(obs, jnp.float32)))


def test_time_limit_truncation_bootstraps_and_termination_does_not():
    assert_time_limit_values(train(TimeLimitEnv(), TIME_LIMIT), GAMMA, "DQN")


def test_probes():
    q = train(ProbeEnv(), PROBES)
    assert_probes(q, lambda i, obs: q(i, obs).argmax(-1), ProbeEnv(), GAMMA, name="DQN")
