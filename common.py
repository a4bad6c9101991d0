"""What every rejax algorithm file shares: environments, wrappers, evaluation and config checks.

Sections, in order:
  1. Environments: `make_env` (gymnax, `brax/` and suites.py names), action-space and action-mask helpers, vectorised
     reset/step with correct episode ends.
  2. Pytree wrappers: `EpisodeStats` (training-episode returns), `RunningMeanStd` (observation normalisation),
     `ReturnStats` (reward normalisation).
  3. Evaluation: `evaluate` and `evaluate_policy`, the body of every algorithm's default callback.
  4. Config helpers: `make_config` (every `Config.make`: env, overrides, validation), value checks; `get_agent`.

An algorithm file plus this module is the whole Python API (`Config.make`, `train`, `make_act`). The command line
(flags, sweeps, devices, checkpoints, progress, wandb, results) is `cli.py`, which imports this module, never the
other way round. Nothing here imports an algorithm file, except `get_agent`, lazily.
"""

import dataclasses
import difflib
import importlib
import os
from typing import Any

# XLA:CPU (jaxlib 0.10.2) can deadlock, every thread idle, when a vmapped training scan holds an evaluation loop (PPO,
# Pendulum-v1, 2 seeds, every time): its concurrency-optimised scheduler is the cause. Off, before the backend starts.
# (tests/conftest.py also turns off multi-threaded Eigen: one more hang was seen under heavy load with this flag alone,
# and single-threaded Eigen avoids it, but it costs ~15 % of single-seed speed, so only the test suite pays for it.)
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if _FLAG.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

import jax  # noqa: E402

# A multi-process run (one process per host) joins jax.distributed here, because it must happen before anything starts
# a backend and importing gymnax below does. Process 0's host:port comes from JAX_COORDINATOR_ADDRESS, the process
# count and index from JAX_NUM_PROCESSES and JAX_PROCESS_ID or, left out, from the SLURM / Open MPI launch that jax
# detects (REJAX_DISTRIBUTED=1 asks for that detection alone). CPU processes exchange the results through gloo.
if os.environ.get("JAX_COORDINATOR_ADDRESS") or os.environ.get("REJAX_DISTRIBUTED") == "1":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        os.environ.get("JAX_COORDINATOR_ADDRESS"),
        int(os.environ["JAX_NUM_PROCESSES"]) if os.environ.get("JAX_NUM_PROCESSES") else None,
        int(os.environ["JAX_PROCESS_ID"]) if os.environ.get("JAX_PROCESS_ID") else None,
    )
import jax.numpy as jnp
import numpy as np
from flax import struct

ALGORITHMS = ("ppo", "dqn", "iqn", "pqn", "sac", "ddpg", "td3")
DISCRETE_ALGORITHMS = ("ppo", "dqn", "iqn", "pqn", "sac")
CONTINUOUS_ALGORITHMS = ("ppo", "sac", "ddpg", "td3")
MASK_ALGORITHMS = ("ppo", "dqn", "pqn")  # those that honour an environment's action mask (see `action_mask`)


# ---------------------------------------------------------------------------------------------------------------------
# 1. Environments
# ---------------------------------------------------------------------------------------------------------------------
def make_env(name: str, **env_kwargs):
    """`(env, env_params)` for a gymnax name ("CartPole-v1", ...), "brax/<name>" or "<suite>/<name>" (see suites.py).

    For brax, `env_kwargs` are `backend` (default: "positional", or "generalized" for swimmer, the one backend it
    has), `episode_length` (1000, in physics steps as in brax's own training wrapper) and `action_repeat` (1).
    """
    import gymnax

    if not isinstance(name, str):
        raise ValueError(f"env must be an environment name or a gymnax Environment instance, not {type(name).__name__}.")
    if name.split("/")[0] in SUITES:  # suites.py, and the suite, are imported only when asked for
        import suites
        return suites.make(name, **env_kwargs)
    if name.startswith("brax/"):
        env = BraxEnv(name[len("brax/"):], **env_kwargs)
        return env, env.default_params
    if name not in gymnax.registered_envs:
        names = gymnax.registered_envs + [f"brax/{n}" for n in BRAX_ENVS] + [f"{s}/<name>" for s in SUITES]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else f"valid names: {', '.join(names)}."
        raise ValueError(f"Unknown environment {name!r}; {hint}")
    return gymnax.make(name, **env_kwargs)


SUITES = ("navix", "craftax", "jumanji", "playground", "kinetix")  # names "<suite>/<name>": suites.py
BRAX_ENVS = ("ant", "halfcheetah", "hopper", "humanoid", "humanoidstandup", "inverted_pendulum",
             "inverted_double_pendulum", "pusher", "reacher", "swimmer", "walker2d")
BRAX_BACKENDS = {"swimmer": ("generalized",)}  # brax 0.14.2; every other env also has positional, spring and mjx


@struct.dataclass
class BraxState:
    brax_state: Any
    time: int


@struct.dataclass
class BraxParams:
    max_steps_in_episode: int = 1000


class Adapter:
    """gymnax 1.x's `Environment.step` around another suite's env, whose subclass gives `reset_env`, `step_env` (its
    done is a termination) and a state with `time`: the time limit truncates, finished episodes reset, `info` holds
    "final_observation". Restated, not inherited: importing gymnax starts jax's backend before the CLI sets devices."""

    def reset(self, key, params=None):
        return self.reset_env(key, self.default_params if params is None else params)

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        obs_step, state_step, reward, terminated, info = self.step_env(key_step, state, action, params)
        truncated = state_step.time >= params.max_steps_in_episode
        done = terminated | truncated
        obs_reset, state_reset = self.reset_env(key_reset, params)
        state = jax.tree_util.tree_map(lambda r, s: jax.lax.select(done, r, s), state_reset, state_step)
        obs = jax.tree_util.tree_map(lambda r, s: jax.lax.select(done, r, s), obs_reset, obs_step)
        info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_step}
        return obs, state, reward, terminated, truncated, info


class BraxEnv(Adapter):
    """A brax environment behind the gymnax 1.x interface (a pytree state with `time`, `step` returning
    `terminated` and `truncated` apart). brax's own `done` is a termination (e.g. the hopper fell); the time limit
    is a truncation handled by gymnax's `step` through `state.time`, so it is bootstrapped.

    As in brax's `EpisodeWrapper`, `episode_length` counts physics steps: one agent step is `action_repeat` of them
    (rewards summed), so an episode lasts ceil(episode_length / action_repeat) agent steps and returns compare with
    brax baselines. Unlike brax's wrapper, rewards after a termination inside the repeat are not added."""

    def __init__(self, name: str, backend: str = None, episode_length: int = 1000, action_repeat: int = 1,
                 **kwargs):
        if name not in BRAX_ENVS:
            close = difflib.get_close_matches(name, BRAX_ENVS, n=1)
            hint = f"did you mean 'brax/{close[0]}'? " if close else ""
            raise ValueError(f"Unknown brax environment {name!r}; {hint}available: {', '.join(BRAX_ENVS)}.")
        supported = BRAX_BACKENDS.get(name, ("positional", "generalized", "spring", "mjx"))
        backend = supported[0] if backend is None else backend
        if backend not in supported:
            raise ValueError(f"brax/{name} has no {backend!r} backend; pass one of {', '.join(supported)} "
                             f"(e.g. --env-kwargs '{{\"backend\": \"{supported[0]}\"}}').")
        if not (isinstance(episode_length, int) and isinstance(action_repeat, int) and episode_length >= 1
                and action_repeat >= 1):
            raise ValueError(f"brax episode_length and action_repeat must be positive integers, got "
                             f"{episode_length!r} and {action_repeat!r}.")
        from brax import envs

        self.brax_name, self.episode_length, self.action_repeat = name, episode_length, action_repeat
        self.env = envs.get_environment(name, backend=backend, **kwargs)

    @property
    def default_params(self):
        return BraxParams(max_steps_in_episode=-(-self.episode_length // self.action_repeat))

    def reset_env(self, key, params):
        state = self.env.reset(key)
        return state.obs, BraxState(state, 0)

    def step_env(self, key, state, action, params):
        brax_state, reward, done = state.brax_state, 0.0, jnp.array(False)
        for _ in range(self.action_repeat):  # static and small: no loop in the traced program when it is 1
            next_state = self.env.step(brax_state, action)
            reward = reward + jnp.where(done, 0.0, next_state.reward)
            done = done | next_state.done.astype(bool)
            brax_state = next_state
        return brax_state.obs, BraxState(brax_state, state.time + 1), reward, done, {}

    @property
    def name(self):
        return f"brax/{self.brax_name}"

    @property
    def num_actions(self):
        return self.env.action_size

    def action_space(self, params=None):
        from gymnax.environments import spaces

        return spaces.Box(-1.0, 1.0, (self.env.action_size,))

    def observation_space(self, params=None):
        from gymnax.environments import spaces

        return spaces.Box(-jnp.inf, jnp.inf, (self.env.observation_size,))


def resolve_env(env, env_params=None, env_kwargs=None):
    """Accept an environment name or a gymnax `Environment` instance; return `(env, env_params)`."""
    if isinstance(env, str):
        env, default_params = make_env(env, **(env_kwargs or {}))
    else:
        if not (hasattr(env, "step") and hasattr(env, "reset") and hasattr(env, "action_space")):
            raise ValueError(f"env must be an environment name or a gymnax Environment instance, not {type(env).__name__}.")
        default_params = env.default_params
    return env, (default_params if env_params is None else env_params)


def env_name(env) -> str:
    return getattr(env, "name", type(env).__name__)


def is_discrete(env, env_params) -> bool:
    """True when the environment's actions are integers from a `Discrete` space."""
    return hasattr(env.action_space(env_params), "n")


def check_action_space(algo: str, env, env_params):
    """Raise a one-sentence error when `algo` cannot act in this environment's action space (or its action mask)."""
    discrete = is_discrete(env, env_params)
    if getattr(env, "has_action_mask", False) and (algo not in MASK_ALGORITHMS or not discrete):
        raise ValueError(
            f"{env_name(env)} declares an action mask, which only {', '.join(a.upper() for a in MASK_ALGORITHMS)} "
            f"honour, with discrete actions; use one of them (or an environment without has_action_mask)."
        )
    if discrete and algo not in DISCRETE_ALGORITHMS:
        raise ValueError(
            f"{algo.upper()} needs continuous actions but {env_name(env)} has discrete ones; "
            f"use one of {', '.join(a.upper() for a in DISCRETE_ALGORITHMS)} for discrete actions."
        )
    if not discrete and algo not in CONTINUOUS_ALGORITHMS:
        raise ValueError(
            f"{algo.upper()} needs discrete actions but {env_name(env)} has continuous ones; "
            f"use one of {', '.join(a.upper() for a in CONTINUOUS_ALGORITHMS)} for continuous actions."
        )
    space = env.action_space(env_params)
    if not discrete and algo != "ppo" and not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        raise ValueError(f"{algo.upper()} maps its actions from [-1, 1] onto the action space's bounds, which must be "
                         f"finite; give the environment's action space finite low and high values.")


def action_mask(env, env_params, obs):
    """The allowed actions, bool [..., n], of an env that declares `has_action_mask = True`: its observations are
    flat vectors whose last n entries (n discrete actions) are 1.0 (allowed) or 0.0 (forbidden). A row that allows
    nothing (e.g. a terminal state's) allows everything instead. None for any other env, decided in Python."""
    if not getattr(env, "has_action_mask", False):
        return None
    mask = obs[..., -env.action_space(env_params).n:] > 0.5
    return mask | ~mask.any(-1, keepdims=True)


def mask_actions(values, mask):
    """Logits or Q-values [..., n] with forbidden actions set to the lowest finite float, so max, argmax and softmax
    pass them over and sums stay finite (exp gives 0, times it 0, not NaN); `mask` None returns `values`."""
    return values if mask is None else jnp.where(mask, values, jnp.finfo(values.dtype).min)


def random_action(uniform, mask, n: int):
    """A uniformly random allowed action from one uniform number in [0, 1) per row: the k-th allowed action,
    k = floor(uniform * allowed count); with `mask` None, floor(uniform * n)."""
    if mask is None:
        return jnp.minimum(uniform * n, n - 1).astype(jnp.int32)
    count = mask.sum(-1)
    k = jnp.minimum(jnp.floor(uniform * count), count - 1).astype(jnp.int32)
    return jnp.argmax(jnp.cumsum(mask, -1) > k[..., None], -1).astype(jnp.int32)


def reset_envs(env, env_params, rng, num_envs: int):
    """Reset `num_envs` copies of the environment; returns `(obs, env_state)` with a leading `num_envs` axis."""
    return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(rng, num_envs), env_params)


def step_envs(env, env_params, rng, env_state, action):
    """Step every environment copy with `rng` (one key, or one per env); finished episodes reset automatically.

    Returns `(obs, env_state, reward, terminated, truncated, final_obs)`. `obs` is the next observation, which is the
    first observation of a new episode where `terminated | truncated`; `final_obs` is always the observation the action
    led to. Bootstrap from `final_obs` unless `terminated`: a time-limit truncation is not a terminal state.
    """
    keys = rng if rng.ndim == 2 else jax.random.split(rng, action.shape[0])  # one key, or one key per env
    # The class's own step_batch (suites.py), never one that a wrapper's __getattr__ forwards from the env inside it.
    step = env.step_batch if hasattr(type(env), "step_batch") else jax.vmap(env.step, in_axes=(0, 0, 0, None))
    obs, env_state, reward, terminated, truncated, info = step(keys, env_state, action, env_params)
    return obs, env_state, reward.astype(jnp.float32), terminated, truncated, info["final_observation"]


# ---------------------------------------------------------------------------------------------------------------------
# 2. Pytree wrappers
# ---------------------------------------------------------------------------------------------------------------------
@struct.dataclass
class EpisodeStats:
    """Returns and lengths of training episodes, one entry per parallel environment."""

    episode_return: jax.Array  # [num_envs] return of the episode in progress
    episode_length: jax.Array  # [num_envs]
    last_return: jax.Array  # [num_envs] return of the last finished episode (NaN before the first one ends)
    last_length: jax.Array  # [num_envs]

    @classmethod
    def create(cls, num_envs: int) -> "EpisodeStats":
        zeros, nans = jnp.zeros(num_envs), jnp.full(num_envs, jnp.nan)
        return cls(zeros, zeros, nans, nans)

    def update(self, reward, done) -> "EpisodeStats":
        ret, length = self.episode_return + reward, self.episode_length + 1
        return EpisodeStats(
            episode_return=jnp.where(done, 0.0, ret),
            episode_length=jnp.where(done, 0.0, length),
            last_return=jnp.where(done, ret, self.last_return),
            last_length=jnp.where(done, length, self.last_length),
        )


@struct.dataclass
class RunningMeanStd:
    """Running mean and variance of observations, shared by all parallel environments (Chan et al. 1979)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape) -> "RunningMeanStd":
        return cls(jnp.zeros(shape), jnp.ones(shape), jnp.array(1e-4))

    def update(self, batch) -> "RunningMeanStd":
        """Fold in a batch whose trailing axes have the observation's shape."""
        batch = batch.reshape((-1,) + self.mean.shape)
        batch_mean, batch_var, batch_count = batch.mean(0), batch.var(0), batch.shape[0]
        delta, total = batch_mean - self.mean, self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        return RunningMeanStd(mean, m2 / total, total)

    def normalize(self, obs, clip: float = 10.0):
        return jnp.clip((obs - self.mean) / jnp.sqrt(self.var + 1e-8), -clip, clip)


@struct.dataclass
class ReturnStats:
    """Reward normalisation as gym 0.26's `NormalizeReward`: per env a discounted return ret <- gamma * ret + reward,
    reset to 0 once an episode ends (terminated or truncated); a running variance of ret over all envs and steps;
    rewards divided by sqrt(var + 1e-8), the mean not subtracted. Evaluation never sees it: reported returns are raw."""

    ret: jax.Array  # [num_envs] discounted return of the episode in progress
    rms: RunningMeanStd  # of ret, a scalar

    @classmethod
    def create(cls, num_envs: int) -> "ReturnStats":
        return cls(jnp.zeros(num_envs), RunningMeanStd.create(()))

    def update(self, reward, done, gamma) -> "ReturnStats":
        """Fold in one step of every env (rewards raw, [num_envs]); the return resets after it is counted."""
        ret = self.ret * gamma + reward
        return ReturnStats(jnp.where(done, 0.0, ret), self.rms.update(ret))

    def scale(self, reward):
        return reward / jnp.sqrt(self.rms.var + 1e-8)


# ---------------------------------------------------------------------------------------------------------------------
# 3. Evaluation
# ---------------------------------------------------------------------------------------------------------------------
def evaluate(act, rng, env, env_params, num_episodes: int, max_steps):
    """Play `num_episodes` episodes in parallel with `act(obs, rng) -> action`; return `(lengths, returns)`.

    The loop is a `lax.while_loop` that stops as soon as every episode has ended (or after `max_steps`), so short
    episodes early in training cost little.
    """
    rng_reset, rng = jax.random.split(rng)
    obs, env_state = reset_envs(env, env_params, rng_reset, num_episodes)
    zeros = jnp.zeros(num_episodes)
    carry = (rng, obs, env_state, jnp.zeros(num_episodes, bool), zeros, zeros, 0)

    def cond(carry):
        done, t = carry[3], carry[6]
        return jnp.logical_and(t < max_steps, ~jnp.all(done))

    def body(carry):
        rng, obs, env_state, done, returns, lengths, t = carry
        rng, rng_act, rng_step = jax.random.split(rng, 3)
        action = jax.vmap(act)(obs, jax.random.split(rng_act, num_episodes))
        obs, env_state, reward, terminated, truncated, _ = step_envs(env, env_params, rng_step, env_state, action)
        returns = returns + jnp.where(done, 0.0, reward)
        lengths = lengths + jnp.where(done, 0, 1)
        done = done | terminated | truncated
        return rng, obs, env_state, done, returns, lengths, t + 1

    _, _, _, _, returns, lengths, _ = jax.lax.while_loop(cond, body, carry)
    return lengths, returns


def evaluate_policy(act, config, train_state, rng):
    """The default evaluation callback's output at one evaluation point.

    `return`/`length`: `config.num_eval_episodes` deterministic episodes of the current policy.
    `train_return`: mean over parallel envs of the last finished training episode's return (free: it is tracked
    by `EpisodeStats` during training anyway).
    """
    lengths, returns = evaluate(
        act, rng, config.env, config.env_params, config.num_eval_episodes, config.env_params.max_steps_in_episode
    )
    train_return = jnp.nanmean(train_state.episode_stats.last_return)
    return {"return": returns, "length": lengths, "train_return": train_return}


def select_seed(tree, index: int):
    """Slice seed `index` out of a pytree from a vmapped run (e.g. a train state), for `make_act` or saving."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


# ---------------------------------------------------------------------------------------------------------------------
# 4. Config helpers
# ---------------------------------------------------------------------------------------------------------------------
def make_config(config_cls, algo: str, tuned: dict, env, env_params, overrides: dict):
    """The body of every `Config.make`: make the env and check its action space, then build the config from class
    defaults < `tuned[env name]` < `overrides` (an unknown name is refused with a hint) and validate it."""
    env, env_params = resolve_env(env, env_params)
    check_action_space(algo, env, env_params)
    names = [f.name for f in dataclasses.fields(config_cls)]
    for key in overrides:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid names: {', '.join(names)}."
            raise ValueError(f"{config_cls.__module__}.Config has no setting {key!r}{hint}")
    config = config_cls(env=env, env_params=env_params, **{**tuned.get(env_name(env), {}), **overrides})
    config.validate()
    return config


def check_positive(**values):
    for name, value in values.items():
        if not (isinstance(value, (int, float, np.number)) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}; pass a value above 0.")


def check_non_negative(**values):
    for name, value in values.items():
        if not (isinstance(value, (int, float, np.number)) and value >= 0):
            raise ValueError(f"{name} must be zero or positive, got {value!r}.")


def check_unit_interval(**values):
    for name, value in values.items():
        if not (isinstance(value, (int, float, np.number)) and 0 <= value <= 1):
            raise ValueError(f"{name} must lie in [0, 1], got {value!r}.")


def check_callback(callback):
    if callback is not None and not callable(callback):
        raise ValueError(
            f"eval_callback must be a function callback(config, train_state, rng) -> pytree, not {type(callback).__name__}."
        )


def get_agent(name: str):
    """Return `(train_fn, Config)` for an algorithm name: "ppo", "dqn", "iqn", "pqn", "sac", "ddpg" or "td3"."""
    key = name.lower()
    if key not in ALGORITHMS:
        raise ValueError(f"Unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}.")
    try:
        module = importlib.import_module(f"rejax_{key}")
    except ModuleNotFoundError as error:
        raise ValueError(f"rejax_{key}.py is not importable ({error}); put it beside common.py.") from None
    return module.train, module.Config
