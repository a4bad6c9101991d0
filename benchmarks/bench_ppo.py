"""PPO speed, side by side with PyPI rejax 0.1.3, in one process and with identical hyperparameters.

Both sides train CartPole-v1 with rejax's tuned config (5 envs x 100 steps, 5 epochs x 5 minibatches, lr 7.5e-4,
100,000 steps), for 1 and 16 vmapped seeds, in two modes:
  train-only : the evaluation callback returns a constant, so only training is timed;
  default-eval: each library's own default evaluation (rejax: 128 episodes every 1,000 steps;
                ours: 8 deterministic episodes every 10,000 steps plus the free training-episode returns).
Runs alternate between the libraries; each cell is the median of --repeats runs. Compile time is lower + compile.

Setup (rejax is benchmark-only, never in requirements.txt):  pip install rejax==0.1.3 --no-deps chex
(benchmarks/rejax_compat.py runs it beside gymnax 1.0.1)
Run:                                                          python benchmarks/bench_ppo.py [--repeats 3]
"""

import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402  (sets the XLA:CPU flag before the backend starts)
import rejax_ppo  # noqa: E402
from rejax_compat import FiveTupleStep, import_rejax  # noqa: E402

REJAX_CARTPOLE = dict(
    agent_kwargs=dict(activation="tanh"), num_envs=5, num_steps=100, num_epochs=5, num_minibatches=5,
    learning_rate=0.00075, max_grad_norm=0.5, total_timesteps=100_000, eval_freq=1000, gamma=0.99, gae_lambda=0.95,
    clip_eps=0.2, ent_coef=0.01, vf_coef=0.5,
)
OURS_CARTPOLE = dict(
    activation="tanh", num_envs=5, num_steps=100, num_epochs=5, num_minibatches=5, learning_rate=0.00075,
    max_grad_norm=0.5, total_timesteps=100_000, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5,
    anneal_lr=False, normalize_observations=False,
)



def rejax_setup(train_only: bool):
    rejax = import_rejax()
    env, params = common.make_env("CartPole-v1")
    algo = rejax.PPO.create(env=FiveTupleStep(env), env_params=params, **REJAX_CARTPOLE)
    if train_only:
        algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))

    def final_return(evaluation):
        return np.asarray(evaluation[1])[..., -1, :].mean(-1)  # rejax: (lengths, returns) [.., evals, episodes]

    return (lambda rng: algo.train(rng)), final_return


def ours_setup(train_only: bool):
    config = rejax_ppo.Config.make("CartPole-v1", **OURS_CARTPOLE)
    if train_only:
        config = config.replace(eval_callback=lambda config, ts, rng: jnp.zeros(()))

    def final_return(evaluation):
        return np.asarray(evaluation["return"])[..., -1, :].mean(-1)

    return (lambda rng: rejax_ppo.train(config, rng)), final_return


def measure(setup, train_only, num_seeds):
    train, final_return = setup(train_only)
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    fn = jax.vmap(train) if num_seeds > 1 else (lambda k: train(k[0]))
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(keys).compile()
    compile_time = time.perf_counter() - start
    start = time.perf_counter()
    _, evaluation = jax.block_until_ready(compiled(keys))
    run_time = time.perf_counter() - start
    returns = None if train_only else final_return(evaluation)
    return compile_time, 100_000 * num_seeds / run_time, returns


def evaluation_share(num_seeds: int, repeats: int):
    """Share of a default run (tuned CartPole-v1 config, default callback) spent in evaluation: 1 - t_train / t_default."""
    config = rejax_ppo.Config.make("CartPole-v1")
    keys = jax.random.split(jax.random.PRNGKey(0), num_seeds)
    variants = {"default": config, "train-only": config.replace(eval_callback=lambda c, ts, rng: jnp.zeros(()))}
    compiled = {k: jax.jit(jax.vmap(rejax_ppo.train, in_axes=(None, 0))).lower(c, keys).compile()
                for k, c in variants.items()}
    times = {k: [] for k in variants}
    for _ in range(repeats):
        for k, c in variants.items():
            start = time.perf_counter()
            jax.block_until_ready(compiled[k](c, keys))
            times[k].append(time.perf_counter() - start)
    default, train_only = statistics.median(times["default"]), statistics.median(times["train-only"])
    print(f"evaluation share of a default CartPole-v1 run ({num_seeds} seeds, {config.num_evals + 1} evaluation "
          f"points x {config.num_eval_episodes} episodes): {100 * (1 - train_only / default):.1f}% "
          f"({default:.2f}s with evaluation, {train_only:.2f}s without)", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--eval-share-only", action="store_true", help="only measure the evaluation share")
    args = parser.parse_args()
    if args.eval_share_only:
        return evaluation_share(16, args.repeats)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__} on {jax.devices()[0].platform}")
    rows = []
    for train_only in (True, False):
        for num_seeds in args.seeds:
            results = {"ours": [], "rejax": []}
            for _ in range(args.repeats):  # alternate, so both see the same machine state
                for name, setup in (("ours", ours_setup), ("rejax", rejax_setup)):
                    results[name].append(measure(setup, train_only, num_seeds))
            mode = "train-only" if train_only else "default-eval"
            cell = {}
            for name, runs in results.items():
                compile_time = statistics.median(r[0] for r in runs)
                sps = statistics.median(r[1] for r in runs)
                ret = "" if runs[0][2] is None else f"{np.mean(runs[0][2]):7.1f} ± {np.std(runs[0][2]):5.1f}"
                cell[name] = (sps, compile_time)
                print(f"{mode:12s} seeds={num_seeds:<3d} {name:5s}: {sps:>10,.0f} steps/s  compile {compile_time:5.1f}s"
                      f"  final return {ret}", flush=True)
            ratio = cell["ours"][0] / cell["rejax"][0]
            print(f"{mode:12s} seeds={num_seeds:<3d} ratio ours/rejax steps/s: {ratio:.2f}x; compile "
                  f"{cell['ours'][1]:.1f}s vs {cell['rejax'][1]:.1f}s", flush=True)
            rows.append((mode, num_seeds, cell, ratio))
    evaluation_share(16, args.repeats)
    print("\n| mode | seeds | ours steps/s | rejax steps/s | ratio | ours compile | rejax compile |")
    print("|---|---|---|---|---|---|---|")
    for mode, num_seeds, cell, ratio in rows:
        print(f"| {mode} | {num_seeds} | {cell['ours'][0]:,.0f} | {cell['rejax'][0]:,.0f} | {ratio:.2f}x | "
              f"{cell['ours'][1]:.1f}s | {cell['rejax'][1]:.1f}s |")


if __name__ == "__main__":
    main()
