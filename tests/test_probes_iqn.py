"""IQN on environments with known answers: time-limit truncation vs termination, and the five probe environments.

Each test compiles one training run and vmaps it over the environment variants (a leaf of the env params). IQN's
Q(s, a) is the mean of its quantiles Z_tau(s, a); the tests read it on a fixed grid of 32 taus, and the policy is
the greedy one."""

import jax.numpy as jnp
import numpy as np

import rejax_iqn
from probe_envs import (PROBES, TIME_LIMIT, ProbeEnv, TimeLimitEnv, assert_probes, assert_time_limit_values,
                        no_evaluation, train_variants, variant)

GAMMA = 0.9
FAST = dict(num_envs=4, batch_size=32, buffer_size=10_000, learning_starts=256, hidden_layer_sizes=(32, 32),
            num_tau_samples=8, num_tau_prime_samples=8, num_quantile_samples=8, learning_rate=3e-3, tau=0.05,
            gamma=GAMMA, exploration_fraction=0.2, total_timesteps=8_000, eval_freq=8_000,
            eval_callback=no_evaluation)
TAUS = (jnp.arange(32) + 0.5) / 32  # a fixed grid over [0, 1]: Q = the mean of Z over it


def train(env, params):
    """Train on every variant of `params`; return q(i, obs [n, 1]) -> Q-values [n, 2] of variant i."""
    config = rejax_iqn.Config.make(env=env, env_params=variant(params, 0), **FAST)
    states = train_variants(rejax_iqn.train, config, params)

    def q(i, obs):
        obs = jnp.asarray(obs, jnp.float32)
        tau = jnp.broadcast_to(TAUS, (obs.shape[0], TAUS.shape[0]))
        return np.asarray(rejax_iqn.IQN.q_values(config, variant(states, i).params, obs, tau))

    return q


def test_time_limit_truncation_bootstraps_and_termination_does_not():
    assert_time_limit_values(train(TimeLimitEnv(), TIME_LIMIT), GAMMA, "IQN")


def test_probes():
    q = train(ProbeEnv(), PROBES)
    assert_probes(q, lambda i, obs: q(i, obs).argmax(-1), ProbeEnv(), GAMMA, name="IQN")
