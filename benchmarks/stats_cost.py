"""What the summary statistics and the divergence check cost, against the run they belong to.

1. One default run through `cli.run` (PPO CartPole-v1, tuned defaults, --num-seeds seeds): its training time.
2. The in-run check (`cli.all_finite`, one `isfinite` reduction over the train state at every evaluation point),
   timed alone on that run's final train states (jitted and vmapped over the seeds, as inside the run; median of 200
   calls), times the number of evaluation points.
3. The host statistics after training (`cli.final_statistics` and the IQM curve's intervals), timed on that run's
   returns and on a 300-seed x 66-point array (the SAC headline's shape).

Run: python benchmarks/stats_cost.py [--num-seeds 16]
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
import numpy as np  # noqa: E402

import cli  # noqa: E402
import rejax_ppo  # noqa: E402


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
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {platform.machine()}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.1f}; PPO CartPole-v1 tuned defaults, {args.num_seeds} seeds")
    with tempfile.TemporaryDirectory() as out:
        run_args = cli.make_args_class(rejax_ppo.Config)(env="CartPole-v1", num_seeds=args.num_seeds, out=out)
        train_state, evaluation, summary = cli.run("ppo", rejax_ppo.Config, rejax_ppo.train,
                                                   rejax_ppo.PPO.eval_callback, run_args)
    train_seconds, points = summary["train_seconds"], np.asarray(evaluation["return"]).shape[1]
    check = jax.jit(jax.vmap(cli.all_finite)).lower(train_state).compile()
    times = []
    for _ in range(200):
        start = time.perf_counter()
        jax.block_until_ready(check(train_state))
        times.append(time.perf_counter() - start)
    check_seconds = statistics.median(times) * points
    print(f"\ntraining {train_seconds:.2f}s; divergence check {check_seconds * 1000:.2f} ms over {points} evaluation "
          f"points ({100 * check_seconds / train_seconds:.3f} % of the training time)")
    returns = np.asarray(evaluation["return"]).mean(-1)
    seconds = host_statistics_seconds(returns)
    print(f"host statistics for {returns.shape[0]} runs x {returns.shape[1]} points: {seconds * 1000:.0f} ms "
          f"({100 * seconds / train_seconds:.2f} % of the training time)")
    big = np.random.default_rng(0).normal(400, 50, size=(300, 66))
    print(f"host statistics for 300 runs x 66 points: {host_statistics_seconds(big) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
