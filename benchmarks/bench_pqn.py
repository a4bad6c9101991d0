"""PQN on CartPole-v1: this repository's rejax_pqn.py against PyPI rejax 0.1.3, same process, same hyperparameters.

Both sides use rejax 0.1.3's tuned CartPole-v1 PQN config (benchmarks/rejax_configs.py): 16 envs x 128 steps per
rollout, 5 epochs x 16 minibatches (of 128), Adam 3e-4 (constant), gradient-norm clip 10 (rejax clips element-wise,
we clip the global norm), lambda 0.9, gamma 0.99, epsilon 1 -> 0.05 over half the run, a (64, 64) relu MLP with
LayerNorm before each activation, no observation normalisation, 524,288 env steps with an evaluation point every
16,384. Only training is timed: on both sides the evaluation callback returns a constant; afterwards both are scored
with the same evaluator (64 greedy episodes per seed). Hyperparameters match; one piece of semantics does not: rejax
treats a time-limit truncation as a termination, we bootstrap it (CartPole-v1's limit is 500 steps).

Needs PyPI rejax 0.1.3 (benchmark only: `pip install rejax==0.1.3 --no-deps chex`), run beside gymnax 1.0.1 through
benchmarks/rejax_compat.py: a 5-tuple `step` (done = terminated | truncated) and, where distrax does not import,
a plain-jax stand-in for the distributions rejax samples from.

Run: python benchmarks/bench_pqn.py [--runs 3] [--seeds 1]
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402
import rejax_pqn  # noqa: E402
from rejax_compat import FiveTupleStep, import_rejax  # noqa: E402

TOTAL, EVAL_FREQ = 524_288, 16_384
OURS = dict(num_envs=16, num_steps=128, num_epochs=5, num_minibatches=16, learning_rate=3e-4, anneal_lr=False,
            max_grad_norm=10.0, td_lambda=0.9, gamma=0.99, eps_start=1.0, eps_end=0.05, exploration_fraction=0.5,
            reward_scale=1.0, hidden_layer_sizes=(64, 64), activation="relu", normalize_observations=False,
            total_timesteps=TOTAL, eval_freq=EVAL_FREQ)
REJAX = dict(num_envs=16, num_steps=128, num_minibatches=16, max_grad_norm=10, learning_rate=3e-4, num_epochs=5,
             total_timesteps=TOTAL, eval_freq=EVAL_FREQ, eps_start=1, eps_end=0.05, exploration_fraction=0.5,
             gamma=0.99, td_lambda=0.9, normalize_observations=False)


def no_eval(*args):
    return jnp.zeros(())


def make_rejax(env, env_params):
    rejax = import_rejax()
    algo = rejax.PQN.create(env=FiveTupleStep(env), env_params=env_params, **REJAX)
    algo = algo.replace(eval_callback=no_eval)
    train = jax.jit(jax.vmap(lambda rng: algo.train(rng)))

    def act_of(ts):
        return lambda obs, rng: jnp.argmax(algo.agent.apply(ts.q_ts.params, obs[None])[0])

    return train, act_of


def make_ours(config):
    config = config.replace(eval_callback=no_eval)
    train = jax.jit(jax.vmap(lambda rng: rejax_pqn.train(config, rng)))
    act_of = lambda ts: rejax_pqn.make_act(config, ts)  # noqa: E731
    return train, act_of


def returns(act_of, train_state, config, seeds):
    """Mean return of 64 greedy episodes per seed, the same evaluator for both sides."""
    out = []
    for i in range(seeds):
        act = act_of(common.select_seed(train_state, i))
        _, r = common.evaluate(act, jax.random.PRNGKey(100 + i), config.env, config.env_params, 64,
                               config.env_params.max_steps_in_episode)
        out.append(float(r.mean()))
    return np.array(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    config = rejax_pqn.Config.make("CartPole-v1", **OURS)
    assert config.total_env_steps == TOTAL
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    sides = {"ours": make_ours(config), "rejax": make_rejax(config.env, config.env_params)}
    compile_s, times, finals = {}, {k: [] for k in sides}, {}
    for name, (train, act_of) in sides.items():
        start = time.perf_counter()
        sides[name] = (train.lower(keys).compile(), act_of)
        compile_s[name] = time.perf_counter() - start
    for run in range(args.runs):
        for name, (train, act_of) in sides.items():  # alternate the two sides
            start = time.perf_counter()
            train_state, _ = jax.block_until_ready(train(keys))
            times[name].append(time.perf_counter() - start)
            if run == 0:
                finals[name] = returns(act_of, train_state, config, args.seeds)
    steps = TOTAL * args.seeds
    rate = {name: steps / np.median(t) for name, t in times.items()}
    print(f"PQN CartPole-v1, {TOTAL:,} env steps x {args.seeds} seed(s), median of {args.runs} alternating runs, "
          f"{jax.devices()[0].platform}")
    for name in sides:
        print(f"  {name:6s} {rate[name]:9,.0f} steps/s  compile {compile_s[name]:5.1f}s  train "
              f"{np.median(times[name]):6.2f}s (runs: {', '.join(f'{t:.2f}' for t in times[name])})  "
              f"final return {finals[name].mean():6.1f} (per seed: {', '.join(f'{r:.0f}' for r in finals[name])})")
    pairs = np.array(times["rejax"]) / np.array(times["ours"])  # each run's ratio: the two sides ran back to back
    print(f"  speed ratio ours/rejax: {rate['ours'] / rate['rejax']:.2f}x (of medians); per alternating pair: "
          f"{', '.join(f'{r:.2f}' for r in pairs)}, median {np.median(pairs):.2f}x")


if __name__ == "__main__":
    main()
