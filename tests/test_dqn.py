"""DQN: the replay buffer, Double DQN targets, the dueling head, Config validation, determinism, vmap equivalence,
the subclass extension example, and learning CartPole-v1."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rejax_dqn
from rejax_dqn import DQN, Config, ReplayBuffer, Transition

SMALL = dict(total_timesteps=2_000, eval_freq=1_000, num_envs=2, learning_starts=200, buffer_size=1_000,
             batch_size=16, hidden_layer_sizes=(16,), num_eval_episodes=2)


# --- replay buffer ---------------------------------------------------------------------------------------------------
def block(first_id, rows, num_envs):
    """A block of `rows` rows whose transitions carry their own ids (1, 2, ...) in every field."""
    ids = first_id + jnp.arange(rows * num_envs, dtype=jnp.float32).reshape(rows, num_envs)
    return Transition(ids[..., None], ids.astype(jnp.int32), ids, ids, ids[..., None])


def test_buffer_never_samples_unwritten_slots_and_wraps_around():
    rows, num_envs, k = 6, 2, 2
    example = Transition(jnp.zeros((num_envs, 1)), jnp.zeros(num_envs, jnp.int32), jnp.zeros(num_envs),
                         jnp.zeros(num_envs), jnp.zeros((num_envs, 1)))
    buffer = ReplayBuffer.create(example, rows)  # unwritten slots hold id 0
    add = jax.jit(ReplayBuffer.add)
    sample = jax.jit(ReplayBuffer.sample, static_argnums=2)

    # Partly full: 2 blocks = 4 of 6 rows = ids 1..8; every sample must be one of them, and all of them appear.
    next_id = 1
    for _ in range(2):
        buffer, next_id = add(buffer, block(next_id, k, num_envs)), next_id + k * num_envs
    assert int(buffer.position) == 4 and int(buffer.size) == 4
    drawn = sample(buffer, jax.random.PRNGKey(0), (4096,))
    assert set(np.asarray(drawn.reward).tolist()) == set(range(1, 9))
    np.testing.assert_array_equal(drawn.obs[:, 0], drawn.reward)  # fields stay aligned
    np.testing.assert_array_equal(drawn.action, drawn.reward.astype(int))

    # Wrapped: 3 more blocks (10 rows written into 6): only the last 12 transitions (ids 9..20) remain.
    for _ in range(3):
        buffer, next_id = add(buffer, block(next_id, k, num_envs)), next_id + k * num_envs
    assert int(buffer.position) == 10 % rows and int(buffer.size) == rows
    np.testing.assert_array_equal(buffer.data.reward[:4].ravel(), np.arange(13, 21))  # rows 0-3: the newest
    np.testing.assert_array_equal(buffer.data.reward[4:].ravel(), np.arange(9, 13))  # rows 4-5: oldest kept
    drawn = sample(buffer, jax.random.PRNGKey(1), (2, 4096))
    assert drawn.reward.shape == (2, 4096)
    assert set(np.asarray(drawn.reward).ravel().tolist()) == set(range(9, 21))


def test_buffer_position_stays_unbatched_under_vmap():
    config = Config.make("CartPole-v1", **SMALL)
    init_and_collect = jax.jit(jax.vmap(lambda rng: DQN.collect(config, DQN.init(config, rng), 1.0)))
    stepped = init_and_collect(jax.random.split(jax.random.PRNGKey(0), 3))
    assert stepped.buffer.data.obs.shape[0] == 3
    # The write position is a function of the step count only: vmap leaves it a scalar-valued batch of equal values.
    assert np.all(np.asarray(stepped.buffer.position) == 1)


# --- targets and the dueling head ------------------------------------------------------------------------------------
def test_double_dqn_target_matches_hand_computation():
    next_q = jnp.array([[1.0, 3.0], [2.0, 0.0]])  # online net: picks action 1, then action 0
    next_q_target = jnp.array([[10.0, 20.0], [30.0, 40.0]])
    reward, terminated = jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0])
    double = Config.make("CartPole-v1", gamma=0.9, double=True)
    vanilla = Config.make("CartPole-v1", gamma=0.9, double=False)
    # Double: 1 + 0.9 * 20 = 19; 2 + 0.9 * 30 = 29. DQN (max of the target net): 1 + 0.9 * 20 = 19; 2 + 0.9 * 40 = 38.
    np.testing.assert_allclose(DQN.td_target(double, reward, terminated, next_q, next_q_target), [19.0, 29.0])
    np.testing.assert_allclose(DQN.td_target(vanilla, reward, terminated, next_q, next_q_target), [19.0, 38.0])
    # A terminal step does not bootstrap.
    np.testing.assert_allclose(DQN.td_target(double, reward, jnp.array([0.0, 1.0]), next_q, next_q_target),
                               [19.0, 2.0])


def test_dueling_aggregation_matches_hand_computation():
    value = jnp.array([[1.0], [-2.0]])
    advantage = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 3.0]])
    # Row 0: mean A = 2 -> 1 + (A - 2) = [0, 1, 2]; row 1: mean A = 1 -> -2 + (A - 1) = [-3, -3, 0].
    np.testing.assert_allclose(rejax_dqn.dueling_q(value, advantage), [[0.0, 1.0, 2.0], [-3.0, -3.0, 0.0]])


def test_cnn_is_chosen_for_image_observations():
    config = Config.make("Breakout-MinAtar")
    assert config.use_cnn and config.hidden_sizes == (128,)
    network = DQN.network(config)
    params = network.init(jax.random.PRNGKey(0), jnp.zeros((1, 10, 10, 4)))
    assert params["params"]["Conv_0"]["kernel"].shape == (3, 3, 4, 16)
    assert network.apply(params, jnp.zeros((5, 10, 10, 4))).shape == (5, 3)
    assert not Config.make("Breakout-MinAtar", network="mlp").use_cnn
    assert not Config.make("CartPole-v1").use_cnn


# --- Config.make -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(env="Pendulum-v1"), "DQN needs discrete actions but Pendulum-v1 has continuous ones; use one of PPO, SAC"),
        (dict(batch_size=512, buffer_size=256), "batch_size (512) must not exceed buffer_size (256)"),
        (dict(learning_starts=200_000, total_timesteps=100_000), "learning_starts (200000) must not exceed"),
        (dict(eps_start=1.5), "eps_start must lie in [0, 1]"),
        (dict(eps_end=-0.1), "eps_end must lie in [0, 1]"),
        (dict(exploration_fraction=2.0), "exploration_fraction must lie in [0, 1]"),
        (dict(eval_epsilon=1.5), "eval_epsilon must lie in [0, 1]"),
        (dict(tau=0.0 - 1), "tau must lie in [0, 1]"),
        (dict(gradient_steps=0), "gradient_steps must be a positive number"),
        (dict(loss="l1"), "loss must be huber or mse"),
        (dict(network="cnn"), "network='cnn' needs image observations"),
        (dict(epsilon_end=0.1), "has no setting 'epsilon_end'"),
    ],
)
def test_config_make_rejects_bad_input_in_one_sentence(kwargs, message):
    with pytest.raises(ValueError) as error:
        Config.make(**kwargs)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_total_env_steps_rounds_up_to_whole_evaluation_intervals_as_the_help_says():
    config = Config.make("CartPole-v1", num_envs=4, train_freq=2, learning_starts=100, total_timesteps=1_000,
                         eval_freq=300)
    # An iteration is 4 x 2 = 8 steps. Warm-up: ceil(100 / 8) = 13 iterations. An interval: floor(300 / 8) = 37
    # iterations. The rest of the budget, ceil(1000 / 8) - 13 = 112 iterations, becomes ceil(112 / 37) = 4 intervals.
    assert (config.warmup_iterations, config.iterations_per_eval, config.num_evals) == (13, 37, 4)
    assert config.total_env_steps == (13 + 4 * 37) * 8 == 1_288


# --- determinism, vmap equivalence, extension ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    config = Config.make("CartPole-v1", **SMALL)
    return config, jax.jit(rejax_dqn.train)


def assert_trees_close(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def test_same_seed_gives_identical_results(small):
    config, train = small
    (ts1, ev1), (ts2, ev2) = train(config, jax.random.PRNGKey(3)), train(config, jax.random.PRNGKey(3))
    for x, y in zip(jax.tree_util.tree_leaves((ts1.params, ev1)), jax.tree_util.tree_leaves((ts2.params, ev2))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert ev1["return"].shape == (config.num_evals + 1, config.num_eval_episodes)
    assert int(ts1.global_step) == config.total_env_steps


def test_vmapped_seed_equals_single_run(small):
    config, train = small
    keys = jax.random.split(jax.random.PRNGKey(7), 3)
    ts_all, ev_all = jax.jit(jax.vmap(rejax_dqn.train, in_axes=(None, 0)))(config, keys)
    ts_one, ev_one = train(config, keys[1])
    assert_trees_close(jax.tree_util.tree_map(lambda x: x[1], (ts_all.params, ev_all)), (ts_one.params, ev_one))


class MyDoubleDQN(DQN):
    """The README's extension example: compute Double DQN targets in an overridden `update`; `train` is unchanged."""

    @classmethod
    def update(cls, config, train_state, batch):
        network = cls.network(config)
        best = jnp.argmax(network.apply(train_state.params, batch.next_obs), -1)  # the online net picks
        next_q = jnp.take_along_axis(network.apply(train_state.target_params, batch.next_obs), best[:, None], -1)
        target = batch.reward + config.gamma * (1.0 - batch.terminated) * next_q[:, 0]  # the target net values
        grads, metrics = jax.grad(cls.loss, argnums=1, has_aux=True)(config, train_state.params, batch, target)
        updates, opt_state = cls.optimizer(config).update(grads, train_state.opt_state, train_state.params)
        params = optax.apply_updates(train_state.params, updates)
        return train_state.replace(params=params, opt_state=opt_state), metrics


def test_subclass_overriding_update_trains_with_train_unchanged(small):
    config, train = small
    ts_builtin, ev_builtin = train(config, jax.random.PRNGKey(5))  # double=True by default
    ts_mine, ev_mine = jax.jit(MyDoubleDQN.train)(config.replace(double=False), jax.random.PRNGKey(5))
    assert_trees_close((ts_mine.params, ev_mine), (ts_builtin.params, ev_builtin))


# --- learning ---------------------------------------------------------------------------------------------------------
def test_learns_cartpole_with_four_vmapped_seeds():
    config = Config.make("CartPole-v1")  # tuned defaults: Double DQN + dueling head
    assert config.double and config.dueling and config.total_env_steps <= 100_000
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(4))
    _, evaluation = jax.jit(jax.vmap(rejax_dqn.train, in_axes=(None, 0)))(config, keys)
    final = np.asarray(evaluation["return"])[:, -1].mean(-1)  # [4 seeds]
    # Every seed: 64 of 64 seeds ended at 500 in the 16-seed checks of benchmarks/dqn.md (Eigen threads on and off).
    assert final.min() >= 475, final
