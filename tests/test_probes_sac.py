"""SAC, discrete and continuous, on environments with known answers: time-limit truncation vs termination, and the
five probe environments.

Each test compiles one training run and vmaps it over the environment variants (a leaf of the env params). SAC has
no state-value function: the tests read every critic's Q(s, a), of both actions (discrete) or of the actions -0.5 and
+0.5 and the actor's deterministic action (continuous).

The soft Q target adds the entropy bonus -alpha log pi to every bootstrapped step, and rejax_sac.py always tunes alpha
(there is no fixed-alpha switch). So the runs start from alpha = 1e-8, which Adam raises by about learning_rate in
log alpha per gradient step at most (a factor of about e^6 over these runs); the tests assert alpha < 1e-4 at the end
and compare with the plain (alpha = 0) values. A bootstrapped value then moves by at most
gamma / (1 - gamma) * alpha * |log pi| < 1e-3 |log pi|: under 0.1 unless |log pi| reaches 100 (the log-std is bounded
below by -5, so that would take a pre-tanh mean near +-50)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rejax_sac
from probe_envs import (PROBES, TIME_LIMIT, ProbeEnv, TimeLimitEnv, assert_probes, assert_time_limit_values,
                        no_evaluation, train_variants, variant)

GAMMA = 0.9
FAST = dict(num_envs=4, batch_size=64, buffer_size=10_000, learning_starts=256, hidden_layer_sizes=(32, 32),
            learning_rate=3e-3, tau=0.05, gamma=GAMMA, init_alpha=1e-8, total_timesteps=8_000, eval_freq=8_000,
            eval_callback=no_evaluation)


def train(env, params):
    """Train on every variant of `params`; return (q, act, q_policy) as `probe_envs.assert_probes` reads them."""
    config = rejax_sac.Config.make(env=env, env_params=variant(params, 0), **FAST)
    states = train_variants(rejax_sac.train, config, params)
    alpha = np.exp(np.asarray(states.log_alpha))
    print(f"\nSAC ({'discrete' if config.discrete else 'continuous'}) final alpha per variant: {alpha}")
    assert (alpha < 1e-4).all()  # the entropy bonus stays negligible (module docstring)

    def act(i, obs):  # the deterministic policy; the test envs' action bounds are the agent's own [-1, 1]
        policy = rejax_sac.make_act(config, variant(states, i))
        return np.asarray(jax.vmap(policy, in_axes=(0, None))(jnp.asarray(obs, jnp.float32), jax.random.PRNGKey(0)))

    def q_at(i, obs, action):  # every critic: [num_critics, n] (continuous) or [num_critics, n, 2] (discrete)
        params = variant(states, i).critic_params
        return np.asarray(rejax_sac.SAC.q_values(config, params, jnp.asarray(obs, jnp.float32), action))

    def q(i, obs):
        if config.discrete:
            return q_at(i, obs, None)
        return np.stack([q_at(i, obs, jnp.full((len(obs), 1), a)) for a in (-0.5, 0.5)], -1)

    def q_policy(i, obs):
        return q_at(i, obs, jnp.asarray(act(i, obs)))[..., None]

    return q, act, None if config.discrete else q_policy


@pytest.mark.parametrize("continuous", [False, True])
def test_time_limit_truncation_bootstraps_and_termination_does_not(continuous):
    q, _, _ = train(TimeLimitEnv(continuous), TIME_LIMIT)
    assert_time_limit_values(q, GAMMA, "SAC")


@pytest.mark.parametrize("continuous", [False, True])
def test_probes(continuous):
    probe = ProbeEnv(continuous, linear=continuous)  # linear: as for TD3 and DDPG (see ProbeEnv)
    q, act, q_policy = train(probe, PROBES)
    assert_probes(q, act, probe, GAMMA, q_policy, name="SAC")
