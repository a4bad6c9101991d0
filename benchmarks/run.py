"""Run every benchmark, one process per comparison, and keep what each printed.

Each script runs in its own process, one after another, so the two sides of a comparison share one process and one
machine state and no two benchmarks compete for the cores. Output is shown live and saved to
benchmarks/results/<script>.txt; the scripts that make tables also write JSON and plots there. The comparisons with
PyPI rejax need it installed (see benchmarks/README.md); a script whose requirements are missing is reported and
skipped. --quick runs one repeat of each with fewer seeds (minutes instead of about an hour, figures noisier).

Run: python benchmarks/run.py [--quick] [--only ppo dqn iqn sac td3 pqn scaling eval_share cleanrl stats_cost whole_command]
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

# name: (script, arguments, arguments with --quick)
BENCHMARKS = {
    "ppo": ("bench_ppo.py", ["--repeats", "3"], ["--repeats", "1"]),
    "dqn": ("bench_dqn.py", ["--runs", "3"], ["--runs", "1"]),
    "iqn": ("bench_iqn.py", ["--runs", "3"], ["--runs", "1"]),
    "sac": ("bench_sac.py", ["--repeats", "3"], ["--repeats", "1", "--envs", "Pendulum-v1"]),
    "td3": ("bench_td3.py", ["--runs", "3"], ["--runs", "1"]),
    "pqn": ("bench_pqn.py", ["--runs", "5"], ["--runs", "1"]),
    "scaling": ("scaling.py", ["--repeats", "3"], ["--repeats", "1", "--seeds", "1", "4", "16"]),
    "eval_share": ("eval_share.py", ["--repeats", "3"], ["--repeats", "1"]),
    "cleanrl": ("bench_cleanrl.py", [], []),
    "stats_cost": ("stats_cost.py", [], ["--num-seeds", "4"]),
    "whole_command": ("whole_command.py", [], ["--algos", "ppo"]),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="one repeat each, fewer seeds")
    parser.add_argument("--cleanrl-ppo", default=None, help="cleanRL's ppo.py, passed on to bench_cleanrl.py")
    args = parser.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    outcome = {}
    for name in args.only:
        script, full, quick = BENCHMARKS[name]
        command = [sys.executable, os.path.join(HERE, script), *(quick if args.quick else full)]
        if name == "cleanrl" and args.cleanrl_ppo:
            command += ["--cleanrl-ppo", args.cleanrl_ppo]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        with open(os.path.join(RESULTS, f"{name}.txt"), "w") as log:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for line in process.stdout:
                if "Failed to import warp" in line or "jax.monitoring" in line:  # brax's import noise
                    continue
                sys.stdout.write(line)
                log.write(line)
            process.wait()
        minutes = (time.perf_counter() - start) / 60
        outcome[name] = f"{'ok' if process.returncode == 0 else f'FAILED (exit {process.returncode})'}, {minutes:.1f} min"
    print("\n=== summary (full output in benchmarks/results/)")
    for name, result in outcome.items():
        print(f"  {name:10s} {result}")
    return 0 if all(r.startswith("ok") for r in outcome.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
