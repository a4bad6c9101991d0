"""IQN on CartPole-v1: this repository's rejax_iqn.py against PyPI rejax 0.1.3, same process, same hyperparameters.

Both sides use rejax 0.1.3's tuned CartPole-v1 IQN config (benchmarks/rejax_configs.py): 1 env, buffer 100,000,
1,000 warm-up steps of random actions, batch 1, N = N' = 64 taus, K = 32 (rejax's fixed `num_samples`), kappa 1,
Adam 3e-4, 1 gradient step per env step, polyak 0.99 every step (our tau = 0.01), epsilon 1 -> 0.01 over half the
run, gamma 0.99, grad-norm 10 (rejax clips element-wise, we clip the global norm), a swish net, 100,000 env steps.
rejax's net is an MLP (64, 64) torso, a 64-wide tau embedding, then a 64-wide head layer and the output; ours with
hidden_layer_sizes=(64, 64, 64) is the same shape (the last width is our head layer). Only training is timed: on
both sides the evaluation callback returns a constant; afterwards both are scored with the same evaluator (64
greedy episodes per seed, our K = 32 taus~ for ours, rejax's own `best_action` with 32 for rejax).

The sides do the same arithmetic per gradient step but for one thing: rejax 0.1.3 takes the next-state quantiles
and a* from the online net (its target params are updated but never read), ours from the target net, as Dopamine's
IQN does. rejax draws its batch with `jax.random.choice(..., replace=False, p=mask)` over all 100,000 slots at every
gradient step: O(buffer); ours is O(batch).

Needs PyPI rejax 0.1.3 (benchmark only: `pip install rejax==0.1.3 --no-deps chex`), run beside gymnax 1.0.1 through
benchmarks/rejax_compat.py: a 5-tuple `step` (done = terminated | truncated) and, where distrax does not import,
a plain-jax stand-in for the distributions rejax samples from.

Run: python benchmarks/bench_iqn.py [--runs 3] [--seeds 1]
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
import rejax_iqn  # noqa: E402
from rejax_compat import FiveTupleStep, import_rejax  # noqa: E402

TOTAL, WARMUP, EVAL_FREQ = 100_000, 1_000, 5_000
OURS = dict(num_envs=1, train_freq=1, gradient_steps=1, batch_size=1, buffer_size=100_000, learning_starts=WARMUP,
            num_tau_samples=64, num_tau_prime_samples=64, num_quantile_samples=32, kappa=1.0, learning_rate=3e-4,
            max_grad_norm=10.0, tau=0.01, target_update_freq=1, eps_start=1.0, eps_end=0.01,
            exploration_fraction=0.5, gamma=0.99, double=False, activation="swish", hidden_layer_sizes=(64, 64, 64),
            normalize_observations=False, anneal_lr=False, total_timesteps=TOTAL,
            eval_freq=(TOTAL - WARMUP) // 20)  # 1,000 warm-up + 20 x 4,950 = 100,000 steps, as rejax's 20 x 5,000
REJAX = dict(env="CartPole-v1", agent_kwargs=dict(activation="swish"), num_envs=1, buffer_size=100_000,
             fill_buffer=WARMUP, batch_size=1, num_tau_samples=64, num_tau_prime_samples=64, learning_rate=3e-4,
             num_epochs=1, total_timesteps=TOTAL, eval_freq=EVAL_FREQ, target_update_freq=1, polyak=0.99, kappa=1.0,
             eps_start=1, eps_end=0.01, exploration_fraction=0.5, gamma=0.99, max_grad_norm=10,
             normalize_observations=False)


def no_eval(*args):
    return jnp.zeros(())


def make_rejax(env, env_params):
    rejax = import_rejax()
    algo = rejax.IQN.create(**{**REJAX, "env": FiveTupleStep(env), "env_params": env_params})
    algo = algo.replace(eval_callback=no_eval)
    train = jax.jit(jax.vmap(lambda rng: algo.train(rng)))

    def act_of(ts):
        return lambda obs, rng: algo.agent.apply(ts.q_ts.params, obs[None], rng, method="best_action")[0]

    return train, act_of


def make_ours(config):
    config = config.replace(eval_callback=no_eval)
    train = jax.jit(jax.vmap(lambda rng: rejax_iqn.train(config, rng)))
    act_of = lambda ts: rejax_iqn.make_act(config, ts)  # noqa: E731
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
    config = rejax_iqn.Config.make("CartPole-v1", **OURS)
    assert config.total_env_steps == TOTAL, config.total_env_steps
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
    print(f"IQN CartPole-v1, {TOTAL:,} env steps x {args.seeds} seed(s), median of {args.runs} alternating runs, "
          f"{jax.devices()[0].platform}")
    for name in sides:
        print(f"  {name:6s} {rate[name]:9,.0f} steps/s  compile {compile_s[name]:5.1f}s  train "
              f"{np.median(times[name]):6.2f}s (runs: {', '.join(f'{t:.2f}' for t in times[name])})  "
              f"final return {finals[name].mean():6.1f} (per seed: {', '.join(f'{r:.0f}' for r in finals[name])})")
    print(f"  speed ratio ours/rejax: {rate['ours'] / rate['rejax']:.2f}x")


if __name__ == "__main__":
    main()
