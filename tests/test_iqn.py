"""IQN: the replay buffer, the cosine embedding, the quantile Huber loss and the targets against hand computations,
Config validation, determinism, vmap equivalence, the subclass extension example, and learning CartPole-v1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rejax_iqn
from rejax_iqn import IQN, Config, ReplayBuffer, Transition

SMALL = dict(total_timesteps=1_200, eval_freq=500, num_envs=2, learning_starts=200, buffer_size=1_000,
             batch_size=8, num_tau_samples=4, num_tau_prime_samples=5, num_quantile_samples=3,
             hidden_layer_sizes=(16, 16), num_eval_episodes=2, double=True)


# --- replay buffer ---------------------------------------------------------------------------------------------------
def test_buffer_never_samples_unwritten_slots_and_wraps_around():
    rows, num_envs = 6, 2
    example = Transition(jnp.zeros((num_envs, 1)), jnp.zeros(num_envs, jnp.int32), jnp.zeros(num_envs),
                         jnp.zeros(num_envs), jnp.zeros((num_envs, 1)))
    buffer = ReplayBuffer.create(example, rows)  # unwritten slots hold id 0
    add, sample = jax.jit(ReplayBuffer.add), jax.jit(ReplayBuffer.sample, static_argnums=2)

    def block(first_id):  # 2 rows of 2 envs whose transitions carry their ids in every field
        ids = first_id + jnp.arange(2 * num_envs, dtype=jnp.float32).reshape(2, num_envs)
        return Transition(ids[..., None], ids.astype(jnp.int32), ids, ids, ids[..., None])

    buffer = add(add(buffer, block(1)), block(5))  # 4 of 6 rows: ids 1..8
    drawn = sample(buffer, jax.random.PRNGKey(0), (4096,))
    assert set(np.asarray(drawn.reward).tolist()) == set(range(1, 9))  # never 0, every written one
    np.testing.assert_array_equal(drawn.action, drawn.reward.astype(int))  # fields stay aligned
    np.testing.assert_array_equal(drawn.next_obs[:, 0], drawn.reward)
    for first_id in (9, 13, 17):  # 10 rows written into 6: only the newest 12 transitions, ids 9..20, remain
        buffer = add(buffer, block(first_id))
    assert (int(buffer.position), int(buffer.size)) == (4, 6)
    drawn = sample(buffer, jax.random.PRNGKey(1), (2, 4096))
    assert set(np.asarray(drawn.reward).ravel().tolist()) == set(range(9, 21))


# --- the network and the loss against hand computations --------------------------------------------------------------
def test_cosine_embedding_and_network_shapes():
    features = rejax_iqn.cosine_features(jnp.array([[0.0, 0.5], [1.0, 0.25]]), 4)
    assert features.shape == (2, 2, 4)
    np.testing.assert_allclose(features[0, 1], [1.0, 0.0, -1.0, 0.0], atol=1e-6)  # cos(pi i / 2), i = 0..3
    np.testing.assert_allclose(features[1, 0], [1.0, -1.0, 1.0, -1.0], atol=1e-6)  # cos(pi i)
    config = Config.make("CartPole-v1", hidden_layer_sizes=(32, 16), embedding_dim=8)
    network = IQN.network(config)
    params = network.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)), jnp.zeros((1, 1)))["params"]
    assert params["Dense_1"]["kernel"].shape == (8, 32)  # phi: n = 8 cosine features -> the torso's 32 features
    assert params["Dense_2"]["kernel"].shape == (32, 16)  # the head's hidden layer
    assert network.apply({"params": params}, jnp.zeros((5, 4)), jnp.zeros((5, 7))).shape == (5, 7, 2)


def test_quantile_huber_loss_matches_hand_computation():
    config = Config.make("CartPole-v1", kappa=1.0)
    z, tau, target = jnp.array([[0.0, 1.0]]), jnp.array([[0.25, 0.75]]), jnp.array([[0.5, 3.0]])
    # delta_ij = target_j - z_i: [[0.5, 3], [-0.5, 2]]; Huber_1: [[0.125, 2.5], [0.125, 1.5]];
    # weights |tau_i - 1{delta_ij < 0}|: [[0.25, 0.25], [0.25, 0.75]]; rho: [[0.03125, 0.625], [0.03125, 1.125]];
    # mean over j: [0.328125, 0.578125]; sum over i: 0.90625.
    np.testing.assert_allclose(IQN.quantile_huber_loss(config, z, target, tau), 0.90625, rtol=1e-6)
    # kappa = 2: Huber_2 = [[0.125, 2 * (3 - 1)], [0.125, 0.5 * 2^2]], over kappa: [[0.0625, 2], [0.0625, 1]];
    # rho [[0.015625, 0.5], [0.015625, 0.75]]; mean over j [0.2578125, 0.3828125]; sum 0.640625.
    np.testing.assert_allclose(IQN.quantile_huber_loss(config.replace(kappa=2.0), z, target, tau), 0.640625,
                               rtol=1e-6)


class Stub:
    """A 'network' whose output is its params broadcast to [batch, taus, actions], for targets by hand."""

    def apply(self, params, obs, tau):
        return jnp.broadcast_to(params[:, None, :], (obs.shape[0], tau.shape[1], params.shape[-1]))


class StubIQN(IQN):
    @classmethod
    def network(cls, config):
        return Stub()


def test_target_quantiles_pick_a_star_and_stop_at_terminations():
    online, target = jnp.array([[1.0, 3.0], [2.0, 0.0]]), jnp.array([[10.0, 20.0], [40.0, 30.0]])
    batch = Transition(jnp.zeros((2, 1)), jnp.zeros(2, jnp.int32), jnp.array([1.0, 2.0]), jnp.array([0.0, 1.0]),
                       jnp.zeros((2, 1)))
    tau_prime, tau_greedy = jnp.zeros((2, 3)), jnp.zeros((2, 2))
    # Row 1: both nets pick a* = 1, worth 20 to the target net: 1 + 0.9 * 20 = 19. Row 2 is terminal: its target
    # is the reward, 2, whatever is picked.
    for double, expected in ((False, [19.0, 2.0]), (True, [19.0, 2.0])):
        config = Config.make("CartPole-v1", gamma=0.9, double=double)
        values = StubIQN.target_quantiles(config, online, target, batch, tau_prime, tau_greedy)
        np.testing.assert_allclose(values, np.repeat(np.array(expected)[:, None], 3, 1))  # [batch, N']
    # Where the two nets disagree: target net picks 0 (40), online net picks 1 (30); no termination.
    batch = batch._replace(terminated=jnp.zeros(2))
    for double, expected in ((False, 2.0 + 0.9 * 40.0), (True, 2.0 + 0.9 * 30.0)):
        config = Config.make("CartPole-v1", gamma=0.9, double=double)
        values = StubIQN.target_quantiles(config, jnp.array([[1.0, 3.0], [0.0, 2.0]]), target, batch, tau_prime,
                                          tau_greedy)
        np.testing.assert_allclose(values[1], expected)


def test_cnn_is_chosen_for_image_observations():
    config = Config.make("Breakout-MinAtar")
    assert config.use_cnn and config.hidden_sizes == (128,)
    network = IQN.network(config)
    params = network.init(jax.random.PRNGKey(0), jnp.zeros((1, 10, 10, 4)), jnp.zeros((1, 1)))
    assert params["params"]["Conv_0"]["kernel"].shape == (3, 3, 4, 16)
    assert params["params"]["Dense_0"]["kernel"].shape == (64, 1024)  # phi(tau) -> the conv's 8 x 8 x 16 features
    assert network.apply(params, jnp.zeros((5, 10, 10, 4)), jnp.zeros((5, 7))).shape == (5, 7, 3)
    assert not Config.make("Breakout-MinAtar", network="mlp").use_cnn
    assert not Config.make("CartPole-v1").use_cnn


# --- Config.make -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(env="Pendulum-v1"), "IQN needs discrete actions but Pendulum-v1 has continuous ones; use one of PPO"),
        (dict(batch_size=512, buffer_size=256), "batch_size (512) must not exceed buffer_size (256)"),
        (dict(learning_starts=200_000, total_timesteps=100_000), "learning_starts (200000) must not exceed"),
        (dict(num_tau_samples=0), "num_tau_samples must be a positive number"),
        (dict(num_quantile_samples=-1), "num_quantile_samples must be a positive number"),
        (dict(kappa=0.0), "kappa must be a positive number"),
        (dict(eps_end=-0.1), "eps_end must lie in [0, 1]"),
        (dict(eval_epsilon=1.5), "eval_epsilon must lie in [0, 1]"),
        (dict(tau=1.5), "tau must lie in [0, 1]"),
        (dict(network="cnn"), "network='cnn' needs image observations"),
        (dict(activation="gelu"), "activation must be one of relu, tanh, swish"),
        (dict(num_taus=8), "has no setting 'num_taus'"),
    ],
)
def test_config_make_rejects_bad_input_in_one_sentence(kwargs, message):
    with pytest.raises(ValueError) as error:
        Config.make(**kwargs)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


# --- determinism, vmap equivalence, extension ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    config = Config.make("CartPole-v1", **SMALL)
    return config, jax.jit(rejax_iqn.train)


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
    ts_all, ev_all = jax.jit(jax.vmap(rejax_iqn.train, in_axes=(None, 0)))(config, keys)
    ts_one, ev_one = train(config, keys[1])
    assert_trees_close(jax.tree_util.tree_map(lambda x: x[1], (ts_all.params, ev_all)), (ts_one.params, ev_one))


class MyDoubleIQN(IQN):
    """An extension example: Double-Q targets written in an overridden `target_quantiles`; `train` is unchanged."""

    @classmethod
    def target_quantiles(cls, config, params, target_params, batch, tau_prime, tau_greedy):
        network = cls.network(config)
        best = network.apply(params, batch.next_obs, tau_greedy).mean(1).argmax(-1)  # the online net picks
        z_next = network.apply(target_params, batch.next_obs, tau_prime)  # the target net values: [batch, N', A]
        z_best = jnp.take_along_axis(z_next, best[:, None, None], -1)[..., 0]
        return batch.reward[:, None] + config.gamma * (1.0 - batch.terminated[:, None]) * z_best


def test_subclass_overriding_target_quantiles_trains_with_train_unchanged(small):
    config, train = small  # double=True: the built-in Double-Q targets
    ts_builtin, ev_builtin = train(config, jax.random.PRNGKey(5))
    ts_mine, ev_mine = jax.jit(MyDoubleIQN.train)(config.replace(double=False), jax.random.PRNGKey(5))
    assert_trees_close((ts_mine.params, ev_mine), (ts_builtin.params, ev_builtin))


# --- learning ---------------------------------------------------------------------------------------------------------
def test_learns_cartpole_with_eight_vmapped_seeds():
    # The tuned defaults cut to 11,000 env steps (1,000 warm-up + 10,000 of training, its epsilon and learning-rate
    # schedules scaled to the shorter run): enough to tell learning from none at a fifth of the full budget's cost.
    # Untrained, the greedy policy scores about 10 and a uniformly random one about 22. At this budget the seeds are
    # part-way up IQN's CartPole plateau and spread widely: on keys 0-15 (benchmarks/margins.md, 2026-12-02) mean
    # 249.8, std 59.7, min 126.2 (key 3; 129.9 on the 2026-11-30 run). The former bar, every one of 4 seeds >= 100,
    # sat within that spread. Judged instead by the mean of 8 seeds (its std ~21; keys 0-7 gave 239.5, the 8 lowest of
    # 16 203.3) against 140, and every seed >= 50, five times the untrained score (the lowest of 16 sits 1.3 std above).
    config = Config.make("CartPole-v1", total_timesteps=11_000, eval_freq=10_000)
    assert config.total_env_steps == 11_000
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(8))
    _, evaluation = jax.jit(jax.vmap(rejax_iqn.train, in_axes=(None, 0)))(config, keys)
    final = np.asarray(evaluation["return"])[:, -1].mean(-1)  # [8 seeds]
    print("IQN CartPole-v1 at 11,000 steps, final returns per seed:", final)
    assert final.mean() >= 140 and final.min() >= 50, final
