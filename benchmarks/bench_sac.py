"""rejax_sac.py against PyPI rejax 0.1.3's SAC, in the same process, with rejax's tuned hyperparameters.

Training only: both sides get an evaluation callback that returns a zero, so the figures are collection + updates.
For each env: compile both (timed), then run ours and rejax's alternately `--repeats` times and report the median
steps/s, plus the final return of the last run's policy (32 deterministic-as-the-library-acts episodes, played with
common.evaluate on the same env).

Hyperparameter mapping (rejax name -> ours): fill_buffer -> learning_starts, num_epochs -> gradient_steps,
agent_kwargs.activation -> activation, target_entropy_ratio -> target_entropy_scale, polyak -> tau. rejax applies
its Polyak step once per iteration (every num_envs env steps) with `polyak` = fraction kept; ours applies `tau` =
fraction moved at every gradient step, so the equal per-iteration decay is tau = 1 - polyak ** (1 / gradient_steps)
(= 1 - polyak when gradient_steps = 1). rejax's max_grad_norm is inf by default (not set in its tuned SAC configs), so
ours is inf too. rejax runs beside gymnax 1.0.1 through benchmarks/rejax_compat.py (done = terminated | truncated).

Run: python benchmarks/bench_sac.py [--envs Pendulum-v1 CartPole-v1] [--repeats 3] [--num-seeds 1]
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import common  # noqa: E402
import rejax_sac  # noqa: E402

from rejax_compat import FiveTupleStep, import_rejax  # noqa: E402  (beside this script)
from rejax_configs import CONFIGS  # noqa: E402


def zero_callback(*args):
    return jnp.zeros(())


def our_config(env_name, reference):
    gradient_steps = reference["num_epochs"]
    overrides = dict(
        num_envs=reference["num_envs"], buffer_size=reference["buffer_size"], batch_size=reference["batch_size"],
        learning_starts=reference["fill_buffer"], gradient_steps=gradient_steps,
        learning_rate=reference["learning_rate"], gamma=reference["gamma"],
        tau=1.0 - reference["polyak"] ** (1.0 / gradient_steps),
        total_timesteps=reference["total_timesteps"], eval_freq=reference["eval_freq"],
        activation=reference["agent_kwargs"]["activation"], hidden_layer_sizes=(64, 64), num_critics=2,
        normalize_observations=reference.get("normalize_observations", False), max_grad_norm=float("inf"),
        init_alpha=1.0, eval_callback=zero_callback,
    )
    if reference.get("target_entropy_ratio") is not None:
        overrides["target_entropy_scale"] = reference["target_entropy_ratio"]
    return rejax_sac.Config.make(env_name, **overrides)


def rejax_algo(env_name, reference):
    rejax = import_rejax()
    env, env_params = common.make_env(env_name)
    config = {k: v for k, v in reference.items() if k != "env"}
    algo = rejax.SAC.create(env=FiveTupleStep(env), env_params=env_params, **config)
    return algo.replace(eval_callback=zero_callback)


def final_return(act, env_name, rng):
    env, env_params = common.make_env(env_name)
    _, returns = jax.jit(lambda r: common.evaluate(act, r, env, env_params, 32, env_params.max_steps_in_episode))(rng)
    return float(returns.mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", nargs="+", default=["Pendulum-v1", "CartPole-v1"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-seeds", type=int, default=1, help="seeds vmapped in one call on both sides")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cpus, {args.num_seeds} seed(s)")

    for env_name in args.envs:
        reference = CONFIGS[("sac", env_name)]
        ours, theirs = our_config(env_name, reference), rejax_algo(env_name, reference)
        keys = jax.random.split(jax.random.PRNGKey(0), args.num_seeds)
        ours_fn = jax.vmap(lambda rng: rejax_sac.train(ours, rng))
        theirs_fn = jax.vmap(lambda rng: theirs.train(rng))
        compiled, compile_s, times = {}, {}, {"ours": [], "rejax": []}
        for name, fn in (("ours", ours_fn), ("rejax", theirs_fn)):
            start = time.perf_counter()
            compiled[name] = jax.jit(fn).lower(keys).compile()
            compile_s[name] = time.perf_counter() - start
        states = {}
        for _ in range(args.repeats):
            for name in ("ours", "rejax"):
                start = time.perf_counter()
                states[name] = jax.block_until_ready(compiled[name](keys))[0]
                times[name].append(time.perf_counter() - start)

        steps = {"ours": ours.total_env_steps, "rejax": reference["total_timesteps"]}
        rate = {name: steps[name] * args.num_seeds / statistics.median(times[name]) for name in times}
        ts_ours, ts_rejax = common.select_seed(states["ours"], 0), common.select_seed(states["rejax"], 0)
        returns = {"ours": final_return(rejax_sac.make_act(ours, ts_ours), env_name, jax.random.PRNGKey(1)),
                   "rejax": final_return(theirs.make_act(ts_rejax), env_name, jax.random.PRNGKey(1))}
        print(f"\n{env_name}: {steps['ours']:,} env steps per seed (rejax {steps['rejax']:,}), "
              f"median of {args.repeats} alternating runs")
        for name in ("ours", "rejax"):
            print(f"  {name:6s} {rate[name]:>9,.0f} steps/s   compile {compile_s[name]:5.1f}s   "
                  f"runs {', '.join(f'{t:.2f}s' for t in times[name])}   final return (seed 0) {returns[name]:8.1f}")
        print(f"  ratio ours/rejax: {rate['ours'] / rate['rejax']:.2f}x steps/s", flush=True)


if __name__ == "__main__":
    main()
