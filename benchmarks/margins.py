"""Issue 19: how much margin does each learning test have? Each test's own Config, trained on 16 seeds in one
jit(vmap(train)) call, against the test's own threshold.

    python benchmarks/margins.py --tests iqn_cartpole pqn_cartpole ...        # Eigen threads on (XLA's default)
    XLA_FLAGS=--xla_cpu_multi_thread_eigen=false python benchmarks/margins.py  # off: what tests/conftest.py sets

XLA reads XLA_FLAGS when the backend starts, so the two settings need two processes; the line printed first says
which one is in effect. Keys: tests that use jax.vmap(PRNGKey)(arange(4)) get arange(16) (their own 4 seeds are the
first 4 of the 16); the rest get jax.random.split(PRNGKey(0), 16) (not a superset of the test's split(PRNGKey(0), k)).

`--seeds N` runs N seeds instead of 16 (for runs too slow at 16). Per test, one line: the threshold as the test states
it; mean, std, min of the 16 final returns (evaluation["return"][:, -1].mean(-1), as every test reads it); how many
seeds fall below the per-seed bar (the test's min bar, or its mean bar applied to each seed); the worst mean over the
16 / k disjoint k-seed groups (k = the test's own seed count) and the worst possible k-subset (the k lowest seeds);
and the wall time (compile included).
tests/test_defaults.py's class-default cases: --tests defaults_ALGO_discrete|continuous (16 seeds x 3 tasks, one line per
task, k = its 2 seeds). FLAG when the min or the worst k-subset mean is below the bar or within one seed-to-seed std of it.
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

SEEDS = 16


def split_keys(n):
    return jax.random.split(jax.random.PRNGKey(0), n)


def arange_keys(n):
    return jax.vmap(jax.random.PRNGKey)(jnp.arange(n))


def scaled_cartpole():
    from test_normalize_rewards import ScaledRewardCartPole
    return ScaledRewardCartPole()


# name -> (module, config builder, key scheme, test's seed count, threshold text, mean bar, per-seed bar)
def tests():
    import rejax_ddpg
    import rejax_dqn
    import rejax_iqn
    import rejax_ppo
    import rejax_pqn
    import rejax_sac
    import rejax_td3

    def brax_config():
        import common
        env, params = common.make_env("brax/inverted_pendulum")
        return rejax_ppo.Config.make(env=env, env_params=params)

    def sac_chain():
        from default_probes import CHAIN, DiscreteTasks, task_params
        return rejax_sac.Config.make(DiscreteTasks(), env_params=task_params(CHAIN), total_timesteps=6_000,
                                     eval_freq=5_000)

    return {
        "iqn_cartpole": (rejax_iqn, lambda: rejax_iqn.Config.make("CartPole-v1", total_timesteps=11_000,
                                                                  eval_freq=10_000),
                         arange_keys, 8, "mean >= 140, min >= 50", 140, 50),
        "sac_goal_chain": (rejax_sac, sac_chain, split_keys, 4, "min >= 0.95 (and Q check, not run here)",
                           None, 0.95),
        "pqn_cartpole": (rejax_pqn, lambda: rejax_pqn.Config.make("CartPole-v1"), arange_keys, 4, "min >= 450",
                         None, 450),
        "ddpg_pendulum": (rejax_ddpg, lambda: rejax_ddpg.Config.make("Pendulum-v1"), split_keys, 4, "mean >= -250",
                          -250, None),
        "td3_pendulum": (rejax_td3, lambda: rejax_td3.Config.make("Pendulum-v1", num_eval_episodes=64),
                         split_keys, 4, "mean >= -200, min >= -300", -200, -300),
        "sac_pendulum": (rejax_sac, lambda: rejax_sac.Config.make("Pendulum-v1"), split_keys, 4,
                         "mean >= -200, min >= -300", -200, -300),
        "sac_cartpole": (rejax_sac, lambda: rejax_sac.Config.make("CartPole-v1"), split_keys, 4, "mean >= 475",
                         475, None),
        "dqn_cartpole": (rejax_dqn, lambda: rejax_dqn.Config.make("CartPole-v1"), arange_keys, 4, "min >= 475",
                         None, 475),
        "ppo_cartpole": (rejax_ppo, lambda: rejax_ppo.Config.make("CartPole-v1"), split_keys, 8,
                         "mean >= 475, min >= 475", 475, 475),
        "norm_sac_cartpole_x1000": (rejax_sac, lambda: rejax_sac.Config.make(
            env=scaled_cartpole(), normalize_rewards=True, **rejax_sac.TUNED["CartPole-v1"]),
            split_keys, 2, "all >= 475000", None, 475_000),
        "norm_ppo_cartpole_x1000": (rejax_ppo, lambda: rejax_ppo.Config.make(
            env=scaled_cartpole(), normalize_rewards=True, **rejax_ppo.TUNED["CartPole-v1"]),
            split_keys, 3, "all >= 475000", None, 475_000),
        "td3_mountaincar": (rejax_td3, lambda: rejax_td3.Config.make("MountainCarContinuous-v0"), split_keys, 4,
                            "mean >= 90, min >= 80", 90, 80),
        "sac_acrobot": (rejax_sac, lambda: rejax_sac.Config.make("Acrobot-v1", num_eval_episodes=64),
                        split_keys, 4, "best 3 of 4: min >= -150, mean >= -100", -100, -150),
        "ppo_pendulum": (rejax_ppo, lambda: rejax_ppo.Config.make("Pendulum-v1"), split_keys, 4, "mean >= -250",
                         -250, None),
        "brax_ppo_inverted_pendulum": (rejax_ppo, brax_config, split_keys, 2, "min >= 900", None, 900),
    }


def run_defaults(name):
    """tests/test_defaults.py: one compiled run of SEEDS seeds x 3 tasks at the class defaults; one line per task."""
    import test_defaults as td
    _, algo, space = name.split("_")
    discrete = space == "discrete"
    td.SEEDS = SEEDS
    start = time.perf_counter()
    returns = td.final_returns(algo, discrete)  # [16 seeds, 3 tasks]
    wall = time.perf_counter() - start
    for task in td.TASKS:
        final, bar = returns[:, task], td.BARS[(discrete, task)]
        std, k = final.std(), 2
        groups, lowest = final.reshape(-1, k).mean(1), np.sort(final)[:k]
        task_name = td.NAMES.get((discrete, task), td.NAMES.get(task))
        flag = final.min() < bar + std
        print(f"{name + '-' + task_name:28s} | {'min >= ' + str(bar):40s} | mean {final.mean():10.2f} | "
              f"std {std:9.2f} | min {final.min():10.2f} | fail/{SEEDS} {int((final < bar).sum()):2d} | "
              f"worst {k}-group {groups.min():10.2f} | worst {k}-subset {lowest.mean():10.2f} | {wall:6.1f} s (3 tasks) | "
              f"{'FLAG' if flag else 'ok'}", flush=True)
        print(f"    per seed: {np.array2string(final, precision=2, max_line_width=200)}", flush=True)


DEFAULTS = [f"defaults_{a}_discrete" for a in ("ppo", "dqn", "sac", "pqn", "iqn")] + \
    [f"defaults_{a}_continuous" for a in ("ppo", "sac", "td3", "ddpg")]


def run(name, spec):
    module, make, keys_of, k, text, mean_bar, seed_bar = spec
    config = make()
    start = time.perf_counter()
    _, evaluation = jax.jit(jax.vmap(module.train, in_axes=(None, 0)))(config, keys_of(SEEDS))
    final = np.asarray(evaluation["return"])[:, -1].mean(-1)
    wall = time.perf_counter() - start
    bar = seed_bar if seed_bar is not None else mean_bar
    fails = int((final < bar).sum())
    groups = final[: SEEDS // k * k].reshape(-1, k).mean(1)
    lowest = np.sort(final)[:k]
    if name == "sac_acrobot":  # the test drops its worst seed of 4
        groups = np.sort(final[: SEEDS // 4 * 4].reshape(-1, 4), 1)[:, 1:].mean(1)
        lowest = np.sort(final)[1:k]
    std = final.std()
    worst_sub = min(groups.min(), lowest.mean())
    flag = (final.min() < bar + std) or (mean_bar is not None and worst_sub < mean_bar + std)
    print(f"{name:28s} | {text:40s} | mean {final.mean():10.2f} | std {std:9.2f} | min {final.min():10.2f} | "
          f"fail/{SEEDS} {fails:2d} | worst {k}-group {groups.min():10.2f} | worst {k}-subset {lowest.mean():10.2f} | "
          f"{wall:6.1f} s | {'FLAG' if flag else 'ok'}", flush=True)
    print(f"    per seed: {np.array2string(final, precision=1, max_line_width=200)}", flush=True)


def main():
    global SEEDS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    specs = tests()
    parser.add_argument("--tests", nargs="+", default=list(specs), choices=list(specs) + DEFAULTS)
    parser.add_argument("--seeds", type=int, default=SEEDS, help="seeds per test (16 unless a run is too slow)")
    args = parser.parse_args()
    SEEDS = args.seeds
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r} -> multi-threaded Eigen "
          f"{'OFF' if 'xla_cpu_multi_thread_eigen=false' in os.environ.get('XLA_FLAGS', '') else 'ON'}; "
          f"{jax.device_count()} {jax.default_backend()} device(s), {os.cpu_count()} CPUs", flush=True)
    for name in args.tests:
        run_defaults(name) if name in DEFAULTS else run(name, specs[name])


if __name__ == "__main__":
    main()
