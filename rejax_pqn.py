"""PQN: parallelised Q-learning with LayerNorm and Q(lambda) targets; no replay buffer, no target network.

Gallici et al. 2024, "Simplifying Deep Temporal Difference Learning" (PQN: parallel envs instead of a replay buffer,
LayerNorm instead of a target network, Q(lambda) targets over each rollout); Peng & Williams 1996, "Incremental
Multi-Step Q-Learning" (the max-based lambda-return); Young & Tian 2019, "MinAtar" (the small CNN).

Each iteration rolls an epsilon-greedy policy out for num_steps in num_envs parallel envs, computes Q(lambda) targets
backwards over the rollout with the current network, then takes num_epochs passes over it in num_minibatches
shuffled minibatches of squared TD error, as PPO does with its advantages.

Notable choices, and where the code departs from the paper and its code (purejaxql):
- Time-limit truncation is not termination. The target of a truncated step bootstraps from max_a Q of the final
  observation (the one the action led to, before the reset), and the lambda-return stops there; only a true
  termination stops the bootstrap. The paper's code and PyPI rejax treat a truncation as a termination.
- Every hidden layer is Dense (or the conv) -> LayerNorm -> activation, as in the paper's code; image observations
  (MinAtar) go through conv 16 3x3, stride 1, VALID padding, LayerNorm and relu, then the dense layers. The paper's
  code divides MinAtar observations by 255; MinAtar's are already 0/1, so we don't. Flax's default (LeCun normal)
  initialisation everywhere; the paper's MinAtar code uses He normal for its CNN torso.
- LayerNorm: flax's parameters and forward pass, a backward pass of matrix-vector products (a custom_vjp, so no
  jax.jvp): vmapped over one seed, XLA:CPU (jaxlib 0.10.2) made autodiff's sums YNNPACK dots, 2.2x slower per update.
- Adam, not RAdam; the learning rate decays linearly to 0 with anneal_lr (the paper's LR_LINEAR_DECAY). Gradients are
  clipped to a global norm, as in the paper's code (PyPI rejax clips element-wise).
- Epsilon decays linearly per env step (the paper's code: per rollout) over exploration_fraction; evaluation is greedy.
- The maximum over next actions uses the network after the previous iteration's updates, i.e. the one that acted;
  targets are computed once per rollout, not per epoch (as in the paper's code). Rewards can be scaled (reward_scale).
- Optional observation normalisation keeps one running mean/variance for all envs, frozen during a rollout and updated
  after it (as in rejax_ppo.py). No batch-norm variant. Optional reward normalisation is gym's NormalizeReward, step
  by step in the rollout (common.ReturnStats), before reward_scale.
- With an env that declares `has_action_mask`, epsilon-greedy acting (greedy and random) and the targets' max over
  next actions use only the allowed actions.

Run: python rejax_pqn.py --env CartPole-v1 --num-seeds 8
"""

from typing import Any, Callable, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

import common


# --- Config -----------------------------------------------------------------------------------------------------------
TUNED = {
    # 48 of 48 seeds (keys 0-47) end at 500; with eps_end 0.05 or td_lambda 0.95, 1-4 of every 16 seeds collapsed.
    "CartPole-v1": dict(num_envs=8, num_steps=125, num_epochs=4, num_minibatches=8, learning_rate=1e-3,
                        td_lambda=0.9, eps_end=0.01, exploration_fraction=0.2, anneal_lr=True, reward_scale=0.1,
                        total_timesteps=200_000, eval_freq=20_000),
    # CartPole's values; 4 seeds (keys 0-3) end at -90.0, -87.1, -84.0, -95.1 (mean -89.1), not tuned further.
    "Acrobot-v1": dict(num_envs=8, num_steps=125, num_epochs=4, num_minibatches=8, learning_rate=1e-3,
                       td_lambda=0.9, eps_end=0.01, exploration_fraction=0.2, anneal_lr=True, reward_scale=0.1,
                       total_timesteps=200_000, eval_freq=20_000),
    # The paper's MinAtar values with 4 epochs x 16 minibatches (not swept); 2 seeds: 24.6 and 46.8 at 2M steps.
    "Breakout-MinAtar": dict(num_envs=50, num_steps=40, num_epochs=4, num_minibatches=16, learning_rate=5e-4,
                             td_lambda=0.65, eps_end=0.05, exploration_fraction=0.1, anneal_lr=True,
                             total_timesteps=2_000_000, eval_freq=100_000),
}


@struct.dataclass
class Config:
    env: Any = struct.field(pytree_node=False)
    """The gymnax environment (made from a name by `Config.make`)."""
    env_params: Any
    """The environment's parameters (a pytree)."""

    # --- budget and evaluation (static)
    total_timesteps: int = struct.field(pytree_node=False, default=500_000)
    """Environment steps per seed; rounded up to whole evaluation intervals (eval_freq rounded down to whole iterations
    of num_envs x num_steps): `Config.total_env_steps` is the exact count, and the CLI prints it."""
    eval_freq: int = struct.field(pytree_node=False, default=50_000)
    """Environment steps between evaluation points (each one calls eval_callback)."""
    num_eval_episodes: int = struct.field(pytree_node=False, default=8)
    """Episodes the default callback plays at each evaluation point (epsilon-greedy at eval_epsilon)."""
    eval_callback: Callable = struct.field(pytree_node=False, default=None)
    """callback(config, train_state, rng) -> pytree, run at every evaluation point; None means PQN.eval_callback."""

    # --- shapes (static)
    num_envs: int = struct.field(pytree_node=False, default=16)
    """Parallel environments."""
    num_steps: int = struct.field(pytree_node=False, default=64)
    """Steps per environment in each rollout."""
    num_epochs: int = struct.field(pytree_node=False, default=4)
    """Passes over each rollout."""
    num_minibatches: int = struct.field(pytree_node=False, default=8)
    """Minibatches per epoch; must divide num_envs * num_steps."""
    network: str = struct.field(pytree_node=False, default="auto")
    """Torso: mlp, cnn (the MinAtar conv layer, then the dense layers) or auto (cnn for image observations)."""
    hidden_layer_sizes: Optional[tuple[int, ...]] = struct.field(pytree_node=False, default=None)
    """Dense hidden widths, each followed by LayerNorm; None means (64, 64) for the mlp and (128,) after the cnn."""
    activation: str = struct.field(pytree_node=False, default="relu")
    """Hidden activation: relu, tanh or swish."""

    # --- switches (static)
    normalize_observations: bool = struct.field(pytree_node=False, default=False)
    """Normalise observations with a running mean and variance shared by all envs."""
    normalize_rewards: bool = struct.field(pytree_node=False, default=False)
    """Divide learning rewards by a running std of the discounted return, as gym's NormalizeReward (ReturnStats)."""
    anneal_lr: bool = struct.field(pytree_node=False, default=True)
    """Decay the learning rate linearly to 0 over the run's gradient steps."""

    # --- hyperparameters (pytree leaves: vmappable)
    learning_rate: float = 5e-4
    """Adam step size."""
    gamma: float = 0.99
    """Discount factor."""
    td_lambda: float = 0.65
    """Lambda of the Q(lambda) targets: 0 is one-step Q-learning, 1 the Monte Carlo return within the rollout."""
    eps_start: float = 1.0
    """Exploration rate at step 0."""
    eps_end: float = 0.05
    """Exploration rate after the decay."""
    exploration_fraction: float = 0.2
    """Fraction of the run over which epsilon decays linearly from eps_start to eps_end."""
    eval_epsilon: float = 0.0
    """Exploration rate of the evaluation episodes: 0 is greedy; Mnih et al. 2015 evaluate at 0.05."""
    max_grad_norm: float = 10.0
    """Gradients are rescaled to at most this global norm."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this in the targets (Q-values are in scaled units; reported returns are not)."""

    @classmethod
    def make(cls, env="CartPole-v1", env_params=None, **overrides) -> "Config":
        """Build and validate a config: class defaults < tuned values for this env < `overrides`."""
        return common.make_config(cls, "pqn", TUNED, env, env_params, overrides)

    def validate(self):
        common.check_positive(total_timesteps=self.total_timesteps, eval_freq=self.eval_freq,
                              num_eval_episodes=self.num_eval_episodes, num_envs=self.num_envs,
                              num_steps=self.num_steps, num_epochs=self.num_epochs,
                              num_minibatches=self.num_minibatches, learning_rate=self.learning_rate,
                              max_grad_norm=self.max_grad_norm, reward_scale=self.reward_scale)
        common.check_unit_interval(gamma=self.gamma, td_lambda=self.td_lambda, eps_start=self.eps_start,
                                   eps_end=self.eps_end, exploration_fraction=self.exploration_fraction,
                                   eval_epsilon=self.eval_epsilon)
        common.check_callback(self.eval_callback)
        if self.steps_per_iteration % self.num_minibatches:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) must divide num_envs * num_steps "
                             f"({self.num_envs} * {self.num_steps} = {self.steps_per_iteration}); change one of them.")
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
    def use_cnn(self) -> bool:
        if self.network == "auto":
            return len(self.env.observation_space(self.env_params).shape) == 3
        return self.network == "cnn"

    @property
    def hidden_sizes(self) -> tuple:
        if self.hidden_layer_sizes is not None:
            return tuple(self.hidden_layer_sizes)
        return (128,) if self.use_cnn else (64, 64)


# --- Networks ---------------------------------------------------------------------------------------------------------
ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "swish": nn.swish}


def layer_norm_forward(x, scale, bias):
    mean = x.mean(-1, keepdims=True)
    inv_std, centered = jax.lax.rsqrt(jnp.maximum((x * x).mean(-1, keepdims=True) - mean * mean, 0.0) + 1e-6), x - mean
    return centered * (inv_std * scale) + bias, (centered * inv_std, inv_std, scale)


def layer_norm_backward(residuals, g):
    """LayerNorm's gradients with each sum a matrix-vector product (autodiff's sums: see the module docstring)."""
    x_hat, inv_std, scale = residuals
    row_mean = lambda a: (a @ jnp.full(a.shape[-1], 1.0 / a.shape[-1]))[..., None]  # noqa: E731
    column_sum = lambda a: jnp.ones(a.size // a.shape[-1]) @ a.reshape(-1, a.shape[-1])  # noqa: E731  (conv too)
    dx = inv_std * (g * scale - row_mean(g * scale) - x_hat * row_mean(g * scale * x_hat))
    return dx, column_sum(g * x_hat), column_sum(g)


layer_norm = jax.custom_vjp(lambda x, scale, bias: layer_norm_forward(x, scale, bias)[0])
layer_norm.defvjp(layer_norm_forward, layer_norm_backward)


class LayerNorm(nn.Module):
    """nn.LayerNorm's parameters (scale, bias) and forward pass (last axis, epsilon 1e-6), `layer_norm_backward`."""

    @nn.compact
    def __call__(self, x):
        ones, zeros, features = nn.initializers.ones, nn.initializers.zeros, x.shape[-1:]
        return layer_norm(x, self.param("scale", ones, features), self.param("bias", zeros, features))


class QNetwork(nn.Module):
    """Q-values for every action: an MLP (vector observations) or MinAtar's CNN torso, LayerNorm after every hidden
    layer (before its activation, as in the paper's code), then a linear head."""

    action_dim: int
    hidden_layer_sizes: tuple
    activation: str
    cnn: bool

    @nn.compact
    def __call__(self, obs):
        x = obs.astype(jnp.float32)
        if self.cnn:  # [..., H, W, C] -> conv 16 3x3, stride 1, VALID (Young & Tian 2019) -> LayerNorm -> flatten
            x = nn.relu(LayerNorm()(nn.Conv(16, (3, 3), padding="VALID")(x)))
            x = x.reshape(x.shape[:-3] + (-1,))
        for width in self.hidden_layer_sizes:
            x = ACTIVATIONS[self.activation](LayerNorm()(nn.Dense(width)(x)))
        return nn.Dense(self.action_dim)(x)


# --- Data containers --------------------------------------------------------------------------------------------------
class Transition(NamedTuple):  # each field [num_steps, num_envs, ...]
    obs: jax.Array  # raw observation the action was taken in
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array  # true terminal state: no bootstrap
    done: jax.Array  # terminated | truncated: the next obs starts a new episode, the lambda-return stops
    final_obs: jax.Array  # raw observation the action led to (before any reset)


class Batch(NamedTuple):  # each field [num_envs * num_steps, ...], flattened for minibatching
    obs: jax.Array  # normalised observation
    action: jax.Array
    target: jax.Array  # Q(lambda) target


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
class PQN:
    @classmethod
    def network(cls, config):
        action_dim = config.env.action_space(config.env_params).n
        return QNetwork(action_dim, config.hidden_sizes, config.activation, config.use_cnn)

    @classmethod
    def optimizer(cls, config):
        learning_rate = config.learning_rate
        if config.anneal_lr:
            total_updates = config.num_evals * config.iterations_per_eval * config.num_epochs * config.num_minibatches
            learning_rate = lambda count: config.learning_rate * (1.0 - count / total_updates)  # noqa: E731
        # optax.flatten runs clipping and Adam on one vector, a few fused ops instead of a set per parameter array
        # (up to 1.2x faster vmapped on CPU here; benchmarks/pqn.md).
        return optax.flatten(optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(learning_rate)))

    @classmethod
    def init(cls, config, rng) -> TrainState:
        rng, rng_params, rng_env = jax.random.split(rng, 3)
        obs, env_state = common.reset_envs(config.env, config.env_params, rng_env, config.num_envs)
        params = cls.network(config).init(rng_params, obs[:1])
        return TrainState(rng, jnp.array(0, jnp.int32), params, cls.optimizer(config).init(params), env_state, obs,
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
    def select_action(cls, config, params, obs_stats, obs, uniform, epsilon):
        """Epsilon-greedy actions for raw observations [n, ...] -> [n]; `uniform` [2, n] holds the coins in [0, 1)."""
        q = cls.network(config).apply(params, cls.normalize(config, obs_stats, obs))
        mask = common.action_mask(config.env, config.env_params, obs)  # None without has_action_mask
        random_action = common.random_action(uniform[1], mask, q.shape[-1])
        return jnp.where(uniform[0] < epsilon, random_action, jnp.argmax(common.mask_actions(q, mask), -1))

    @classmethod
    def make_act(cls, config, train_state, epsilon: float = 0.0):
        """A policy `act(obs, rng) -> action` for one observation: greedy by default, e.g. for evaluation."""
        def act(obs, rng):
            uniform = jax.random.uniform(rng, (2, 1))
            return cls.select_action(config, train_state.params, train_state.obs_stats, obs[None], uniform, epsilon)[0]
        return act

    @classmethod
    def collect(cls, config, train_state):
        """Roll the epsilon-greedy policy out for num_steps in every env: one `lax.scan`."""
        # The whole rollout's randomness in two calls: on XLA:CPU, one per step would cost more than the network.
        rng, rng_action, rng_step = jax.random.split(train_state.rng, 3)
        uniform = jax.random.uniform(rng_action, (config.num_steps, 2, config.num_envs))
        step_keys = jax.random.split(rng_step, (config.num_steps, config.num_envs))

        def step(ts, x):
            uniform, keys = x
            epsilon = cls.epsilon(config, ts.global_step)
            action = cls.select_action(config, ts.params, ts.obs_stats, ts.obs, uniform, epsilon)
            next_obs, env_state, reward, terminated, truncated, final_obs = common.step_envs(
                config.env, config.env_params, keys, ts.env_state, action)
            done = terminated | truncated
            stats = ts.reward_stats.update(reward, done, config.gamma) if config.normalize_rewards else ts.reward_stats
            learn_reward = stats.scale(reward) if config.normalize_rewards else reward  # by the std after this step
            transition = Transition(ts.obs, action, learn_reward, terminated, done, final_obs)
            ts = ts.replace(env_state=env_state, obs=next_obs, global_step=ts.global_step + config.num_envs,
                            reward_stats=stats, episode_stats=ts.episode_stats.update(reward, done))
            return ts, transition

        return jax.lax.scan(step, train_state.replace(rng=rng), (uniform, step_keys))

    @classmethod
    def q_lambda_targets(cls, config, reward, next_value, terminated, done):
        """Q(lambda) targets, arrays [num_steps, num_envs] (Peng's Q(lambda), as in the paper), computed backwards:

            G_t = r_t + gamma * (1 - terminated_t) * (V_t + lambda * (1 - done_t) * (G_{t+1} - V_t)),

        with V_t = max_a Q(s'_t, a) and s'_t the observation the action led to. A truncated step bootstraps from V_t
        alone (the next step belongs to a new episode); a terminal one does not bootstrap; the last step of the
        rollout bootstraps from V_t alone (G_{T} is taken to be V_{T-1})."""

        def backward(next_return, x):
            reward, next_value, terminated, done = x
            bootstrap = next_value + config.td_lambda * (1.0 - done) * (next_return - next_value)
            target = reward + config.gamma * (1.0 - terminated) * bootstrap
            return target, target

        xs = (reward, next_value, terminated.astype(jnp.float32), done.astype(jnp.float32))
        _, targets = jax.lax.scan(backward, next_value[-1], xs, reverse=True)
        return targets

    @classmethod
    def loss(cls, config, params, batch: Batch):
        """Squared TD error of Q(s, a) against the Q(lambda) targets (halved, as in the paper's code);
        returns (loss, metrics)."""
        q = cls.network(config).apply(params, batch.obs)
        q_taken = jnp.take_along_axis(q, batch.action[:, None], -1).squeeze(-1)
        loss = 0.5 * jnp.mean((q_taken - batch.target) ** 2)
        return loss, {"td_loss": loss, "q_values": q_taken.mean()}

    @classmethod
    def update(cls, config, train_state, batch: Batch):
        """num_epochs passes over the batch, each in num_minibatches shuffled minibatches, one Adam step each."""
        optimizer = cls.optimizer(config)

        def minibatch_step(carry, minibatch):
            params, opt_state = carry
            grads, metrics = jax.grad(cls.loss, argnums=1, has_aux=True)(config, params, minibatch)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), metrics

        # One shuffle per epoch, all in one sort (up to 4,096 transitions, of one uint32 array: 4x faster than argsort).
        rng, rng_shuffle = jax.random.split(train_state.rng)
        n, bits = config.steps_per_iteration, (config.steps_per_iteration - 1).bit_length()
        keys = jax.random.bits(rng_shuffle, (config.num_epochs, n), jnp.uint32)  # then random bits above each index;
        order = (jnp.sort(keys >> bits << bits | jnp.arange(n, dtype=jnp.uint32), -1) & (2**bits - 1) if bits <= 12
                 else jnp.argsort(keys, -1))  # ties (>= 20 random bits: ~1 pair in 2,048) keep index order, as argsort
        minibatches = jax.tree_util.tree_map(
            lambda x: x[order].reshape((config.num_epochs * config.num_minibatches, -1) + x.shape[1:]), batch)
        (params, opt_state), metrics = jax.lax.scan(minibatch_step, (train_state.params, train_state.opt_state),
                                                    minibatches)
        train_state = train_state.replace(rng=rng, params=params, opt_state=opt_state)
        return train_state, jax.tree_util.tree_map(jnp.mean, metrics)

    @classmethod
    def train_iteration(cls, config, train_state):
        """COLLECT a rollout, compute Q(lambda) TARGETS, UPDATE the network, then fold the rollout into the
        normaliser."""
        train_state, transitions = cls.collect(config, train_state)

        obs = cls.normalize(config, train_state.obs_stats, transitions.obs)
        final_obs = cls.normalize(config, train_state.obs_stats, transitions.final_obs)
        next_q = cls.network(config).apply(train_state.params, final_obs)
        next_value = common.mask_actions(next_q, common.action_mask(config.env, config.env_params,
                                                                     transitions.final_obs)).max(-1)
        targets = cls.q_lambda_targets(config, config.reward_scale * transitions.reward, next_value,
                                       transitions.terminated, transitions.done)

        flatten = lambda x: x.reshape((config.steps_per_iteration,) + x.shape[2:])  # noqa: E731
        batch = jax.tree_util.tree_map(flatten, Batch(obs, transitions.action, targets))
        train_state, metrics = cls.update(config, train_state, batch)

        if config.normalize_observations:
            train_state = train_state.replace(obs_stats=train_state.obs_stats.update(transitions.obs))
        return train_state

    @classmethod
    def eval_callback(cls, config, train_state, rng):
        """Default callback: evaluation episodes (at eval_epsilon) plus the latest training-episode returns."""
        return common.evaluate_policy(cls.make_act(config, train_state, config.eval_epsilon), config, train_state, rng)

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
            length = config.num_evals - evals_done if num_evals is None else num_evals
            return jax.lax.scan(eval_interval, train_state, None, length=length)
        train_state = cls.init(config, rng)
        first = evaluate(train_state)
        length = config.num_evals if num_evals is None else num_evals
        train_state, rest = jax.lax.scan(eval_interval, train_state, None, length=length)
        return train_state, jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)


train, make_act = PQN.train, PQN.make_act

if __name__ == "__main__":  # the command line (flags, seeds, devices, checkpoints, results) lives in cli.py
    import cli
    cli.main("pqn", Config, train, PQN.eval_callback, description=__doc__)
