"""TD3 on Pendulum-v1: this repository's rejax_td3.py against PyPI rejax 0.1.3, same process, same hyperparameters.

Both sides use rejax 0.1.3's tuned Pendulum-v1 config (benchmarks/rejax_configs.py): 1 env,
buffer 10,000, 1,000 warm-up steps, batch 100, Adam 1e-3, 1 gradient step per env step, policy delay 2,
gamma 0.99, polyak 0.95 (our tau = 0.05), grad-norm 100, observation normalisation, (64, 64) swish networks,
10,000 env steps with an evaluation point every 100 steps. rejax's noise scales are absolute torques; Pendulum's
action half-range is 2, so ours (fractions of the half-range) are half of them: exploration 0.15, target noise 0.1,
target clip 0.25. Only training is timed: on both sides the evaluation callback returns a constant, and the
returns are measured afterwards with the same evaluator (64 deterministic episodes per seed).

Needs PyPI rejax 0.1.3 (benchmark only: `pip install rejax==0.1.3 --no-deps chex`), run beside gymnax 1.0.1 through
benchmarks/rejax_compat.py: a 5-tuple `step` (done = terminated | truncated) and, where distrax does not import,
a plain-jax stand-in for the distributions rejax samples from.

Run: python benchmarks/bench_td3.py [--runs 3] [--seeds 1]
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
import rejax_td3  # noqa: E402
from rejax_compat import FiveTupleStep, import_rejax  # noqa: E402

TOTAL, EVAL_FREQ = 10_000, 100
OURS = dict(num_envs=1, buffer_size=10_000, learning_starts=1000, batch_size=100, learning_rate=1e-3, gradient_steps=1,
            total_timesteps=TOTAL, eval_freq=EVAL_FREQ, gamma=0.99, tau=0.05, max_grad_norm=100.0,
            exploration_noise=0.15, target_noise=0.1, target_noise_clip=0.25, policy_delay=2,
            normalize_observations=True, hidden_layer_sizes=(64, 64), activation="swish")
REJAX = dict(env="Pendulum-v1", actor_kwargs=dict(activation="swish"), critic_kwargs=dict(activation="swish"),
             num_envs=1, buffer_size=10_000, fill_buffer=1000, batch_size=100, learning_rate=0.001, num_epochs=1,
             total_timesteps=TOTAL, eval_freq=EVAL_FREQ, gamma=0.99, polyak=0.95, max_grad_norm=100,
             exploration_noise=0.3, target_noise=0.2, target_noise_clip=0.5, policy_delay=2,
             normalize_observations=True)


def no_eval(*args):
    return jnp.zeros(())


def make_rejax(env, env_params):
    rejax = import_rejax()
    algo = rejax.TD3.create(**{**REJAX, "env": FiveTupleStep(env), "env_params": env_params})
    algo = algo.replace(eval_callback=no_eval)
    train = jax.jit(jax.vmap(lambda rng: algo.train(rng)))
    act = lambda ts: algo.make_act(ts)  # noqa: E731
    return train, act


def make_ours(config):
    config = config.replace(eval_callback=no_eval)
    train = jax.jit(jax.vmap(lambda rng: rejax_td3.train(config, rng)))
    act = lambda ts: rejax_td3.make_act(config, ts)  # noqa: E731
    return train, act


def returns(act_of, train_state, config, seeds):
    """Mean return of 64 deterministic episodes per seed, the same evaluator for both sides."""
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
    config = rejax_td3.Config.make("Pendulum-v1", **OURS)
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    sides = {"ours": make_ours(config), "rejax": make_rejax(config.env, config.env_params)}
    compile_s, times, finals = {}, {k: [] for k in sides}, {}
    for name, (train, _) in sides.items():
        start = time.perf_counter()
        sides[name] = (train.lower(keys).compile(), sides[name][1])
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
    print(f"TD3 Pendulum-v1, {TOTAL:,} env steps x {args.seeds} seed(s), median of {args.runs} alternating runs, "
          f"{jax.devices()[0].platform}")
    for name in sides:
        print(f"  {name:6s} {rate[name]:9,.0f} steps/s  compile {compile_s[name]:5.1f}s  train "
              f"{np.median(times[name]):6.2f}s  final return {finals[name].mean():8.1f} "
              f"(per seed: {', '.join(f'{r:.0f}' for r in finals[name])})")
    print(f"  speed ratio ours/rejax: {rate['ours'] / rate['rejax']:.2f}x")


if __name__ == "__main__":
    main()
