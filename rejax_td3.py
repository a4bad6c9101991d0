"""TD3: Twin Delayed Deep Deterministic policy gradient, for continuous actions.

Fujimoto, van Hoof and Meger 2018, "Addressing Function Approximation Error in Actor-Critic Methods": the clipped
double-Q target y = r + gamma * min_i Q'_i(s', a~) (eq. 10), target policy smoothing a~ = pi'(s') + clip(eps, -c, c)
(eq. 14-15), and delayed actor and target updates (one per policy_delay critic updates, Algorithm 1). The actor
follows the deterministic policy gradient of Q_1 (Silver et al. 2014, eq. 6).

Notable choices:
- Inside the agent actions live in [-1, 1]: the actor ends in tanh, and the buffer, the critics and every noise use
  that scale. Only the env sees them rescaled to its bounds [low, high] (which must be finite), so the noise scales
  (exploration_noise, target_noise, target_noise_clip) are fractions of the half-range of the action space.
- Time-limit truncation is not termination: the buffer stores the observation the action led to (final_obs) and the
  `terminated` flag, so a truncated step still bootstraps.
- One iteration: policy_delay vector env steps, then gradient_steps blocks of (policy_delay critic updates on fresh
  minibatches, one actor update on the last of them, one Polyak update of both target networks).
- Exploration noise is Gaussian and independent at every step by default (as in the paper), or Ornstein-Uhlenbeck
  (exploration_noise_type="ou", the DDPG paper's), correlated in time, one process per env, which MountainCarContinuous
  needs: independent pushes cancel out before the car gains momentum. `make_act(deterministic=False)` keeps no state,
  so it always adds independent Gaussian noise of std exploration_noise (the ou noise's stationary distribution).
- learning_starts: a warm-up loop of its own, before the main one, acts uniformly at random (or with the ou noise
  alone) and makes no update, and the buffer's write position and fill level come from the loop counter: both are the
  same for every seed, so under vmap nothing branches per seed and writes stay in-place slice updates.
- Observation and reward normalisation (optional): the buffer keeps raw observations and rewards; minibatches are
  normalised with the running statistics at the time they are sampled (rewards divided by the return std, as SB3
  does, so a batch is on one scale; gym's NormalizeReward scales at collection).
- Gradients are clipped to a global norm of max_grad_norm (10) before Adam; neither the TD3 nor the DDPG paper
  clips them (a huge max_grad_norm turns it off).

Run: python rejax_td3.py --env Pendulum-v1 --num-seeds 4
"""

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

import common


# --- Config -----------------------------------------------------------------------------------------------------------
TUNED = {
    # 0.5 critic updates per env step (4 envs x 2 gradient steps) on a small network: solved in about 10k steps.
    "Pendulum-v1": dict(num_envs=4, gradient_steps=2, batch_size=128, hidden_layer_sizes=(64, 64), learning_rate=2e-3,
                        tau=0.02, learning_starts=2_000, total_timesteps=20_000, eval_freq=2_000,
                        num_eval_episodes=16),
    # With i.i.d. Gaussian noise the car never reaches the flag and the policy settles on standing still (return
    # about 0). Ornstein-Uhlenbeck noise (std 0.5, theta 0.15) reaches it in most episodes, so the warm-up alone fills
    # the buffer with successes. tau 0.01-0.02 solves it sooner but then collapses to a
    # saturated actor (return about -99) in some seeds; 0.005 held in 8 of 8 seeds. 0.5 critic updates per env step.
    "MountainCarContinuous-v0": dict(num_envs=8, gradient_steps=4, batch_size=128, hidden_layer_sizes=(64, 64),
                                     learning_rate=1e-3, tau=0.005, exploration_noise_type="ou", exploration_noise=0.5,
                                     ou_theta=0.15, learning_starts=10_000, normalize_observations=True,
                                     total_timesteps=100_000, eval_freq=10_000),
}


@struct.dataclass
class Config:
    env: Any = struct.field(pytree_node=False)
    """The gymnax environment (made from a name by `Config.make`)."""
    env_params: Any
    """The environment's parameters (a pytree)."""

    # --- budget and evaluation (static)
    total_timesteps: int = struct.field(pytree_node=False, default=100_000)
    """Environment steps per seed (warm-up included); rounded up to whole evaluation intervals after the warm-up
    (learning_starts rounded up, eval_freq down, to whole iterations of num_envs x policy_delay):
    `Config.total_env_steps` is the exact count, and the CLI prints it."""
    eval_freq: int = struct.field(pytree_node=False, default=5_000)
    """Environment steps between evaluation points (each one calls eval_callback)."""
    num_eval_episodes: int = struct.field(pytree_node=False, default=8)
    """Deterministic episodes the default callback plays at each evaluation point."""
    eval_callback: Callable = struct.field(pytree_node=False, default=None)
    """callback(config, train_state, rng) -> pytree, run at every evaluation point; None means TD3.eval_callback."""

    # --- shapes and schedule (static)
    num_envs: int = struct.field(pytree_node=False, default=1)
    """Parallel environments."""
    buffer_size: int = struct.field(pytree_node=False, default=100_000)
    """Replay buffer capacity in transitions (oldest overwritten first)."""
    batch_size: int = struct.field(pytree_node=False, default=256)
    """Transitions per minibatch."""
    learning_starts: int = struct.field(pytree_node=False, default=5_000)
    """Environment steps per seed of random actions (uniform, or the ou noise alone) and no updates, before learning."""
    gradient_steps: int = struct.field(pytree_node=False, default=1)
    """Critic updates per vector env step (num_envs transitions); the actor gets one per policy_delay of them."""
    policy_delay: int = struct.field(pytree_node=False, default=2)
    """Critic updates per actor update and target-network update (d in the paper)."""
    hidden_layer_sizes: tuple[int, ...] = struct.field(pytree_node=False, default=(256, 256))
    """Widths of the hidden layers of the actor and of each critic."""
    activation: str = struct.field(pytree_node=False, default="relu")
    """Hidden activation: relu, swish or tanh."""
    normalize_observations: bool = struct.field(pytree_node=False, default=False)
    """Normalise observations with a running mean and variance shared by all envs."""
    normalize_rewards: bool = struct.field(pytree_node=False, default=False)
    """Divide sampled rewards by a running std of the discounted return (gym's NormalizeReward, at sampling time)."""
    exploration_noise_type: str = struct.field(pytree_node=False, default="gaussian")
    """Exploration noise while collecting: gaussian (independent at every step) or ou (Ornstein-Uhlenbeck, correlated
    in time, one process per env, reset to 0 where an episode ends)."""

    # --- hyperparameters (pytree leaves: vmappable)
    learning_rate: float = 3e-4
    """Adam step size of the actor and the critics."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak step: the fraction by which the target networks move toward the online ones per update."""
    exploration_noise: float = 0.1
    """Std of the action noise while collecting (the stationary std for ou), as a fraction of the action half-range."""
    ou_theta: float = 0.15
    """Mean reversion of the ou noise per env step, in (0, 1]: lag-k autocorrelation (1 - ou_theta)^k (1: gaussian)."""
    target_noise: float = 0.2
    """Std of the target policy smoothing noise, as a fraction of the action half-range."""
    target_noise_clip: float = 0.5
    """The smoothing noise is clipped to +-target_noise_clip (fraction of the action half-range)."""
    max_grad_norm: float = 10.0
    """Gradients are rescaled to at most this global norm."""

    @classmethod
    def make(cls, env="Pendulum-v1", env_params=None, **overrides) -> "Config":
        """Build and validate a config: class defaults < tuned values for this env < `overrides`."""
        return common.make_config(cls, "td3", TUNED, env, env_params, overrides)

    def validate(self):
        common.check_positive(total_timesteps=self.total_timesteps, eval_freq=self.eval_freq,
                              num_eval_episodes=self.num_eval_episodes, num_envs=self.num_envs,
                              buffer_size=self.buffer_size, batch_size=self.batch_size,
                              gradient_steps=self.gradient_steps, learning_rate=self.learning_rate,
                              max_grad_norm=self.max_grad_norm)
        common.check_non_negative(learning_starts=self.learning_starts, exploration_noise=self.exploration_noise,
                                  target_noise=self.target_noise, target_noise_clip=self.target_noise_clip)
        common.check_unit_interval(gamma=self.gamma, tau=self.tau)
        common.check_callback(self.eval_callback)
        if not (isinstance(self.policy_delay, (int, np.integer)) and self.policy_delay >= 1):
            raise ValueError(f"policy_delay must be a whole number of at least 1, got {self.policy_delay!r}.")
        if self.learning_starts >= self.total_timesteps:
            raise ValueError(f"learning_starts ({self.learning_starts}) must be below total_timesteps "
                             f"({self.total_timesteps}), or no update is ever made; lower it.")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed buffer_size ({self.buffer_size}); "
                             f"lower batch_size or raise buffer_size.")
        if not self.hidden_layer_sizes or min(self.hidden_layer_sizes) < 1:
            raise ValueError(f"hidden_layer_sizes must be positive widths, got {self.hidden_layer_sizes!r}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}.")
        if self.exploration_noise_type not in ("gaussian", "ou"):
            raise ValueError(f"exploration_noise_type must be gaussian or ou, got {self.exploration_noise_type!r}.")
        if not (isinstance(self.ou_theta, (int, float, np.number)) and 0 < self.ou_theta <= 1):
            raise ValueError(f"ou_theta must lie in (0, 1] (1 makes the ou noise independent at every step), got "
                             f"{self.ou_theta!r}.")

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.policy_delay

    @property
    def warmup_iterations(self) -> int:
        """Iterations of random actions without updates (learning_starts rounded up)."""
        return -(-self.learning_starts // self.steps_per_iteration)

    @property
    def iterations_per_eval(self) -> int:
        return max(1, self.eval_freq // self.steps_per_iteration)

    @property
    def num_evals(self) -> int:
        """Evaluation points after the first; they cover the steps after the warm-up."""
        iterations = -(-self.total_timesteps // self.steps_per_iteration) - self.warmup_iterations
        return max(1, -(-iterations // self.iterations_per_eval))

    @property
    def total_env_steps(self) -> int:
        """Environment steps per seed actually taken, warm-up included (total_timesteps rounded up)."""
        return (self.warmup_iterations + self.num_evals * self.iterations_per_eval) * self.steps_per_iteration

    @property
    def buffer_rows(self) -> int:
        """The buffer holds buffer_rows blocks of num_envs transitions (one block per vector env step)."""
        return -(-self.buffer_size // self.num_envs)

    @property
    def action_dim(self) -> int:
        return int(np.prod(self.env.action_space(self.env_params).shape))


# --- Networks ---------------------------------------------------------------------------------------------------------
ACTIVATIONS = {"relu": nn.relu, "swish": nn.swish, "tanh": nn.tanh}


class MLP(nn.Module):
    hidden_layer_sizes: tuple
    activation: str
    out_features: int

    @nn.compact
    def __call__(self, x):
        for width in self.hidden_layer_sizes:
            x = ACTIVATIONS[self.activation](nn.Dense(width)(x))
        return nn.Dense(self.out_features)(x)


class Actor(nn.Module):
    """Deterministic policy pi(s) in [-1, 1]^action_dim (tanh output)."""

    action_dim: int
    hidden_layer_sizes: tuple
    activation: str

    @nn.compact
    def __call__(self, obs):
        return jnp.tanh(MLP(self.hidden_layer_sizes, self.activation, self.action_dim)(obs))


class Critic(nn.Module):
    """Q(s, a) for actions in [-1, 1]; TD3 keeps two, as one parameter tree with a leading axis of 2."""

    hidden_layer_sizes: tuple
    activation: str

    @nn.compact
    def __call__(self, obs, action):
        return MLP(self.hidden_layer_sizes, self.activation, 1)(jnp.concatenate([obs, action], -1)).squeeze(-1)


# --- Data containers --------------------------------------------------------------------------------------------------
class Transition(NamedTuple):  # each field [..., feature dims]
    obs: jax.Array  # raw observation the action was taken in
    action: jax.Array  # in [-1, 1]
    reward: jax.Array
    terminated: jax.Array  # true terminal state: no bootstrap (a truncation is not one)
    next_obs: jax.Array  # raw observation the action led to (final_obs, before any reset)


@struct.dataclass
class TrainState:
    rng: jax.Array
    global_step: jax.Array  # env steps per seed so far
    actor_params: Any
    critic_params: Any  # twin critics, each leaf with a leading axis of 2
    actor_target_params: Any
    critic_target_params: Any
    actor_opt_state: Any
    critic_opt_state: Any
    env_state: Any  # [num_envs, ...]
    obs: jax.Array  # [num_envs, ...] current raw observation
    noise: jax.Array  # [num_envs, action_dim] Ornstein-Uhlenbeck state in units of its stationary std (0 for gaussian)
    buffer: Transition  # [buffer_rows * num_envs, ...] ring, written one block of num_envs at a time
    obs_stats: common.RunningMeanStd
    reward_stats: common.ReturnStats  # frozen unless normalize_rewards
    episode_stats: common.EpisodeStats


# --- The algorithm ----------------------------------------------------------------------------------------------------
class TD3:
    @classmethod
    def actor(cls, config):
        return Actor(config.action_dim, config.hidden_layer_sizes, config.activation)

    @classmethod
    def critic(cls, config):
        """Applies both critics: (params [2, ...], obs [B, ...], action [B, A]) -> q [2, B]."""
        return jax.vmap(Critic(config.hidden_layer_sizes, config.activation).apply, in_axes=(0, None, None))

    @classmethod
    def optimizer(cls, config):
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate))

    @classmethod
    def init(cls, config, rng) -> TrainState:
        rng, rng_actor, rng_critic, rng_env = jax.random.split(rng, 4)
        obs, env_state = common.reset_envs(config.env, config.env_params, rng_env, config.num_envs)
        action = jnp.zeros((config.num_envs, config.action_dim))
        actor_params = cls.actor(config).init(rng_actor, obs)
        critic_init = Critic(config.hidden_layer_sizes, config.activation).init
        critic_params = jax.vmap(critic_init, in_axes=(0, None, None))(jax.random.split(rng_critic, 2), obs, action)
        example = Transition(obs[0], action[0], jnp.zeros(()), jnp.zeros((), bool), obs[0])
        buffer = jax.tree_util.tree_map(lambda x: jnp.zeros((config.buffer_rows * config.num_envs,) + x.shape, x.dtype),
                                        example)
        optimizer = cls.optimizer(config)
        return TrainState(rng, jnp.array(0, jnp.int32), actor_params, critic_params, actor_params, critic_params,
                          optimizer.init(actor_params), optimizer.init(critic_params), env_state, obs,
                          jnp.zeros_like(action), buffer, common.RunningMeanStd.create(obs.shape[1:]),
                          common.ReturnStats.create(config.num_envs), common.EpisodeStats.create(config.num_envs))

    @classmethod
    def normalize(cls, config, obs_stats, obs):
        return obs_stats.normalize(obs) if config.normalize_observations else obs

    @classmethod
    def scale_action(cls, config, action):
        """Map an action from [-1, 1] to the env's bounds [low, high]."""
        space = config.env.action_space(config.env_params)
        low, high = jnp.asarray(space.low, jnp.float32), jnp.asarray(space.high, jnp.float32)
        return low + 0.5 * (action + 1.0) * (high - low)

    @classmethod
    def make_act(cls, config, train_state, deterministic: bool = True):
        """A policy `act(obs, rng) -> action` (in the env's bounds) for one observation, e.g. for evaluation. With
        deterministic=False it adds independent Gaussian noise of std exploration_noise, also for ou runs: a stateless
        `act` cannot continue an ou process, and this is the process's stationary distribution."""
        def act(obs, rng):
            obs = cls.normalize(config, train_state.obs_stats, obs)
            action = cls.actor(config).apply(train_state.actor_params, obs)
            if not deterministic:
                action = jnp.clip(action + config.exploration_noise * jax.random.normal(rng, action.shape), -1.0, 1.0)
            return cls.scale_action(config, action)

        return act

    @classmethod
    def ou_step(cls, config, state, normal):
        """One Euler step of the Ornstein-Uhlenbeck process dx = -theta x dt + sigma dW (Uhlenbeck and Ornstein 1930)
        with dt = 1: x' = (1 - theta) x + sqrt(1 - (1 - theta)^2) * normal. The innovation's scale makes the
        stationary std 1 whatever theta, so exploration_noise stays the std of the action noise."""
        decay = 1.0 - config.ou_theta
        return decay * state + jnp.sqrt(1.0 - decay**2) * normal

    @classmethod
    def collect(cls, config, train_state, iteration, random_actions: bool = False):
        """Take policy_delay vector env steps with pi(s) + exploration noise (in the warm-up, `random_actions`: uniform
        actions, or the ou noise alone) and write each block of num_envs transitions into the buffer: one `lax.scan`.
        `iteration` counts iterations from the start (warm-up included) and is the same for every seed."""
        ou = config.exploration_noise_type == "ou"
        uniform = random_actions and not ou  # a uniform action is a policy of 0 plus uniform noise of scale 1

        def step(ts, xs):
            vector_step, rng_step, noise = xs
            noise = cls.ou_step(config, ts.noise, noise) if ou else noise
            obs = cls.normalize(config, ts.obs_stats, ts.obs)
            policy = 0.0 if random_actions else cls.actor(config).apply(ts.actor_params, obs)
            action = jnp.clip(policy + (1.0 if uniform else config.exploration_noise) * noise, -1.0, 1.0)
            next_obs, env_state, reward, terminated, truncated, final_obs = common.step_envs(
                config.env, config.env_params, rng_step, ts.env_state, cls.scale_action(config, action)
            )
            # A new episode starts its own noise process from 0, as in the DDPG paper (Algorithm 1).
            ou_state = jnp.where((terminated | truncated)[:, None], 0.0, noise) if ou else ts.noise
            # WRITE one block of num_envs transitions; the position depends only on the step count.
            start = (vector_step % config.buffer_rows) * config.num_envs
            block = Transition(ts.obs, action, reward, terminated, final_obs)
            buffer = jax.tree_util.tree_map(
                lambda buf, x: jax.lax.dynamic_update_slice_in_dim(buf, x.astype(buf.dtype), start, 0), ts.buffer, block
            )
            obs_stats = ts.obs_stats.update(ts.obs) if config.normalize_observations else ts.obs_stats
            stats = ts.reward_stats.update(reward, terminated | truncated, config.gamma)
            ts = ts.replace(env_state=env_state, obs=next_obs, noise=ou_state, buffer=buffer, obs_stats=obs_stats,
                            global_step=ts.global_step + config.num_envs,
                            reward_stats=stats if config.normalize_rewards else ts.reward_stats,
                            episode_stats=ts.episode_stats.update(reward, terminated | truncated))
            return ts, None

        # DRAW all the randomness of these steps at once (on CPU every random call is a loop of its own).
        rng, rng_noise, rng_steps = jax.random.split(train_state.rng, 3)
        shape = (config.policy_delay, config.num_envs, config.action_dim)
        noise = (jax.random.uniform(rng_noise, shape, minval=-1.0) if uniform else jax.random.normal(rng_noise, shape))
        vector_steps = iteration * config.policy_delay + jnp.arange(config.policy_delay)
        xs = (vector_steps, jax.random.split(rng_steps, config.policy_delay), noise)
        return jax.lax.scan(step, train_state.replace(rng=rng), xs)[0]

    @classmethod
    def target_action(cls, config, next_action, noise):
        """Target policy smoothing (paper eq. 14): clip(pi'(s') + clip(target_noise * noise, -c, c), -1, 1),
        with `noise` standard normal."""
        smoothing = jnp.clip(config.target_noise * noise, -config.target_noise_clip, config.target_noise_clip)
        return jnp.clip(next_action + smoothing, -1.0, 1.0)

    @classmethod
    def td_target(cls, config, reward, terminated, next_q):
        """Clipped double-Q target (paper eq. 10): r + gamma * (1 - terminated) * min(Q'_1, Q'_2); next_q is [2, B]."""
        return reward + config.gamma * (1.0 - terminated) * jnp.min(next_q, axis=0)

    @classmethod
    def critic_target(cls, config, train_state, batch: Transition, noise):
        """TD targets for a batch (any leading axes) from the target networks; `noise` is standard normal."""
        next_action = cls.actor(config).apply(train_state.actor_target_params, batch.next_obs)
        next_q = cls.critic(config)(train_state.critic_target_params, batch.next_obs,
                                    cls.target_action(config, next_action, noise))
        return cls.td_target(config, batch.reward, batch.terminated, next_q)

    @classmethod
    def critic_loss(cls, config, critic_params, batch: Transition, target):
        """Sum over the twin critics of the mean squared TD error; returns (loss, metrics)."""
        q = cls.critic(config)(critic_params, batch.obs, batch.action)  # [2, batch_size]
        loss = jnp.mean((q - target) ** 2, axis=1).sum()
        return loss, {"qf_loss": loss, "qf1_values": q[0].mean()}

    @classmethod
    def actor_loss(cls, config, actor_params, critic_params, obs):
        """Deterministic policy gradient through the first critic: -mean Q_1(s, pi(s)); returns (loss, metrics)."""
        action = cls.actor(config).apply(actor_params, obs)
        q1_params = jax.tree_util.tree_map(lambda p: p[0], critic_params)
        loss = -Critic(config.hidden_layer_sizes, config.activation).apply(q1_params, obs, action).mean()
        return loss, {"actor_loss": loss}

    @classmethod
    def gradient_step(cls, config, loss, params, opt_state, *args):
        """One optimiser step on `loss(config, params, *args)`; returns (params, opt_state, metrics)."""
        grads, metrics = jax.grad(loss, argnums=1, has_aux=True)(config, params, *args)
        updates, opt_state = cls.optimizer(config).update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, metrics

    @classmethod
    def update_critic(cls, config, train_state, batch: Transition, target):
        params, opt_state, metrics = cls.gradient_step(config, cls.critic_loss, train_state.critic_params,
                                                       train_state.critic_opt_state, batch, target)
        return train_state.replace(critic_params=params, critic_opt_state=opt_state), metrics

    @classmethod
    def update_actor_and_targets(cls, config, train_state, obs):
        ts = train_state
        actor_params, opt_state, metrics = cls.gradient_step(config, cls.actor_loss, ts.actor_params,
                                                             ts.actor_opt_state, ts.critic_params, obs)
        polyak = lambda online, target: target + config.tau * (online - target)  # noqa: E731
        actor_target, critic_target = jax.tree_util.tree_map(
            polyak, (actor_params, ts.critic_params), (ts.actor_target_params, ts.critic_target_params))
        return ts.replace(actor_params=actor_params, actor_opt_state=opt_state, actor_target_params=actor_target,
                          critic_target_params=critic_target), metrics

    @classmethod
    def update(cls, config, train_state, iteration):
        """gradient_steps blocks of: policy_delay critic updates, one actor update, one target update."""
        # SAMPLE every minibatch of this iteration at once, uniformly among the transitions written so far
        # (modulo of 32 random bits: the bias, below size / 2**32, is negligible).
        rng, rng_index, rng_noise = jax.random.split(train_state.rng, 3)
        num_written = jnp.minimum((iteration + 1) * config.policy_delay, config.buffer_rows) * config.num_envs
        shape = (config.gradient_steps, config.policy_delay, config.batch_size)
        index = jax.random.bits(rng_index, shape, jnp.uint32) % num_written.astype(jnp.uint32)
        batches = jax.tree_util.tree_map(lambda x: x[index], train_state.buffer)  # [G, d, B, ...]
        reward = train_state.reward_stats.scale(batches.reward) if config.normalize_rewards else batches.reward
        batches = batches._replace(obs=cls.normalize(config, train_state.obs_stats, batches.obs), reward=reward,
                                   next_obs=cls.normalize(config, train_state.obs_stats, batches.next_obs),
                                   terminated=batches.terminated.astype(jnp.float32))
        noise = jax.random.normal(rng_noise, shape + (config.action_dim,))

        def block(ts, xs):
            batch, noise = xs  # [d, B, ...]
            # The target networks stay fixed during the block: all d targets in one batched pass.
            target = cls.critic_target(config, ts, batch, noise)  # [d, B]
            ts, critic_metrics = jax.lax.scan(lambda ts, xs: cls.update_critic(config, ts, *xs), ts, (batch, target))
            ts, actor_metrics = cls.update_actor_and_targets(config, ts, batch.obs[-1])
            return ts, {**critic_metrics, **actor_metrics}

        train_state, metrics = jax.lax.scan(block, train_state.replace(rng=rng), (batches, noise))
        return train_state, jax.tree_util.tree_map(jnp.mean, metrics)

    @classmethod
    def train_iteration(cls, config, train_state, iteration):
        """COLLECT policy_delay vector steps, then UPDATE. `iteration` is the loop counter (warm-up included)."""
        train_state = cls.collect(config, train_state, iteration)
        return cls.update(config, train_state, iteration)[0]

    @classmethod
    def eval_callback(cls, config, train_state, rng):
        """Default callback: deterministic evaluation episodes plus the latest training-episode returns."""
        return common.evaluate_policy(cls.make_act(config, train_state), config, train_state, rng)

    @classmethod
    def train(cls, config, rng, resume=None, num_evals=None):
        """Train one agent: returns (train_state, evaluation), evaluation stacked over num_evals + 1 points (the first
        after the warm-up, before any update). Pure and jittable; vmap it over `rng` or over config leaves. For
        checkpoints: `num_evals` stops after that many evaluation intervals, and `resume=(train_state, evals_done)`
        continues from evaluation point `evals_done`, returning only the points this call produced."""
        rng, rng_eval = jax.random.split(rng)
        callback = config.eval_callback if config.eval_callback is not None else cls.eval_callback

        def evaluate(ts):
            return callback(config, ts, jax.random.fold_in(rng_eval, ts.global_step))

        def eval_interval(ts, eval_index):
            start = config.warmup_iterations + eval_index * config.iterations_per_eval  # iterations so far
            iterations = start + jnp.arange(config.iterations_per_eval)
            ts, _ = jax.lax.scan(lambda ts, i: (cls.train_iteration(config, ts, i), None), ts, iterations)
            return ts, evaluate(ts)

        if resume is not None:
            train_state, evals_done = resume
            length = config.num_evals - evals_done if num_evals is None else num_evals
            return jax.lax.scan(eval_interval, train_state, evals_done + jnp.arange(length))
        # WARM UP: learning_starts steps of random actions (uniform, or the ou noise alone) and no update.
        warm_up = lambda ts, i: (cls.collect(config, ts, i, random_actions=True), None)  # noqa: E731
        train_state, _ = jax.lax.scan(warm_up, cls.init(config, rng), jnp.arange(config.warmup_iterations))
        first = evaluate(train_state)
        length = config.num_evals if num_evals is None else num_evals
        train_state, rest = jax.lax.scan(eval_interval, train_state, jnp.arange(length))
        return train_state, jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)

train, make_act = TD3.train, TD3.make_act

if __name__ == "__main__":  # the command line (flags, seeds, devices, checkpoints, results) lives in cli.py
    import cli
    cli.main("td3", Config, train, TD3.eval_callback, description=__doc__)
