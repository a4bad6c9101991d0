"""What every rejax algorithm file shares: environments, wrappers, evaluation and the run plumbing.

Sections, in order:
  1. Environments: `make_env`, action-space helpers, vectorised reset/step with correct episode ends.
  2. Pytree wrappers: `EpisodeStats` (training-episode returns), `RunningMeanStd` (observation normalisation).
  3. Evaluation: `evaluate` and `evaluate_policy`, the body of every algorithm's default callback.
  4. Config helpers: override checking, value checks, JSON export; `get_agent`.
  5. The run plumbing behind every CLI: `cli(...)` parses flags, trains all seeds in one jitted, vmapped call,
     prints progress from inside the run (io_callback at evaluation points only), logs to wandb, saves results.

Nothing here imports an algorithm file, except `get_agent`, lazily.
"""

import ast
import dataclasses
import difflib
import importlib
import inspect
import json
import math
import os
import sys
import textwrap
import time
from typing import Annotated, Any, Callable, Optional

# XLA:CPU (jaxlib 0.10.2) can deadlock, every thread idle, when a vmapped training scan holds an evaluation loop (seen
# with PPO on Pendulum-v1, 2 seeds, every time); its concurrency-optimised scheduler is the cause, so turn it off. XLA
# reads the flags when the backend starts, so this works as long as no jax computation ran before this import.
# (tests/conftest.py also turns off multi-threaded Eigen: one more hang was seen under heavy load with this flag alone,
# and single-threaded Eigen avoids it, but it costs ~15 % of single-seed speed, so only the test suite pays for it.)
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if _FLAG.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

import jax  # noqa: E402
import jax.experimental  # noqa: E402
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment as gymnax_environment
from gymnax.environments import spaces as gymnax_spaces

ALGORITHMS = ("ppo", "dqn", "sac", "ddpg", "td3")
DISCRETE_ALGORITHMS = ("ppo", "dqn", "sac")
CONTINUOUS_ALGORITHMS = ("ppo", "sac", "ddpg", "td3")


# ---------------------------------------------------------------------------------------------------------------------
# 1. Environments
# ---------------------------------------------------------------------------------------------------------------------
def make_env(name: str, **env_kwargs):
    """Return `(env, env_params)` for a gymnax name ("CartPole-v1", "Breakout-MinAtar", ...) or "brax/<name>".

    For brax, `env_kwargs` are `backend` (default "positional"), `episode_length` (1000) and `action_repeat` (1).
    """
    import gymnax

    if not isinstance(name, str):
        raise ValueError(f"env must be an environment name or a gymnax Environment instance, not {type(name).__name__}.")
    if name.startswith("brax/"):
        env = BraxEnv(name[len("brax/"):], **env_kwargs)
        return env, env.default_params
    if name not in gymnax.registered_envs:
        names = gymnax.registered_envs + [f"brax/{n}" for n in BRAX_ENVS]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else f"valid names: {', '.join(names)}."
        raise ValueError(f"Unknown environment {name!r}; {hint}")
    return gymnax.make(name, **env_kwargs)


BRAX_ENVS = ("ant", "halfcheetah", "hopper", "humanoid", "humanoidstandup", "inverted_pendulum",
             "inverted_double_pendulum", "pusher", "reacher", "swimmer", "walker2d")


@struct.dataclass
class BraxState:
    brax_state: Any
    time: int


@struct.dataclass
class BraxParams:
    max_steps_in_episode: int = 1000


class BraxEnv(gymnax_environment.Environment):
    """A brax environment behind the gymnax 1.x interface (a pytree state with `time`, `step` returning
    `terminated` and `truncated` apart). brax's own `done` is a termination (e.g. the hopper fell); the time limit,
    `episode_length`, is a truncation handled by gymnax's `step` through `state.time`, so it is bootstrapped."""

    def __init__(self, name: str, backend: str = "positional", episode_length: int = 1000, action_repeat: int = 1,
                 **kwargs):
        super().__init__()
        if name not in BRAX_ENVS:
            close = difflib.get_close_matches(name, BRAX_ENVS, n=1)
            hint = f"did you mean 'brax/{close[0]}'? " if close else ""
            raise ValueError(f"Unknown brax environment {name!r}; {hint}available: {', '.join(BRAX_ENVS)}.")
        from brax import envs

        self.brax_name, self.episode_length, self.action_repeat = name, episode_length, action_repeat
        self.env = envs.get_environment(name, backend=backend, **kwargs)

    @property
    def default_params(self):
        return BraxParams(max_steps_in_episode=self.episode_length)

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
        return gymnax_spaces.Box(-1.0, 1.0, (self.env.action_size,))

    def observation_space(self, params=None):
        return gymnax_spaces.Box(-jnp.inf, jnp.inf, (self.env.observation_size,))


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
    """Raise a one-sentence error when `algo` cannot act in this environment's action space."""
    discrete = is_discrete(env, env_params)
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
    obs, env_state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
        keys, env_state, action, env_params
    )
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
def apply_overrides(config_cls, env, tuned: dict, overrides: dict, defaults: dict) -> dict:
    """Merge class defaults < `tuned` (per-environment) < `overrides`; reject unknown names with a hint."""
    names = [f.name for f in dataclasses.fields(config_cls)]
    for key in overrides:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid names: {', '.join(names)}."
            raise ValueError(f"{config_cls.__module__}.Config has no setting {key!r}{hint}")
    return {**defaults, **tuned, **overrides}


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


def config_to_dict(config) -> dict:
    """The config as plain JSON-able values: the env by name, env params as a dict, the callback by name."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "env":
            value = env_name(value)
        elif f.name == "env_params":
            value = {k: np.asarray(v).tolist() for k, v in dataclasses.asdict(value).items()}
        elif callable(value):
            value = getattr(value, "__qualname__", repr(value))
        elif isinstance(value, (jax.Array, np.ndarray, np.number)):
            value = np.asarray(value).tolist()
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def get_agent(name: str):
    """Return `(train_fn, Config)` for an algorithm name: "ppo", "dqn", "sac", "ddpg" or "td3"."""
    key = name.lower()
    if key not in ALGORITHMS:
        raise ValueError(f"Unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}.")
    try:
        module = importlib.import_module(f"rejax_{key}")
    except ModuleNotFoundError as error:
        raise ValueError(f"rejax_{key}.py is not importable ({error}); put it beside common.py.") from None
    return module.train, module.Config


# ---------------------------------------------------------------------------------------------------------------------
# 5. The run plumbing behind every CLI
# ---------------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class RunArgs:
    env: str = "CartPole-v1"
    """Environment name (any gymnax id, e.g. CartPole-v1, Pendulum-v1, Breakout-MinAtar)."""
    num_seeds: int = 1
    """Number of agents trained in one vmapped call."""
    seed: int = 0
    """Seed of the first agent; agent i uses seed + i, so any one of them can be rerun alone."""
    track: bool = False
    """Log every seed's learning curve to Weights & Biases (offline when there is no login)."""
    wandb_project: str = "rejax"
    """wandb project name, with --track."""
    out: Optional[str] = None
    """Folder for the run's files (default: runs/<algo>-<env>-<timestamp>/)."""
    env_kwargs: str = "{}"
    """Environment options as JSON, e.g. '{"backend": "generalized", "episode_length": 500}' for brax/<name>."""


NOT_FLAGS = ("env", "env_params", "eval_callback")  # Config fields set from --env or only from Python


def field_docs(cls) -> dict:
    """Attribute docstrings of a dataclass, read from its source (the string literal under each field)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body, docs = tree.body[0].body, {}
    for node, following in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            docs[node.target.id] = " ".join(str(following.value.value).split())
    return docs


def make_args_class(config_cls):
    """A flat dataclass for tyro: the run flags plus every CLI-settable Config field, defaulting to 'not given'."""
    import tyro

    docs, cli_fields = field_docs(config_cls), []
    for f in dataclasses.fields(config_cls):
        if f.name in NOT_FLAGS:
            continue
        annotation = eval(f.type, sys.modules[config_cls.__module__].__dict__) if isinstance(f.type, str) else f.type
        default = f.default if f.default is not dataclasses.MISSING else None
        hint = f"(default: {default!r}, or the env's tuned value)"
        marker = tyro.conf.arg(help=docs.get(f.name, ""), help_behavior_hint=hint)
        cli_fields.append((f.name, Annotated[Optional[annotation], marker], dataclasses.field(default=None)))
    return dataclasses.make_dataclass("Args", cli_fields, bases=(RunArgs,))



class Progress:
    """Host side of the in-run logging: collects one record per seed per evaluation point, prints a line when all
    seeds have reported that point, and mirrors it to wandb."""

    def __init__(self, num_seeds: int, total_steps: int, wandb_run=None):
        self.num_seeds, self.total_steps, self.wandb_run = num_seeds, total_steps, wandb_run
        self.pending: dict = {}
        self.start = None

    def record(self, seed_index, step, eval_return, train_return):
        step, seed_index = int(step), int(seed_index)
        if self.start is None:
            self.start = (time.perf_counter(), step)
        records = self.pending.setdefault(step, {})
        records[seed_index] = (float(eval_return), float(train_return))
        if len(records) == self.num_seeds:
            self.report(step, self.pending.pop(step))
        return np.int32(0)

    def report(self, step, records):
        returns = np.array([records[i][0] for i in sorted(records)])
        train = np.array([records[i][1] for i in sorted(records)])
        train_mean = np.nanmean(train) if np.isfinite(train).any() else float("nan")
        elapsed, done = time.perf_counter() - self.start[0], step - self.start[1]
        rate = done * self.num_seeds / elapsed if done > 0 else float("nan")
        eta = f"{(self.total_steps - step) * elapsed / done:6.1f}s" if done > 0 else "     -"
        print(
            f"  step {step:>10,}  {rate:>9,.0f} steps/s  eval return {returns.mean():9.2f} "
            f"(min {returns.min():.2f}, max {returns.max():.2f})  train return {train_mean:9.2f}  ETA {eta}",
            flush=True,
        )
        if self.wandb_run is not None:
            data = {f"seed_{i}/eval/episodic_return": r for i, r in enumerate(returns)}
            data.update({f"seed_{i}/charts/episodic_return": r for i, r in enumerate(train)})
            data.update({"eval/episodic_return": returns.mean(), "charts/episodic_return": train_mean, "charts/SPS": rate})
            self.wandb_run.log(data, step=step)


def with_progress(config, seed_index, progress: Progress, algo_callback):
    """Wrap the config's callback so that every evaluation point also reports to `progress` on the host."""
    callback = config.eval_callback if config.eval_callback is not None else algo_callback

    def callback_with_progress(config, train_state, rng):
        out = callback(config, train_state, rng)
        eval_return = jnp.mean(out["return"]) if isinstance(out, dict) and "return" in out else jnp.nan
        train_return = out.get("train_return", jnp.nan) if isinstance(out, dict) else jnp.nan
        jax.experimental.io_callback(
            progress.record, jax.ShapeDtypeStruct((), jnp.int32), seed_index, train_state.global_step,
            eval_return, train_return,
        )
        return {**out, "env_steps": train_state.global_step} if isinstance(out, dict) else out

    return config.replace(eval_callback=callback_with_progress)


def prepare_out_dir(out: Optional[str], algo: str, env: str) -> str:
    """Create the results folder and prove it is writable before any training starts."""
    if out is None:
        out = os.path.join("runs", f"{algo}-{env.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as error:
        raise ValueError(f"Cannot write results to {out!r} ({error.strerror}); pass --out with a writable folder.") from None
    return out


def wandb_logged_in() -> bool:
    """True when wandb has credentials (an API key in the environment or in ~/.netrc); never prompts."""
    import netrc

    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def start_wandb(project: str, name: str, config: dict):
    """Start a wandb run; offline (and say so in one line) when there is no login, never prompting."""
    import wandb

    mode = os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")
    if mode == "offline":
        print("wandb: no login found, logging offline (upload later with `wandb sync`).")
    return wandb.init(project=project, name=name, config=config, mode=mode, settings=wandb.Settings(silent=True))


def save_results(out: str, algo: str, config, steps, evaluation, summary: dict):
    """Write config.json, curves.csv/json (one curve per seed), summary.json and learning_curve.png."""
    returns = np.asarray(evaluation["return"]).mean(-1)  # [num_seeds, num_evals]
    train = np.asarray(evaluation["train_return"])  # [num_seeds, num_evals]
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"algorithm": algo, **config_to_dict(config)}, f, indent=2)
    with open(os.path.join(out, "curves.csv"), "w") as f:
        f.write("seed,env_steps,eval_return,train_return\n")
        for seed in range(returns.shape[0]):
            for step, r, t in zip(steps, returns[seed], train[seed]):
                f.write(f"{seed},{step},{r:.6g},{t:.6g}\n")
    with open(os.path.join(out, "curves.json"), "w") as f:
        json.dump({"env_steps": list(map(int, steps)), "eval_return": returns.tolist(),
                   "train_return": np.where(np.isfinite(train), train, None).tolist()}, f)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, returns.mean(0), label=f"mean of {returns.shape[0]} seeds")
    ax.fill_between(steps, returns.min(0), returns.max(0), alpha=0.3, label="min–max over seeds")
    ax.set(xlabel="env steps (per seed)", ylabel="evaluation return", title=f"{algo.upper()} on {summary['env']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "learning_curve.png"), dpi=120)
    plt.close(fig)


def cli(algo: str, Config, train_fn, default_callback, description: str = ""):
    """Parse the command line, train all seeds in one jitted, vmapped call, print and save the results."""
    import tyro

    args = tyro.cli(make_args_class(Config), description=description)
    try:
        run(algo, Config, train_fn, default_callback, args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def run(algo: str, Config, train_fn, default_callback, args):
    if args.num_seeds < 1:
        raise ValueError(f"--num-seeds must be at least 1, got {args.num_seeds}.")
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
                 if f.name not in NOT_FLAGS and getattr(args, f.name, None) is not None}
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as error:
        raise ValueError(f"--env-kwargs must be a JSON object such as '{{\"backend\": \"positional\"}}' ({error}).") from None
    env, env_params = make_env(args.env, **env_kwargs)
    config = Config.make(env=env, env_params=env_params, **overrides)
    out = prepare_out_dir(args.out, algo, args.env)
    wandb_run = start_wandb(args.wandb_project, os.path.basename(out), config_to_dict(config)) if args.track else None

    progress = Progress(args.num_seeds, config.total_env_steps, wandb_run)

    def train_one(rng, seed_index):
        return train_fn(with_progress(config, seed_index, progress, default_callback), rng)

    keys = jax.vmap(jax.random.PRNGKey)(args.seed + jnp.arange(args.num_seeds))
    seed_index = jnp.arange(args.num_seeds)
    print(f"{algo.upper()} on {args.env}: {args.num_seeds} seed(s) x {config.total_env_steps:,} env steps, "
          f"results in {out}/", flush=True)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(train_one)).lower(keys, seed_index).compile()
    compile_time = time.perf_counter() - start
    print(f"compiled in {compile_time:.1f}s; training...", flush=True)
    start = time.perf_counter()
    train_state, evaluation = jax.block_until_ready(compiled(keys, seed_index))
    train_time = time.perf_counter() - start

    steps = np.asarray(evaluation.pop("env_steps")[0]) if "env_steps" in evaluation else None
    final = np.asarray(evaluation["return"])[:, -1].mean(-1)  # [num_seeds] mean over evaluation episodes
    total_steps = config.total_env_steps * args.num_seeds
    summary = {
        "algorithm": algo, "env": args.env, "num_seeds": args.num_seeds, "seed": args.seed,
        "env_steps_per_seed": config.total_env_steps, "final_return_mean": float(final.mean()),
        "final_return_std": float(final.std()), "final_return_min": float(final.min()),
        "final_return_max": float(final.max()), "final_return_per_seed": final.tolist(),
        "compile_seconds": compile_time, "train_seconds": train_time, "steps_per_second": total_steps / train_time,
    }
    save_results(out, algo, config, steps, evaluation, summary)
    print(f"\nfinal return {final.mean():.2f} ± {final.std():.2f} over {args.num_seeds} seed(s) "
          f"(min {final.min():.2f}, max {final.max():.2f})")
    print(f"time: compile {compile_time:.1f}s + train {train_time:.1f}s; {total_steps / train_time:,.0f} env steps/s "
          f"over all seeds")
    print(f"saved config.json, curves.csv, curves.json, summary.json, learning_curve.png in {out}/")
    if wandb_run is not None:
        wandb_run.finish()
    return train_state, evaluation, summary
