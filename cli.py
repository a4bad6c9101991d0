"""The command-line run behind every `rejax_<algo>.py`: `python rejax_ppo.py --env CartPole-v1 --num-seeds 16`.

A run's story, in the order the functions below tell it:
  1. `main` parses the flags (every Config field, plus the run flags of `RunArgs`), gives jax one CPU device per
     core and the compile cache (`use_cpu_cores`, `use_compile_cache`), and `run` takes it from there;
  2. the config, and the grid of seeds x sweep settings (`make_config`, `sweep_grid`);
  3. placement: the run axis split over every device and host (`shard_runs`, `over_devices`);
  4. training: two jitted programs vmapped over every run, one that starts the runs and one that trains an evaluation
     interval, called once per interval (`compile_programs`, at LLVM's level 2 on a CPU: `compiler_options`;
     `train_in_segments`; a rerun loads them without tracing: `kept_programs_path`), with a checkpoint every N
     intervals on request; after each, a small program reports every run's point and the divergence check through
     `io_callback` to `Progress`, which prints the line;
  5. gathering the runs back to the host (`unshard_runs`), their statistics (IQM and mean with bootstrap intervals,
     rliable-style; diverged runs left out), the summary and the printed report;
  6. the results folder (`save_results`), wandb, and with --video an episode of the best run (`render_video`).
`restore` loads a checkpoint for use in Python. The algorithm files reach this module only from their `__main__`;
`common.py` and the algorithm files never import it.
"""

import ast
import dataclasses
import difflib
import inspect
import concurrent.futures
import functools
import hashlib
import itertools
import json
import os
import pickle
import sys
import time
from typing import Annotated, Callable, NamedTuple, Optional

import jax
import jax.experimental
import jax.numpy as jnp
import numpy as np

import common


# ---------------------------------------------------------------------------------------------------------------------
# 1. The run, stage by stage
# ---------------------------------------------------------------------------------------------------------------------
def main(algo: str, Config, train_fn, default_callback, description: str = ""):
    """Parse the command line, train every seed (x sweep setting) in one jitted, vmapped call, print and save."""
    import tyro

    args = tyro.cli(make_args_class(Config), description=description)
    try:
        use_cpu_cores(args)
        use_compile_cache(args.compile_cache)
        _, _, summary = run(algo, Config, train_fn, default_callback, args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if summary["num_runs_left_out"] == len(summary["final_return_per_seed"]):
        print("error: every run diverged or ended with a non-finite return; lower the learning rate or check the "
              "environment's rewards and observations.", file=sys.stderr)
        sys.exit(1)


def run(algo: str, Config, train_fn, default_callback, args):
    """Train every seed x sweep setting in one jitted, vmapped call, sharded over all devices; print, log, save.

    Returns `(train_state, evaluation, summary)` with a leading run axis, setting-major: run r is sweep setting
    r // num_seeds (`summary["settings"]` lists them, best first) trained with seed `args.seed + r % num_seeds`.
    """
    config, configs, sweep, settings = make_config(Config, args)
    out = prepare_out_dir(args.out or (os.path.dirname(os.path.abspath(args.resume)) if args.resume else None),
                          algo, args.env)
    num_runs = args.num_seeds * len(settings)
    wandb_config = {**config_to_dict(config), "num_seeds": args.num_seeds, "seed": args.seed, "sweep": sweep}
    wandb_run = start_wandb(args.wandb_project, os.path.basename(out), wandb_config) if args.track else None
    progress = Progress(num_runs, config.total_env_steps, wandb_run, settings)
    per_run = run_inputs(args.seed, args.num_seeds, configs, sweep, len(settings))
    placed, padded = shard_runs(per_run, num_runs)

    def train_one(inputs, config, **segment):  # one run; segment: num_evals= and resume= (see Programs)
        swept = {name: inputs[name] for name in sweep}
        return train_fn(with_run_facts(config.replace(**swept), default_callback), inputs["key"], **segment)

    announce(algo, args, config, len(settings), num_runs, padded, out)
    kept = kept_programs_path(jax.config.jax_compilation_cache_dir, algo, args, placed, config)
    programs, compile_time, loaded = compile_programs(train_one, placed, config, progress, kept)
    print(f"compiled in {compile_time:.1f}s{' (training programs loaded, kept from an earlier run)' if loaded else ''};"
          " training...", flush=True)
    start = time.perf_counter()
    if args.checkpoint_every is not None or args.resume is not None:
        train_state, evaluation = train_with_checkpoints(args, algo, config, sweep, out, programs, train_one, placed,
                                                         per_run, num_runs)
    else:
        train_state, evaluation = train_in_segments(programs, placed, config)
    train_time = time.perf_counter() - start
    train_state, evaluation = unshard_runs((train_state, evaluation), num_runs)
    steps = np.asarray(evaluation.pop("env_steps")[0]) if "env_steps" in evaluation else None
    summary = summarize(algo, args, config, sweep, settings, evaluation, steps, compile_time, train_time)
    if jax.process_index() == 0:
        save_results(out, algo, config, steps, evaluation, summary, settings)
    report(summary, settings, sweep, out)
    if args.video and jax.process_index() == 0:
        video = render_video(config, train_state, out, video_run(summary, args.video_seed, settings))
        if video and wandb_run is not None and video.endswith(".gif"):
            import wandb

            wandb_run.log({"video": wandb.Video(video, format="gif")})
    if wandb_run is not None:
        finish_wandb(wandb_run, summary, sweep)
    return train_state, evaluation, summary


# ---------------------------------------------------------------------------------------------------------------------
# 2. Flags
# ---------------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class RunArgs:
    env: str = "CartPole-v1"
    """Environment name (any gymnax id, e.g. CartPole-v1, Pendulum-v1, Breakout-MinAtar, or brax/<name>)."""
    num_seeds: int = 1
    """Number of agents trained in one vmapped call."""
    seed: int = 0
    """Seed of the first agent; agent i trains from PRNGKey(seed + i). A lone run with --seed seed+i has the same random streams, initial parameters (PPO: to about 1e-6) and first curve points, but it is another XLA program (a batch of another size), so it parts after a few thousand env steps. To reproduce agent i bit for bit, keep --num-seeds and --sweep and pass --seed seed+i: it is then agent 0."""
    track: bool = False
    """Log every seed's learning curve to Weights & Biases (offline when there is no login)."""
    wandb_project: str = "rejax"
    """wandb project name, with --track."""
    out: Optional[str] = None
    """Folder for the run's files (default: runs/<algo>-<env>-<timestamp>/)."""
    env_kwargs: str = "{}"
    """Environment options as JSON, e.g. '{"backend": "generalized", "episode_length": 500}' for brax/<name>."""
    checkpoint_every: Optional[int] = None
    """Save the whole train state of every seed to OUT/checkpoint.msgpack every N env steps (rounded to evaluation points) and at the end; the run then trains in segments of that length."""
    resume: Optional[str] = None
    """Continue the run that wrote this checkpoint.msgpack (give the same flags as that run); results go to its folder unless --out says otherwise."""
    video: bool = False
    """After training, render one deterministic evaluation episode of the best run (or of --video-seed) into the results folder: a GIF for gymnax envs with a renderer (CartPole, Acrobot, Pendulum, MountainCar, MinAtar, ...), brax's HTML viewer for brax/<name>."""
    video_seed: Optional[int] = None
    """With --video: the seed index (0 = --seed) to render, in the best sweep setting; default: the run with the best final return."""
    cpu_devices: Optional[int] = None
    """On a CPU: how many jax devices split the runs, each training its share vmapped on about one core, side by side. Default: one per core this process may use, at most one per run; 1 puts every run on one device. Each device's share is a batch of its own size, which can round differently, so give the same count to repeat a run bit for bit on a machine with another number of cores. Ignored when XLA_FLAGS sets --xla_force_host_platform_device_count."""
    compile_cache: str = os.environ.get("REJAX_COMPILE_CACHE", os.path.join("~", ".cache", "rejax", "jax"))
    """Folder where the compiled training programs are kept (in rejax-programs/, named by everything that builds them; a multi-process run uses jax's compilation cache there), so that a rerun, also with other numeric hyperparameters, loads them instead of tracing and compiling; 'off' compiles every time. The default can be moved (or turned off) with the REJAX_COMPILE_CACHE environment variable."""
    sweep: tuple[str, ...] = ()
    """Train several values of a numeric hyperparameter in the same jitted call: NAME=V1,V2,... (e.g. learning_rate=3e-4,1e-3); repeat the flag for a grid, every combination x every seed."""


NOT_FLAGS = ("env", "env_params", "eval_callback")  # Config fields set from --env or only from Python


def use_cpu_cores(args):
    """On a CPU, one jax device per core (or `--cpu-devices`), at most one per run. XLA:CPU runs a vmapped program
    on about one core whatever the machine has; split over devices, the runs train side by side. A device's runs are
    one batched program, and the batch size can change the rounding (PPO CartPole-v1: 16 seeds over 1 and 2 devices
    gave identical curves, 32 and 64 seeds did not), so the device count is part of what makes a run repeatable. jax
    must be told before anything starts its backend, so this runs first in `main`; when the backend is already up
    (`run` called from Python) or XLA_FLAGS sets the count, the devices stay as they are."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    runs = args.num_seeds * int(np.prod([len(values) for values in parse_sweep(args.sweep).values()]))
    processes = int(os.environ.get("JAX_NUM_PROCESSES") or 1)  # a multi-process run splits the runs over them all
    count = args.cpu_devices if args.cpu_devices is not None else max(1, min(cores, -(-runs // processes)))
    if count < 1:
        raise ValueError(f"--cpu-devices must be at least 1, got {count}.")
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # the backend has started: keep its devices
        pass


def use_compile_cache(folder: str):
    """Keep compiled programs in `folder` ('off': none). In one process the CLI keeps its two training programs itself
    (`kept_programs_path`) and jax's persistent compilation cache is off: a program that jax loads from its cache cannot
    be serialized again (jaxlib 0.10.2 drops its kernels, and the copy fails when run: "Function ... not found"), so
    only programs compiled in this process are kept. A multi-process run uses jax's cache instead (entries keyed by the
    program, the jax version and the machine; programs that compile in under 0.2 s are not kept)."""
    if folder.strip().lower() in ("off", "none", ""):
        return
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_enable_compilation_cache", jax.distributed.is_initialized())


@functools.cache
def module_classes(path: str) -> dict:
    """The top-level class definitions of a source file, parsed once: `inspect.getsource` of a class parses its whole
    module again on every call, and --help would pay that four times (our two classes and tyro's docstring lookups)."""
    with open(path) as file:
        return {node.name: node for node in ast.parse(file.read()).body if isinstance(node, ast.ClassDef)}


def field_docs(cls) -> dict:
    """Attribute docstrings of a top-level dataclass, read from its source (the string literal under each field)."""
    body, docs = module_classes(inspect.getsourcefile(cls))[cls.__name__].body, {}
    for node, following in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            docs[node.target.id] = " ".join(str(following.value.value).split())
    return docs


def make_args_class(config_cls):
    """A flat dataclass for tyro: the run flags plus every CLI-settable Config field, defaulting to 'not given'. Every
    flag's help is given here, so tyro never reads a docstring from the source itself."""
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
    run_docs = field_docs(RunArgs)
    for f in dataclasses.fields(RunArgs):
        if f.name == "sweep":  # an append action, so that `--sweep a=.. --sweep b=..` adds up, not the last flag wins
            markers = (tyro.conf.UseAppendAction, tyro.conf.arg(help=run_docs[f.name], metavar="NAME=V1,V2,..."))
        else:
            markers = (tyro.conf.arg(help=run_docs[f.name]),)
        cli_fields.append((f.name, Annotated[(f.type, *markers)], dataclasses.field(default=f.default)))
    return dataclasses.make_dataclass("Args", cli_fields, bases=(RunArgs,))


# ---------------------------------------------------------------------------------------------------------------------
# 3. The config and the grid of seeds x sweep settings
# ---------------------------------------------------------------------------------------------------------------------
def make_config(Config, args):
    """The run's Config from the flags, checked (with the sweep grid and the run flags) before anything is traced.
    Returns `(config, configs, sweep, settings)`: `configs` holds the swept leaves as arrays, one entry per setting."""
    if args.num_seeds < 1:
        raise ValueError(f"--num-seeds must be at least 1, got {args.num_seeds}.")
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every is in env steps and must be at least 1, got {args.checkpoint_every}.")
    if (args.checkpoint_every is not None or args.resume is not None) and jax.process_count() > 1:
        raise ValueError("--checkpoint-every and --resume work in single-process runs only; drop them or run one "
                         "process (it may still use every local device).")
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
                 if f.name not in NOT_FLAGS and getattr(args, f.name, None) is not None}
    sweep = parse_sweep(getattr(args, "sweep", ()))
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as error:
        raise ValueError(f"--env-kwargs must be a JSON object such as '{{\"backend\": \"positional\"}}' ({error}).") from None
    env, env_params = common.make_env(args.env, **env_kwargs)
    config = Config.make(env=env, env_params=env_params, **overrides)
    configs, _, settings = sweep_grid(config, sweep)
    for name in sweep:
        if name in overrides:
            raise ValueError(f"{name} is given both as --{name.replace('_', '-')} and in --sweep; keep one of them.")
    return config, configs, sweep, settings


def parse_sweep(specs) -> dict:
    """`("learning_rate=3e-4,1e-3", "gamma=0.99,0.995")` -> {"learning_rate": [0.0003, 0.001], "gamma": [...]}."""
    sweep = {}
    for spec in specs:
        name, _, listed = spec.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        try:
            values = [float(v) for v in listed.split(",")]
        except ValueError:
            values = []
        if not name or not values:
            raise ValueError(f"--sweep takes NAME=V1,V2,... with numbers, e.g. --sweep learning_rate=3e-4,1e-3; "
                             f"got {spec!r}.")
        if name in sweep:
            raise ValueError(f"--sweep {name} is given twice; list all its values in one flag.")
        if len(set(values)) < len(values):
            raise ValueError(f"--sweep {name} lists a value twice ({listed}); list each value once.")
        sweep[name] = values
    return sweep


def check_sweepable(config, name: str):
    """Raise a one-sentence ValueError unless `name` is a numeric leaf of `config` (so that vmap can go over it)."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    if name not in fields:
        close = difflib.get_close_matches(name, list(fields), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; valid names: {', '.join(fields)}."
        raise ValueError(f"Cannot sweep {name!r}: {type(config).__module__}.Config has no setting of that name{hint}")
    if not fields[name].metadata.get("pytree_node", True):
        raise ValueError(f"Cannot sweep {name}: it is a static field (it fixes array shapes, loop lengths or control "
                         f"flow, so every value needs its own compiled program); run one job per value instead.")
    value = getattr(config, name)
    if not (np.ndim(value) == 0 and np.issubdtype(np.asarray(value).dtype, np.number)):
        raise ValueError(f"Cannot sweep {name}: only numeric hyperparameters can be swept, and {name} is not a number.")


def sweep_grid(config, values: dict):
    """Every combination of `values` (e.g. {"learning_rate": [3e-4, 1e-3], "gamma": [0.99, 0.995]}) as one config
    whose swept leaves are arrays, the first name varying slowest.

    Returns `(configs, in_axes, settings)`: `jax.vmap(train, in_axes=(in_axes, None))(configs, rng)` trains every
    combination; `settings[g]` is combination g as a dict. Each combination passes the Config's own checks first.
    """
    for name in values:
        check_sweepable(config, name)
    names = list(values)
    settings = [dict(zip(names, combo)) for combo in itertools.product(*(values[name] for name in names))]
    for setting in settings:
        if hasattr(config, "validate"):
            config.replace(**setting).validate()
    configs = config.replace(**{name: jnp.asarray([s[name] for s in settings]) for name in names})
    in_axes = jax.tree_util.tree_map(lambda _: None, config).replace(**{name: 0 for name in names})
    return configs, in_axes, settings


def setting_label(setting: dict) -> str:
    """`{"learning_rate": 0.001, "gamma": 0.99}` -> "learning_rate=0.001,gamma=0.99" (a wandb key prefix, a legend)."""
    return ",".join(f"{name}={value:g}" for name, value in setting.items())


def run_inputs(seed: int, num_seeds: int, configs, sweep: dict, num_settings: int) -> dict:
    """Per-run host arrays, setting-major: run r is setting r // num_seeds with key PRNGKey(seed + r % num_seeds), so
    every setting sees the same seeds, and seed i's key is the key of a lone run with --seed seed+i."""
    num_runs = num_seeds * num_settings
    seeds = seed + np.tile(np.arange(num_seeds), num_settings)
    return {"key": np.asarray(jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))), "index": np.arange(num_runs),
            **{name: np.repeat(np.asarray(getattr(configs, name)), num_seeds) for name in sweep}}


def announce(algo: str, args, config, num_settings: int, num_runs: int, padded: int, out: str):
    """The run's first line: what trains, for how many env steps (and how the budget was rounded), and where."""
    grid = f" x {num_settings} settings" if num_settings > 1 else ""
    devices = len(jax.devices())
    sharded = (f", sharded over {devices} devices" + (f" ({padded - num_runs} padding runs)" if padded > num_runs
                                                       else "")) if devices > 1 else ""
    steps = f"{config.total_env_steps:,} env steps"
    if config.total_env_steps != config.total_timesteps:
        steps += (f" (total_timesteps {config.total_timesteps:,} rounded up to whole evaluation intervals of "
                  f"{steps_per_eval(config):,} steps)")
    print(f"{algo.upper()} on {args.env}: {args.num_seeds} seed(s){grid} x {steps}{sharded}, results in {out}/",
          flush=True)


def steps_per_eval(config) -> int:
    """Env steps between two evaluation points, for any algorithm's config."""
    return config.iterations_per_eval * getattr(config, "steps_per_iteration", config.num_envs)


# ---------------------------------------------------------------------------------------------------------------------
# 4. Devices and hosts
# ---------------------------------------------------------------------------------------------------------------------
def device_mesh():
    """A 1-D mesh, axis "runs", over every visible device (of every process); None when there is only one."""
    devices = jax.devices()
    return jax.sharding.Mesh(np.array(devices), ("runs",)) if len(devices) > 1 else None


def run_sharding():
    """Where arrays with a leading run axis live: split over `device_mesh()` along it (None: the one device)."""
    mesh = device_mesh()
    return None if mesh is None else jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))


def shard_runs(arrays: dict, num_runs: int):
    """Place per-run host arrays (leading axis = run) on every device: the run axis padded to a multiple of the
    device count with copies of the last run, then split over `device_mesh()`. One device: unpadded, unsharded.

    Returns `(placed, padded_count)`. Each process supplies only the rows of its own devices, so this works across
    processes too.
    """
    mesh = device_mesh()
    if mesh is None:
        return {k: jnp.asarray(v) for k, v in arrays.items()}, num_runs
    padded = -(-num_runs // mesh.size) * mesh.size
    sharding = run_sharding()
    placed = {}
    for key, value in arrays.items():
        value = np.concatenate([value, np.repeat(value[-1:], padded - num_runs, axis=0)])
        placed[key] = jax.make_array_from_callback(value.shape, sharding, lambda index, v=value: v[index])
    return placed, padded


def over_devices(fn, in_axes=(0,)):
    """`fn` (one run) vmapped over runs and split over the devices of `device_mesh()`: arguments with in_axis 0 are
    split along their leading run axis, those with None replicated. Jit the result.

    shard_map rather than jit's automatic partitioning: runs never talk to each other, and automatic partitioning
    turns a vmapped while loop's stopping test (evaluation stops when every episode has ended) into a cross-device
    all-reduce at every iteration. `check_vma=False`: the algorithm files' loops start from constants (`jnp.zeros`)
    that become device-varying, which is right here and needs no annotation.
    """
    mesh = device_mesh()
    if mesh is None:
        return jax.vmap(fn, in_axes=in_axes)
    spec = jax.sharding.PartitionSpec("runs")
    in_specs = tuple(spec if axis == 0 else jax.sharding.PartitionSpec() for axis in in_axes)
    return jax.shard_map(jax.vmap(fn, in_axes=in_axes), mesh=mesh, in_specs=in_specs, out_specs=spec, check_vma=False)


def unshard_runs(tree, num_runs: int):
    """The runs of a (possibly sharded, possibly multi-process) output, padding dropped, on every process's host."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        tree = multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[:num_runs], tree)


def local_runs(num_runs: int) -> list:
    """The runs (padding excluded) that this process's devices train, in order: all of them in a single process."""
    mesh = device_mesh()
    if mesh is None or jax.process_count() == 1:
        return list(range(num_runs))
    per_device = -(-num_runs // mesh.size)
    return [run for d, device in enumerate(mesh.devices.flat) if device.process_index == jax.process_index()
            for run in range(d * per_device, min((d + 1) * per_device, num_runs))]


# ---------------------------------------------------------------------------------------------------------------------
# 5. Training: one program starts the runs, another trains one evaluation interval; progress is reported between them
# ---------------------------------------------------------------------------------------------------------------------
class Programs(NamedTuple):
    start: Callable  # (inputs, config) -> (train_state, evaluation): initialise, warm up, first evaluation point
    interval: Callable  # (inputs, config, train_state, evals_done) -> (train_state, evaluation): one interval
    report: Callable  # (index, evaluation) -> the latest point to `Progress` on the host, through io_callback


def compiler_options() -> Optional[dict]:
    """On a CPU, LLVM's default optimisation level (2) instead of XLA's (3): it halves the compile time of every
    program here (PPO CartPole-v1, 16 seeds: 20.1 -> 9.0 s) for 0-10 % of training speed (benchmarks/README.md). Left
    to XLA_FLAGS when it sets --xla_backend_optimization_level, and to XLA off the CPU."""
    if jax.default_backend() != "cpu" or "xla_backend_optimization_level" in os.environ.get("XLA_FLAGS", ""):
        return None
    return {"xla_backend_optimization_level": 2}


def compile_programs(train_one, inputs, config, progress, kept: Optional[str] = None) -> tuple:
    """Jit and compile the run's programs (vmapped over runs, split over devices) with `compiler_options`, the two
    training ones side by side; or, when `kept` (from `kept_programs_path`) holds them from an earlier run, load those
    two without tracing them. Returns `(programs, compile_seconds, loaded)`.

    Why three programs and not one call with the progress callback inside: a compiled program that holds a host
    callback cannot be kept on disk (by jax's persistent cache or by `keep_programs`), so the training programs hold
    none and a rerun loads them (`use_compile_cache`); the config is an input, so a rerun with other numeric
    hyperparameters does too. jax's own cache must trace a program to find its entry, and tracing was most of a
    rerun's compile time (PPO CartPole-v1, 16 seeds: 4.7 of 5.6 s), hence `kept`. The io_callback lives in `report`,
    small, compiled anew each run."""
    began, options = time.perf_counter(), compiler_options()
    start = jax.jit(over_devices(lambda i, c: train_one(i, c, num_evals=0), in_axes=(0, None)))
    interval = jax.jit(over_devices(lambda i, c, s, n: train_one(i, c, resume=(s, n), num_evals=1),
                                    in_axes=(0, None, 0, None)), donate_argnums=2)
    report = jax.jit(over_devices(functools.partial(report_progress, progress), in_axes=(0, 0)))
    training = load_programs(kept, inputs, config)
    loaded = training is not None
    if not loaded:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # start compiles while interval is traced
            lowered = start.lower(inputs, config)
            compiling = pool.submit(lowered.compile, options)
            interval_program = compile_interval(interval, inputs, config, lowered.out_info[0], options)
            training = (compiling.result(), interval_program)
        keep_programs(kept, *training)
    report_program = report.lower(inputs["index"], training[0].out_info[1]).compile(options)
    return Programs(*training, report_program), time.perf_counter() - began, loaded


def compile_interval(interval, inputs, config, state, options):
    """The interval program, compiled for the train state that the start program returns (`state`, its shapes)."""
    sharding = run_sharding()
    # jax hands back a zero-size leaf (MuJoCo Playground's state has some: mocap_pos with no mocap bodies)
    # replicated whatever the out_specs say, so the interval program must take it replicated too
    whole = None if sharding is None else jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
    state = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding if x.size else whole), state)
    return interval.lower(inputs, config, state, jnp.int32(0)).compile(options)


def kept_programs_path(folder: Optional[str], algo: str, args, inputs, config) -> Optional[str]:
    """Where in `folder` (the compile cache) this run's two training programs are kept compiled, named by a hash of
    everything they are built from, found without tracing: the command line (env and its options, every static
    setting; numeric hyperparameters are inputs, not part of it), the code (size and mtime of every loaded Python
    module and extension: the project's files, jax, the env suites), jax's settings, XLA_FLAGS, the compiler options,
    the CPU model and flags, the devices, and the inputs' structure, shapes, dtypes and placement. A change to any of
    them gives another name, so a stale program is not loaded. None (trace and compile as usual) without a compile
    cache, or across processes."""
    if not folder or jax.process_count() > 1:
        return None
    files = sorted({m.__file__ for m in list(sys.modules.values()) if isinstance(getattr(m, "__file__", None), str)})
    code = [(f, stat.st_size, stat.st_mtime_ns) for f in files if os.path.exists(f) for stat in [os.stat(f)]]
    cpu = ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as info:
            cpu = "".join(line for line in itertools.islice(info, 40) if line.startswith(("model name", "flags")))
    avals = [(jax.typeof(x), getattr(x, "sharding", None)) for x in jax.tree_util.tree_leaves((inputs, config))]
    structure = jax.tree_util.tree_structure((inputs, config.replace(env=None)))  # static settings included
    what = [algo, args.env, args.env_kwargs, structure, avals, code, sorted(jax.config.values.items()),
            os.environ.get("XLA_FLAGS"), compiler_options(), cpu, jax.devices(),
            jax.devices()[0].client.platform_version, sys.version]
    name = hashlib.sha256(repr(what).encode()).hexdigest()[:32]
    return os.path.join(os.path.expanduser(folder), "rejax-programs", f"{algo}-{name}.pkl")


def load_programs(path: Optional[str], inputs, config) -> Optional[tuple]:
    """The (start, interval) programs kept at `path` by `keep_programs`, loaded; None when there are none (or they do
    not load, e.g. from another jaxlib: then the run compiles as usual)."""
    if path is None or not os.path.exists(path):
        return None
    from jax.experimental import serialize_executable

    try:
        with open(path, "rb") as file:
            (start, start_out), (interval, interval_out) = pickle.load(file)
        # the input trees are rebuilt here: they hold this process's env object, which the kept ones cannot
        start = serialize_executable.deserialize_and_load(
            start, jax.tree_util.tree_structure(((inputs, config), {})), start_out)
        state = jax.tree_util.tree_unflatten(start_out, [0] * start_out.num_leaves)[0]
        interval = serialize_executable.deserialize_and_load(
            interval, jax.tree_util.tree_structure(((inputs, config, state, 0), {})), interval_out)
    except Exception:  # noqa: BLE001 - a program that does not load is compiled again
        return None
    return start, interval


def keep_programs(path: Optional[str], start, interval):
    """Write the compiled (start, interval) programs to `path` for `load_programs` (atomically: a run that stops
    midway leaves no half file). Programs jax cannot serialize are not kept."""
    if path is None:
        return
    from jax.experimental import serialize_executable

    try:
        kept = [serialize_executable.serialize(program)[::2] for program in (start, interval)]  # (bytes, out tree)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(f"{path}.{os.getpid()}", "wb") as file:
            pickle.dump(kept, file)
        os.replace(f"{path}.{os.getpid()}", path)
    except Exception:  # noqa: BLE001 - keeping them is an optimisation; the run goes on without it
        pass


def train_in_segments(programs: Programs, inputs, config, save: Optional[Callable] = None, every: int = 1,
                      resume=None):
    """Train every run: `programs.start`, then `programs.interval` once per evaluation interval up to
    `config.num_evals`, each point reported as it is made (the host loop only queues work: the devices never wait for
    it). With `save`, `save(train_state, evaluation, evals_done)` runs every `every` intervals and at the end.

    A run executes the same two programs whether it checkpoints, resumes from `resume=(train_state, evaluation,
    evals_done)` or neither, so all three end bit-identical. Returns `(train_state, evaluation)`, evaluation stacked
    over points on axis 1."""
    if resume is None:
        train_state, first = programs.start(inputs, config)
        programs.report(inputs["index"], first)
        points, evals_done = [first], 0
    else:
        train_state, evaluation, evals_done = resume
        points = [evaluation]
    while evals_done < config.num_evals:
        train_state, point = programs.interval(inputs, config, train_state, jnp.int32(evals_done))
        programs.report(inputs["index"], point)
        points.append(point)
        evals_done += 1
        if save is not None and (evals_done % every == 0 or evals_done == config.num_evals):
            points = [stack_points(points)]
            save(train_state, points[0], evals_done)
    return jax.block_until_ready((train_state, stack_points(points)))


def stack_points(points: list):
    """Evaluation pytrees of consecutive points, joined along the point axis (axis 1; axis 0 is the run)."""
    return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=1), *points) if len(points) > 1 else points[0]


def with_run_facts(config, algo_callback):
    """Make every evaluation point also record the env step and whether the train state is still finite."""
    callback = config.eval_callback if config.eval_callback is not None else algo_callback

    def callback_with_facts(config, train_state, rng):
        out = callback(config, train_state, rng)
        return {**out, "env_steps": train_state.global_step, "finite": all_finite(train_state)}

    return config.replace(eval_callback=callback_with_facts)


def report_progress(progress: "Progress", index, evaluation):
    """One run's latest evaluation point, sent to `progress.record` on the host (inside the `report` program)."""
    point = jax.tree_util.tree_map(lambda x: x[-1], evaluation)
    eval_return = jnp.mean(point["return"]) if "return" in point else jnp.nan
    return jax.experimental.io_callback(progress.record, jax.ShapeDtypeStruct((), jnp.int32), index,
                                        point["env_steps"], eval_return, point.get("train_return", jnp.nan),
                                        point["finite"])


def all_finite(train_state):
    """True when every float in the train state (parameters, optimiser and normaliser statistics, buffers) is finite:
    one reduction inside the jitted run at each evaluation point. Training-episode returns are left out: they are NaN
    by design until the first episode ends."""
    state = train_state.replace(episode_stats=None) if hasattr(train_state, "episode_stats") else train_state
    leaves = [x for x in jax.tree_util.tree_leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves])) if leaves else jnp.array(True)


class Progress:
    """Host side of the in-run logging: collects one record per run (seed x sweep setting) per evaluation point,
    prints a line when every run of this process has reported that point, and mirrors it to wandb.

    Runs are setting-major: run r is setting r // num_seeds with seed index r % num_seeds. Records of padding runs
    (at or past `num_runs`, added so that the run count divides the device count) are ignored; in a multi-process
    run, each process reports the runs of its own devices.
    """

    def __init__(self, num_runs: int, total_steps: int, wandb_run=None, settings=({},)):
        self.total_steps, self.wandb_run, self.settings = total_steps, wandb_run, list(settings)
        self.num_seeds = num_runs // len(self.settings)
        self.runs = local_runs(num_runs)
        self.expected = set(self.runs)
        self.pending: dict = {}
        self.diverged: set = set()
        self.start = None

    def record(self, run_index, step, eval_return, train_return, finite=True):
        step, run_index = int(step), int(run_index)
        if run_index not in self.expected:
            return np.int32(0)
        if self.start is None:
            self.start = (time.perf_counter(), step)
        if not finite and run_index not in self.diverged:
            self.diverged.add(run_index)
            setting, seed = divmod(run_index, self.num_seeds)
            print(f"  {describe_run(seed, self.settings[setting])} diverged: non-finite train state at step "
                  f"{step:,}; it is left out of the statistics, the other runs go on", flush=True)
        records = self.pending.setdefault(step, {})
        records[run_index] = (float(eval_return), float(train_return))
        if len(records) == len(self.runs):
            self.report(step, self.pending.pop(step))
        return np.int32(0)

    def by_setting(self, values) -> dict:
        """Per sweep setting (index), the values of its runs among `self.runs`."""
        groups = {}
        for value, run in zip(values, self.runs):
            groups.setdefault(run // self.num_seeds, []).append(value)
        return {g: np.array(v) for g, v in groups.items()}

    def report(self, step, records):
        returns = np.array([records[r][0] for r in self.runs])
        train = np.array([records[r][1] for r in self.runs])
        elapsed, done = time.perf_counter() - self.start[0], step - self.start[1]
        rate = done * len(self.runs) / elapsed if done > 0 else float("nan")
        eta = f"{(self.total_steps - step) * elapsed / done:6.1f}s" if done > 0 else "     -"
        kept = returns[[run not in self.diverged for run in self.runs]]
        line = (f"  step {step:>10,}  {rate:>9,.0f} steps/s  eval return IQM {nan_statistic(iqm, kept):9.2f} mean "
                f"{nan_statistic(np.mean, kept):9.2f} (min {nan_statistic(np.min, kept):.2f}, max "
                f"{nan_statistic(np.max, kept):.2f})  train return {nanmean(train):9.2f}  ETA {eta}")
        if len(kept) < len(returns):
            line += f"  ({len(returns) - len(kept)} diverged run(s) left out)"
        means = {g: v.mean() for g, v in self.by_setting(returns).items()}
        finite = {g: m for g, m in means.items() if np.isfinite(m)}
        if len(self.settings) > 1 and step > 0 and finite:  # all settings are equal before training
            best = max(finite, key=finite.get)
            line += f"  best {setting_label(self.settings[best])}: {finite[best]:.2f}"
        if jax.process_count() > 1:
            line += f"  (process {jax.process_index()}'s runs)"
        print(line, flush=True)
        if self.wandb_run is not None:
            self.wandb_run.log(self.wandb_data(returns, train, rate), step=step)

    def wandb_data(self, returns, train, rate) -> dict:
        """One wandb run (per process): `seed_<i>/...` keys per seed, under a `<setting>/` prefix when sweeping
        (with that setting's seed means beside them), and the means over all runs at the top level."""
        kept = returns[[run not in self.diverged for run in self.runs]]
        low, high = bootstrap_interval(iqm, kept) if len(kept) else (np.nan, np.nan)
        data = {"eval/episodic_return": nan_statistic(np.mean, kept), "eval/episodic_return_iqm": nan_statistic(iqm, kept),
                "eval/episodic_return_iqm_ci_low": low, "eval/episodic_return_iqm_ci_high": high,
                "charts/episodic_return": nanmean(train), "charts/SPS": rate}
        for r, run in enumerate(self.runs):
            setting, seed = divmod(run, self.num_seeds)
            prefix = f"{setting_label(self.settings[setting])}/" if self.settings[setting] else ""
            data[f"{prefix}seed_{seed}/eval/episodic_return"] = returns[r]
            data[f"{prefix}seed_{seed}/charts/episodic_return"] = train[r]
        if len(self.settings) > 1:
            for (g, r), t in zip(self.by_setting(returns).items(), self.by_setting(train).values()):
                data[f"{setting_label(self.settings[g])}/eval/episodic_return"] = r.mean()
                data[f"{setting_label(self.settings[g])}/charts/episodic_return"] = nanmean(t)
        return data


def nan_statistic(statistic, values) -> float:
    """`statistic(values)`, or NaN when there are no values (every run diverged)."""
    return float(statistic(values)) if len(values) else float("nan")


def nanmean(values) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none, e.g. before any episode ended."""
    values = np.asarray(values)
    return float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else float("nan")


# ---------------------------------------------------------------------------------------------------------------------
# 6. Checkpoints: the whole train state of every run, saved between segments of the run and resumed bit-identically
# ---------------------------------------------------------------------------------------------------------------------
CHECKPOINT_FORMAT = "rejax-checkpoint-1"


def train_with_checkpoints(args, algo, config, sweep, out, programs, train_one, placed, per_run, num_runs):
    """The training of `run` with --checkpoint-every / --resume: the same programs, a checkpoint every N env steps."""
    every_steps = args.checkpoint_every if args.checkpoint_every is not None else config.total_env_steps
    every = max(1, round(every_steps / steps_per_eval(config)))
    path = os.path.join(out, "checkpoint.msgpack")
    meta = {"algorithm": algo, "env": args.env, "env_kwargs": args.env_kwargs, "num_seeds": args.num_seeds,
            "seed": args.seed, "sweep": sweep, "config": config_to_dict(config)}
    resume = None
    if args.resume is not None:
        resume = resume_from(args.resume, meta, train_one, config, placed, per_run, num_runs)
        print(f"resuming from {args.resume} at evaluation point {resume[2]} of {config.num_evals} "
              f"(env step {resume[2] * steps_per_eval(config):,} after any warm-up)", flush=True)

    def save(train_state, evaluation, evals_done):
        save_checkpoint(path, unshard_runs(train_state, num_runs), unshard_runs(evaluation, num_runs), evals_done,
                        meta)

    print(f"a checkpoint every {every * steps_per_eval(config):,} env steps and at the end, in {path}", flush=True)
    return train_in_segments(programs, placed, config, save, every, resume)


def resume_from(path: str, meta: dict, train_one, config, placed, per_run, num_runs: int):
    """A checkpoint's `(train_state, evaluation, evals_done)`, placed on the devices like the run's inputs."""
    like = jax.eval_shape(jax.vmap(lambda inputs: train_one(inputs, config, num_evals=0)), per_run)[0]
    train_state, evaluation, evals_done = load_checkpoint(path, like, meta)
    leaves, treedef = jax.tree_util.tree_flatten(train_state)
    placed_leaves, _ = shard_runs({str(i): np.asarray(leaf) for i, leaf in enumerate(leaves)}, num_runs)
    train_state = jax.tree_util.tree_unflatten(treedef, [placed_leaves[str(i)] for i in range(len(leaves))])
    padded = len(jax.tree_util.tree_leaves(placed)[0])
    evaluation = jax.tree_util.tree_map(  # padding runs repeat the last run, as in shard_runs
        lambda x: np.concatenate([x, np.repeat(x[-1:], padded - num_runs, 0)]), evaluation)
    return train_state, evaluation, evals_done


def save_checkpoint(path: str, train_state, evaluation, evals_done: int, meta: dict):
    """Write a checkpoint atomically: train states and evaluation so far (leading run axis), the evaluation point
    they belong to and `meta` (algorithm, env, config, seeds). The bytes go to a temporary file beside `path`, are
    flushed to disk and renamed over `path`, so a run killed at any moment (kill -9 included) leaves the previous
    checkpoint or the new one, never a torn file."""
    from flax import serialization

    data = serialization.msgpack_serialize({
        "format": CHECKPOINT_FORMAT, "meta": json.dumps(meta), "evals_done": evals_done,
        "train_state": serialization.to_state_dict(jax.device_get(train_state)), "evaluation": evaluation,
    })
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def read_checkpoint(path: str) -> dict:
    """The raw contents of a checkpoint file, `meta` decoded; a one-sentence ValueError if it is missing or unreadable."""
    from flax import serialization

    try:
        with open(path, "rb") as f:
            saved = serialization.msgpack_restore(f.read())
        if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
            raise ValueError
        return {**saved, "meta": json.loads(saved["meta"])}
    except FileNotFoundError:
        raise ValueError(f"No checkpoint at {path}; pass the checkpoint.msgpack of an earlier run.") from None
    except Exception:
        raise ValueError(f"{path} is not a readable checkpoint (corrupt, or not written by rejax); resume from "
                         "another one or start a new run.") from None


def load_checkpoint(path: str, like, meta: dict):
    """Read a checkpoint for a run described by `meta` whose train states look like `like` (arrays or
    ShapeDtypeStructs with a leading run axis). Returns `(train_state, evaluation, evals_done)`.

    A checkpoint written by another algorithm, env, seed count, seed, sweep or config, or holding other shapes,
    raises a one-sentence ValueError that names the mismatch.
    """
    from flax import serialization

    saved = read_checkpoint(path)
    saved_meta = saved["meta"]
    for key in ("algorithm", "env", "num_seeds", "seed", "sweep"):
        if saved_meta.get(key) != meta.get(key):
            raise ValueError(f"Checkpoint {path} was written with {key} {saved_meta.get(key)!r} but this run has "
                             f"{meta.get(key)!r}; resume with the settings of the run that wrote it.")
    for name, value in meta.get("config", {}).items():
        if saved_meta.get("config", {}).get(name) != value:
            raise ValueError(f"Checkpoint {path} was written with {name}={saved_meta['config'].get(name)!r} but this "
                             f"run has {name}={value!r}; resume with the settings of the run that wrote it.")
    try:
        state = serialization.from_state_dict(like, saved["train_state"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"Checkpoint {path} holds a train state of another structure ({error}).") from None
    for (key_path, want), got in zip(jax.tree_util.tree_leaves_with_path(like), jax.tree_util.tree_leaves(state)):
        got = np.asarray(got)
        if tuple(want.shape) != got.shape or np.dtype(want.dtype) != got.dtype:
            raise ValueError(f"Checkpoint {path} has {jax.tree_util.keystr(key_path)} of shape {got.shape} "
                             f"{got.dtype} where this run needs {tuple(want.shape)} {np.dtype(want.dtype)}.")
    return state, saved["evaluation"], int(saved["evals_done"])


def restore(path: str):
    """Load the checkpoint of a CLI run for use: returns `(config, train_state)`, train states with a leading run axis.
    `rejax_<algo>.make_act(config, common.select_seed(train_state, i))` is then run i's trained policy, no retraining.
    (For a sweep, `config` holds the base values; the run's own setting is in the checkpoint's meta.)"""
    from flax import serialization

    saved = read_checkpoint(path)
    meta = saved["meta"]
    train_fn, Config = common.get_agent(meta["algorithm"])
    env, env_params = common.make_env(meta["env"], **json.loads(meta.get("env_kwargs") or "{}"))
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items() if k not in NOT_FLAGS}
    config = Config.make(env=env, env_params=env_params, **fields)
    num_runs = len(jax.tree_util.tree_leaves(saved["train_state"])[0])
    keys = jax.random.split(jax.random.PRNGKey(0), num_runs)
    like = jax.eval_shape(jax.vmap(lambda key: train_fn(config, key, num_evals=0)[0]), keys)
    return config, serialization.from_state_dict(like, saved["train_state"])


def config_to_dict(config) -> dict:
    """The config as plain JSON-able values: the env by name, env params as a dict, the callback by name."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "env":
            value = common.env_name(value)
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


# ---------------------------------------------------------------------------------------------------------------------
# 7. Statistics of the final returns (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice")
# ---------------------------------------------------------------------------------------------------------------------
CONFIDENCE, RESAMPLES = 0.95, 2000
STATISTICS_METHOD = (f"{CONFIDENCE:.0%} percentile-bootstrap intervals over seeds, {RESAMPLES} resamples (rliable's "
                     "stratified bootstrap: with one task, the seeds are the only stratum); IQM = mean of the middle "
                     "50 % of runs (25 % trimmed at each end)")


def iqm(values, axis=-1):
    """Interquartile mean: the mean of the runs between the 25th and 75th percentile (scipy's trim_mean, as rliable)."""
    import scipy.stats

    return scipy.stats.trim_mean(values, 0.25, axis=axis)


def probability_of_improvement(x, y, axis=-1):
    """P(X > Y) for a run drawn from each of two settings, ties counting half (Mann-Whitney U / (n m))."""
    x, y = np.moveaxis(np.asarray(x), axis, -1), np.moveaxis(np.asarray(y), axis, -1)
    greater = (x[..., :, None] > y[..., None, :]).mean((-2, -1))
    ties = (x[..., :, None] == y[..., None, :]).mean((-2, -1))
    return greater + 0.5 * ties


def bootstrap_interval(statistic, *samples):
    """The 95 % percentile-bootstrap interval of `statistic(*samples, axis=-1)`, the seeds (last axis) of each sample
    resampled on their own, with a fixed generator so that the same results give the same interval. A sample of one
    run gives the point value as both ends."""
    import scipy.stats

    if min(np.shape(s)[-1] for s in samples) < 2:
        value = statistic(*samples, axis=-1)
        return value, value
    result = scipy.stats.bootstrap(samples, statistic, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                                   method="percentile", vectorized=True, axis=-1, random_state=np.random.default_rng(0))
    return result.confidence_interval.low, result.confidence_interval.high


def final_statistics(final) -> dict:
    """IQM and mean with their intervals, median, std, min and max of final returns (diverged runs left out)."""
    final = np.asarray(final, dtype=np.float64)
    if final.size == 0:
        nan = float("nan")
        return {"final_return_iqm": nan, "final_return_iqm_ci": [nan, nan], "final_return_mean": nan,
                "final_return_mean_ci": [nan, nan], "final_return_median": nan, "final_return_std": nan,
                "final_return_min": nan, "final_return_max": nan}
    return {"final_return_iqm": float(iqm(final)), "final_return_iqm_ci": list(map(float, bootstrap_interval(iqm, final))),
            "final_return_mean": float(final.mean()),
            "final_return_mean_ci": list(map(float, bootstrap_interval(np.mean, final))),
            "final_return_median": float(np.median(final)), "final_return_std": float(final.std()),
            "final_return_min": float(final.min()), "final_return_max": float(final.max())}


def diverged_runs(finite, steps, settings, num_seeds: int) -> list:
    """Runs whose train state held a non-finite value at an evaluation point: run index, seed index, setting and the
    first env step at which it was seen. `finite` is [num_runs, num_points] (None: the callback did not report it)."""
    if finite is None:
        return []
    diverged = []
    for run in np.flatnonzero(~np.asarray(finite).all(1)):
        first = int(np.argmin(finite[run]))
        diverged.append({"run": int(run), "seed": int(run % num_seeds), "setting": settings[run // num_seeds],
                         "first_seen_at_step": int(steps[first]) if steps is not None else first})
    return diverged


def describe_run(seed: int, setting: dict) -> str:
    return f"seed {seed}" + (f" ({setting_label(setting)})" if setting else "")


# ---------------------------------------------------------------------------------------------------------------------
# 8. The summary, the printed report, the results folder and wandb
# ---------------------------------------------------------------------------------------------------------------------
def summarize(algo, args, config, sweep, settings, evaluation, steps, compile_time, train_time) -> dict:
    """summary.json: every run's final return (the mean of its last evaluation's episodes), their statistics over the
    runs that did not diverge, the diverged runs, timings; with a sweep, one row per setting ranked by IQM (the
    top-level statistics then cover every kept run)."""
    final = np.asarray(evaluation["return"])[:, -1].mean(-1)  # [num_runs]
    diverged = diverged_runs(evaluation.get("finite"), steps, settings, args.num_seeds)
    kept = np.isfinite(final)
    kept[[d["run"] for d in diverged]] = False
    total_steps = config.total_env_steps * len(final)
    summary = {
        "algorithm": algo, "env": args.env, "num_seeds": args.num_seeds, "seed": args.seed,
        "env_steps_per_seed": config.total_env_steps, **final_statistics(final[kept]),
        "final_return_per_seed": [float(f) if np.isfinite(f) else None for f in final],
        "num_runs_left_out": int((~kept).sum()), "diverged": diverged, "statistics": STATISTICS_METHOD,
        "compile_seconds": compile_time, "train_seconds": train_time, "steps_per_second": total_steps / train_time,
        "num_devices": len(jax.devices()),
    }
    if sweep:
        shape = (len(settings), args.num_seeds)
        summary.update(sweep=sweep, settings=setting_rows(settings, final.reshape(shape), kept.reshape(shape)))
    return summary


def setting_rows(settings, final, kept) -> list:
    """One row per sweep setting, best IQM first: the setting, its statistics over its kept seeds, and the probability
    that the best setting improves on it, with its interval. `final` and `kept` are [num_settings, num_seeds]."""
    rows = [{**setting, **final_statistics(f[k]), "final_return_per_seed": [float(v) if ok else None
                                                                            for v, ok in zip(f, k)]}
            for setting, f, k in zip(settings, final, kept)]
    order = sorted(range(len(rows)), key=lambda g: -np.nan_to_num(rows[g]["final_return_iqm"], nan=-np.inf))
    best = final[order[0]][kept[order[0]]]
    for g in order[1:]:
        other = final[g][kept[g]]
        if best.size and other.size:
            rows[g]["best_improves_on_this"] = float(probability_of_improvement(best, other))
            rows[g]["best_improves_on_this_ci"] = list(map(float, bootstrap_interval(probability_of_improvement, best,
                                                                                     other)))
    return [rows[g] for g in order]


def report(summary: dict, settings, sweep: dict, out: str):
    """Print the final returns' statistics (per setting, best IQM first, when sweeping), the diverged runs, the
    timings and the files written."""
    if sweep:
        width = max(len(setting_label(s)) for s in settings)
        print(f"\n{'setting':<{width}}  final return over {summary['num_seeds']} seed(s), best IQM first; "
              f"P(best > this) [{CONFIDENCE:.0%} CI]")
        for row in summary["settings"]:
            label = setting_label({name: row[name] for name in sweep})
            improvement = (f"  P {row['best_improves_on_this']:.2f} [{row['best_improves_on_this_ci'][0]:.2f}, "
                           f"{row['best_improves_on_this_ci'][1]:.2f}]" if "best_improves_on_this" in row else "")
            print(f"{label:<{width}}  {statistics_line(row)}{improvement}")
    else:
        print(f"\nfinal return over {summary['num_seeds']} seed(s): {statistics_line(summary)}")
    if summary["num_runs_left_out"]:
        print(f"{summary['num_runs_left_out']} run(s) left out of the statistics: " + "; ".join(
            f"{describe_run(d['seed'], d['setting'])} diverged (non-finite train state) at step "
            f"{d['first_seen_at_step']:,}" for d in summary["diverged"]) if summary["diverged"] else
              f"{summary['num_runs_left_out']} run(s) with a non-finite return left out of the statistics")
    compile_time, train_time = summary["compile_seconds"], summary["train_seconds"]
    timing = f"compile {compile_time:.1f}s + train {train_time:.1f}s" if compile_time is not None else \
        f"{train_time:.1f}s in segments, compile included"
    print(f"time: {timing}; {summary['steps_per_second']:,.0f} env steps/s over all {'runs' if sweep else 'seeds'}")
    if jax.process_index() == 0:
        print(f"saved config.json, curves.csv, curves.json, summary.json, final_returns.npz, learning_curve.png"
              f"{', settings.csv' if sweep else ''} in {out}/")


def statistics_line(stats: dict) -> str:
    """"IQM 480.1 [95% CI 450.2, 500.0]  mean 470.3 [440.0, 495.1] ± 30.2  median ...  min ...  max ..."."""
    if np.isnan(stats["final_return_iqm"]):
        return "every run diverged or ended non-finite"
    low, high = stats["final_return_iqm_ci"]
    mean_low, mean_high = stats["final_return_mean_ci"]
    return (f"IQM {stats['final_return_iqm']:.2f} [{CONFIDENCE:.0%} CI {low:.2f}, {high:.2f}]  mean "
            f"{stats['final_return_mean']:.2f} [{mean_low:.2f}, {mean_high:.2f}] ± {stats['final_return_std']:.2f}  "
            f"median {stats['final_return_median']:.2f}  min {stats['final_return_min']:.2f}  "
            f"max {stats['final_return_max']:.2f}")


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


def save_results(out: str, algo: str, config, steps, evaluation, summary: dict, settings=({},)):
    """Write config.json, curves.csv/json (one curve per run), summary.json, final_returns.npz, learning_curve.png
    and, with a sweep, settings.csv (the settings ranked by IQM, best first). Runs are setting-major: run r is
    setting r // num_seeds with seed index r % num_seeds; with a sweep, curves.csv starts with the swept values."""
    returns = np.asarray(evaluation["return"]).mean(-1)  # [num_runs, num_evals]
    train = np.asarray(evaluation["train_return"])  # [num_runs, num_evals]
    settings = list(settings)
    names, num_seeds = list(settings[0]), returns.shape[0] // len(settings)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"algorithm": algo, **config_to_dict(config), **({"sweep": summary["sweep"]} if names else {})},
                  f, indent=2)
    with open(os.path.join(out, "curves.csv"), "w") as f:
        f.write(",".join(names + ["seed", "env_steps", "eval_return", "train_return"]) + "\n")
        for run in range(returns.shape[0]):
            swept = [f"{settings[run // num_seeds][name]:g}" for name in names]
            for step, r, t in zip(steps, returns[run], train[run]):
                f.write(",".join(swept + [str(run % num_seeds), str(step), f"{r:.6g}", f"{t:.6g}"]) + "\n")
    curves = {"env_steps": list(map(int, steps)), "eval_return": np.where(np.isfinite(returns), returns, None).tolist(),
              "train_return": np.where(np.isfinite(train), train, None).tolist()}
    if names:
        curves["runs"] = [{**settings[run // num_seeds], "seed": run % num_seeds} for run in range(returns.shape[0])]
        columns = ("final_return_iqm", "final_return_mean", "final_return_median", "final_return_std",
                   "final_return_min", "final_return_max")
        with open(os.path.join(out, "settings.csv"), "w") as f:
            f.write(",".join(names + list(columns)) + "\n")
            for row in summary["settings"]:
                f.write(",".join([f"{row[name]:g}" for name in names] + [f"{row[k]:.6g}" for k in columns]) + "\n")
    with open(os.path.join(out, "curves.json"), "w") as f:
        json.dump(curves, f)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    kept = kept_runs(summary, returns.shape[0])
    # rliable's score dict: one [runs, tasks] array per setting (here one task), read with dict(np.load(path)).
    np.savez(os.path.join(out, "final_returns.npz"), **{
        setting_label(s) or algo: returns[g * num_seeds:(g + 1) * num_seeds, -1][kept[g * num_seeds:(g + 1) * num_seeds],
                                                                              None] for g, s in enumerate(settings)})
    plot_learning_curves(os.path.join(out, "learning_curve.png"), algo, steps, returns, kept, summary, settings)


def kept_runs(summary: dict, num_runs: int):
    """[num_runs] True for the runs in the statistics: finite final return, never diverged."""
    kept = np.array([value is not None for value in summary["final_return_per_seed"]])
    kept[[d["run"] for d in summary["diverged"]]] = False
    return kept[:num_runs]


def plot_learning_curves(path: str, algo: str, steps, returns, kept, summary: dict, settings: list):
    """The IQM over seeds at every evaluation point with its 95 % bootstrap band; one curve per sweep setting, best
    first. Diverged runs are left out, as in the statistics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, num_seeds = list(settings[0]), returns.shape[0] // len(settings)
    fig, ax = plt.subplots(figsize=(7, 4.5) if names else (6, 4))
    rows = summary["settings"] if names else [summary]
    for row in rows:
        g = settings.index({name: row[name] for name in names})
        curves = returns[g * num_seeds:(g + 1) * num_seeds][kept[g * num_seeds:(g + 1) * num_seeds]].T  # [points, seeds]
        if curves.shape[1] == 0:
            continue
        low, high = bootstrap_interval(iqm, curves)
        label = f"{setting_label(settings[g])}: " if names else ""
        line, = ax.plot(steps, iqm(curves), label=f"{label}IQM of {curves.shape[1]} seeds, final "
                                                 f"{row['final_return_iqm']:.1f}")
        ax.fill_between(steps, low, high, alpha=0.2, color=line.get_color())
    ax.legend(fontsize=7, title=f"IQM with {CONFIDENCE:.0%} bootstrap CI" + (", best first" if names else ""),
              title_fontsize=7)
    ax.set(xlabel="env steps (per seed)", ylabel="evaluation return", title=f"{algo.upper()} on {summary['env']}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    group = None
    if jax.process_count() > 1:  # one run per process (each logs its own devices' runs), grouped under the run name
        name, group = f"{name}-process{jax.process_index()}", name
    return wandb.init(project=project, name=name, group=group, config=config, mode=mode,
                      settings=wandb.Settings(silent=True))


def finish_wandb(wandb_run, summary: dict, sweep: dict):
    """Each setting's final return as a wandb summary value (when sweeping), then close the run."""
    if sweep:
        wandb_run.summary.update({f"{setting_label({n: row[n] for n in sweep})}/final_return": row["final_return_mean"]
                                  for row in summary["settings"]})
        wandb_run.summary.update({f"{setting_label({n: row[n] for n in sweep})}/final_return_iqm":
                                  row["final_return_iqm"] for row in summary["settings"]})
    wandb_run.finish()


# ---------------------------------------------------------------------------------------------------------------------
# 9. A video of a trained agent (on the host, after training; never inside the jitted run)
# ---------------------------------------------------------------------------------------------------------------------
def video_run(summary: dict, video_seed: Optional[int], settings) -> int:
    """The run to render: seed `video_seed` of the best setting, or the run with the best final return."""
    num_seeds = summary["num_seeds"]
    best_setting = settings.index({n: summary["settings"][0][n] for n in settings[0]}) if settings[0] else 0
    if video_seed is not None:
        if not 0 <= video_seed < num_seeds:
            raise ValueError(f"--video-seed must be a seed index from 0 to {num_seeds - 1}, got {video_seed}.")
        return best_setting * num_seeds + video_seed
    finals = np.array([-np.inf if f is None else f for f in summary["final_return_per_seed"]])
    return int(np.argmax(np.where(kept_runs(summary, len(finals)), finals, -np.inf)))


def record_episode(act, env, env_params, rng, max_steps: int):
    """One episode of `act` from a reset, in one jitted scan: the env states the actions were taken in, and the
    return so far at each of them, cut at the episode's end (host arrays)."""
    def step(carry, rng):
        obs, state, done, total = carry
        rng_act, rng_step = jax.random.split(rng)
        next_obs, next_state, reward, terminated, truncated, _ = env.step(rng_step, state, act(obs, rng_act),
                                                                          env_params)
        return (next_obs, next_state, done | terminated | truncated, total + reward), (state, done, total + reward)

    def episode(rng):
        rng_reset, rng = jax.random.split(rng)
        obs, state = env.reset(rng_reset, env_params)
        return jax.lax.scan(step, (obs, state, jnp.array(False), jnp.array(0.0)), jax.random.split(rng, max_steps))[1]

    states, done, returns = jax.device_get(jax.jit(episode)(rng))
    length = int(np.argmax(done)) if done.any() else max_steps
    return [jax.tree_util.tree_map(lambda x, i=i: x[i], states) for i in range(length)], returns[:length]


def render_video(config, train_state, out: str, run: int = 0, rng=None) -> Optional[str]:
    """Render one deterministic evaluation episode of run `run` of `train_state` (leading run axis, as `run` returns
    and `restore` loads) into `out`: `episode.gif` for gymnax envs with a renderer, `episode.html` (brax's viewer)
    for brax/<name>. Returns the file's path, or None (with a one-line message) when the env has no renderer."""
    from gymnax.visualize import Visualizer

    env, name = config.env, common.env_name(config.env)
    gymnax_renderable = name in ("CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0",
                                 "MountainCarContinuous-v0", "Catch-bsuite", "FourRooms-misc", "MetaMaze-misc",
                                 "PointRobot-misc", "Pong-misc") or name.endswith("-MinAtar")
    if not (gymnax_renderable or isinstance(env, common.BraxEnv)):
        print(f"video: {name} has no renderer (gymnax's visualiser covers the classic-control, MinAtar and a few misc "
              f"envs, and brax/<name> gets brax's HTML viewer); no video written.")
        return None
    act = sys.modules[type(config).__module__].make_act(config, common.select_seed(train_state, run))
    states, returns = record_episode(act, env, config.env_params, jax.random.PRNGKey(0) if rng is None else rng,
                                     int(config.env_params.max_steps_in_episode))
    if isinstance(env, common.BraxEnv):
        from brax.io import html

        path = os.path.join(out, "episode.html")
        with open(path, "w") as f:
            f.write(html.render(env.env.sys, [s.brax_state.pipeline_state for s in states]))
    else:
        path = os.path.join(out, "episode.gif")
        Visualizer(env, config.env_params, states, returns).animate(path)
    print(f"video: run {run}'s episode ({len(states)} steps, return {returns[-1]:.2f}) in {path}")
    return path
