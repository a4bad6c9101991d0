"""What the summary statistics and the divergence check cost, against the run they belong to.

1. The in-run check (`cli.all_finite`, one `isfinite` reduction over the train state at every evaluation point):
   PPO CartPole-v1 at its tuned defaults through `cli.run`, with the check and with it replaced by a constant,
   alternating, training time only (compile excluded), median of --repeats.
2. The host statistics after training (`cli.summarize` and the IQM curve's intervals in `save_results`), timed on
   the returns of that run and on a 300-seed x 66-point array of random returns (the SAC headline's shape).

Run: python benchmarks/stats_cost.py [--num-seeds 16] [--repeats 3]
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import cli  # noqa: E402
import rejax_ppo  # noqa: E402


def timed_run(num_seeds: int, check: bool, out: str):
    original = cli.all_finite
    cli.all_finite = original if check else (lambda train_state: jnp.array(True))
    try:
        args = cli.make_args_class(rejax_ppo.Config)(env="CartPole-v1", num_seeds=num_seeds, out=out)
        _, evaluation, summary = cli.run("ppo", rejax_ppo.Config, rejax_ppo.train, rejax_ppo.PPO.eval_callback, args)
    finally:
        cli.all_finite = original
    return summary["train_seconds"], evaluation


def host_statistics_seconds(returns, repeats: int = 3) -> float:
    """Seconds for the summary statistics and the IQM curve's intervals of `returns` [runs, points]."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        cli.final_statistics(returns[:, -1])
        cli.bootstrap_interval(cli.iqm, returns.T)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-seeds", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {platform.machine()}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.1f}; PPO CartPole-v1 tuned defaults, {args.num_seeds} seeds")
    times = {True: [], False: []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):
            for check in (True, False):
                seconds, evaluation = timed_run(args.num_seeds, check, out)
                times[check].append(seconds)
    with_check, without = statistics.median(times[True]), statistics.median(times[False])
    print(f"\ntraining time, median of {args.repeats}: with the check {with_check:.2f}s, without {without:.2f}s "
          f"({100 * (with_check - without) / without:+.1f} %)")
    returns = np.asarray(evaluation["return"]).mean(-1)
    seconds = host_statistics_seconds(returns)
    print(f"host statistics for {returns.shape[0]} runs x {returns.shape[1]} points: {seconds * 1000:.0f} ms "
          f"({100 * seconds / with_check:.2f} % of the training time)")
    big = np.random.default_rng(0).normal(400, 50, size=(300, 66))
    print(f"host statistics for 300 runs x 66 points: {host_statistics_seconds(big) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
