"""Measure what discrete/continuous SAC learns over training: alpha, the policy's entropy, and the critics' value of
the start states against the Monte Carlo discounted return of the same (stochastic) policy.

  python benchmarks/sac_diagnose.py --env Acrobot-v1 --seeds 4 [--set init_alpha=0.1 --set tau=0.05 ...]
  python benchmarks/sac_diagnose.py --env chain --seeds 4 --set total_timesteps=30000 --set eval_freq=3000
`--env chain` is the 6-state goal chain of tests/default_probes.py (task 0), at SAC's class defaults.
Prints one line per evaluation point: steps, alpha, entropy, Q(s0, pi), MC return of pi (discounted), greedy return
(mean over seeds, and the worst seed for the greedy return)."""

import argparse
import os
import sys

sys.path[:0] = [os.path.join(os.path.dirname(__file__), ".."), os.path.join(os.path.dirname(__file__), "..", "tests")]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402
from rejax_sac import SAC, Config  # noqa: E402


def rollout(config, ts, rng, num_episodes=16):
    """Play the stochastic policy; return its discounted return, mean entropy, and Q(s0, pi) (min over critics)."""
    env, params = config.env, config.env_params
    rng, rng_reset = jax.random.split(rng)
    obs, state = common.reset_envs(env, params, rng_reset, num_episodes)
    norm = SAC.normalize(config, ts.obs_stats, obs)
    q0, _ = SAC.policy_expectations(config, ts.actor_params, ts.critic_params, norm, rng)

    def step(carry, _):
        rng, obs, state, done, ret, discount, entropy = carry
        rng, rng_act, rng_step = jax.random.split(rng, 3)
        norm = SAC.normalize(config, ts.obs_stats, obs)
        action, log_pi = SAC.sample_action(config, ts.actor_params, norm, rng_act)
        h = -jnp.sum(jnp.exp(log_pi) * log_pi, -1) if config.discrete else -log_pi
        obs, state, reward, term, trunc, _ = common.step_envs(env, params, rng_step, state,
                                                             SAC.scale_action(config, action))
        ret = ret + jnp.where(done, 0.0, discount * reward)
        entropy = entropy + jnp.where(done, 0.0, h)
        return (rng, obs, state, done | term | trunc, ret, discount * config.gamma, entropy), ~done

    zeros = jnp.zeros(num_episodes)
    carry = (rng, obs, state, jnp.zeros(num_episodes, bool), zeros, jnp.ones(num_episodes), zeros)
    carry, alive = jax.lax.scan(step, carry, None, length=int(env.default_params.max_steps_in_episode))
    return carry[4].mean(), carry[6].sum() / alive.sum(), q0.mean()


def callback(config, ts, rng):
    rng_roll, rng_eval = jax.random.split(rng)
    mc, entropy, q0 = rollout(config, ts, rng_roll)
    greedy = common.evaluate_policy(SAC.make_act(config, ts), config, ts, rng_eval)["return"].mean()
    return {"alpha": jnp.exp(ts.log_alpha), "entropy": entropy, "q0": q0, "mc": mc, "greedy": greedy}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="Acrobot-v1")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="name=value override")
    parser.add_argument("--sweep", action="append", default=[], help="name=v1,v2,...: a leaf's values (grid)")
    args = parser.parse_args()
    overrides = {k: eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    if args.env == "chain":
        from default_probes import CHAIN, DiscreteTasks, task_params
        env, env_params = DiscreteTasks(), task_params(CHAIN)
    else:
        env, env_params = args.env, None
    config = Config.make(env, env_params=env_params, eval_callback=callback, **overrides)
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.seeds)
    if args.sweep:  # a grid over every --sweep name=v1,v2,..., all settings x seeds in one vmapped run
        grid = [dict()]
        for spec in args.sweep:
            name, values = spec.split("=")
            grid = [{**g, name: float(v)} for g in grid for v in values.split(",")]
        axes = jax.tree_util.tree_map(lambda _: None, config).replace(**{name: 0 for name in grid[0]})
        swept = config.replace(**{name: jnp.repeat(jnp.array([g[name] for g in grid]), args.seeds) for name in grid[0]})
        _, ev = jax.jit(jax.vmap(SAC.train, in_axes=(axes, 0)))(swept, jnp.tile(keys, (len(grid), 1)))
        for i, setting in enumerate(grid):
            part = {k: np.asarray(v[i * args.seeds:(i + 1) * args.seeds, -1]) for k, v in ev.items()}
            print(f"{args.env} {overrides} {setting}: final greedy mean {part['greedy'].mean():.2f}, min "
                  f"{part['greedy'].min():.2f}, per seed {np.round(part['greedy'], 2).tolist()}; alpha "
                  f"{part['alpha'].mean():.2e}, entropy {part['entropy'].mean():.3f}, Q(s0) {part['q0'].mean():.2f}, "
                  f"MC {part['mc'].mean():.2f}")
        return
    _, ev = jax.jit(jax.vmap(SAC.train, in_axes=(None, 0)))(config, keys)
    ev = jax.tree_util.tree_map(np.asarray, ev)
    print(f"{args.env} {overrides}; {config.total_env_steps} steps, {args.seeds} seeds")
    print(" step       alpha  entropy   Q(s0,pi)  MC(pi)   greedy(mean/min)")
    steps = [0] + [config.warmup_iterations * config.num_envs + i * config.iterations_per_eval * config.num_envs
                   for i in range(1, config.num_evals + 1)]
    for i, step in enumerate(steps):
        print(f"{step:6d}  {ev['alpha'][:, i].mean():9.2e}  {ev['entropy'][:, i].mean():6.3f}  "
              f"{ev['q0'][:, i].mean():8.2f}  {ev['mc'][:, i].mean():8.2f}  "
              f"{ev['greedy'][:, i].mean():8.2f} / {ev['greedy'][:, i].min():8.2f}")
    print("final greedy per seed:", np.round(ev["greedy"][:, -1], 2).tolist())


if __name__ == "__main__":
    main()
