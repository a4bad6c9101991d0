"""IQN: implicit quantile networks, distributional Q-learning from a replay buffer, with a Double-Q option.

Dabney et al. 2018, "Implicit Quantile Networks for Distributional Reinforcement Learning" (the tau embedding, eq. 4;
the quantile Huber loss, eq. 10; the risk-neutral policy from K taus, eq. 6 with beta = identity; Algorithm 1); Mnih
et al. 2015 (replay, target net); van Hasselt et al. 2016 (Double Q); Young & Tian 2019, "MinAtar" (the small CNN).

The network gives Z_tau(s, a) for every action at any tau in [0, 1]: the torso psi(s) times (element-wise)
phi(tau)_j = ReLU(sum_{i<n} cos(pi i tau) w_ij + b_j), n = embedding_dim = 64, then the head. A transition's loss,
with N fresh taus and N' fresh taus', is sum_i mean_j |tau_i - 1{delta_ij < 0}| Huber_kappa(delta_ij) / kappa, where
delta_ij = r + gamma Z_tau'_j(s', a*) - Z_tau_i(s, a) and a* = argmax_a mean_k Z_tau~_k(s', a) over K taus~.

Notable choices, and where the code departs from the paper:
- The torso is the MinAtar conv layer (images) or every dense layer but the last (vectors); the head is the last
  dense layer and the output layer, the split of the paper's Atari net (conv stack = psi; 512 units + output = head);
  with one dense width and no conv, psi is the raw observation.
- The target net picks a* (as Dopamine's IQN does, Castro et al. 2018), in the pass giving the N' quantiles;
  `double` lets the online net pick it and the target net value it. Each transition of a batch gets its own taus;
  all actions of a transition share them. Acting (training and evaluation) draws K fresh taus~ at every step.
- Adam with its default epsilon (the paper: 0.01 / 32), gradients clipped to a global norm (the paper: none), a
  Polyak target update after every iteration (tau = 1, target_update_freq = N: the paper's hard copies every N steps),
  `num_envs` envs and `gradient_steps` updates per iteration (the paper: 1 env, an update every 4 steps), an optional
  learning-rate decay. The class defaults keep the paper's N = N' = 64, K = 32, n = 64, kappa = 1; the tuned CartPole
  and Acrobot values use N = N' = 16 (4x cheaper on CPU) and learning rates 8e-3 and 3e-3 (the paper, Atari: 5e-5).
- Time-limit truncation is not termination (the paper does not discuss time limits): the buffer stores the
  observation the action led to (before any reset) and a `terminated` flag, and only `terminated` stops the bootstrap.
- normalize_rewards: the buffer keeps raw rewards and a batch's are divided by the return std when sampled (as SB3
  does), so a batch is on one scale; gym's wrapper scales at collection, leaving old transitions on old scales.
- The replay buffer is rejax_dqn.py's ring of rows (one per env step of all envs), written in place at a position
  shared by every seed and sampled by `bits % size`: O(batch), never an unwritten slot. The whole run, evaluation
  included, is one jittable function of (config, rng), vmappable over seeds and numeric hyperparameters.

Run: python rejax_iqn.py --env CartPole-v1 --num-seeds 4
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
# CartPole-v1 and Acrobot-v1: learning-rate sweeps on CPU, 4 seeds each (benchmarks/iqn.md); DQN's hard target copies.
# Breakout-MinAtar is NOT measured (beyond this 2-core CPU): rejax_dqn.py's values with the paper's N = N' = 64, K = 32.
_SMALL = dict(num_envs=10, train_freq=1, gradient_steps=2, batch_size=64, buffer_size=100_000, learning_starts=1_000,
              num_tau_samples=16, num_tau_prime_samples=16, learning_rate=3e-3, tau=1.0, target_update_freq=500,
              eps_end=0.01, exploration_fraction=0.2, anneal_lr=True, activation="swish",
              total_timesteps=100_000, eval_freq=9_900)
TUNED = {
    "CartPole-v1": dict(_SMALL, learning_rate=8e-3),  # 16 of 16 seeds at 500; 5e-3: 15 of 16 (one at 343)
    "Acrobot-v1": _SMALL,  # 5e-3: mean -92.4, worst seed -111
    "Breakout-MinAtar": dict(num_envs=16, train_freq=1, gradient_steps=2, batch_size=64, buffer_size=100_000,
                             learning_starts=5_000, learning_rate=5e-4, tau=0.01, eps_end=0.01,
                             exploration_fraction=0.1, anneal_lr=True, total_timesteps=1_000_000, eval_freq=100_000),
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
    """callback(config, train_state, rng) -> pytree, run at every evaluation point; None means IQN.eval_callback."""

    # --- shapes, schedule and switches (static)
    num_envs: int = struct.field(pytree_node=False, default=1)
    """Parallel environments."""
    train_freq: int = struct.field(pytree_node=False, default=1)
    """Steps in each env between rounds of gradient steps."""
    gradient_steps: int = struct.field(pytree_node=False, default=1)
    """Gradient steps after each round of train_freq x num_envs env steps."""
    batch_size: int = struct.field(pytree_node=False, default=32)
    """Transitions per gradient step, sampled uniformly (with replacement) from the buffer."""
    buffer_size: int = struct.field(pytree_node=False, default=100_000)
    """Replay capacity in transitions, rounded up to whole iterations of train_freq x num_envs."""
    learning_starts: int = struct.field(pytree_node=False, default=1_000)
    """Env steps of uniform random actions that fill the buffer before training (rounded up to whole iterations)."""
    target_update_freq: int = struct.field(pytree_node=False, default=1)
    """Env steps between target updates (checked after every iteration); with tau=1 these are hard copies."""
    num_tau_samples: int = struct.field(pytree_node=False, default=64)
    """N: taus at which Z(s, a) is trained, per transition (the paper: 64)."""
    num_tau_prime_samples: int = struct.field(pytree_node=False, default=64)
    """N': taus' of the target distribution, per transition (the paper: 64)."""
    num_quantile_samples: int = struct.field(pytree_node=False, default=32)
    """K: taus~ whose mean Z is the Q-value that picks actions, when acting and for a* (the paper: 32)."""
    embedding_dim: int = struct.field(pytree_node=False, default=64)
    """n: cosine features cos(pi i tau), i = 0..n-1, of the tau embedding (the paper: 64)."""
    network: str = struct.field(pytree_node=False, default="auto")
    """Torso: mlp, cnn (the MinAtar conv layer) or auto (cnn for image observations)."""
    hidden_layer_sizes: Optional[tuple[int, ...]] = struct.field(pytree_node=False, default=None)
    """Dense widths; the last one is the head's hidden layer, the others the mlp torso's. None means (64, 64) for
    the mlp and (128,) after the cnn's conv layer."""
    activation: str = struct.field(pytree_node=False, default="relu")
    """Hidden activation of the dense layers: relu, tanh or swish (the tau embedding always uses relu)."""
    double: bool = struct.field(pytree_node=False, default=False)
    """Double Q-learning: the online net picks a* at s', the target net values it (off: the target net does both)."""
    normalize_observations: bool = struct.field(pytree_node=False, default=False)
    """Normalise observations with a running mean and variance shared by all envs."""
    normalize_rewards: bool = struct.field(pytree_node=False, default=False)
    """Divide sampled rewards by a running std of the discounted return (gym's NormalizeReward, at sampling time)."""
    anneal_lr: bool = struct.field(pytree_node=False, default=False)
    """Decay the learning rate linearly to 0 over the run's gradient steps."""

    # --- hyperparameters (pytree leaves: vmappable)
    learning_rate: float = 5e-4
    """Adam step size."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Fraction moved toward the online net at each target update (1 = hard copy); not a quantile level."""
    kappa: float = 1.0
    """Huber threshold of the quantile Huber loss (the paper: 1)."""
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
        return common.make_config(cls, "iqn", TUNED, env, env_params, overrides)

    def validate(self):
        names = ("total_timesteps", "eval_freq", "num_eval_episodes", "num_envs", "train_freq", "gradient_steps",
                 "batch_size", "buffer_size", "target_update_freq", "num_tau_samples", "num_tau_prime_samples",
                 "num_quantile_samples", "embedding_dim", "learning_rate", "kappa", "max_grad_norm")
        common.check_positive(**{name: getattr(self, name) for name in names})
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
    def num_evals(self) -> int:  # the iterations after the warm-up, in whole evaluation intervals
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
        images = len(self.env.observation_space(self.env_params).shape) == 3
        return images if self.network == "auto" else self.network == "cnn"

    @property
    def hidden_sizes(self) -> tuple:
        default = (128,) if self.use_cnn else (64, 64)
        return default if self.hidden_layer_sizes is None else tuple(self.hidden_layer_sizes)


# ---------------------------------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------------------------------
ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "swish": nn.swish}


def cosine_features(tau, n: int):
    """cos(pi i tau) for i = 0..n-1 (eq. 4 before its linear layer): taus [...] -> [..., n]."""
    return jnp.cos(jnp.pi * jnp.arange(n, dtype=jnp.float32) * tau[..., None])


class QuantileNetwork(nn.Module):
    """Z_tau(s, a): observations [B, ...] and taus [B, T] -> quantile values [B, T, actions]."""

    action_dim: int
    hidden_layer_sizes: tuple
    activation: str
    cnn: bool
    embedding_dim: int

    @nn.compact
    def __call__(self, obs, tau):
        activation = ACTIVATIONS[self.activation]
        x = obs.astype(jnp.float32)
        if self.cnn:  # [B, H, W, C] -> conv 16 3x3, stride 1, padding VALID (Young & Tian 2019) -> flatten
            x = nn.relu(nn.Conv(16, (3, 3), padding="VALID")(x))
        x = x.reshape(x.shape[0], -1)
        for width in self.hidden_layer_sizes[:-1]:  # the rest of the torso psi(s): [B, d]
            x = activation(nn.Dense(width)(x))
        phi = nn.relu(nn.Dense(x.shape[-1])(cosine_features(tau, self.embedding_dim)))  # phi(tau): [B, T, d]
        x = x[:, None, :] * phi  # psi(s) * phi(tau), the torso computed once per observation
        x = activation(nn.Dense(self.hidden_layer_sizes[-1])(x))  # the head
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
        """Write k rows (fields [k, num_envs, ...]) at `position`; buffer_rows is a multiple of k: no block wraps."""
        k, rows = block.reward.shape[0], self.data.reward.shape[0]
        data = jax.tree_util.tree_map(
            lambda buf, x: jax.lax.dynamic_update_slice_in_dim(buf, x.astype(buf.dtype), self.position, 0),
            self.data, block)
        return ReplayBuffer(data, (self.position + k) % rows, jnp.minimum(self.size + k, rows))

    def sample(self, rng, shape: tuple) -> Transition:
        """Transitions drawn uniformly with replacement from the written rows, fields [*shape, ...]: O(batch) work,
        no mask over the buffer; one threefry call, with a modulo bias below size / 2**32."""
        num_envs = self.data.reward.shape[1]
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
class IQN:
    @classmethod
    def network(cls, config):
        action_dim = config.env.action_space(config.env_params).n
        return QuantileNetwork(action_dim, config.hidden_sizes, config.activation, config.use_cnn, config.embedding_dim)

    @classmethod
    def optimizer(cls, config):
        learning_rate = config.learning_rate
        if config.anneal_lr:
            total_updates = config.num_evals * config.iterations_per_eval * config.gradient_steps
            learning_rate = lambda count: config.learning_rate * (1.0 - count / total_updates)  # noqa: E731
        # optax.flatten: clipping and Adam on one concatenated vector, fewer XLA ops than one set per array.
        return optax.flatten(optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(learning_rate)))

    @classmethod
    def init(cls, config, rng) -> TrainState:
        rng, rng_params, rng_env = jax.random.split(rng, 3)
        obs, env_state = common.reset_envs(config.env, config.env_params, rng_env, config.num_envs)
        params = cls.network(config).init(rng_params, obs[:1], jnp.zeros((1, 1)))
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
        return config.eps_start + jnp.clip(step / decay_steps, 0.0, 1.0) * (config.eps_end - config.eps_start)

    @classmethod
    def q_values(cls, config, params, obs, tau):
        """Q(s, a) = mean over the taus~ [n, K] of Z_tau~(s, a) (eq. 6, beta = identity): [n, actions]."""
        return cls.network(config).apply(params, obs, tau).mean(1)

    @classmethod
    def select_action(cls, config, params, obs_stats, obs, rng, epsilon):
        """Epsilon-greedy actions for a batch of raw observations [n, ...] -> [n], greedy on K sampled taus~."""
        # One draw gives the two coins and the K taus~: threefry is a loop on CPU, so each call costs more than one op.
        u = jax.random.uniform(rng, (obs.shape[0], 2 + config.num_quantile_samples))
        q = cls.q_values(config, params, cls.normalize(config, obs_stats, obs), u[:, 2:])
        random_action = jnp.minimum(u[:, 1] * q.shape[-1], q.shape[-1] - 1).astype(jnp.int32)
        return jnp.where(u[:, 0] < epsilon, random_action, jnp.argmax(q, -1))

    @classmethod
    def make_act(cls, config, train_state, epsilon: float = 0.0):
        """A policy `act(obs, rng) -> action` for one observation: greedy by default, e.g. for evaluation."""
        ts = train_state
        return lambda obs, rng: cls.select_action(config, ts.params, ts.obs_stats, obs[None], rng, epsilon)[0]

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
    def target_quantiles(cls, config, params, target_params, batch: Transition, tau_prime, tau_greedy):
        """Targets r + gamma (1 - terminated) Z_tau'_j(s', a*), [batch, N'], a* = argmax_a mean_k Z_tau~_k(s', a) over
        `tau_greedy` [batch, K] (Algorithm 1). One pass of the target net gives the N' quantiles and, unless `double`
        (the online net picks a*, van Hasselt et al. 2016), the K that pick a*."""
        network, n_prime = cls.network(config), tau_prime.shape[1]
        z_next = network.apply(target_params, batch.next_obs, jnp.concatenate([tau_prime, tau_greedy], 1))
        if config.double:
            q_next = cls.q_values(config, params, batch.next_obs, tau_greedy)
        else:
            q_next = z_next[:, n_prime:].mean(1)
        best = jnp.argmax(q_next, -1)  # [batch]
        z_best = jnp.take_along_axis(z_next[:, :n_prime], best[:, None, None], -1)[..., 0]  # [batch, N']
        return batch.reward[:, None] + config.gamma * (1.0 - batch.terminated[:, None]) * z_best

    @classmethod
    def quantile_huber_loss(cls, config, z, target, tau):
        """Eq. 10 for quantiles z [batch, N] at levels tau [batch, N] against fixed targets [batch, N']:
        sum over i of mean over j of rho^kappa_tau_i(delta_ij), delta_ij = target_j - z_i; the mean over the batch."""
        delta = target[:, None, :] - z[:, :, None]  # [batch, N, N']
        huber = optax.huber_loss(delta, delta=config.kappa)  # 0.5 d^2 inside [-kappa, kappa], linear outside
        rho = jnp.abs(tau[:, :, None] - (delta < 0)) * huber / config.kappa
        return rho.mean(2).sum(1).mean()

    @classmethod
    def loss(cls, config, params, batch: Transition, tau, target):
        """Quantile Huber loss of Z_tau(s, a) at N taus [batch, N] against fixed targets; returns (loss, metrics)."""
        z = cls.network(config).apply(params, batch.obs, tau)  # [batch, N, actions]
        z_taken = jnp.take_along_axis(z, batch.action[:, None, None], -1)[..., 0]  # [batch, N]
        loss = cls.quantile_huber_loss(config, z_taken, target, tau)
        return loss, {"quantile_loss": loss, "q_values": z_taken.mean()}

    @classmethod
    def update(cls, config, ts, batch: Transition, taus):
        """One gradient step on a batch of (normalised) transitions and its taus [batch, N + N' + K] (uniform)."""
        n, n_prime = config.num_tau_samples, config.num_tau_prime_samples
        tau, tau_prime, tau_greedy = taus[:, :n], taus[:, n:n + n_prime], taus[:, n + n_prime:]
        target = cls.target_quantiles(config, ts.params, ts.target_params, batch, tau_prime, tau_greedy)
        grads, metrics = jax.grad(cls.loss, argnums=1, has_aux=True)(config, ts.params, batch, tau, target)
        updates, opt_state = cls.optimizer(config).update(grads, ts.opt_state, ts.params)
        return ts.replace(params=optax.apply_updates(ts.params, updates), opt_state=opt_state), metrics

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

        # SAMPLE every batch of the iteration, and all its taus, up front: two threefry calls, not 2 x gradient_steps.
        rng, rng_sample, rng_tau = jax.random.split(train_state.rng, 3)
        shape = (config.gradient_steps, config.batch_size)
        batches = train_state.buffer.sample(rng_sample, shape)
        scale = train_state.reward_stats.scale if config.normalize_rewards else lambda reward: reward
        batches = batches._replace(obs=cls.normalize(config, train_state.obs_stats, batches.obs), reward=scale(
            batches.reward), next_obs=cls.normalize(config, train_state.obs_stats, batches.next_obs))
        num_taus = config.num_tau_samples + config.num_tau_prime_samples + config.num_quantile_samples
        taus = jax.random.uniform(rng_tau, shape + (num_taus,))
        # UPDATE: the buffer stays out of the loop carry, so XLA never copies it.
        buffer = train_state.buffer
        train_state, metrics = jax.lax.scan(lambda ts, xs: cls.update(config, ts, *xs),
                                            train_state.replace(rng=rng, buffer=None), (batches, taus))
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
        """Train one agent: returns (train_state, evaluation), evaluation stacked over num_evals + 1 points (the
        first before any training, the rest every iterations_per_eval iterations after the warm-up). Pure and
        jittable; vmap it over `rng` or over config leaves. For checkpoints (cli.train_in_segments): `num_evals` stops
        after that many intervals, and `resume=(train_state, evals_done)` continues from evaluation point
        `evals_done`; `evaluation` then holds only the points this call produced."""
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


train, make_act = IQN.train, IQN.make_act

if __name__ == "__main__":  # the command line (flags, seeds, devices, checkpoints, results) lives in cli.py
    import cli
    cli.main("iqn", Config, train, IQN.eval_callback, description=__doc__)
