"""Aggregate training speed of rejax_sac.py against the number of vmapped seeds, on the CartPole-v1 defaults.

Training only (the evaluation callback returns a zero), a shortened run of --total-timesteps env steps per seed with
every other setting at its CartPole-v1 default. For each seed count: compile time, wall time, aggregate env steps/s and
gradient steps/s, and the cost relative to running the seeds one after another (time(N) / (N * time(1)); below 1 means
vmapping is cheaper than separate runs).

Run: python benchmarks/scaling_sac.py [--seeds 1 4 16 64 300] [--total-timesteps 9000]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import rejax_sac  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--total-timesteps", type=int, default=9_000)
    args = parser.parse_args()
    config = rejax_sac.Config.make(args.env, total_timesteps=args.total_timesteps, eval_freq=args.total_timesteps,
                                   eval_callback=lambda *a: jnp.zeros(()))
    grad_steps = config.num_evals * config.iterations_per_eval * config.gradient_steps
    print(f"{args.env}: {config.total_env_steps:,} env steps and {grad_steps:,} gradient steps per seed "
          f"(batch {config.batch_size}, hidden {config.hidden_layer_sizes}, {config.num_envs} envs)")
    print("| seeds | compile s | train s | env steps/s | gradient steps/s | time / (N x time(1 seed)) |")
    print("|---:|---:|---:|---:|---:|---:|")
    single = None
    for n in args.seeds:
        keys = jax.random.split(jax.random.PRNGKey(0), n)
        start = time.perf_counter()
        fn = jax.jit(jax.vmap(rejax_sac.train, in_axes=(None, 0))).lower(config, keys).compile()
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        jax.block_until_ready(fn(config, keys))
        train_s = time.perf_counter() - start
        single = train_s if single is None and n == 1 else single
        relative = f"{train_s / (n * single):.2f}" if single else "-"
        print(f"| {n} | {compile_s:.1f} | {train_s:.1f} | {n * config.total_env_steps / train_s:,.0f} | "
              f"{n * grad_steps / train_s:,.0f} | {relative} |", flush=True)


if __name__ == "__main__":
    main()
