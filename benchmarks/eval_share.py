"""Evaluation cost: the share of a default run spent in the evaluation callback, for every algorithm.

A default run is what `python rejax_<algo>.py --env ENV` trains: the tuned config of the algorithm's default
environment (CartPole-v1 for PPO, DQN and SAC; Pendulum-v1 for TD3 and DDPG), one seed unless --seeds says otherwise.
Each is compiled twice, once with the default evaluation callback and once with a callback that returns a constant;
the runs alternate and the share is 1 - median(time without evaluation) / median(time with it). Goal: <= 15 %.

Run: python benchmarks/eval_share.py [--algos ppo dqn sac td3 ddpg] [--seeds 1] [--repeats 3]
"""

import argparse
import json
import os
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


def share(algo: str, num_seeds: int, repeats: int) -> dict:
    train, Config = common.get_agent(algo)
    config = Config.make(DEFAULT_ENV[algo])
    variants = {"default": config, "no-eval": config.replace(eval_callback=lambda c, ts, rng: jnp.zeros(()))}
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    compiled = {name: jax.jit(jax.vmap(train, in_axes=(None, 0))).lower(c, keys).compile()
                for name, c in variants.items()}
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, c in variants.items():  # alternate, so both see the same machine state
            start = time.perf_counter()
            jax.block_until_ready(compiled[name](c, keys))
            times[name].append(time.perf_counter() - start)
    default, no_eval = statistics.median(times["default"]), statistics.median(times["no-eval"])
    return dict(algo=algo, env=DEFAULT_ENV[algo], seeds=num_seeds, evaluations=config.num_evals + 1,
                episodes=config.num_eval_episodes, total_env_steps=config.total_env_steps, default_s=default,
                no_eval_s=no_eval, share=1 - no_eval / default)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=list(DEFAULT_ENV))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = parser.parse_args()
    print("| algorithm | env | env steps | evaluation points x episodes | run with evaluation s | without s | "
          "evaluation share |")
    print("|---|---|---:|---|---:|---:|---:|", flush=True)
    rows = []
    for algo in args.algos:
        r = share(algo, args.seeds, args.repeats)
        rows.append(r)
        print(f"| {algo.upper()} | {r['env']} | {r['total_env_steps']:,} | {r['evaluations']} x {r['episodes']} | "
              f"{r['default_s']:.2f} | {r['no_eval_s']:.2f} | {100 * r['share']:.1f} % |", flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "eval_share.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
