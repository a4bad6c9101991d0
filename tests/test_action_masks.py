"""Action masks (an env with `has_action_mask = True`): the helpers in common.py, PPO, DQN and PQN never take a
forbidden action (in training rollouts, warm-up included, and through `make_act`), and the other algorithms refuse
such an env in one sentence."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import struct
from gymnax.environments import environment, spaces

import common
import rejax_dqn
import rejax_ppo
import rejax_pqn

NUM_ACTIONS = 4


@struct.dataclass
class MaskState(environment.EnvState):
    time: int
    allowed: jax.Array  # the one allowed action, drawn afresh at every step
    violations: jax.Array  # forbidden actions taken so far; the episode never ends, so this counts the whole run


@struct.dataclass
class MaskParams(environment.EnvParams):
    max_steps_in_episode: int = 2**30


class OneAllowedEnv(environment.Environment):
    """Observation: [noise, noise, one-hot mask of NUM_ACTIONS]; one action is allowed, a different one each step.
    Reward 1 for a forbidden action, so an agent that ignored the mask would be drawn to forbidden actions."""

    has_action_mask = True

    @property
    def default_params(self):
        return MaskParams()

    def observe(self, key, allowed):
        return jnp.concatenate([jax.random.normal(key, (2,)), jax.nn.one_hot(allowed, NUM_ACTIONS)])

    def reset_env(self, key, params):
        key_obs, key_allowed = jax.random.split(key)
        allowed = jax.random.randint(key_allowed, (), 0, NUM_ACTIONS)
        return self.observe(key_obs, allowed), MaskState(time=0, allowed=allowed, violations=jnp.int32(0))

    def step_env(self, key, state, action, params):
        key_obs, key_allowed = jax.random.split(key)
        violation = (action != state.allowed).astype(jnp.int32)
        allowed = jax.random.randint(key_allowed, (), 0, NUM_ACTIONS)
        state = MaskState(time=state.time + 1, allowed=allowed, violations=state.violations + violation)
        return self.observe(key_obs, allowed), state, violation.astype(jnp.float32), jnp.array(False), {}

    @property
    def name(self):
        return "OneAllowed"

    def action_space(self, params=None):
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (2 + NUM_ACTIONS,))


def violations_so_far(config, train_state, rng):
    """An evaluation callback: the forbidden actions the training envs have taken so far."""
    return train_state.env_state.violations.sum()


# --- common.py's helpers ------------------------------------------------------------------------------------------------
def test_action_mask_is_none_without_the_attribute_and_reads_the_last_entries():
    env, params = common.make_env("CartPole-v1")
    assert common.action_mask(env, params, jnp.zeros((3, 4))) is None
    obs = jnp.array([[5.0, 0.0, 1.0, 0.0, 1.0], [5.0, 0.0, 0.0, 0.0, 0.0]])
    mask = common.action_mask(OneAllowedEnv(), MaskParams(), obs)  # the last 4 entries
    np.testing.assert_array_equal(mask, [[False, True, False, True], [True, True, True, True]])  # none: all


def test_masked_values_skip_forbidden_actions_and_stay_finite():
    logits = jnp.array([[3.0, 1.0, -2.0, 0.5]])
    mask = jnp.array([[False, True, True, False]])
    masked = common.mask_actions(logits, mask)
    log_p = jax.nn.log_softmax(masked)
    assert np.isfinite(log_p).all() and np.isfinite(-(jnp.exp(log_p) * log_p).sum())
    np.testing.assert_allclose(jnp.exp(log_p)[0, [0, 3]], 0.0)
    assert int(jnp.argmax(masked)) == 1 and float(masked.max()) == 1.0
    assert common.mask_actions(logits, None) is logits


def test_random_action_is_uniform_over_the_allowed_ones():
    mask = jnp.broadcast_to(jnp.array([True, False, True, True]), (30_000, 4))
    actions = np.asarray(common.random_action(jax.random.uniform(jax.random.PRNGKey(0), (30_000,)), mask, 4))
    counts = np.bincount(actions, minlength=4) / actions.size
    np.testing.assert_allclose(counts, [1 / 3, 0.0, 1 / 3, 1 / 3], atol=0.015)
    u = jnp.linspace(0.0, 0.999, 8)
    np.testing.assert_array_equal(common.random_action(u, None, 4), jnp.floor(u * 4).astype(jnp.int32))


# --- training rollouts and make_act -------------------------------------------------------------------------------------
BRIEF = {
    rejax_ppo: dict(total_timesteps=4_096, eval_freq=2_048),
    rejax_dqn: dict(total_timesteps=3_000, eval_freq=1_000),
    rejax_pqn: dict(total_timesteps=4_096, eval_freq=2_048),
}


@pytest.fixture(scope="module", params=list(BRIEF), ids=lambda m: m.__name__)
def trained(request):
    module = request.param
    config = module.Config.make(env=OneAllowedEnv(), eval_callback=violations_so_far, **BRIEF[module])
    train_state, violations = jax.jit(module.train)(config, jax.random.PRNGKey(0))
    return module, config, train_state, np.asarray(violations)


def test_training_never_takes_a_forbidden_action(trained):
    module, config, train_state, violations = trained
    assert int(train_state.global_step) == config.total_env_steps > 0
    np.testing.assert_array_equal(violations, 0)  # warm-up, exploration and the learned policy alike


def test_make_act_never_takes_a_forbidden_action(trained):
    module, config, train_state, _ = trained
    env = config.env
    keys = jax.random.split(jax.random.PRNGKey(1), 2_000)
    obs, states = jax.vmap(env.reset_env, in_axes=(0, None))(keys, config.env_params)
    exploring = dict(deterministic=False) if module is rejax_ppo else dict(epsilon=1.0)
    for act in (module.make_act(config, train_state), module.make_act(config, train_state, **exploring)):
        actions = jax.jit(jax.vmap(act))(obs, keys)
        np.testing.assert_array_equal(actions, states.allowed)
    lengths, returns = common.evaluate(module.make_act(config, train_state), jax.random.PRNGKey(2), env,
                                       config.env_params, 4, 50)
    np.testing.assert_array_equal(returns, 0.0)  # reward 1 per forbidden action
    np.testing.assert_array_equal(lengths, 50)


def test_ppo_loss_with_masked_logits_is_finite():
    config = rejax_ppo.Config.make(env=OneAllowedEnv(), total_timesteps=1_024, eval_freq=1_024)
    ts = rejax_ppo.PPO.init(config, jax.random.PRNGKey(0))
    obs, states = jax.vmap(config.env.reset_env, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), 64),
                                                                      config.env_params)
    policy, _ = rejax_ppo.PPO.network(config).apply(ts.params, obs)
    mask = common.action_mask(config.env, config.env_params, obs)
    log_prob = rejax_ppo.log_prob(True, common.mask_actions(policy, mask), states.allowed)
    ones = jnp.ones(64)
    batch = rejax_ppo.Batch(obs, states.allowed, log_prob, ones, ones, ones, mask)
    (loss, metrics), grads = jax.value_and_grad(rejax_ppo.PPO.loss, argnums=1, has_aux=True)(config, ts.params, batch)
    assert np.isfinite(loss) and all(np.isfinite(v) for v in metrics.values())
    assert all(np.isfinite(g).all() for g in jax.tree_util.tree_leaves(grads))
    assert float(metrics["entropy"]) == pytest.approx(0.0, abs=1e-6)  # one allowed action: a certain policy


@pytest.mark.parametrize("double", [True, False])
def test_dqn_target_maximises_over_the_allowed_next_actions(double):
    config = rejax_dqn.Config.make(env=OneAllowedEnv(), double=double, total_timesteps=2_000, learning_starts=100)
    ts = rejax_dqn.DQN.init(config, jax.random.PRNGKey(0))
    ts = ts.replace(target_params=rejax_dqn.DQN.init(config, jax.random.PRNGKey(1)).params)  # online != target
    obs, states = jax.vmap(config.env.reset_env, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(2), 32),
                                                                      config.env_params)
    next_obs, reward = jnp.roll(obs, 1, 0), jnp.linspace(-1.0, 1.0, 32)
    batch = rejax_dqn.Transition(obs, states.allowed, reward, jnp.zeros(32), next_obs)
    next_mask = common.action_mask(config.env, config.env_params, next_obs)

    def expected_loss(mask):
        network = rejax_dqn.DQN.network(config)
        next_q_target = network.apply(ts.target_params, next_obs)
        picker = network.apply(ts.params, next_obs) if double else next_q_target
        best = jnp.argmax(jnp.where(mask, picker, -jnp.inf), -1)
        target = reward + config.gamma * jnp.take_along_axis(next_q_target, best[:, None], -1)[:, 0]
        q = jnp.take_along_axis(network.apply(ts.params, obs), states.allowed[:, None], -1)[:, 0]
        return optax.huber_loss(q - target).mean()

    _, metrics = rejax_dqn.DQN.update(config, ts, batch, next_mask)
    np.testing.assert_allclose(metrics["td_loss"], expected_loss(next_mask), rtol=1e-5)
    assert not np.isclose(expected_loss(next_mask), expected_loss(jnp.ones_like(next_mask)), rtol=1e-3)


def test_pqn_target_maximises_over_the_allowed_next_actions():
    """Q(lambda) bootstraps from max over the allowed actions of Q(final observation): recorded by a subclass."""
    seen = {}

    class Recording(rejax_pqn.PQN):
        @classmethod
        def collect(cls, config, train_state):
            train_state, seen["transitions"] = super().collect(config, train_state)
            return train_state, seen["transitions"]

        @classmethod
        def q_lambda_targets(cls, config, reward, next_value, terminated, done):
            seen["next_value"] = next_value
            return super().q_lambda_targets(config, reward, next_value, terminated, done)

    config = rejax_pqn.Config.make(env=OneAllowedEnv(), total_timesteps=4_096, eval_freq=4_096)
    ts = Recording.init(config, jax.random.PRNGKey(0))
    Recording.train_iteration(config, ts)  # eagerly, so that the subclass sees concrete arrays
    final_obs = Recording.normalize(config, ts.obs_stats, seen["transitions"].final_obs)
    q = Recording.network(config).apply(ts.params, final_obs)
    mask = common.action_mask(config.env, config.env_params, seen["transitions"].final_obs)
    np.testing.assert_allclose(seen["next_value"], jnp.where(mask, q, -jnp.inf).max(-1), rtol=1e-6)
    assert not np.allclose(seen["next_value"], q.max(-1))


@pytest.mark.parametrize("algo", ["iqn", "sac", "ddpg", "td3"])
def test_other_algorithms_refuse_a_masked_env_in_one_sentence(algo):
    _, config_cls = common.get_agent(algo)
    with pytest.raises(ValueError) as error:
        config_cls.make(env=OneAllowedEnv())
    message = str(error.value)
    assert "action mask" in message and "PPO, DQN, PQN" in message and "\n" not in message
