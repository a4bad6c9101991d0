"""Seed i alone: is seed i of a vmapped run the same as seed i trained on its own?

The CLI trains seed `--seed + i` from `jax.random.PRNGKey(seed + i)`, in one jitted program vmapped over all seeds.
This script trains the same keys through four programs and compares seed 1 between them, at each algorithm's tuned
CartPole-v1 defaults (only `eval_freq` is made finer, so that the curves have more points; `num_evals` stops the run
early, so the learning-rate and exploration schedules are those of the full default run):

  vmap16  seeds 0..15, `jax.jit(jax.vmap(train))`            (a 16-seed run)
  vmap3   seeds 0..2, the same                                 (a 3-seed run); also called with the keys reversed
  vmap1   seed 1 alone, vmapped over a batch of 1              (what the CLI runs for `--num-seeds 1`)
  jit     seed 1 alone, `jax.jit(train)`, no vmap              (the Python API's single run)

Every evaluation point also returns the flattened learned parameters, so the tables show where the programs part:
the largest absolute parameter difference, and whether the evaluation returns (all episodes) are still equal.

Run: python benchmarks/seed_alone.py [ppo] [dqn] [sac]     (default: ppo. On 2 vCPUs shared with other jobs, load
about 7: PPO about 2 min, DQN 2.3 min, SAC 4.3 min, almost all of it compiling the four programs. Results and the
statement they support: benchmarks/seed_alone.md.)
"""

import argparse
import importlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

import common  # noqa: E402

# Per algorithm: the evaluation interval used here (env steps) and how many intervals to train.
SETTINGS = {"ppo": dict(eval_freq=1_000, intervals=20), "dqn": dict(eval_freq=2_000, intervals=15),
            "sac": dict(eval_freq=2_000, intervals=12)}


def learned(train_state):
    """Every learned array of a train state, as one flat vector."""
    names = ("params", "actor_params", "critic_params", "log_alpha")
    return ravel_pytree([getattr(train_state, n) for n in names if hasattr(train_state, n)])[0]


def make_config(algo, **overrides):
    """The tuned CartPole-v1 config, whose evaluation points also return the learned parameters."""
    module = importlib.import_module(f"rejax_{algo}")
    default_callback = getattr(module, algo.upper()).eval_callback

    def callback(config, train_state, rng):
        return {**default_callback(config, train_state, rng), "params": learned(train_state),
                "env_steps": train_state.global_step}

    return module.train, module.Config.make("CartPole-v1", eval_callback=callback, **overrides)


def cli_keys(seeds):
    """The keys as the CLI forms them: PRNGKey(seed + i), vmapped."""
    return jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))


def programs(train_fn, config, intervals):
    one = lambda key: train_fn(config, key, num_evals=intervals)  # noqa: E731
    return jax.jit(one), jax.jit(jax.vmap(one))


def evaluation_of(out, index):
    """(params [points, P], returns [points, episodes], env steps [points]) of run `index` of a vmapped output
    (None: unbatched)."""
    evaluation = out[1]
    pick = (lambda x: np.asarray(x)) if index is None else (lambda x: np.asarray(x)[index])
    return pick(evaluation["params"]), pick(evaluation["return"]), pick(evaluation["env_steps"])


def identical(a, b):
    """Bit-for-bit equality of two pytrees (NaNs in the same places count as equal)."""
    return all(np.array_equal(x, y, equal_nan=True) for x, y in
               zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def compare(a, b):
    """Per evaluation point: max abs parameter difference, and whether all evaluation returns are equal."""
    return np.abs(a[0] - b[0]).max(-1), np.all(a[1] == b[1], -1)


def study(algo):
    settings = SETTINGS[algo]
    train_fn, config = make_config(algo, eval_freq=settings["eval_freq"])
    single, batched = programs(train_fn, config, settings["intervals"])
    start = time.perf_counter()
    out16 = batched(cli_keys(np.arange(16)))
    out3 = batched(cli_keys(np.arange(3)))
    out3_again = batched(cli_keys(np.arange(3)))
    out3_reversed = batched(cli_keys(np.arange(3)[::-1]))
    out1 = batched(cli_keys([1]))
    out_jit = single(jax.random.PRNGKey(1))
    seconds = time.perf_counter() - start
    runs = {"vmap16": evaluation_of(out16, 1), "vmap3": evaluation_of(out3, 1),
            "vmap3 reversed": evaluation_of(out3_reversed, 1), "vmap1": evaluation_of(out1, 0),
            "jit": evaluation_of(out_jit, None)}
    states = {"vmap16": common.select_seed(out16[0], 1), "vmap3": common.select_seed(out3[0], 1),
              "vmap1": common.select_seed(out1[0], 0), "jit": out_jit[0]}
    repeat = identical(out3, out3_again)

    print(f"\n## {algo.upper()} CartPole-v1, tuned defaults, eval_freq {settings['eval_freq']:,}; seed 1 compared; "
          f"{seconds:.0f} s")
    print(f"two calls of one program (vmap3) bit-identical, whole output: {repeat}")

    print("\nAt the start (initial parameters, first evaluation):")
    print("| pair | max abs param diff | first evaluation equal |")
    print("|---|---:|---|")
    pairs = [("vmap16", "vmap3"), ("vmap3", "vmap3 reversed"), ("vmap3", "vmap1"), ("vmap3", "jit"),
             ("vmap1", "jit")]
    for a, b in pairs:
        diff, same = compare(runs[a], runs[b])
        print(f"| {a} vs {b} | {diff[0]:.3g} | {'yes' if same[0] else 'no'} |")

    print("\nFinal train state bit-identical (all fields): " + ", ".join(
        f"{a} vs {b}: {identical(states[a], states[b])}" for a, b in [("vmap16", "vmap3"), ("vmap3", "vmap1"),
                                                                      ("vmap1", "jit")]))

    print("\nHow it grows (max abs param diff; = evaluation returns equal, x not):")
    print("| env steps | " + " | ".join(f"{a} vs {b}" for a, b in pairs) + " |")
    print("|---:|" + "---:|" * len(pairs))
    columns = [compare(runs[a], runs[b]) for a, b in pairs]
    for point in range(len(columns[0][0])):
        env_steps = int(runs["jit"][2][point])
        cells = [f"{diff[point]:.3g} {'=' if same[point] else 'x'}" for diff, same in columns]
        print(f"| {env_steps:,} | " + " | ".join(cells) + " |")
    returns = {name: runs[name][1].mean(-1) for name in ("vmap3", "jit")}
    print("\nmean evaluation return of seed 1, vmap3 / jit: " + ", ".join(
        f"{a:.0f}/{b:.0f}" for a, b in zip(returns["vmap3"], returns["jit"])))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("algos", nargs="*", help="any of ppo, dqn, sac (default: ppo)")
    args = parser.parse_args()
    unknown = sorted(set(args.algos) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown algorithm(s) {', '.join(unknown)}; choose from {', '.join(SETTINGS)}")
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    for algo in args.algos or ["ppo"]:
        study(algo)


if __name__ == "__main__":
    main()
