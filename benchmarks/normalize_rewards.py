"""normalize_rewards on CartPole-v1 with every reward multiplied by 1,000, at CartPole's tuned values: final
evaluation return (raw, divided by 1,000 here) per seed, with the switch on and off.

Run: python benchmarks/normalize_rewards.py [--seeds 4] [--algos ppo dqn sac] [--on-only] [--set NAME=NUMBER ...]

Results (2026-11-30, the 2-vCPU box, shared with another job; seconds include compiling), final return / 1000:
  --seeds 4:  PPO on 500.0 x4 (off: 119.5, 108.1, 112.6, 103.8), 27 s; DQN on 500.0, 500.0, 383.0, 500.0
              (off: 159.8, 155.5, 229.8, 202.9), 29 s; SAC on 500.0 x4 (off: 9.6, 9.5, 9.1, 9.5), 33 s.
  --seeds 8 --algos dqn sac --on-only:  DQN 6 of 8 at 500.0 (others 383.9, 222.6; mean 450.8), 45 s;
              SAC 8 of 8 at 500.0, 40 s.
  --seeds 4 --algos pqn:  on 247.5, 451.1, 213.5, 385.8 (off: mean 9.3), 22 s. CartPole's tuned reward_scale 0.1
              shrinks the normalised rewards tenfold more; with --set reward_scale=1 --on-only: 500.0 x4, 21 s.
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import jax  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402
from test_normalize_rewards import SCALE, ScaledRewardCartPole  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--algos", nargs="+", default=["ppo", "dqn", "sac"])
    parser.add_argument("--on-only", action="store_true", help="skip the runs with normalize_rewards off")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=NUMBER", help="override tuned values")
    args = parser.parse_args()
    env = ScaledRewardCartPole()
    for algo in args.algos:
        train, config_cls = common.get_agent(algo)
        tuned = {**sys.modules[f"rejax_{algo}"].TUNED["CartPole-v1"],
                 **{name: float(value) for name, value in (item.split("=") for item in args.set)}}
        for on in (True,) if args.on_only else (True, False):
            config = config_cls.make(env=env, normalize_rewards=on, **tuned)
            start = time.perf_counter()
            keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
            _, evaluation = jax.jit(jax.vmap(train, in_axes=(None, 0)))(config, keys)
            final = np.asarray(evaluation["return"])[:, -1].mean(-1) / SCALE
            print(f"{algo} normalize_rewards={on}: {config.total_env_steps} env steps, final return / 1000 per seed "
                  f"{', '.join(f'{x:.1f}' for x in final)} (mean {final.mean():.1f}), {time.perf_counter() - start:.1f} s",
                  flush=True)


if __name__ == "__main__":
    main()
