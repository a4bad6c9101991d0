"""Time to train 16 PPO agents on CartPole-v1 with cleanRL's default hyperparameters: ours in one vmapped call
(compilation included) against cleanRL's ppo.py (PyTorch on the CPU), one seed per process.

cleanRL's ppo.py defaults, used on both sides: 4 envs x 128 steps, 4 epochs x 4 minibatches, Adam 2.5e-4 (eps 1e-5)
annealed to 0, gamma 0.99, GAE lambda 0.95, clip 0.2, clipped value loss, entropy 0.01, value coefficient 0.5,
grad-norm 0.5, tanh 64-64 actor and critic, 500,000 env steps per seed.

cleanRL is benchmark-only and never in requirements.txt: pip cannot install its scripts (PyPI's `cleanrl` is a 2021
release), so pass the ppo.py of a cleanRL checkout with --cleanrl-ppo. The script then makes its own venv
(benchmarks/.venv-cleanrl: torch 2.13.0 CPU, gymnasium 0.29.1, tyro, tensorboard), runs the seeds one process at a
time (or --parallel of them) and reads the SPS that ppo.py prints. Without --cleanrl-ppo only our side runs and the
ratio uses --cleanrl-sps (the figure measured for cleanRL's ppo.py on the project's machine, 6.9k steps/s per process).

Run: python benchmarks/bench_cleanrl.py [--seeds 16] [--cleanrl-ppo ~/cleanrl/cleanrl/ppo.py]
"""

import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import common  # noqa: E402  (sets the XLA:CPU flags before the backend starts)
import jax  # noqa: E402
import numpy as np  # noqa: E402

import rejax_ppo  # noqa: E402

TOTAL = 499_712  # cleanRL's 500,000 in whole iterations of 512 steps (976 of them), as its loop runs
CLEANRL_PPO = dict(num_envs=4, num_steps=128, num_epochs=4, num_minibatches=4, learning_rate=2.5e-4, anneal_lr=True,
                   gamma=0.99, gae_lambda=0.95, clip_eps=0.2, clip_value_loss=True, ent_coef=0.01, vf_coef=0.5,
                   max_grad_norm=0.5, activation="tanh", hidden_layer_sizes=(64, 64), normalize_observations=False,
                   total_timesteps=TOTAL, eval_freq=TOTAL // 8)  # 122 iterations between evaluations
VENV = os.path.join(ROOT, "benchmarks", ".venv-cleanrl")
PACKAGES = ["torch==2.13.0", "gymnasium==0.29.1", "tyro", "tensorboard", "numpy<2"]


def ours(num_seeds: int):
    """Wall time from the call to the result, compilation included, and each seed's final return."""
    config = rejax_ppo.Config.make("CartPole-v1", **CLEANRL_PPO)
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    start = time.perf_counter()
    _, evaluation = jax.block_until_ready(jax.jit(jax.vmap(rejax_ppo.train, in_axes=(None, 0)))(config, keys))
    wall = time.perf_counter() - start
    return wall, np.asarray(evaluation["return"])[:, -1].mean(-1), config.total_env_steps


def cleanrl(ppo_py: str, num_seeds: int, parallel: int):
    """Run cleanRL's ppo.py once per seed in its own venv; return (wall time of all seeds, per-process SPS)."""
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *PACKAGES], check=True)
    uses_tyro = "tyro" in open(ppo_py).read()  # current cleanRL; older releases use argparse with value flags
    flags = ["--no-cuda", "--no-track"] if uses_tyro else ["--cuda", "False", "--track", "False"]
    start, sps, running = time.perf_counter(), [], []
    for seed in range(1, num_seeds + 1):
        command = [python, ppo_py, "--seed", str(seed), "--env-id", "CartPole-v1", "--total-timesteps", "500000",
                   *flags]
        running.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        cwd=os.path.join(VENV, "..")))
        if len(running) == parallel or seed == num_seeds:
            for process in running:
                out, _ = process.communicate()
                found = re.findall(r"SPS:\s*(\d+)", out)
                if process.returncode or not found:
                    raise RuntimeError(f"cleanRL's ppo.py failed:\n{out[-2000:]}")
                sps.append(int(found[-1]))
            running = []
    return time.perf_counter() - start, sps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--cleanrl-ppo", default=None, help="path to cleanRL's ppo.py (a checkout of cleanRL)")
    parser.add_argument("--parallel", type=int, default=1, help="cleanRL processes at a time")
    parser.add_argument("--cleanrl-sps", type=float, default=6_900.0,
                        help="cleanRL's steps/s per process when --cleanrl-ppo is not given")
    args = parser.parse_args()
    wall, returns, steps = ours(args.seeds)
    ours_sps = args.seeds * steps / wall
    print(f"ours  : {args.seeds} seeds x {steps:,} steps in {wall:.1f} s (compile included) = {ours_sps:,.0f} "
          f"steps/s; final return {returns.mean():.1f} ± {returns.std():.1f} (min {returns.min():.1f})", flush=True)
    if args.cleanrl_ppo:
        cleanrl_wall, sps = cleanrl(args.cleanrl_ppo, args.seeds, args.parallel)
        cleanrl_sps = args.seeds * TOTAL / cleanrl_wall
        print(f"cleanRL: {args.seeds} seeds in {cleanrl_wall:.1f} s ({args.parallel} at a time) = {cleanrl_sps:,.0f} "
              f"steps/s; per process median {np.median(sps):,.0f}")
    else:
        cleanrl_wall, cleanrl_sps = args.seeds * TOTAL / args.cleanrl_sps, args.cleanrl_sps
        print(f"cleanRL: not run (no --cleanrl-ppo); {args.cleanrl_sps:,.0f} steps/s one seed after another "
              f"= {cleanrl_wall:.0f} s for {args.seeds} seeds")
    print(f"time to train {args.seeds} agents: ours {wall:.1f} s, cleanRL {cleanrl_wall:.0f} s; "
          f"ratio {ours_sps / cleanrl_sps:.1f}x")


if __name__ == "__main__":
    main()
