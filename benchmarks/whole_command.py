"""The whole command, as a user waits for it: from launch to the results saved, first run and rerun.

For PPO, DQN and SAC on CartPole-v1 with 16 seeds:
  ours, defaults   `python rejax_<algo>.py --env CartPole-v1 --num-seeds 16`: our tuned defaults, results folder, plot;
  ours, same hp    the same command with PyPI rejax's tuned CartPole-v1 hyperparameters given as flags;
  rejax            a script doing the job with PyPI rejax 0.1.3 and its tuned config (rejax has no command line):
                   jit(vmap(train)) over 16 seeds with its default evaluation, the final returns saved to a file.
Each of ours runs first with an empty compile cache (the first run) and then again (the rerun, which loads the
compiled training programs from the cache); rejax keeps no cache, so each of its runs is a first run. Every command
is a fresh process, so imports count. The compile seconds are what each side prints (ours: lowering and compiling
both training programs, side by side; rejax: lower + compile of its one program).

rejax 0.1.3 is benchmark-only: `pip install rejax==0.1.3 --no-deps chex`; benchmarks/rejax_compat.py gives it gymnax's
older 5-tuple step and, where distrax does not import, a plain-jax stand-in for its discrete distributions.

With --compile-only each command compiles its programs and trains only the least it may (ours: one evaluation
interval after any warm-up; rejax: lower and compile, no run): the compile figures are those of the same programs,
without waiting minutes for training.

Run: python benchmarks/whole_command.py [--algos ppo dqn sac] [--repeats 1] [--no-rerun] [--compile-only]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
SEEDS = 16

# PyPI rejax's tuned CartPole-v1 configs as our flags (benchmarks/rejax_configs.py holds its own; the mapping of names
# and of Polyak averaging is explained in bench_ppo.py, bench_dqn.py and bench_sac.py).
SAME_HP = {
    "ppo": dict(activation="tanh", num_envs=5, num_steps=100, num_epochs=5, num_minibatches=5, learning_rate=0.00075,
                max_grad_norm=0.5, total_timesteps=100_000, eval_freq=1000, gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
                ent_coef=0.01, vf_coef=0.5, anneal_lr=False, normalize_observations=False),
    "dqn": dict(num_envs=10, train_freq=1, gradient_steps=5, batch_size=100, buffer_size=50_000, learning_starts=5_000,
                learning_rate=1e-3, max_grad_norm=10.0, tau=0.02, target_update_freq=1, eps_start=1.0, eps_end=0.05,
                exploration_fraction=0.5, gamma=0.99, double=True, dueling=True, loss="mse", activation="swish",
                hidden_layer_sizes=(64, 64), normalize_observations=False, total_timesteps=100_000, eval_freq=2500),
    "sac": dict(num_envs=5, buffer_size=10_000, batch_size=256, learning_starts=1000, gradient_steps=2,
                learning_rate=1e-3, gamma=0.99, tau=1.0 - 0.95 ** 0.5, total_timesteps=50_000, eval_freq=500,
                activation="tanh", hidden_layer_sizes=(64, 64), num_critics=2, normalize_observations=False,
                max_grad_norm=float("inf"), init_alpha=1.0, target_entropy_scale=0.7),
}


def flags(overrides: dict) -> list:
    out = []
    for name, value in overrides.items():
        values = [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
        out += [f"--{name.replace('_', '-')}", *values]
    return out


def timed(command: list) -> tuple:
    """Run a command to its end; return (wall seconds, stdout). A failed command stops the benchmark."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return wall, result.stdout


def least_budget(algo: str, overrides: dict) -> int:
    """The fewest env steps the command accepts: any warm-up and one evaluation interval (no compile needed)."""
    sys.path.insert(0, ROOT)
    from common import get_agent

    config = get_agent(algo)[1].make("CartPole-v1", **overrides)
    return getattr(config, "learning_starts", 0) + config.eval_freq


def ours(algo: str, overrides: dict, cache: str, out: str, compile_only: bool = False) -> dict:
    if compile_only:
        overrides = {**overrides, "total_timesteps": least_budget(algo, overrides)}
    wall, stdout = timed([sys.executable, f"rejax_{algo}.py", "--env", "CartPole-v1", "--num-seeds", str(SEEDS),
                          *flags(overrides), "--compile-cache", cache, "--out", out])
    compile_s = float(re.search(r"compiled in ([\d.]+)s", stdout).group(1))
    final = json.load(open(os.path.join(out, "summary.json")))["final_return_mean"]
    return {"wall": wall, "compile": compile_s, "final": final}


def theirs(algo: str, out: str, compile_only: bool = False) -> dict:
    wall, _ = timed([sys.executable, os.path.abspath(__file__), "--rejax-job", algo, "--out", out,
                     *(["--compile-only"] if compile_only else [])])
    job = json.load(open(os.path.join(out, "rejax.json")))
    return {"wall": wall, "compile": job["compile"], "final": job["final"]}


def rejax_job(algo: str, out: str, compile_only: bool = False):
    """What a user of PyPI rejax writes: its tuned config, 16 seeds in one jitted vmapped call, results saved."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from gymnax import make
    from rejax_compat import FiveTupleStep, import_rejax
    from rejax_configs import CONFIGS

    rejax = import_rejax()

    config = {k: v for k, v in CONFIGS[(algo, "CartPole-v1")].items() if k != "env"}
    env, env_params = make("CartPole-v1")
    algo_cls = {"ppo": rejax.PPO, "dqn": rejax.DQN, "sac": rejax.SAC}[algo]
    agent = algo_cls.create(env=FiveTupleStep(env), env_params=env_params, **config)
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(agent.train)).lower(keys).compile()
    compile_s = time.perf_counter() - start
    os.makedirs(out, exist_ok=True)
    if compile_only:
        return json.dump({"compile": compile_s, "final": float("nan")}, open(os.path.join(out, "rejax.json"), "w"))
    _, (_, returns) = jax.block_until_ready(compiled(keys))  # rejax's evaluation: (lengths, returns)
    final = np.asarray(returns)[:, -1].mean(-1)
    np.save(os.path.join(out, "final_returns.npy"), final)
    json.dump({"compile": compile_s, "final": float(jnp.mean(final))}, open(os.path.join(out, "rejax.json"), "w"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=["ppo", "dqn", "sac"])
    parser.add_argument("--repeats", type=int, default=1, help="each measurement this many times; medians reported")
    parser.add_argument("--no-rerun", action="store_true", help="first runs only (rejax: one run)")
    parser.add_argument("--compile-only", action="store_true", help="train the least each command allows (above)")
    parser.add_argument("--rejax-job", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rejax_job:
        return rejax_job(args.rejax_job, args.out, args.compile_only)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; {SEEDS} seeds, CartPole-v1")
    print(f"{'algo':5s} {'command':16s} {'first run':>22s} {'rerun':>22s}   final return (first run)")
    runs = (1,) if args.no_rerun else (1, 2)
    for algo in args.algos:
        rows = {"ours, defaults": [], "ours, same hp": [], "rejax": []}
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                for name, overrides in (("ours, defaults", {}), ("ours, same hp", SAME_HP[algo])):
                    cache = os.path.join(tmp, name.replace(" ", ""))
                    rows[name].append([ours(algo, overrides, cache, os.path.join(tmp, f"{name}-{i}"), args.compile_only)
                                       for i in runs])
                rows["rejax"].append([theirs(algo, os.path.join(tmp, f"rejax-{i}"), args.compile_only) for i in runs])
        for name, measured in rows.items():
            cells = ["-", "-"]
            for i in range(len(runs)):
                wall = statistics.median(r[i]["wall"] for r in measured)
                compile_s = statistics.median(r[i]["compile"] for r in measured)
                cells[i] = f"{wall:6.1f}s (compile {compile_s:5.1f}s)"
            print(f"{algo:5s} {name:16s} {cells[0]:>22s} {cells[1]:>22s}   {measured[0][0]['final']:.1f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
