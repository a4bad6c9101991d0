"""TD3 on environments with known answers: time-limit truncation vs termination, and the five probe environments
(continuous actions).

Each test compiles one training run and vmaps it over the environment variants (a leaf of the env params). TD3 has
no state-value function: the tests read Q(s, a) of both twin critics at the actions -0.5 and +0.5, and at the actor's
action."""

import jax
import jax.numpy as jnp
import numpy as np

import rejax_td3
from probe_envs import (PROBES, TIME_LIMIT, ProbeEnv, TimeLimitEnv, assert_probes, assert_time_limit_values,
                        no_evaluation, train_variants, variant)

GAMMA = 0.9
FAST = dict(num_envs=4, batch_size=64, buffer_size=10_000, learning_starts=256, hidden_layer_sizes=(32, 32),
            learning_rate=3e-3, tau=0.05, gamma=GAMMA, total_timesteps=8_000, eval_freq=8_000,
            eval_callback=no_evaluation)


def train(env, params):
    """Train on every variant of `params`; return (q, act, q_policy) as `probe_envs.assert_probes` reads them."""
    config = rejax_td3.Config.make(env=env, env_params=variant(params, 0), **FAST)
    states = train_variants(rejax_td3.train, config, params)

    def act(i, obs):  # the deterministic policy; the test envs' action bounds are the agent's own [-1, 1]
        policy = rejax_td3.make_act(config, variant(states, i))
        return np.asarray(jax.vmap(policy, in_axes=(0, None))(jnp.asarray(obs, jnp.float32), jax.random.PRNGKey(0)))

    def q_at(i, obs, action):
        critic = rejax_td3.TD3.critic(config)
        return np.asarray(critic(variant(states, i).critic_params, jnp.asarray(obs, jnp.float32), action))

    def q(i, obs):
        return np.stack([q_at(i, obs, jnp.full((len(obs), 1), a)) for a in (-0.5, 0.5)], -1)

    def q_policy(i, obs):
        return q_at(i, obs, jnp.asarray(act(i, obs)))[..., None]

    return q, act, q_policy


def test_time_limit_truncation_bootstraps_and_termination_does_not():
    q, _, _ = train(TimeLimitEnv(continuous=True), TIME_LIMIT)
    assert_time_limit_values(q, GAMMA, "TD3")


def test_probes():
    probe = ProbeEnv(continuous=True, linear=True)  # a reward flat in the action would give the actor no gradient
    q, act, q_policy = train(probe, PROBES)
    assert_probes(q, act, probe, GAMMA, q_policy, name="TD3")
