"""PPO: Proximal Policy Optimization with the clipped surrogate objective and GAE.

Schulman et al. 2017, "Proximal Policy Optimization Algorithms" (clipped objective, eq. 7; combined loss, eq. 9);
Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized Advantage Estimation" (GAE, eq. 16).

Notable choices:
- Discrete actions use a categorical policy; continuous ones a Gaussian with a state-independent log-std. Continuous
  actions are clipped to the env's bounds when stepping; the log-probability is that of the unclipped sample.
- Time-limit truncation is not termination: the value of the final observation is bootstrapped (see `gae`).
- Observation normalisation (optional) keeps one running mean/variance for all parallel envs, frozen during a rollout
  and updated after it, so the policy that acted and the policy that is trained see the same inputs.
- Reward normalisation (optional) is gym's NormalizeReward, step by step in the rollout. With an env that declares
  `has_action_mask`, forbidden actions' logits are the lowest float when acting and in the loss (common.mask_actions).

Run: python rejax_ppo.py --env CartPole-v1 --num-seeds 16
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
    # clip_eps 0.1 rather than 0.2: with 0.2, 30 of 32 seeds ended at 500 (one at 336); with 0.1, 96 of 96 did.
    "CartPole-v1": dict(num_envs=4, num_steps=125, num_epochs=10, num_minibatches=5, learning_rate=5e-4, ent_coef=0.0,
                        clip_eps=0.1, anneal_lr=True, total_timesteps=100_000, eval_freq=10_000),
    "Acrobot-v1": dict(learning_rate=1e-3, total_timesteps=200_000, eval_freq=20_000),  # the class's rollout shape
    "Breakout-MinAtar": dict(num_envs=64, num_steps=128, num_epochs=4, num_minibatches=8, learning_rate=5e-4,
                             hidden_layer_sizes=(128,), activation="relu", shared_network=True, anneal_lr=True,
                             gamma=0.99, total_timesteps=1_000_000, eval_freq=100_000),
    # 24 seeds (3 x 8) all end at 1000; with 4 epochs, clip 0.2 and a constant lr, 7 of 8 did (one fell to 350).
    "brax/inverted_pendulum": dict(num_envs=16, num_steps=64, num_epochs=10, num_minibatches=4, learning_rate=1e-3,
                                   clip_eps=0.1, anneal_lr=True, normalize_observations=True, total_timesteps=100_000,
                                   eval_freq=20_000),
    "Pendulum-v1": dict(num_envs=16, num_steps=128, num_epochs=10, num_minibatches=8, learning_rate=1e-3,
                        gamma=0.95, ent_coef=0.0, max_grad_norm=10.0, normalize_observations=True,
                        activation="swish", anneal_lr=True, total_timesteps=500_000, eval_freq=50_000),
    "navix/Navix-Empty-8x8-v0": dict(num_envs=16, num_steps=128, num_epochs=4, num_minibatches=8, learning_rate=1e-3,
                                     anneal_lr=True, gamma=0.95, total_timesteps=150_000, eval_freq=16_384),
    # Measured at MiniGrid's 640-step limit, --env-kwargs '{"max_steps": 640}', sampled evaluation: benchmarks/suites.md
    "navix/Navix-DoorKey-8x8-v0": dict(num_envs=32, num_minibatches=8, learning_rate=1e-3, anneal_lr=True,
                                       deterministic_eval=False, num_eval_episodes=32, total_timesteps=1_500_000,
                                       eval_freq=300_000),
}


@struct.dataclass
class Config:
    env: Any = struct.field(pytree_node=False)
    """The gymnax environment (made from a name by `Config.make`)."""
    env_params: Any
    """The environment's parameters (a pytree)."""

    # --- budget and evaluation (static)
    total_timesteps: int = struct.field(pytree_node=False, default=1_000_000)
    """Environment steps per seed; rounded up to whole evaluation intervals (eval_freq rounded down to whole iterations
    of num_envs x num_steps): `Config.total_env_steps` is the exact count, and the CLI prints it."""
    eval_freq: int = struct.field(pytree_node=False, default=50_000)
    """Environment steps between evaluation points (each one calls eval_callback)."""
    num_eval_episodes: int = struct.field(pytree_node=False, default=8)
    """Episodes the default callback plays at each evaluation point."""
    deterministic_eval: bool = struct.field(pytree_node=False, default=True)
    """Evaluation takes the most likely action (True) or samples one (False: escapes a partial-view grid's loops)."""
    eval_callback: Callable = struct.field(pytree_node=False, default=None)
    """callback(config, train_state, rng) -> pytree, run at every evaluation point; None means PPO.eval_callback."""

    # --- shapes (static)
    num_envs: int = struct.field(pytree_node=False, default=8)
    """Parallel environments."""
    num_steps: int = struct.field(pytree_node=False, default=128)
    """Steps per environment in each rollout."""
    num_epochs: int = struct.field(pytree_node=False, default=4)
    """Passes over each rollout."""
    num_minibatches: int = struct.field(pytree_node=False, default=4)
    """Minibatches per epoch; must divide num_envs * num_steps."""
    hidden_layer_sizes: tuple[int, ...] = struct.field(pytree_node=False, default=(64, 64))
    """Widths of the hidden layers of the actor and the critic (after the conv layer, with the CNN torso)."""
    torso: str = struct.field(pytree_node=False, default="auto")
    """Network torso: mlp, cnn (Young & Tian 2019's MinAtar layer: one 16-channel 3x3 VALID conv), or auto (cnn for
    image observations)."""
    activation: str = struct.field(pytree_node=False, default="tanh")
    """Hidden activation: tanh, relu or swish."""
    shared_network: bool = struct.field(pytree_node=False, default=False)
    """Actor and critic share their hidden layers (two heads on one torso)."""

    # --- switches (static)
    normalize_observations: bool = struct.field(pytree_node=False, default=False)
    """Normalise observations with a running mean and variance shared by all envs."""
    normalize_rewards: bool = struct.field(pytree_node=False, default=False)
    """Divide learning rewards by a running std of the discounted return, as gym's NormalizeReward (ReturnStats)."""
    normalize_advantages: bool = struct.field(pytree_node=False, default=True)
    """Standardise advantages within each minibatch."""
    anneal_lr: bool = struct.field(pytree_node=False, default=False)
    """Decay the learning rate linearly to 0 over the run."""
    clip_value_loss: bool = struct.field(pytree_node=False, default=False)
    """Clip the value update to clip_eps around the rollout's values (PPO2-style)."""

    # --- hyperparameters (pytree leaves: vmappable)
    learning_rate: float = 2.5e-4
    """Adam step size."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda: 0 is one-step TD, 1 is Monte Carlo."""
    clip_eps: float = 0.2
    """Clipping range of the probability ratio (and of the value update with clip_value_loss)."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Gradients are rescaled to at most this global norm."""

    @classmethod
    def make(cls, env="CartPole-v1", env_params=None, **overrides) -> "Config":
        """Build and validate a config: class defaults < tuned values for this env < `overrides`."""
        return common.make_config(cls, "ppo", TUNED, env, env_params, overrides)

    def validate(self):
        common.check_positive(total_timesteps=self.total_timesteps, eval_freq=self.eval_freq, num_envs=self.num_envs,
                              num_eval_episodes=self.num_eval_episodes, num_steps=self.num_steps,
                              num_epochs=self.num_epochs, num_minibatches=self.num_minibatches,
                              learning_rate=self.learning_rate, max_grad_norm=self.max_grad_norm)
        common.check_unit_interval(gamma=self.gamma, gae_lambda=self.gae_lambda)
        common.check_non_negative(clip_eps=self.clip_eps, ent_coef=self.ent_coef, vf_coef=self.vf_coef)
        common.check_callback(self.eval_callback)
        if self.steps_per_iteration % self.num_minibatches:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) must divide num_envs * num_steps "
                             f"({self.num_envs} * {self.num_steps} = {self.steps_per_iteration}); change one of them.")
        if not self.hidden_layer_sizes or min(self.hidden_layer_sizes) < 1:
            raise ValueError(f"hidden_layer_sizes must be positive widths, got {self.hidden_layer_sizes!r}.")
        if self.torso not in ("auto", "mlp", "cnn"):
            raise ValueError(f"torso must be auto, mlp or cnn, got {self.torso!r}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}.")

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def iterations_per_eval(self) -> int:
        return max(1, self.eval_freq // self.steps_per_iteration)

    @property
    def num_evals(self) -> int:
        iterations = -(-self.total_timesteps // self.steps_per_iteration)
        return -(-iterations // self.iterations_per_eval)

    @property
    def total_env_steps(self) -> int:
        """Environment steps per seed actually trained (total_timesteps rounded up)."""
        return self.num_evals * self.iterations_per_eval * self.steps_per_iteration

    @property
    def action_dim(self) -> int:
        action_space = self.env.action_space(self.env.default_params)
        return action_space.n if self.discrete else int(np.prod(action_space.shape))

    @property
    def discrete(self) -> bool:
        return common.is_discrete(self.env, self.env.default_params)

    @property
    def uses_cnn(self) -> bool:
        image_obs = len(self.env.observation_space(self.env.default_params).shape) == 3
        return self.torso == "cnn" or (self.torso == "auto" and image_obs)


# --- Networks ---------------------------------------------------------------------------------------------------------
ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish}


def orthogonal(scale):
    """Orthogonal initialisation (Saxe et al. 2014), distributed as flax's (Haar-random), by two-pass Gram-Schmidt in
    float32, not LAPACK's QR: jaxlib 0.10.2's batched CPU QR (a vmapped init's) can deadlock XLA:CPU's thread pool."""

    def init(key, shape, dtype=jnp.float32):
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        n, m = max(rows, cols), min(rows, cols)
        gaussian = jax.random.normal(key, (n, m), jnp.float32)

        def orthonormalise(i, q):
            v = gaussian[:, i]
            for _ in range(2):  # columns >= i of q are still zero
                v = v - jnp.matmul(q, jnp.matmul(q.T, v, precision="highest"), precision="highest")
            return q.at[:, i].set(v / jnp.linalg.norm(v))
        q = jax.lax.fori_loop(0, m, orthonormalise, jnp.zeros((n, m), jnp.float32))
        return (scale * (q if rows >= cols else q.T)).reshape(shape).astype(dtype)

    return init


def dense(features, scale):
    return nn.Dense(features, kernel_init=orthogonal(scale), bias_init=nn.initializers.zeros)


class Torso(nn.Module):
    """An MLP, after MinAtar's conv with `cnn` (Young & Tian 2019: 16 filters, 3x3, stride 1, VALID) on [H, W, C]."""

    hidden_layer_sizes: tuple
    activation: str
    cnn: bool

    @nn.compact
    def __call__(self, x):
        if self.cnn:
            x = nn.relu(nn.Conv(16, (3, 3), padding="VALID", kernel_init=orthogonal(np.sqrt(2)))(x))
            x = x.reshape(x.shape[:-3] + (-1,))
        for width in self.hidden_layer_sizes:
            x = ACTIVATIONS[self.activation](dense(width, np.sqrt(2))(x))
        return x


class ActorCritic(nn.Module):
    """Returns (policy, value): policy is logits (discrete) or (mean, log_std) (continuous). Orthogonal init with
    gains sqrt(2) / 0.01 (policy head) / 1 (value head), as in Andrychowicz et al. 2021."""

    action_dim: int
    discrete: bool
    hidden_layer_sizes: tuple
    activation: str
    shared: bool
    cnn: bool

    @nn.compact
    def __call__(self, obs):
        torso = lambda: Torso(self.hidden_layer_sizes, self.activation, self.cnn)  # noqa: E731
        actor_features = torso()(obs)
        critic_features = actor_features if self.shared else torso()(obs)
        value = dense(1, 1.0)(critic_features).squeeze(-1)
        head = dense(self.action_dim, 0.01)(actor_features)
        if self.discrete:
            return head, value
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return (head, jnp.broadcast_to(log_std, head.shape)), value


def sample_noise(discrete, action_dim, rng, shape):
    """The randomness of `shape` action samples: Gumbel noise (discrete) or standard normal noise (continuous)."""
    return (jax.random.gumbel if discrete else jax.random.normal)(rng, shape + (action_dim,))


def sample(discrete, policy, noise):
    """An action from pre-drawn noise: argmax(logits + Gumbel) samples the categorical (Gumbel-max); 0: the mode."""
    if discrete:
        return jnp.argmax(policy + noise, -1)
    mean, log_std = policy
    return mean + jnp.exp(log_std) * noise


def log_prob(discrete, policy, action):
    if discrete:
        return jnp.take_along_axis(jax.nn.log_softmax(policy), action[..., None], -1).squeeze(-1)
    mean, log_std = policy
    z = (action - mean) / jnp.exp(log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), -1)


def entropy(discrete, policy):
    if discrete:
        log_p = jax.nn.log_softmax(policy)
        return -jnp.sum(jnp.exp(log_p) * log_p, -1)
    return jnp.sum(policy[1] + 0.5 * jnp.log(2 * jnp.pi * jnp.e), -1)


# --- Data containers --------------------------------------------------------------------------------------------------
class Transition(NamedTuple):  # each field [num_steps, num_envs, ...]
    obs: jax.Array  # raw observation the action was taken in
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array  # true terminal state: no bootstrap
    done: jax.Array  # terminated | truncated: the next obs starts a new episode
    final_obs: jax.Array  # raw observation the action led to (before any reset)


class Batch(NamedTuple):  # each field [num_envs * num_steps, ...], flattened for minibatching
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array
    mask: Any  # [..., num_actions] allowed actions, or None (an env without an action mask)


@struct.dataclass
class TrainState:
    rng: jax.Array
    global_step: jax.Array  # env steps per seed so far
    params: Any
    opt_state: Any
    env_state: Any  # [num_envs, ...]
    obs: jax.Array  # [num_envs, ...] current raw observation
    obs_stats: common.RunningMeanStd
    reward_stats: common.ReturnStats  # frozen unless normalize_rewards
    episode_stats: common.EpisodeStats


# --- The algorithm ----------------------------------------------------------------------------------------------------
class PPO:
    @classmethod
    def network(cls, config):
        return ActorCritic(config.action_dim, config.discrete, config.hidden_layer_sizes, config.activation,
                           config.shared_network, config.uses_cnn)

    @classmethod
    def optimizer(cls, config):
        total_updates = config.num_evals * config.iterations_per_eval * config.num_epochs * config.num_minibatches
        anneal = lambda count: config.learning_rate * (1.0 - count / total_updates)  # noqa: E731
        learning_rate = anneal if config.anneal_lr else config.learning_rate
        # optax.flatten runs clipping and Adam on one vector: a few fused ops instead of a set per parameter array.
        return optax.flatten(
            optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(learning_rate, eps=1e-5)))

    @classmethod
    def init(cls, config, rng) -> TrainState:
        rng, rng_params, rng_env = jax.random.split(rng, 3)
        obs, env_state = common.reset_envs(config.env, config.env_params, rng_env, config.num_envs)
        params = cls.network(config).init(rng_params, obs[0])
        return TrainState(rng, jnp.array(0, jnp.int32), params, cls.optimizer(config).init(params), env_state, obs,
                          common.RunningMeanStd.create(obs.shape[1:]), common.ReturnStats.create(config.num_envs),
                          common.EpisodeStats.create(config.num_envs))

    @classmethod
    def normalize(cls, config, obs_stats, obs):
        return obs_stats.normalize(obs) if config.normalize_observations else obs

    @classmethod
    def make_act(cls, config, train_state, deterministic: bool = True):
        """A policy `act(obs, rng) -> action` for one observation, e.g. for evaluation after training."""
        def act(obs, rng):
            policy, _ = cls.network(config).apply(train_state.params, cls.normalize(config, train_state.obs_stats, obs))
            policy = common.mask_actions(policy, common.action_mask(config.env, config.env_params, obs))
            noise = 0.0 if deterministic else sample_noise(config.discrete, config.action_dim, rng, ())
            return cls.env_action(config, sample(config.discrete, policy, noise))
        return act

    @classmethod
    def env_action(cls, config, action):
        """The action the env receives: a continuous one clipped to the env's bounds."""
        space = config.env.action_space(config.env_params)
        return action if config.discrete else jnp.clip(action, space.low, space.high)

    @classmethod
    def collect(cls, config, train_state):
        """Roll the current policy out for num_steps in every env: one `lax.scan`."""
        # The rollout's randomness in two calls: on XLA:CPU one random call costs more than this network's forward.
        rng, rng_noise, rng_step = jax.random.split(train_state.rng, 3)
        noise = sample_noise(config.discrete, config.action_dim, rng_noise, (config.num_steps, config.num_envs))
        step_keys = jax.random.split(rng_step, (config.num_steps, config.num_envs))

        def step(ts, x):
            noise, keys = x
            policy, value = cls.network(config).apply(ts.params, cls.normalize(config, ts.obs_stats, ts.obs))
            policy = common.mask_actions(policy, common.action_mask(config.env, config.env_params, ts.obs))
            action = sample(config.discrete, policy, noise)
            next_obs, env_state, reward, terminated, truncated, final_obs = common.step_envs(
                config.env, config.env_params, keys, ts.env_state, cls.env_action(config, action))
            done = terminated | truncated
            stats = ts.reward_stats.update(reward, done, config.gamma) if config.normalize_rewards else ts.reward_stats
            learn_reward = stats.scale(reward) if config.normalize_rewards else reward  # by the std after this step
            transition = Transition(ts.obs, action, log_prob(config.discrete, policy, action), value, learn_reward,
                                    terminated, done, final_obs)
            ts = ts.replace(env_state=env_state, obs=next_obs, global_step=ts.global_step + config.num_envs,
                            reward_stats=stats, episode_stats=ts.episode_stats.update(reward, done))
            return ts, transition

        return jax.lax.scan(step, train_state.replace(rng=rng), (noise, step_keys))

    @classmethod
    def gae(cls, config, reward, value, next_value, terminated, done):
        """GAE (paper eq. 16) and value targets, [num_steps, num_envs]: delta_t = r_t + gamma * V(s'_t) * (1 -
        terminated_t) - V(s_t), s'_t the observation the action led to, so a truncated step still bootstraps; the
        recursion A_t = delta_t + gamma * lambda * A_{t+1} stops at any episode end (done_t): s_{t+1} is a new one."""
        delta = reward + config.gamma * next_value * (1.0 - terminated) - value

        def backward(next_advantage, x):
            delta, done = x
            advantage = delta + config.gamma * config.gae_lambda * (1.0 - done) * next_advantage
            return advantage, advantage

        _, advantage = jax.lax.scan(backward, jnp.zeros_like(delta[0]), (delta, done), reverse=True)
        return advantage, advantage + value

    @classmethod
    def loss(cls, config, params, batch: Batch):
        """Clipped surrogate + value loss - entropy bonus (PPO paper eq. 9); returns (loss, metrics)."""
        policy, value = cls.network(config).apply(params, batch.obs)
        policy = common.mask_actions(policy, batch.mask)
        log_ratio = log_prob(config.discrete, policy, batch.action) - batch.log_prob
        ratio = jnp.exp(log_ratio)
        advantage = batch.advantage
        if config.normalize_advantages:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        clipped_ratio = jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps)
        policy_loss = -jnp.minimum(ratio * advantage, clipped_ratio * advantage).mean()

        value_loss = (value - batch.target) ** 2
        if config.clip_value_loss:
            clipped_value = batch.value + jnp.clip(value - batch.value, -config.clip_eps, config.clip_eps)
            value_loss = jnp.maximum(value_loss, (clipped_value - batch.target) ** 2)
        value_loss = 0.5 * value_loss.mean()

        entropy_mean = entropy(config.discrete, policy).mean()
        loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy_mean
        metrics = {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy_mean,
                   "approx_kl": jnp.mean(ratio - 1.0 - log_ratio),
                   "clip_fraction": jnp.mean(jnp.abs(ratio - 1.0) > config.clip_eps)}
        return loss, metrics

    @classmethod
    def update(cls, config, train_state, batch: Batch):
        """num_epochs passes over the batch, each in num_minibatches shuffled minibatches, one Adam step each."""
        optimizer = cls.optimizer(config)

        def minibatch_step(carry, minibatch):
            params, opt_state = carry
            grads, metrics = jax.grad(cls.loss, argnums=1, has_aux=True)(config, params, minibatch)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), metrics

        # One shuffle per epoch, all drawn in one random call; then the num_epochs * num_minibatches steps, one scan.
        rng, rng_shuffle = jax.random.split(train_state.rng)
        order = jnp.argsort(jax.random.uniform(rng_shuffle, (config.num_epochs, config.steps_per_iteration)), -1)
        minibatches = jax.tree_util.tree_map(
            lambda x: x[order].reshape((config.num_epochs * config.num_minibatches, -1) + x.shape[1:]), batch)
        (params, opt_state), metrics = jax.lax.scan(minibatch_step, (train_state.params, train_state.opt_state),
                                                    minibatches)
        train_state = train_state.replace(rng=rng, params=params, opt_state=opt_state)
        return train_state, jax.tree_util.tree_map(jnp.mean, metrics)

    @classmethod
    def train_iteration(cls, config, train_state):
        """COLLECT a rollout, ESTIMATE advantages, UPDATE the networks, then fold the rollout into the normaliser."""
        train_state, transitions = cls.collect(config, train_state)

        obs = cls.normalize(config, train_state.obs_stats, transitions.obs)
        final_obs = cls.normalize(config, train_state.obs_stats, transitions.final_obs)
        _, next_value = cls.network(config).apply(train_state.params, final_obs)
        advantage, target = cls.gae(config, transitions.reward, transitions.value, next_value,
                                    transitions.terminated, transitions.done)

        flatten = lambda x: x.reshape((config.steps_per_iteration,) + x.shape[2:])  # noqa: E731
        mask = common.action_mask(config.env, config.env_params, transitions.obs)
        batch = Batch(obs, transitions.action, transitions.log_prob, transitions.value, advantage, target, mask)
        train_state, metrics = cls.update(config, train_state, jax.tree_util.tree_map(flatten, batch))

        if config.normalize_observations:
            train_state = train_state.replace(obs_stats=train_state.obs_stats.update(transitions.obs))
        return train_state

    @classmethod
    def eval_callback(cls, config, train_state, rng):
        """Default callback: evaluation episodes (deterministic_eval) plus the latest training-episode returns."""
        return common.evaluate_policy(cls.make_act(config, train_state, config.deterministic_eval), config, train_state,
                                      rng)

    @classmethod
    def train(cls, config, rng, resume=None, num_evals=None):
        """Train one agent: returns (train_state, evaluation), evaluation stacked over num_evals + 1 points (the first
        before any training). Pure and jittable; vmap it over `rng` or over config leaves. For checkpoints:
        `num_evals` stops after that many evaluation intervals, and `resume=(train_state, evals_done)` continues from
        evaluation point `evals_done`, returning only the points this call produced."""
        rng, rng_eval = jax.random.split(rng)
        callback = config.eval_callback if config.eval_callback is not None else cls.eval_callback

        def evaluate(ts):
            return callback(config, ts, jax.random.fold_in(rng_eval, ts.global_step))

        def eval_interval(ts, _):
            ts, _ = jax.lax.scan(lambda ts, _: (cls.train_iteration(config, ts), None), ts, None,
                                 length=config.iterations_per_eval)
            return ts, evaluate(ts)

        if resume is not None:
            train_state, evals_done = resume
        else:
            train_state, evals_done = cls.init(config, rng), 0
            first = evaluate(train_state)
        length = config.num_evals - evals_done if num_evals is None else num_evals
        train_state, rest = jax.lax.scan(eval_interval, train_state, None, length=length)
        return train_state, (rest if resume else jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest))


train, make_act = PPO.train, PPO.make_act

if __name__ == "__main__":  # the command line (flags, seeds, devices, checkpoints, results) lives in cli.py
    import cli
    cli.main("ppo", Config, train, PPO.eval_callback, description=__doc__)
