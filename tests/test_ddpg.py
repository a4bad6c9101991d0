"""DDPG tests: config checks, the TD target, one update per gradient step, determinism, vmap equivalence,
the Ornstein-Uhlenbeck noise, and learning on Pendulum-v1."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gymnax.environments import spaces
from gymnax.environments.classic_control import Pendulum

import rejax_ddpg
from rejax_ddpg import DDPG, Config

SMALL = dict(total_timesteps=240, learning_starts=120, eval_freq=60, num_envs=2, gradient_steps=2, batch_size=16,
             buffer_size=400, hidden_layer_sizes=(16, 16), num_eval_episodes=2, normalize_observations=True)


@pytest.fixture(scope="module")
def small():
    """A tiny Pendulum config with its jitted single-seed and vmapped train functions (compiled once)."""
    config = Config.make("Pendulum-v1", **SMALL)
    single = jax.jit(rejax_ddpg.train)
    vmapped = jax.jit(jax.vmap(rejax_ddpg.train, in_axes=(None, 0)))
    return config, single, vmapped


def adam_count(opt_state):
    return int(optax.tree_utils.tree_get(opt_state, "count"))


# --- config checks ---------------------------------------------------------------------------------------------------
def test_discrete_env_is_rejected_with_one_sentence():
    with pytest.raises(ValueError) as error:
        Config.make("CartPole-v1")
    message = str(error.value)
    assert "DDPG" in message and "PPO, DQN, IQN, PQN, SAC" in message and message.count(". ") == 0


@pytest.mark.parametrize("overrides, name", [
    (dict(exploration_noise=-0.1), "exploration_noise"),
    (dict(batch_size=512, buffer_size=256), "batch_size"),
    (dict(tau=1.5), "tau"),
    (dict(gradient_steps=0), "gradient_steps"),
    (dict(learning_starts=5_000, total_timesteps=1_000), "learning_starts"),
    (dict(policy_delay=2), "policy_delay"),
    (dict(exploration_noise_type="pink"), "exploration_noise_type"),
    (dict(ou_theta=1.5), "ou_theta"),
])
def test_bad_values_are_rejected(overrides, name):
    with pytest.raises(ValueError, match=name):
        Config.make("Pendulum-v1", **overrides)


def test_tuned_pendulum_budget():
    assert Config.make("Pendulum-v1").total_env_steps <= 20_000


class UnboundedPendulum(Pendulum):
    """Pendulum whose action space claims no bounds."""

    def action_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (1,), jnp.float32)


def test_non_finite_action_bounds_are_rejected_with_one_sentence():
    with pytest.raises(ValueError) as error:
        Config.make(UnboundedPendulum())
    message = str(error.value)
    assert "DDPG" in message and "finite" in message and "\n" not in message and message.count(". ") == 0


def test_total_env_steps_by_hand():
    # 4 envs = 4 env steps per iteration. Warm-up: 1,001 steps -> 251 iterations (1,004 steps). eval_freq 4,001 ->
    # 1,000 iterations per evaluation interval. 10,001 steps -> 2,501 iterations, 2,250 after the warm-up -> 3
    # intervals of 1,000 = 3,000 iterations. Total (251 + 3,000) x 4 = 13,004.
    config = Config.make("Pendulum-v1", total_timesteps=10_001, learning_starts=1_001, eval_freq=4_001)
    assert (config.steps_per_iteration, config.warmup_iterations, config.iterations_per_eval) == (4, 251, 1_000)
    assert config.num_evals == 3 and config.total_env_steps == 13_004


def test_stochastic_act_adds_gaussian_noise_of_the_configured_scale_even_with_ou(small):
    """act(obs, rng) keeps no state, so with deterministic=False it draws independent Gaussian noise of std
    exploration_noise whatever exploration_noise_type is (the ou process's stationary distribution)."""
    config = small[0]
    ts = DDPG.init(config, jax.random.PRNGKey(0))
    obs, rng = jnp.array([0.6, -0.8, 0.3]), jax.random.PRNGKey(7)
    mean = DDPG.actor(config).apply(ts.actor_params, DDPG.normalize(config, ts.obs_stats, obs))
    expected = DDPG.scale_action(config, jnp.clip(mean + 0.3 * jax.random.normal(rng, (1,)), -1.0, 1.0))
    for noise_type in ("gaussian", "ou"):
        noisy = config.replace(exploration_noise=0.3, exploration_noise_type=noise_type)
        np.testing.assert_allclose(DDPG.make_act(noisy, ts, deterministic=False)(obs, rng), expected, rtol=1e-6)
    np.testing.assert_allclose(DDPG.make_act(config, ts)(obs, rng), DDPG.scale_action(config, mean), rtol=1e-6)


# --- Ornstein-Uhlenbeck exploration noise ---------------------------------------------------------------------------
def test_ou_noise_has_unit_stationary_std_and_geometric_autocorrelation():
    config = Config.make("MountainCarContinuous-v0", ou_theta=0.1)
    normals = jax.random.normal(jax.random.PRNGKey(0), (400, 4096))
    _, path = jax.lax.scan(lambda x, n: (DDPG.ou_step(config, x, n),) * 2, jnp.zeros(4096), normals)
    path = np.asarray(path[150:])  # 0.9^150 ~ 1e-7: the start at 0 is forgotten
    assert abs(path.std() - 1.0) < 0.02
    for lag in (1, 5, 20):
        correlation = np.mean(path[lag:] * path[:-lag]) / path.var()
        assert abs(correlation - 0.9**lag) < 0.02, (lag, correlation)


def test_ou_noise_is_reset_where_an_episode_ends():
    config = Config.make("MountainCarContinuous-v0", num_envs=2, learning_starts=10, total_timesteps=100,
                         buffer_size=100, batch_size=16)
    ts = DDPG.init(config, jax.random.PRNGKey(0))
    # Env 0 is one step from its time limit; env 1 is not.
    env_state = ts.env_state.replace(time=jnp.array([config.env_params.max_steps_in_episode - 1, 0]))
    ts = ts.replace(env_state=env_state, noise=jnp.ones((2, 1)))
    for random_actions in (True, False):
        after = jax.jit(DDPG.collect, static_argnums=3)(config, ts, 0, random_actions)
        assert after.noise[0, 0] == 0.0  # the truncated episode's process starts again from 0
        assert after.noise[1, 0] != 0.0 and after.noise[1, 0] != 1.0  # the other one moved on
        if random_actions:  # the warm-up acts with the noise alone
            np.testing.assert_allclose(after.buffer.action[1],
                                       jnp.clip(config.exploration_noise * after.noise[1], -1, 1))


# --- the TD target ---------------------------------------------------------------------------------------------------
def test_td_target_by_hand():
    config = Config.make("Pendulum-v1", gamma=0.9)
    target = DDPG.td_target(config, jnp.array([1.0, -2.0, 0.5]), jnp.array([0.0, 0.0, 1.0]),
                            jnp.array([3.0, 2.0, 7.0]))
    np.testing.assert_allclose(target, [1.0 + 0.9 * 3.0, -2.0 + 0.9 * 2.0, 0.5], atol=1e-6)


def test_critic_target_uses_the_target_networks(small):
    config = small[0]
    ts = DDPG.init(config, jax.random.PRNGKey(1))
    ts = ts.replace(actor_target_params=jax.tree_util.tree_map(lambda p: p + 0.1, ts.actor_params))
    rng = jax.random.split(jax.random.PRNGKey(2), 3)
    batch = rejax_ddpg.Transition(obs=jax.random.normal(rng[0], (5, 3)), action=jnp.zeros((5, 1)),
                                  reward=jax.random.normal(rng[1], (5,)), terminated=jnp.array([0., 1., 0., 0., 1.]),
                                  next_obs=jax.random.normal(rng[2], (5, 3)))
    next_action = DDPG.actor(config).apply(ts.actor_target_params, batch.next_obs)
    assert np.all(np.abs(next_action) <= 1.0)
    next_q = DDPG.critic(config).apply(ts.critic_target_params, batch.next_obs, next_action)
    expected = batch.reward + config.gamma * (1 - batch.terminated) * next_q
    np.testing.assert_allclose(DDPG.critic_target(config, ts, batch), expected, rtol=1e-5, atol=1e-5)


def test_actions_are_rescaled_to_the_bounds(small):
    config = small[0]
    np.testing.assert_allclose(DDPG.scale_action(config, jnp.array([-1.0, 0.0, 1.0])), [-2.0, 0.0, 2.0])


# --- updates ---------------------------------------------------------------------------------------------------------
def test_whole_run_counts_updates(small):
    config, single, _ = small
    ts, evaluation = single(config, jax.random.PRNGKey(0))
    main_iterations = config.num_evals * config.iterations_per_eval
    assert adam_count(ts.actor_opt_state) == adam_count(ts.critic_opt_state) == main_iterations * config.gradient_steps
    assert int(ts.global_step) == config.total_env_steps
    assert evaluation["return"].shape == (config.num_evals + 1, config.num_eval_episodes)


# --- determinism and vmap -------------------------------------------------------------------------------------------
def test_determinism(small):
    config, single, _ = small
    a = single(config, jax.random.PRNGKey(3))
    b = single(config, jax.random.PRNGKey(3))
    c = single(config, jax.random.PRNGKey(4))
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[0].actor_params["params"]["MLP_0"]["Dense_0"]["kernel"],
                           c[0].actor_params["params"]["MLP_0"]["Dense_0"]["kernel"])


def test_vmap_equivalence(small):
    config, single, vmapped = small
    keys = jax.random.split(jax.random.PRNGKey(5), 2)
    batched_state, batched_eval = vmapped(config, keys)
    for i in range(2):
        state, evaluation = single(config, keys[i])
        np.testing.assert_allclose(batched_eval["return"][i], evaluation["return"], rtol=1e-3)
        picked = jax.tree_util.tree_map(lambda x: x[i], (batched_state.actor_params, batched_state.critic_params,
                                                         batched_state.buffer))
        for x, y in zip(jax.tree_util.tree_leaves(picked),
                        jax.tree_util.tree_leaves((state.actor_params, state.critic_params, state.buffer))):
            np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-4)  # batched GEMMs round differently (~1e-7)


# --- the file alone -------------------------------------------------------------------------------------------------
# --- learning ---------------------------------------------------------------------------------------------------------
def test_learns_pendulum():
    """Tuned defaults, 4 vmapped seeds, at most 20,000 env steps per seed."""
    config = Config.make("Pendulum-v1")
    assert config.total_env_steps <= 20_000
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    _, evaluation = jax.jit(jax.vmap(rejax_ddpg.train, in_axes=(None, 0)))(config, keys)
    final = np.asarray(evaluation["return"])[:, -1].mean(-1)
    print("DDPG Pendulum-v1 final returns per seed:", final)
    assert final.mean() >= -250, final
