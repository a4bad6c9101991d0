"""DQN: deep Q-learning from a replay buffer, with Double DQN targets and a dueling head as options.

Mnih et al. 2015, "Human-level control through deep reinforcement learning" (Q-learning target and loss, eq. 2;
replay memory and target network, Methods); van Hasselt et al. 2016, "Deep Reinforcement Learning with Double
Q-learning" (Double DQN target, eq. 4); Wang et al. 2016, "Dueling Network Architectures for Deep Reinforcement
Learning" (mean-subtracted aggregation, eq. 9); Young & Tian 2019, "MinAtar" (the small CNN for image observations).

Notable choices:
- The defaults, and every result reported as "DQN" here, are Double DQN + a dueling head, trained with Adam and a
  Polyak target update after every iteration (CartPole-v1's tuned values: hard copies every 500 env steps; Mnih et
  al. use RMSProp and hard copies every 10k steps). The dueling streams V and A are single linear heads on the shared
  torso; Wang et al. give each stream its own hidden layer.
- Image observations (MinAtar) go through conv 16 3x3, stride 1, padding VALID (Young & Tian 2019): 1,024 features
  on a 10x10 grid, then the dense layers.
- Time-limit truncation is not termination: the buffer stores the observation the action led to (before any reset)
  and a `terminated` flag, and only `terminated` stops the bootstrap.
- The replay buffer is a pytree ring of rows, one row per env step holding all `num_envs` transitions. Its write
  position depends only on the step count, the same for every seed, so it stays an unbatched scalar under `vmap`
  and each write is an in-place `dynamic_update_slice`. Sampling is `randint` over the rows written so far: O(batch),
  never an unwritten slot, no mask over the buffer.
- `learning_starts` is a separate warm-up loop with uniform random actions before the training loop, not a
  per-step `cond` (which `vmap` would turn into computing both branches).
- One iteration = `train_freq` steps in each of `num_envs` envs, then `gradient_steps` Adam steps on batches of
  `batch_size`, then a target update: Polyak averaging with `tau` (tau = 1 and `target_update_freq` = N gives hard
  copies every N env steps). Gradients are clipped to a global norm; the loss is Huber or MSE.
- Evaluation is greedy unless `eval_epsilon` > 0 (Mnih et al. evaluate at 0.05): a greedy policy can repeat a no-op
  forever where its Q-values are nearly tied, as on navix's DoorKey, and the random actions break such loops.
- normalize_rewards: raw rewards in the buffer, divided by the return std when sampled (one scale per batch, as SB3;
  gym's wrapper scales at collection). Action masks limit acting and the target's max/argmax to allowed actions.

Run: python rejax_dqn.py --env CartPole-v1 --num-seeds 4
"""

from typing import Any, Callable, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

import common


# ---------------------------------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------------------------------
# Tuned on an H200 by vmapped sweeps (learning rate x tau x 8-32 seeds); see the report in benchmarks/dqn.md.
_SMALL = dict(num_envs=10, train_freq=1, gradient_steps=2, batch_size=128, buffer_size=100_000, learning_starts=1_000,
              learning_rate=3e-3, tau=0.02, eps_end=0.01, exploration_fraction=0.2, anneal_lr=True,
              activation="swish", loss="mse", total_timesteps=100_000, eval_freq=9_900)
TUNED = {
    "CartPole-v1": dict(_SMALL, tau=1.0, target_update_freq=500),  # hard copies: 64 of 64 seeds at 500, not 57
    "Acrobot-v1": _SMALL,
    "Breakout-MinAtar": dict(num_envs=16, train_freq=1, gradient_steps=2, batch_size=64, buffer_size=100_000,
                             learning_starts=5_000, learning_rate=5e-4, tau=0.01, eps_end=0.01,
                             exploration_fraction=0.1, anneal_lr=True, total_timesteps=1_000_000, eval_freq=100_000),
    "navix/Navix-Empty-8x8-v0": dict(_SMALL, learning_rate=1e-3, gamma=0.95, eps_end=0.05, total_timesteps=40_000,
                                     eval_freq=10_000),
    # Measured with --env-kwargs '{"max_steps": 640}' (benchmarks/suites.md); the buffer, the whole run, is 2.5 GB/seed
    "navix/Navix-DoorKey-8x8-v0": dict(num_envs=32, gradient_steps=4, batch_size=128, buffer_size=1_200_000,
                                       learning_starts=20_000, learning_rate=3e-4, gamma=0.95, tau=0.01, eps_end=0.05,
                                       exploration_fraction=0.5, eval_epsilon=0.05, normalize_observations=True,
                                       num_eval_episodes=32, total_timesteps=1_200_000, eval_freq=100_000),
}


@struct.dataclass
class Config:
    env: Any = struct.field(pytree_node=False)
    """The gymnax environment (made from a name by `Config.make`)."""
    env_params: Any
    """The environment's parameters (a pytree)."""

    # --- budget and evaluation (static)
    total_timesteps: int = struct.field(pytree_node=False, default=500_000)
    """Environment steps per seed, warm-up included; the steps after the warm-up are rounded up to whole evaluation
    intervals (eval_freq): `Config.total_env_steps` is the exact count, and the CLI prints it."""
    eval_freq: int = struct.field(pytree_node=False, default=25_000)
    """Env steps between evaluation points (each calls eval_callback), rounded down to whole iterations of
    num_envs x train_freq steps (at least one)."""
    num_eval_episodes: int = struct.field(pytree_node=False, default=8)
    """Episodes the default callback plays at each evaluation point (epsilon-greedy at eval_epsilon)."""
    eval_callback: Callable = struct.field(pytree_node=False, default=None)
    """callback(config, train_state, rng) -> pytree, run at every evaluation point; None means DQN.eval_callback."""

    # --- shapes and schedule (static)
    num_envs: int = struct.field(pytree_node=False, default=1)
    """Parallel environments."""
    train_freq: int = struct.field(pytree_node=False, default=1)
    """Steps in each env between rounds of gradient steps."""
    gradient_steps: int = struct.field(pytree_node=False, default=1)
    """Gradient steps after each round of train_freq x num_envs env steps."""
    batch_size: int = struct.field(pytree_node=False, default=64)
    """Transitions per gradient step, sampled uniformly (with replacement) from the buffer."""
    buffer_size: int = struct.field(pytree_node=False, default=100_000)
    """Replay capacity in transitions, rounded up to whole iterations of train_freq x num_envs."""
    learning_starts: int = struct.field(pytree_node=False, default=1_000)
    """Env steps of uniform random actions that fill the buffer before training (rounded up to whole iterations)."""
    target_update_freq: int = struct.field(pytree_node=False, default=1)
    """Env steps between target updates (checked after every iteration); with tau=1 these are hard copies."""
    network: str = struct.field(pytree_node=False, default="auto")
    """Torso: mlp, cnn (the MinAtar conv layer, then the dense layers) or auto (cnn for image observations)."""
    hidden_layer_sizes: Optional[tuple[int, ...]] = struct.field(pytree_node=False, default=None)
    """Dense hidden widths; None means (64, 64) for the mlp and (128,) after the cnn's conv layer."""
    activation: str = struct.field(pytree_node=False, default="relu")
    """Hidden activation: relu, tanh or swish."""

    # --- switches (static)
    double: bool = struct.field(pytree_node=False, default=True)
    """Double DQN targets: the online net picks the next action, the target net values it."""
    dueling: bool = struct.field(pytree_node=False, default=True)
    """Dueling head: Q = V + A - mean(A)."""
    loss: str = struct.field(pytree_node=False, default="huber")
    """TD loss: huber (delta 1, as in Mnih et al. 2015) or mse."""
    normalize_observations: bool = struct.field(pytree_node=False, default=False)
    """Normalise observations with a running mean and variance shared by all envs."""
    normalize_rewards: bool = struct.field(pytree_node=False, default=False)
    """Divide sampled rewards by a running std of the discounted return (gym's NormalizeReward, at sampling time)."""
    anneal_lr: bool = struct.field(pytree_node=False, default=False)
    """Decay the learning rate linearly to 0 over the run's gradient steps."""

    # --- hyperparameters (pytree leaves: vmappable)
    learning_rate: float = 1e-3
    """Adam step size."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Fraction moved toward the online net at each target update (1 = hard copy)."""
    eps_start: float = 1.0
    """Exploration rate at step 0."""
    eps_end: float = 0.05
    """Exploration rate after the decay."""
    exploration_fraction: float = 0.1
    """Fraction of the run over which epsilon decays linearly from eps_start to eps_end."""
    eval_epsilon: float = 0.0
    """Exploration rate of the evaluation episodes: 0 is greedy; Mnih et al. 2015 evaluate at 0.05."""
    max_grad_norm: float = 10.0
    """Gradients are rescaled to at most this global norm."""

    @classmethod
    def make(cls, env="CartPole-v1", env_params=None, **overrides) -> "Config":
        """Build and validate a config: class defaults < tuned values for this env < `overrides`."""
        return common.make_config(cls, "dqn", TUNED, env, env_params, overrides)

    def validate(self):
        common.check_positive(total_timesteps=self.total_timesteps, eval_freq=self.eval_freq,
                              num_eval_episodes=self.num_eval_episodes, num_envs=self.num_envs,
                              train_freq=self.train_freq, gradient_steps=self.gradient_steps,
                              batch_size=self.batch_size, buffer_size=self.buffer_size,
                              target_update_freq=self.target_update_freq, learning_rate=self.learning_rate,
                              max_grad_norm=self.max_grad_norm)
        common.check_non_negative(learning_starts=self.learning_starts)
        common.check_unit_interval(gamma=self.gamma, tau=self.tau, eps_start=self.eps_start, eps_end=self.eps_end,
                                   exploration_fraction=self.exploration_fraction, eval_epsilon=self.eval_epsilon)
        common.check_callback(self.eval_callback)
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed buffer_size ({self.buffer_size}); "
                             f"lower batch_size or raise buffer_size.")
        if self.learning_starts > self.total_timesteps:
            raise ValueError(f"learning_starts ({self.learning_starts}) must not exceed total_timesteps "
                             f"({self.total_timesteps}), or no training would happen; lower learning_starts.")
        if self.network not in ("auto", "mlp", "cnn"):
            raise ValueError(f"network must be auto, mlp or cnn, got {self.network!r}.")
        if self.use_cnn and len(self.env.observation_space(self.env_params).shape) != 3:
            raise ValueError("network='cnn' needs image observations (height, width, channels); use network='mlp'.")
        if self.hidden_layer_sizes is not None and (not self.hidden_layer_sizes or min(self.hidden_layer_sizes) < 1):
            raise ValueError(f"hidden_layer_sizes must be positive widths, got {self.hidden_layer_sizes!r}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}.")
        if self.loss not in ("huber", "mse"):
            raise ValueError(f"loss must be huber or mse, got {self.loss!r}.")

    # Derived sizes.
    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.train_freq

    @property
    def warmup_iterations(self) -> int:
        return -(-self.learning_starts // self.steps_per_iteration)

    @property
    def iterations_per_eval(self) -> int:
        return max(1, self.eval_freq // self.steps_per_iteration)

    @property
    def num_evals(self) -> int:
        iterations = -(-self.total_timesteps // self.steps_per_iteration) - self.warmup_iterations
        return max(1, -(-iterations // self.iterations_per_eval))

    @property
    def total_env_steps(self) -> int:
        """Environment steps per seed actually taken, warm-up included (total_timesteps rounded up)."""
        return (self.warmup_iterations + self.num_evals * self.iterations_per_eval) * self.steps_per_iteration

    @property
    def buffer_rows(self) -> int:
        """Rows of the ring (one row = one step of all envs), a multiple of train_freq so blocks never wrap."""
        return -(-self.buffer_size // self.steps_per_iteration) * self.train_freq

    @property
    def use_cnn(self) -> bool:
        image = len(self.env.observation_space(self.env_params).shape) == 3
        return self.network == "cnn" or (self.network == "auto" and image)

    @property
    def hidden_sizes(self) -> tuple:
        default = (128,) if self.use_cnn else (64, 64)
        return default if self.hidden_layer_sizes is None else tuple(self.hidden_layer_sizes)


# ---------------------------------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------------------------------
ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "swish": nn.swish}


def dueling_q(value, advantage):
    """Dueling aggregation (Wang et al. 2016, eq. 9): Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')."""
    return value + advantage - advantage.mean(-1, keepdims=True)


class QNetwork(nn.Module):
    """Q-values for every action: an MLP (vector observations) or MinAtar's CNN torso, then a plain or dueling head."""

    action_dim: int
    hidden_layer_sizes: tuple
    activation: str
    cnn: bool
    dueling: bool

    @nn.compact
    def __call__(self, obs):
        x = obs.astype(jnp.float32)
        if self.cnn:  # [..., H, W, C] -> conv 16 3x3, stride 1, padding VALID (Young & Tian 2019) -> flatten
            x = nn.relu(nn.Conv(16, (3, 3), padding="VALID")(x))
            x = x.reshape(x.shape[:-3] + (-1,))
        for width in self.hidden_layer_sizes:
            x = ACTIVATIONS[self.activation](nn.Dense(width)(x))
        if self.dueling:
            return dueling_q(nn.Dense(1)(x), nn.Dense(self.action_dim)(x))
        return nn.Dense(self.action_dim)(x)


# ---------------------------------------------------------------------------------------------------------------------
# Data containers and the replay buffer
# ---------------------------------------------------------------------------------------------------------------------
class Transition(NamedTuple):  # in the buffer each field is [rows, num_envs, ...]; in a batch [batch_size, ...]
    obs: jax.Array  # raw observation the action was taken in
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array  # true terminal state: no bootstrap (a truncation is not one)
    next_obs: jax.Array  # raw observation the action led to (before any reset)


@struct.dataclass
class ReplayBuffer:
    """A fixed-size ring of rows, a row per step of every env; `position` and `size` are the same for every seed."""

    data: Transition  # each field [rows, num_envs, ...]
    position: jax.Array  # int32: the next row to write
    size: jax.Array  # int32: rows written so far, at most rows

    @classmethod
    def create(cls, example: Transition, rows: int) -> "ReplayBuffer":
        """An empty ring of `rows` rows shaped like `example` (one row: fields [num_envs, ...])."""
        data = jax.tree_util.tree_map(lambda x: jnp.zeros((rows,) + x.shape, x.dtype), example)
        return cls(data, jnp.array(0, jnp.int32), jnp.array(0, jnp.int32))

    def add(self, block: Transition) -> "ReplayBuffer":
        """Write a block of rows (fields [k, num_envs, ...]) at `position`; rows must be a multiple of k."""
        k, rows = block.reward.shape[0], self.data.reward.shape[0]
        if rows % k:
            raise ValueError(f"the buffer's {rows} rows must be a multiple of the block's {k} rows.")
        data = jax.tree_util.tree_map(
            lambda buf, x: jax.lax.dynamic_update_slice_in_dim(buf, x.astype(buf.dtype), self.position, 0),
            self.data, block,
        )
        return ReplayBuffer(data, (self.position + k) % rows, jnp.minimum(self.size + k, rows))

    def sample(self, rng, shape: tuple) -> Transition:
        """Transitions drawn uniformly with replacement from the written rows, fields [*shape, ...]: O(batch) work,
        no mask over the buffer; `shape` = (gradient_steps, batch_size) draws all of an iteration's batches at once."""
        num_envs = self.data.reward.shape[1]
        # Like randint(rng, shape, 0, size) with one threefry call instead of three; modulo bias < size / 2**32.
        index = (jax.random.bits(rng, shape, jnp.uint32) % (self.size * num_envs).astype(jnp.uint32)).astype(jnp.int32)
        flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731 [rows * num_envs, ...], a free reshape
        return jax.tree_util.tree_map(lambda x: flat(x)[index], self.data)


@struct.dataclass
class TrainState:
    rng: jax.Array
    global_step: jax.Array  # env steps per seed so far
    params: Any
    target_params: Any
    opt_state: Any
    env_state: Any  # [num_envs, ...]
    obs: jax.Array  # [num_envs, ...] current raw observation
    buffer: ReplayBuffer
    obs_stats: common.RunningMeanStd
    reward_stats: common.ReturnStats  # frozen unless normalize_rewards
    episode_stats: common.EpisodeStats


# ---------------------------------------------------------------------------------------------------------------------
# The algorithm
# ---------------------------------------------------------------------------------------------------------------------
class DQN:
    @classmethod
    def network(cls, config):
        action_dim = config.env.action_space(config.env_params).n
        return QNetwork(action_dim, config.hidden_sizes, config.activation, config.use_cnn, config.dueling)

    @classmethod
    def optimizer(cls, config):
        learning_rate = config.learning_rate
        if config.anneal_lr:
            total_updates = config.num_evals * config.iterations_per_eval * config.gradient_steps
            learning_rate = lambda count: config.learning_rate * (1.0 - count / total_updates)  # noqa: E731
        # optax.flatten runs clipping and Adam on one concatenated vector: on CPU, where a step of this small net
        # costs about as much per XLA op as per flop, that is 1.5x faster than one set of ops per parameter array.
        return optax.flatten(optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(learning_rate)))

    @classmethod
    def init(cls, config, rng) -> TrainState:
        rng, rng_params, rng_env = jax.random.split(rng, 3)
        obs, env_state = common.reset_envs(config.env, config.env_params, rng_env, config.num_envs)
        params = cls.network(config).init(rng_params, obs[:1])
        row = Transition(obs, jnp.zeros(config.num_envs, jnp.int32), jnp.zeros(config.num_envs),
                         jnp.zeros(config.num_envs), obs)
        return TrainState(rng, jnp.array(0, jnp.int32), params, params, cls.optimizer(config).init(params), env_state,
                          obs, ReplayBuffer.create(row, config.buffer_rows),
                          common.RunningMeanStd.create(obs.shape[1:]), common.ReturnStats.create(config.num_envs),
                          common.EpisodeStats.create(config.num_envs))

    @classmethod
    def normalize(cls, config, obs_stats, obs):
        return obs_stats.normalize(obs) if config.normalize_observations else obs

    @classmethod
    def epsilon(cls, config, step):
        """Linear decay from eps_start to eps_end over exploration_fraction of the run, then constant."""
        decay_steps = jnp.maximum(config.exploration_fraction * config.total_env_steps, 1.0)
        fraction = jnp.clip(step / decay_steps, 0.0, 1.0)
        return config.eps_start + fraction * (config.eps_end - config.eps_start)

    @classmethod
    def select_action(cls, config, params, obs_stats, obs, rng, epsilon):
        """Epsilon-greedy actions for a batch of raw observations [n, ...] -> [n]."""
        q = cls.network(config).apply(params, cls.normalize(config, obs_stats, obs))
        mask = common.action_mask(config.env, config.env_params, obs)  # None without has_action_mask
        # One draw gives both coins: threefry is a loop on CPU, so each random call costs more than this small net.
        u = jax.random.uniform(rng, (2,) + q.shape[:1])
        random_action = common.random_action(u[1], mask, q.shape[-1])
        return jnp.where(u[0] < epsilon, random_action, jnp.argmax(common.mask_actions(q, mask), -1))

    @classmethod
    def make_act(cls, config, train_state, epsilon: float = 0.0):
        """A policy `act(obs, rng) -> action` for one observation: greedy by default, e.g. for evaluation."""

        def act(obs, rng):
            return cls.select_action(config, train_state.params, train_state.obs_stats, obs[None], rng, epsilon)[0]

        return act

    @classmethod
    def collect(cls, config, train_state, epsilon):
        """train_freq epsilon-greedy steps in every env (one `lax.scan`), written to the buffer as one block."""

        def step(ts, _):
            rng, rng_action, rng_step = jax.random.split(ts.rng, 3)
            action = cls.select_action(config, ts.params, ts.obs_stats, ts.obs, rng_action, epsilon)
            next_obs, env_state, reward, terminated, truncated, final_obs = common.step_envs(
                config.env, config.env_params, rng_step, ts.env_state, action)
            transition = Transition(ts.obs, action, reward, terminated.astype(jnp.float32), final_obs)
            stats = ts.reward_stats.update(reward, terminated | truncated, config.gamma)
            ts = ts.replace(rng=rng, env_state=env_state, obs=next_obs, global_step=ts.global_step + config.num_envs,
                            reward_stats=stats if config.normalize_rewards else ts.reward_stats,
                            episode_stats=ts.episode_stats.update(reward, terminated | truncated))
            return ts, transition

        train_state, block = jax.lax.scan(step, train_state, None, length=config.train_freq)
        train_state = train_state.replace(buffer=train_state.buffer.add(block))
        if config.normalize_observations:
            train_state = train_state.replace(obs_stats=train_state.obs_stats.update(block.obs))
        return train_state

    @classmethod
    def td_target(cls, config, reward, terminated, next_q, next_q_target):
        """One-step targets y = r + gamma * (1 - terminated) * Q'(s', a*), arrays [batch, (actions)].

        DQN (Mnih et al. 2015, eq. 2): Q' = target net, a* = argmax of the target net. Double DQN (van Hasselt et al.
        2016, eq. 4): a* = argmax of the online net `next_q`, valued by the target net.
        """
        if config.double:
            best = jnp.argmax(next_q, -1)
            next_value = jnp.take_along_axis(next_q_target, best[:, None], -1).squeeze(-1)
        else:
            next_value = next_q_target.max(-1)
        return reward + config.gamma * (1.0 - terminated) * next_value

    @classmethod
    def loss(cls, config, params, batch: Transition, target):
        """Huber or squared TD error of Q(s, a) against fixed targets; returns (loss, metrics)."""
        q = cls.network(config).apply(params, batch.obs)
        q_taken = jnp.take_along_axis(q, batch.action[:, None], -1).squeeze(-1)
        error = q_taken - target
        loss = optax.huber_loss(error).mean() if config.loss == "huber" else 0.5 * (error**2).mean()
        return loss, {"td_loss": loss, "q_values": q_taken.mean()}

    @classmethod
    def update(cls, config, train_state, batch: Transition, next_mask=None):
        """One gradient step on a batch of (normalised) transitions; next_mask: the allowed next actions (or None)."""
        network = cls.network(config)
        next_q_target = network.apply(train_state.target_params, batch.next_obs)
        next_q = network.apply(train_state.params, batch.next_obs) if config.double else next_q_target
        next_q, next_q_target = (common.mask_actions(q, next_mask) for q in (next_q, next_q_target))
        target = cls.td_target(config, batch.reward, batch.terminated, next_q, next_q_target)
        grads, metrics = jax.grad(cls.loss, argnums=1, has_aux=True)(config, train_state.params, batch, target)
        updates, opt_state = cls.optimizer(config).update(grads, train_state.opt_state, train_state.params)
        params = optax.apply_updates(train_state.params, updates)
        return train_state.replace(params=params, opt_state=opt_state), metrics

    @classmethod
    def update_target(cls, config, train_state, previous_step):
        """Polyak step target <- tau * online + (1 - tau) * target when a multiple of target_update_freq was passed."""
        due = train_state.global_step // config.target_update_freq > previous_step // config.target_update_freq
        tau = jnp.where(due, config.tau, 0.0)
        target_params = optax.incremental_update(train_state.params, train_state.target_params, tau)
        return train_state.replace(target_params=target_params)

    @classmethod
    def train_iteration(cls, config, train_state):
        """COLLECT train_freq steps per env into the buffer, UPDATE gradient_steps times, then the TARGET net."""
        previous_step = train_state.global_step
        train_state = cls.collect(config, train_state, cls.epsilon(config, train_state.global_step))

        # SAMPLE every batch of the iteration in one draw (threefry is a loop on CPU: one call, not gradient_steps).
        rng, rng_sample = jax.random.split(train_state.rng)
        batches = train_state.buffer.sample(rng_sample, (config.gradient_steps, config.batch_size))
        next_mask = common.action_mask(config.env, config.env_params, batches.next_obs)  # of the raw observations
        scale = train_state.reward_stats.scale if config.normalize_rewards else lambda reward: reward
        batches = batches._replace(obs=cls.normalize(config, train_state.obs_stats, batches.obs), reward=scale(
            batches.reward), next_obs=cls.normalize(config, train_state.obs_stats, batches.next_obs))
        # UPDATE: the buffer stays out of the loop carry, so XLA never copies it.
        buffer = train_state.buffer
        xs = (batches,) if next_mask is None else (batches, next_mask)  # so an update(config, ts, batch) still fits
        train_state, metrics = jax.lax.scan(lambda ts, xs: cls.update(config, ts, *xs),
                                            train_state.replace(rng=rng, buffer=None), xs)
        # TARGET network
        return cls.update_target(config, train_state.replace(buffer=buffer), previous_step)

    @classmethod
    def warm_up(cls, config, train_state):
        """learning_starts env steps of uniform random actions that fill the buffer; no learning."""
        return jax.lax.scan(lambda ts, _: (cls.collect(config, ts, 1.0), None), train_state, None,
                            length=config.warmup_iterations)[0]

    @classmethod
    def eval_callback(cls, config, train_state, rng):
        """Default callback: evaluation episodes (at eval_epsilon) plus the latest training-episode returns."""
        return common.evaluate_policy(cls.make_act(config, train_state, config.eval_epsilon), config, train_state, rng)

    @classmethod
    def train(cls, config, rng, resume=None, num_evals=None):
        """Train one agent: returns (train_state, evaluation), evaluation stacked over num_evals + 1 points
        (the first before any training, the rest every iterations_per_eval iterations after the warm-up).
        Pure and jittable; vmap it over `rng` or over config leaves.
        For checkpoints (cli.train_in_segments): `num_evals` stops after that many evaluation intervals, and
        `resume=(train_state, evals_done)` continues from the train state of evaluation point `evals_done`;
        `evaluation` then holds only the points this call produced."""
        rng, rng_eval = jax.random.split(rng)
        callback = config.eval_callback if config.eval_callback is not None else cls.eval_callback

        def evaluate(ts):
            return callback(config, ts, jax.random.fold_in(rng_eval, ts.global_step))

        def eval_interval(ts, _):
            ts, _ = jax.lax.scan(lambda ts, _: (cls.train_iteration(config, ts), None), ts, None,
                                 length=config.iterations_per_eval)
            return ts, evaluate(ts)

        if resume is None:
            train_state = cls.init(config, rng)
            first = evaluate(train_state)
            train_state, evals_done = cls.warm_up(config, train_state), 0
        else:
            train_state, evals_done = resume
        length = config.num_evals - evals_done if num_evals is None else num_evals
        train_state, rest = jax.lax.scan(eval_interval, train_state, None, length=length)
        return train_state, (rest if resume else jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest))


train, make_act = DQN.train, DQN.make_act

if __name__ == "__main__":  # the command line (flags, seeds, devices, checkpoints, results) lives in cli.py
    import cli
    cli.main("dqn", Config, train, DQN.eval_callback, description=__doc__)
