"""PQN on environments with known answers: time-limit truncation vs termination, and the five probe environments.

Each test compiles one training run and vmaps it over the environment variants (a leaf of the env params). PQN has no
state-value function, so the tests read Q(s, a) of both actions; its policy is the greedy one. Exploration stays at
epsilon 0.3 so that the worse action of probes 4 and 5 is tried often enough for its value to be learned too.

Probes 1 and 4 observe a constant 0, so the first layer's pre-activation is its bias alone and the LayerNorm after it
starts from zero variance: the normalised features swing with every small step of that bias until its spread grows.
At learning rate 3e-3 and 8k steps, Q(0, a) was still 0.47-0.67 instead of 1; at 1e-2 and 16k steps both probes
are learned (every Q within 0.01 of its value here, with XLA's Eigen threads on and off)."""

import jax.numpy as jnp
import numpy as np

import rejax_pqn
from probe_envs import (PROBES, TIME_LIMIT, ProbeEnv, TimeLimitEnv, assert_probes, assert_time_limit_values,
                        no_evaluation, train_variants, variant)

GAMMA = 0.9
FAST = dict(num_envs=8, num_steps=16, num_epochs=4, num_minibatches=2, hidden_layer_sizes=(32, 32),
            learning_rate=1e-2, gamma=GAMMA, td_lambda=0.5, eps_end=0.3, exploration_fraction=0.1, anneal_lr=True,
            total_timesteps=16_384, eval_freq=16_384, eval_callback=no_evaluation)


def train(env, params):
    """Train on every variant of `params`; return q(i, obs [n, 1]) -> Q-values [n, 2] of variant i."""
    config = rejax_pqn.Config.make(env=env, env_params=variant(params, 0), **FAST)
    states = train_variants(rejax_pqn.train, config, params)
    network = rejax_pqn.PQN.network(config)
    return lambda i, obs: np.asarray(network.apply(variant(states, i).params, jnp.asarray(obs, jnp.float32)))


def test_time_limit_truncation_bootstraps_and_termination_does_not():
    assert_time_limit_values(train(TimeLimitEnv(), TIME_LIMIT), GAMMA, "PQN")


def test_probes():
    q = train(ProbeEnv(), PROBES)
    assert_probes(q, lambda i, obs: q(i, obs).argmax(-1), ProbeEnv(), GAMMA, name="PQN")
