"""SAC: Soft Actor-Critic with automatic entropy tuning, for continuous and discrete actions.

Continuous: Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications": soft Q target with
V(s') = E[Q(s', a') - alpha log pi(a'|s')] (eq. 3), policy loss (eq. 7), temperature loss (eq. 18); a tanh-squashed
Gaussian policy whose log-probability carries the change-of-variables term (appendix C, eq. 21). Target entropy -|A|.
Discrete: Christodoulou 2019, "Soft Actor-Critic for Discrete Action Settings": a categorical policy; the expectations
over actions in the critic target (eq. 10), policy loss (eq. 12) and temperature loss (eq. 11) are exact sums over the
|A| actions. Target entropy target_entropy_scale * log|A|. The file picks the variant from the env's action space.

Notable choices:
- The class defaults are chosen for an environment nobody tuned for (tests/test_defaults.py: goal chain, dense,
  survival and reach tasks). init_alpha is 0.01, not 1: while alpha is large every step pays alpha H, so continuing
  beats reaching a goal, the critics inflate toward alpha H / (1 - gamma) and the policy learns to avoid the goal
  (benchmarks/sac.md). CartPole-v1 and Pendulum-v1 keep their tuned init_alpha 1 (where ending is bad, it helps).
- Departures from the papers: gradient clipping (max_grad_norm 10, which also clips log_alpha's gradient) is in none
  of them; the networks are 64-64, not 256-256; the discrete target_entropy_scale is 0.5 by default where
  Christodoulou uses 0.98, which keeps the policy near uniform and alpha high. Acrobot-v1's entry decays it 0.7 -> 0.1
  and the learning rate to 0; with both constant, 3 of 8 greedy policies never reached the goal (benchmarks/sac.md).
- Continuous policies act in [-1, 1]^|A| (log-probabilities, entropy target and critics use that action); a fixed
  affine map onto the env's finite [low, high] is applied only when stepping (as SB3 and softlearning do).
- The replay buffer is a ring [rows, num_envs, ...] written at an index that depends only on the step count (the
  same for every seed, so vmap keeps it a slice update). New rows wait in a small `recent` block and reach the ring
  in one write per block, as XLA on CPU copies a buffer that a loop iteration both reads and writes (the whole buffer
  of every seed at every step: 87 vs 74 ms per iteration at 300 seeds). Warm-up is its own loop, not a `lax.cond`.

Run: python rejax_sac.py --env Pendulum-v1 --num-seeds 4
"""

from typing import Any, Callable, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import common


# --- Config -----------------------------------------------------------------------------------------------------------
TUNED = {
    "CartPole-v1": dict(num_envs=4, buffer_size=10_000, batch_size=64, learning_starts=1_000, init_alpha=1.0,
                        activation="tanh", learning_rate=2e-3, tau=0.05, target_entropy_scale=0.7,
                        total_timesteps=32_000, eval_freq=4_000),
    "Acrobot-v1": dict(num_envs=8, gradient_steps=2, buffer_size=50_000, batch_size=128, learning_starts=1_000,
                       init_alpha=1.0, activation="tanh", learning_rate=1e-3, tau=0.05, target_entropy_scale=0.7,
                       final_target_entropy_scale=0.1, anneal_lr=True, total_timesteps=100_000, eval_freq=10_000),
    "Pendulum-v1": dict(num_envs=1, buffer_size=20_000, learning_starts=500, init_alpha=1.0, learning_rate=3e-3,
                        tau=0.02, normalize_observations=True, total_timesteps=8_000, eval_freq=1_000),
}


@struct.dataclass
class Config:
    # Fields with pytree_node=False are static (shapes, control flow); the others are leaves that vmap can go over.
    env: Any = struct.field(pytree_node=False)
    """The gymnax environment (made from a name by `Config.make`)."""
    env_params: Any
    """The environment's parameters (a pytree)."""

    total_timesteps: int = struct.field(pytree_node=False, default=100_000)
    """Environment steps per seed, warm-up included; rounded up to whole evaluation intervals (eval_freq rounded down
    to whole iterations): `Config.total_env_steps` is the exact count, and the CLI prints it."""
    eval_freq: int = struct.field(pytree_node=False, default=10_000)
    """Environment steps between evaluation points (each one calls eval_callback)."""
    num_eval_episodes: int = struct.field(pytree_node=False, default=8)
    """Deterministic episodes the default callback plays at each evaluation point."""
    eval_callback: Callable = struct.field(pytree_node=False, default=None)
    """callback(config, train_state, rng) -> pytree, run at every evaluation point; None means SAC.eval_callback."""

    num_envs: int = struct.field(pytree_node=False, default=1)
    """Parallel environments; one iteration steps each of them once."""
    buffer_size: int = struct.field(pytree_node=False, default=100_000)
    """Replay buffer capacity in transitions (rounded down to a multiple of num_envs)."""
    batch_size: int = struct.field(pytree_node=False, default=256)
    """Transitions per gradient step."""
    gradient_steps: int = struct.field(pytree_node=False, default=1)
    """Gradient steps (critics, then actor, then temperature, then targets) per iteration of num_envs env steps."""
    learning_starts: int = struct.field(pytree_node=False, default=1_000)
    """Env steps with uniformly random actions that fill the buffer before the first gradient step."""
    hidden_layer_sizes: tuple[int, ...] = struct.field(pytree_node=False, default=(64, 64))
    """Widths of the hidden layers of the actor and of every critic."""
    activation: str = struct.field(pytree_node=False, default="relu")
    """Hidden activation: relu, tanh or swish."""
    num_critics: int = struct.field(pytree_node=False, default=2)
    """Q networks in the ensemble; targets and the policy loss use their minimum (2 = clipped double Q)."""
    normalize_observations: bool = struct.field(pytree_node=False, default=False)
    """Normalise observations with a running mean and variance shared by all envs (buffer keeps raw observations)."""
    anneal_lr: bool = struct.field(pytree_node=False, default=False)
    """Decay the learning rate linearly to 0 over the run's gradient steps."""
    normalize_rewards: bool = struct.field(pytree_node=False, default=False)
    """Divide sampled rewards by a running std of the discounted return (gym's NormalizeReward, at sampling time)."""

    learning_rate: float = 3e-4
    """Adam step size of the actor, the critics and the temperature."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Target-network step: the fraction MOVED toward the online critics per gradient step, target <- (1 - tau) *
    target + tau * online (0.005 = slow; 1 = hard copy). PyPI rejax's polyak is the fraction kept: tau = 1 - polyak."""
    init_alpha: float = 0.01
    """Initial entropy temperature alpha (then tuned automatically toward the target entropy)."""
    target_entropy_scale: float = 0.5
    """Discrete actions only: target entropy = target_entropy_scale * log|A|, in (0, 1]. Continuous: -|A|."""
    final_target_entropy_scale: Optional[float] = None
    """Discrete only: if set, the scale moves linearly from target_entropy_scale to it over the run's first half."""
    max_grad_norm: float = 10.0
    """Gradients of each network are rescaled to at most this global norm."""

    @classmethod
    def make(cls, env="Pendulum-v1", env_params=None, **overrides) -> "Config":
        """Build and validate a config: class defaults < tuned values for this env < `overrides`."""
        return common.make_config(cls, "sac", TUNED, env, env_params, overrides)

    def validate(self):
        common.check_positive(
            total_timesteps=self.total_timesteps, eval_freq=self.eval_freq, num_eval_episodes=self.num_eval_episodes,
            num_envs=self.num_envs, buffer_size=self.buffer_size, batch_size=self.batch_size,
            gradient_steps=self.gradient_steps, learning_rate=self.learning_rate, tau=self.tau,
            init_alpha=self.init_alpha, max_grad_norm=self.max_grad_norm)
        common.check_non_negative(learning_starts=self.learning_starts)
        common.check_unit_interval(gamma=self.gamma, tau=self.tau)
        common.check_callback(self.eval_callback)
        if not (isinstance(self.num_critics, int) and self.num_critics >= 1):
            raise ValueError(f"num_critics must be an integer of at least 1, got {self.num_critics!r}.")
        if self.buffer_size < self.num_envs:
            raise ValueError(f"buffer_size ({self.buffer_size}) must hold at least one step of all num_envs "
                             f"({self.num_envs}) envs; raise buffer_size.")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed buffer_size ({self.buffer_size}); "
                             f"lower batch_size or raise buffer_size.")
        if self.learning_starts >= self.total_timesteps:
            raise ValueError(f"learning_starts ({self.learning_starts}) must be below total_timesteps "
                             f"({self.total_timesteps}), or no gradient step is ever taken.")
        for name, value in (("target_entropy_scale", self.target_entropy_scale if self.discrete else None),
                            ("final_target_entropy_scale", self.final_target_entropy_scale)):
            if value is not None and not (self.discrete and 0 < value <= 1):
                raise ValueError(f"{name} must lie in (0, 1] (a fraction of the maximum entropy log|A|) and applies "
                                 f"to discrete actions only, got {value!r}.")
        if not self.hidden_layer_sizes or min(self.hidden_layer_sizes) < 1:
            raise ValueError(f"hidden_layer_sizes must be positive widths, got {self.hidden_layer_sizes!r}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}.")

    @property
    def buffer_rows(self) -> int:
        """Ring rows; each holds one step of every env."""
        return self.buffer_size // self.num_envs

    @property
    def warmup_iterations(self) -> int:
        """At least one, so the buffer is never empty when the first batch is drawn."""
        return max(1, -(-self.learning_starts // self.num_envs))

    @property
    def iterations_per_eval(self) -> int:
        return max(1, self.eval_freq // self.num_envs)

    @property
    def block_iterations(self) -> int:
        """Iterations per `recent` block: the largest divisor of iterations_per_eval up to min(64, buffer_rows)."""
        return max(k for k in range(1, min(64, self.buffer_rows) + 1) if self.iterations_per_eval % k == 0)

    @property
    def num_evals(self) -> int:
        iterations = -(-self.total_timesteps // self.num_envs) - self.warmup_iterations
        return max(1, -(-iterations // self.iterations_per_eval))

    @property
    def total_env_steps(self) -> int:
        """Environment steps per seed actually taken, warm-up included (total_timesteps rounded up)."""
        return (self.warmup_iterations + self.num_evals * self.iterations_per_eval) * self.num_envs

    @property
    def discrete(self) -> bool:
        return common.is_discrete(self.env, self.env.default_params)

    @property
    def action_dim(self) -> int:
        space = self.env.action_space(self.env.default_params)
        return space.n if self.discrete else int(np.prod(space.shape))


# --- Networks and the policy's distribution ---------------------------------------------------------------------------
ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "swish": nn.swish}
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class Network(nn.Module):
    """The actor (policy=True) or one critic, an MLP. Discrete: logits or Q(s, .) [..., |A|]. Continuous actor: (mean,
    log_std) of the pre-tanh Gaussian, log_std squashed into [LOG_STD_MIN, LOG_STD_MAX]; critic: Q(s, a) [...]."""

    policy: bool
    action_dim: int
    discrete: bool
    hidden_layer_sizes: tuple
    activation: str

    @nn.compact
    def __call__(self, obs, action=None):
        x = obs if self.discrete or self.policy else jnp.concatenate([obs, action], -1)
        for width in self.hidden_layer_sizes:
            x = ACTIVATIONS[self.activation](nn.Dense(width)(x))
        if self.discrete:
            return nn.Dense(self.action_dim)(x)
        if not self.policy:
            return nn.Dense(1)(x).squeeze(-1)
        mean, log_std = jnp.split(nn.Dense(2 * self.action_dim)(x), 2, -1)
        return mean, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(log_std) + 1.0)


def squashed_gaussian_log_prob(u, mean, log_std):
    """log pi(a) of a = tanh(u), u ~ N(mean, exp(log_std)^2), summed over action dimensions (SAC appendix C eq. 21):
    log N(u) - sum log(1 - tanh(u)^2), with log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) for stability."""
    gaussian = -0.5 * ((u - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
    log_det_jacobian = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.sum(gaussian - log_det_jacobian, -1)


# --- Data containers --------------------------------------------------------------------------------------------------
class Transition(NamedTuple):  # in the buffer each field is [buffer_rows, num_envs, ...]; in a batch [batch_size, ...]
    obs: jax.Array  # raw observation the action was taken in
    action: jax.Array  # int (discrete) or in [-1, 1]^|A| (continuous, before scaling to the env's bounds)
    reward: jax.Array
    terminated: jax.Array  # true terminal state: no bootstrap (a truncated step is not terminated)
    next_obs: jax.Array  # raw observation the action led to (the final one, before any reset)


@struct.dataclass
class TrainState:
    rng: jax.Array
    global_step: jax.Array  # env steps per seed so far; the same for every seed, so the buffer index is too
    actor_params: Any
    critic_params: Any  # every leaf [num_critics, ...]
    target_critic_params: Any
    log_alpha: jax.Array
    actor_opt_state: Any
    critic_opt_state: Any
    alpha_opt_state: Any
    buffer: Transition  # [buffer_rows, num_envs, ...] ring; rows of the current block are in `recent` (train_block)
    env_state: Any  # [num_envs, ...]
    obs: jax.Array  # [num_envs, ...] current raw observation
    obs_stats: common.RunningMeanStd
    reward_stats: common.ReturnStats  # frozen unless normalize_rewards
    episode_stats: common.EpisodeStats


# --- The algorithm ----------------------------------------------------------------------------------------------------
class SAC:
    @classmethod
    def network(cls, config, policy: bool):
        return Network(policy, config.action_dim, config.discrete, config.hidden_layer_sizes, config.activation)

    @classmethod
    def q_values(cls, config, critic_params, obs, action=None):
        """Every critic of the ensemble: [num_critics, batch] (continuous) or [num_critics, batch, |A|] (discrete)."""
        return jax.vmap(cls.network(config, False).apply, in_axes=(0, None, None))(critic_params, obs, action)

    @classmethod
    def optimizer(cls, config):
        steps = config.num_evals * config.iterations_per_eval * config.gradient_steps  # gradient steps in the run
        lr = optax.linear_schedule(config.learning_rate, 0.0, steps) if config.anneal_lr else config.learning_rate
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr))

    @classmethod
    def target_entropy(cls, config, global_step=0):
        """-|A|, or a fraction of log|A|, decaying linearly if final_target_entropy_scale is set (Xu et al. 2021)."""
        start, end, progress = config.target_entropy_scale, config.final_target_entropy_scale, global_step
        scale = start if end is None else start + (end - start) * jnp.minimum(1, 2 * progress / config.total_env_steps)
        return scale * jnp.log(config.action_dim) if config.discrete else -config.action_dim

    @classmethod
    def init(cls, config, rng) -> TrainState:
        rng, rng_actor, rng_critic, rng_env = jax.random.split(rng, 4)
        obs, env_state = common.reset_envs(config.env, config.env_params, rng_env, config.num_envs)
        action = jnp.zeros((), jnp.int32) if config.discrete else jnp.zeros(config.action_dim)
        actor_params = cls.network(config, True).init(rng_actor, obs[0])
        critic_params = jax.vmap(cls.network(config, False).init, in_axes=(0, None, None))(
            jax.random.split(rng_critic, config.num_critics), obs[0], None if config.discrete else action)
        log_alpha = jnp.log(jnp.asarray(config.init_alpha, jnp.float32))
        example = Transition(obs[0], action, jnp.zeros(()), jnp.zeros((), bool), obs[0])
        buffer = jax.tree.map(lambda x: jnp.zeros((config.buffer_rows, config.num_envs) + x.shape, x.dtype), example)
        opt = cls.optimizer(config)
        return TrainState(rng, jnp.array(0, jnp.int32), actor_params, critic_params, critic_params, log_alpha,
                          opt.init(actor_params), opt.init(critic_params), opt.init(log_alpha), buffer, env_state, obs,
                          common.RunningMeanStd.create(obs.shape[1:]), common.ReturnStats.create(config.num_envs),
                          common.EpisodeStats.create(config.num_envs))

    @classmethod
    def normalize(cls, config, obs_stats, obs):
        return obs_stats.normalize(obs) if config.normalize_observations else obs

    @classmethod
    def sample_action(cls, config, actor_params, obs, rng):
        """A sampled action and log pi: of every action (discrete), or of the reparameterised tanh sample (continuous)."""
        policy = cls.network(config, True).apply(actor_params, obs)
        if config.discrete:
            return jax.random.categorical(rng, policy), jax.nn.log_softmax(policy)
        u = policy[0] + jnp.exp(policy[1]) * jax.random.normal(rng, policy[0].shape)
        return jnp.tanh(u), squashed_gaussian_log_prob(u, *policy)

    @classmethod
    def scale_action(cls, config, action):
        space = config.env.action_space(config.env_params)
        return action if config.discrete else space.low + 0.5 * (action + 1.0) * (space.high - space.low)

    @classmethod
    def make_act(cls, config, train_state, deterministic: bool = True):
        """A policy `act(obs, rng) -> env action` for one observation (deterministic: argmax / tanh(mean))."""
        def act(obs, rng):
            obs = cls.normalize(config, train_state.obs_stats, obs)
            if not deterministic:
                return cls.scale_action(config, cls.sample_action(config, train_state.actor_params, obs, rng)[0])
            policy = cls.network(config, True).apply(train_state.actor_params, obs)
            return jnp.argmax(policy, -1) if config.discrete else cls.scale_action(config, jnp.tanh(policy[0]))
        return act

    @classmethod
    def step_env(cls, config, train_state, random: bool):
        """ACT in every env (uniformly at random during warm-up) and STEP them; returns the state and a buffer row."""
        rng, rng_action, rng_step = jax.random.split(train_state.rng, 3)
        if random:
            action = (jax.random.randint(rng_action, (config.num_envs,), 0, config.action_dim) if config.discrete else
                      jax.random.uniform(rng_action, (config.num_envs, config.action_dim), minval=-1.0, maxval=1.0))
        else:
            obs = cls.normalize(config, train_state.obs_stats, train_state.obs)
            action, _ = cls.sample_action(config, train_state.actor_params, obs, rng_action)
        next_obs, env_state, reward, terminated, truncated, final_obs = common.step_envs(
            config.env, config.env_params, rng_step, train_state.env_state, cls.scale_action(config, action))
        transition = Transition(train_state.obs, action, reward, terminated, final_obs)
        obs_stats = train_state.obs_stats  # updated with the observation acted in, as in the other algorithms
        obs_stats = obs_stats.update(train_state.obs) if config.normalize_observations else obs_stats
        reward_stats = train_state.reward_stats.update(reward, terminated | truncated, config.gamma)
        train_state = train_state.replace(
            rng=rng, global_step=train_state.global_step + config.num_envs, env_state=env_state, obs=next_obs,
            obs_stats=obs_stats, reward_stats=reward_stats if config.normalize_rewards else train_state.reward_stats,
            episode_stats=train_state.episode_stats.update(reward, terminated | truncated))
        return train_state, transition

    @classmethod
    def write_rows(cls, config, buffer, rows: Transition, first_row):
        """Write rows [n, num_envs, ...] into the ring at rows first_row, first_row + 1, ... (modulo its size)."""
        index = (first_row + jnp.arange(jax.tree.leaves(rows)[0].shape[0])) % config.buffer_rows
        return jax.tree.map(lambda buf, x: buf.at[index].set(x, unique_indices=True), buffer, rows)

    @classmethod
    def sample_batch(cls, config, train_state, recent: Transition, first_row, rng) -> Transition:
        """batch_size transitions, uniformly among the rows written so far (never an O(buffer) mask). Rows
        first_row, first_row + 1, ... of the current block are read from `recent`, the others from the buffer."""
        written, (rng_row, rng_env) = train_state.global_step // config.num_envs, jax.random.split(rng)
        rows = jax.random.randint(rng_row, (config.batch_size,), 0, jnp.minimum(written, config.buffer_rows))
        envs = jax.random.randint(rng_env, (config.batch_size,), 0, config.num_envs)
        offset = (rows - first_row) % config.buffer_rows  # position in the block, if the row is one of its rows
        in_recent = offset < written - first_row
        offset = jnp.minimum(offset, config.block_iterations - 1)

        def take(buf, block):
            old, new = buf[rows, envs], block[offset, envs]
            return jnp.where(in_recent.reshape(in_recent.shape + (1,) * (old.ndim - 1)), new, old)

        batch = jax.tree.map(take, train_state.buffer, recent)
        obs, next_obs = (cls.normalize(config, train_state.obs_stats, o) for o in (batch.obs, batch.next_obs))
        reward = train_state.reward_stats.scale(batch.reward) if config.normalize_rewards else batch.reward
        return batch._replace(obs=obs, reward=reward, next_obs=next_obs)

    @classmethod
    def policy_expectations(cls, config, actor_params, critic_params, obs, rng):
        """E_a~pi[min_i Q_i(s, a)] and E_a~pi[log pi(a|s)] per state [batch]: exact sums over the |A| actions when
        discrete (Christodoulou eqs. 10 and 12), one reparameterised sample when continuous (SAC eqs. 3 and 7)."""
        action, log_pi = cls.sample_action(config, actor_params, obs, rng)  # discrete: log_pi of every action
        if config.discrete:
            pi = jnp.exp(log_pi)
            return jnp.sum(pi * cls.q_values(config, critic_params, obs).min(0), -1), jnp.sum(pi * log_pi, -1)
        return cls.q_values(config, critic_params, obs, action).min(0), log_pi

    @classmethod
    def critic_target(cls, config, actor_params, target_critic_params, alpha, batch: Transition, rng):
        """Soft TD target r + gamma (1 - terminated) V(s'), V(s') = E_a'[min_i Qbar_i(s', a') - alpha log pi(a'|s')]."""
        q, log_pi = cls.policy_expectations(config, actor_params, target_critic_params, batch.next_obs, rng)
        return batch.reward + config.gamma * (1.0 - batch.terminated) * (q - alpha * log_pi)

    @classmethod
    def critic_loss(cls, config, critic_params, batch: Transition, target):
        """Sum over critics of the mean squared soft TD error (SAC eq. 5 with the factor 1/2)."""
        q = cls.q_values(config, critic_params, batch.obs, None if config.discrete else batch.action)
        if config.discrete:  # Q of the action taken, [num_critics, batch]
            q = jnp.take_along_axis(q, batch.action[None, :, None], -1).squeeze(-1)
        loss = 0.5 * jnp.mean((q - target) ** 2, axis=1).sum()
        return loss, {"qf_loss": loss, "qf_values": q.mean()}

    @classmethod
    def actor_loss(cls, config, actor_params, critic_params, alpha, obs, rng):
        """E_s E_a~pi[alpha log pi(a|s) - min_i Q_i(s, a)] (SAC eq. 7, Christodoulou eq. 12); entropy -E log pi."""
        q, log_pi = cls.policy_expectations(config, actor_params, critic_params, obs, rng)
        loss = jnp.mean(alpha * log_pi - q)
        return loss, {"actor_loss": loss, "entropy": jax.lax.stop_gradient(-log_pi.mean())}

    @classmethod
    def alpha_loss(cls, config, log_alpha, entropy, target_entropy):
        """log(alpha) (H - target) (SAC eq. 18, Christodoulou eq. 11): alpha falls while the entropy H > target."""
        return log_alpha * (entropy - target_entropy), {}

    @classmethod
    def update(cls, config, train_state, batch: Transition, rng):
        """One gradient step on a batch: CRITICS, then ACTOR, then TEMPERATURE, then Polyak TARGETS."""
        ts, optimizer = train_state, cls.optimizer(config)
        rng_target, rng_actor = jax.random.split(rng)
        alpha = jnp.exp(ts.log_alpha)

        def descend(loss, params, opt_state, *args):  # one optimiser step on loss(config, params, *args)
            grads, metrics = jax.grad(loss, argnums=1, has_aux=True)(config, params, *args)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, metrics

        target = cls.critic_target(config, ts.actor_params, ts.target_critic_params, alpha, batch, rng_target)
        critic_params, critic_opt_state, critic_metrics = descend(
            cls.critic_loss, ts.critic_params, ts.critic_opt_state, batch, jax.lax.stop_gradient(target))
        actor_params, actor_opt_state, actor_metrics = descend(
            cls.actor_loss, ts.actor_params, ts.actor_opt_state, critic_params, alpha, batch.obs, rng_actor)
        log_alpha, alpha_opt_state, _ = descend(
            cls.alpha_loss, ts.log_alpha, ts.alpha_opt_state, actor_metrics["entropy"],
            cls.target_entropy(config, ts.global_step))
        target_critic_params = optax.incremental_update(critic_params, ts.target_critic_params, config.tau)
        ts = ts.replace(actor_params=actor_params, critic_params=critic_params, log_alpha=log_alpha,
                        target_critic_params=target_critic_params, actor_opt_state=actor_opt_state,
                        critic_opt_state=critic_opt_state, alpha_opt_state=alpha_opt_state)
        return ts, {**critic_metrics, **actor_metrics, "alpha": alpha}

    @classmethod
    def train_block(cls, config, train_state):
        """block_iterations iterations of gradient_steps updates, then one STEP of every env; new rows wait in `recent`."""
        first_row, buffer = train_state.global_step // config.num_envs, train_state.buffer
        recent = jax.tree.map(lambda buf: jnp.zeros((config.block_iterations,) + buf.shape[1:], buf.dtype), buffer)

        def iteration(i, carry):  # the buffer is a loop constant here, not part of the carry
            ts, recent = carry

            def gradient_step(ts, rng):
                rng_batch, rng_update = jax.random.split(rng)
                return cls.update(config, ts, cls.sample_batch(config, ts, recent, first_row, rng_batch), rng_update)

            rng, rng_update = jax.random.split(ts.rng)
            ts, _ = jax.lax.scan(gradient_step, ts.replace(rng=rng, buffer=buffer),
                                 jax.random.split(rng_update, config.gradient_steps))
            ts, row = cls.step_env(config, ts, random=False)
            recent = jax.tree.map(lambda r, x: jax.lax.dynamic_update_index_in_dim(r, x, i, 0), recent, row)
            return ts.replace(buffer=None), recent

        train_state, recent = jax.lax.fori_loop(0, config.block_iterations, iteration,
                                                (train_state.replace(buffer=None), recent))
        return train_state.replace(buffer=cls.write_rows(config, buffer, recent, first_row))

    @classmethod
    def warm_up(cls, config, train_state):
        """learning_starts env steps of uniformly random actions, written to the ring at once (the last ones it holds)."""
        train_state, rows = jax.lax.scan(lambda ts, _: cls.step_env(config, ts, random=True), train_state, None,
                                         length=config.warmup_iterations)
        keep = min(config.warmup_iterations, config.buffer_rows)
        rows, first_row = jax.tree.map(lambda x: x[-keep:], rows), config.warmup_iterations - keep
        return train_state.replace(buffer=cls.write_rows(config, train_state.buffer, rows, first_row))

    @classmethod
    def eval_callback(cls, config, train_state, rng):
        """Default callback: deterministic evaluation episodes plus the latest training-episode returns."""
        return common.evaluate_policy(cls.make_act(config, train_state), config, train_state, rng)

    @classmethod
    def train(cls, config, rng, resume=None, num_evals=None):
        """Train one agent: returns (train_state, evaluation), evaluation stacked over num_evals + 1 points (before
        any training, then after warm-up and each eval interval). Pure and jittable; vmap it over `rng` or config
        leaves. For checkpoints (cli.train_in_segments): `num_evals` stops after that many intervals, and
        `resume=(train_state, evals_done)` continues from evaluation point `evals_done`, returning only new points."""
        rng, rng_eval = jax.random.split(rng)
        callback = config.eval_callback if config.eval_callback is not None else cls.eval_callback

        def evaluate(ts):
            return callback(config, ts, jax.random.fold_in(rng_eval, ts.global_step))

        def eval_interval(ts, _):
            blocks = config.iterations_per_eval // config.block_iterations
            ts = jax.lax.fori_loop(0, blocks, lambda _, ts: cls.train_block(config, ts), ts)
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


train, make_act = SAC.train, SAC.make_act

if __name__ == "__main__":  # the command line (flags, seeds, devices, checkpoints, results) lives in cli.py
    import cli
    cli.main("sac", Config, train, SAC.eval_callback, description=__doc__)
