"""DQN on CartPole-v1: this repository's rejax_dqn.py against PyPI rejax 0.1.3, same process, same hyperparameters.

Both sides use rejax 0.1.3's tuned CartPole-v1 DQN config (benchmarks/rejax_configs.py): 10 envs,
buffer 50,000, 5,000 warm-up steps of random actions, batch 100, Adam 1e-3, 5 gradient steps per iteration of
10 env steps, Double DQN with a dueling (64, 64) swish network, squared TD loss (optax.l2_loss), polyak 0.98 every
iteration (our tau = 0.02), epsilon 1 -> 0.05 over half the run, gamma 0.99, grad-norm 10 (rejax clips element-wise,
we clip the global norm), 100,000 env steps with an evaluation point every 2,500. Only training is timed: on both
sides the evaluation callback returns a constant; afterwards both are scored with the same evaluator (64 greedy
episodes per seed).

Needs PyPI rejax 0.1.3 (benchmark only: `pip install rejax==0.1.3 --no-deps chex`), run beside gymnax 1.0.1 through
benchmarks/rejax_compat.py: a 5-tuple `step` (done = terminated | truncated) and, where distrax does not import,
a plain-jax stand-in for the distributions rejax samples from.

Run: python benchmarks/bench_dqn.py [--runs 3] [--seeds 1]
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
import rejax_dqn  # noqa: E402
from rejax_compat import FiveTupleStep, import_rejax  # noqa: E402

TOTAL, EVAL_FREQ = 100_000, 2_500
OURS = dict(num_envs=10, train_freq=1, gradient_steps=5, batch_size=100, buffer_size=50_000, learning_starts=5_000,
            learning_rate=1e-3, max_grad_norm=10.0, tau=0.02, target_update_freq=1, eps_start=1.0, eps_end=0.05,
            exploration_fraction=0.5, gamma=0.99, double=True, dueling=True, loss="mse", activation="swish",
            hidden_layer_sizes=(64, 64), normalize_observations=False, total_timesteps=TOTAL, eval_freq=EVAL_FREQ)
REJAX = dict(env="CartPole-v1", agent="DuelingQNetwork", agent_kwargs=dict(activation="swish"), num_envs=10,
             buffer_size=50_000, fill_buffer=5_000, batch_size=100, max_grad_norm=10, learning_rate=0.001,
             num_epochs=5, total_timesteps=TOTAL, eval_freq=EVAL_FREQ, polyak=0.98, eps_start=1, eps_end=0.05,
             exploration_fraction=0.5, gamma=0.99, ddqn=True, normalize_observations=False)


def no_eval(*args):
    return jnp.zeros(())


def make_rejax(env, env_params):
    rejax = import_rejax()
    algo = rejax.DQN.create(**{**REJAX, "env": FiveTupleStep(env), "env_params": env_params})
    algo = algo.replace(eval_callback=no_eval)
    train = jax.jit(jax.vmap(lambda rng: algo.train(rng)))

    def act_of(ts):
        return lambda obs, rng: jnp.argmax(algo.agent.apply(ts.q_ts.params, obs[None])[0])

    return train, act_of


def make_ours(config):
    config = config.replace(eval_callback=no_eval)
    train = jax.jit(jax.vmap(lambda rng: rejax_dqn.train(config, rng)))
    act_of = lambda ts: rejax_dqn.make_act(config, ts)  # noqa: E731
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
    config = rejax_dqn.Config.make("CartPole-v1", **OURS)
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
    print(f"DQN CartPole-v1, {TOTAL:,} env steps x {args.seeds} seed(s), median of {args.runs} alternating runs, "
          f"{jax.devices()[0].platform}")
    for name in sides:
        print(f"  {name:6s} {rate[name]:9,.0f} steps/s  compile {compile_s[name]:5.1f}s  train "
              f"{np.median(times[name]):6.2f}s (runs: {', '.join(f'{t:.2f}' for t in times[name])})  "
              f"final return {finals[name].mean():6.1f} (per seed: {', '.join(f'{r:.0f}' for r in finals[name])})")
    print(f"  speed ratio ours/rejax: {rate['ours'] / rate['rejax']:.2f}x")


if __name__ == "__main__":
    main()
