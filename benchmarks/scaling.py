"""Seed scaling: aggregate training steps/s of every algorithm against the number of vmapped seeds.

Each algorithm trains its default environment (CartPole-v1 for PPO, DQN and SAC; Pendulum-v1 for TD3 and DDPG) with
its tuned defaults, shortened to --steps-per-seed env steps after the warm-up, training only (the evaluation callback
returns a constant). For each seed count: compile time (lower + compile), the median wall time of --repeats calls,
aggregate env steps/s and `speed-up` = aggregate steps/s over that of one seed. Vmapping N seeds must never cost more
than N single-seed runs, i.e. speed-up >= 1. The numbers and a plot go to benchmarks/results/.

Run: python benchmarks/scaling.py [--algos ppo dqn sac td3 ddpg] [--seeds 1 4 16 64] [--repeats 3]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import common  # noqa: E402  (sets the XLA:CPU flags before the backend starts)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

DEFAULT_ENV = {"ppo": "CartPole-v1", "dqn": "CartPole-v1", "sac": "CartPole-v1", "td3": "Pendulum-v1",
               "ddpg": "Pendulum-v1"}


def no_eval(config, train_state, rng):
    return jnp.zeros(())


def shortened_config(algo: str, steps_per_seed: int):
    """The algorithm's tuned config on its default env, cut to `steps_per_seed` env steps after any warm-up."""
    _, Config = common.get_agent(algo)
    tuned = Config.make(DEFAULT_ENV[algo])
    warm_up = getattr(tuned, "learning_starts", 0)
    total = warm_up + steps_per_seed
    return Config.make(DEFAULT_ENV[algo], total_timesteps=total, eval_freq=total, eval_callback=no_eval)


def measure(algo: str, config, num_seeds: int, repeats: int) -> dict:
    train, _ = common.get_agent(algo)
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(train, in_axes=(None, 0))).lower(config, keys).compile()
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(config, keys))
        times.append(time.perf_counter() - start)
    train_s = statistics.median(times)
    return dict(algo=algo, seeds=num_seeds, compile_s=compile_s, train_s=train_s,
                steps_per_s=num_seeds * config.total_env_steps / train_s)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for algo in dict.fromkeys(r["algo"] for r in rows):
        mine = [r for r in rows if r["algo"] == algo]
        ax.plot([r["seeds"] for r in mine], [r["speedup"] for r in mine], marker="o", label=algo.upper())
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set(xscale="log", xlabel="vmapped seeds", ylabel="aggregate steps/s / 1-seed steps/s",
           title=f"Seed scaling, training only ({os.cpu_count()} CPUs, {jax.devices()[0].platform})")
    ax.set_xticks(sorted({r["seeds"] for r in rows}), labels=[str(s) for s in sorted({r["seeds"] for r in rows})])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=list(DEFAULT_ENV))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps-per-seed", type=int, nargs="+", default=None,
                        help="env steps per seed after warm-up, one per algorithm (default: PPO 50,000, others 4,000)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = parser.parse_args()
    steps = args.steps_per_seed or [50_000 if a == "ppo" else 4_000 for a in args.algos]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__} on {jax.devices()[0].platform}")
    print("| algorithm | env | steps/seed | seeds | compile s | train s | aggregate steps/s | speed-up vs 1 seed |")
    print("|---|---|---:|---:|---:|---:|---:|---:|", flush=True)
    rows = []
    for algo, steps_per_seed in zip(args.algos, steps):
        config = shortened_config(algo, steps_per_seed)
        single = None
        for n in args.seeds:
            row = measure(algo, config, n, args.repeats)
            single = single or (row["steps_per_s"] if n == 1 else None)
            row["speedup"] = row["steps_per_s"] / single if single else float("nan")
            rows.append(row)
            print(f"| {algo.upper()} | {DEFAULT_ENV[algo]} | {config.total_env_steps:,} | {n} | {row['compile_s']:.1f} "
                  f"| {row['train_s']:.2f} | {row['steps_per_s']:,.0f} | {row['speedup']:.2f}x |", flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "scaling.json"), "w") as f:
        json.dump(rows, f, indent=1)
    plot(rows, os.path.join(args.out, "seed_scaling.png"))
    print(f"wrote {os.path.join(args.out, 'scaling.json')} and seed_scaling.png")


if __name__ == "__main__":
    main()
