"""Default robustness: every algorithm, at its CLASS defaults, learns small tasks it has no tuned entry for.

The tasks are those of tests/default_probes.py: discrete (PPO, DQN, SAC, PQN, IQN) a sparse goal chain, a dense-reward task
and a survival task (termination is bad); continuous (PPO, SAC, TD3, DDPG) a goal-reaching task, a dense-reward task
and a survival task. A user's new environment gets the class defaults, so these tests override nothing but the budget
(total_timesteps, eval_freq) and how many evaluation episodes judge it (num_eval_episodes, which does not touch
training). One compiled run per algorithm and action space trains SEEDS seeds of all three tasks (vmapped over keys
and the task leaf of the env params); each test then checks one task.

Bars, from the oracle and uniformly random policies (32 greedy episodes per seed; oracle / random):
  chain 0.96 / 0.42 -> >= 0.9 (the goal in at most 11 steps); discrete dense -2.16 / -10.1 -> >= -3.8;
  reach 0.98 / -0.12 -> >= 0.9; continuous dense -1.05 / -15.9 -> >= -4.0 (within a fifth of the gap to the oracle);
  survival 50 / 13 (discrete), 50 / 11 (continuous) -> >= 45.
Measured (2 seeds): every algorithm passes every task, most at the oracle; the thinnest margin is PPO's continuous
dense task (-3.37, -3.35 against -4.0). PQN at 30k steps: chain 0.96, dense -1.89 / -2.37, survival 50 (both seeds),
35 s on the shared machine. IQN at 10k steps (one env, one update per step): chain 0.96, dense -2.13 / -2.71, survival
50 (both seeds), 3 min under load ~4 (at 20k: dense -2.37 / -2.09, 8 min). SAC's former class default init_alpha 1
fails the chain at any budget up to 31k steps (greedy -0.30 for every seed: benchmarks/sac.md). Cost on the shared
2-core machine (load 5-10): SAC 27 s per action space, the rest 13.4 min together, most of it TD3 and DDPG (256-256
networks, 5k warm-up at defaults; at 7,500 steps DDPG missed the reach task in one seed, -0.22, so their budget stays
10k). On 2026-12-02, on a machine of the same kind without AVX-512 (so other rounding), DDPG at 10k failed the reach
task in the full suite, so DDPG has 15k (5k of warm-up and 10k of training).
"""

import functools

import jax
import numpy as np
import pytest

from common import get_agent
from default_probes import CHAIN, DENSE, REACH, SURVIVAL, ContinuousTasks, DiscreteTasks, task_params

SEEDS = 2
TASKS = (0, 1, 2)
BUDGET = {  # env steps per seed: the smallest that each algorithm's defaults need here, with margin
    "ppo": 50_000, "dqn": 20_000, "sac": 5_000, "td3": 10_000, "ddpg": 15_000, "pqn": 30_000, "iqn": 10_000,
}
BARS = {  # (discrete, task) -> the least mean greedy return every seed must reach
    (True, CHAIN): 0.9, (True, DENSE): -3.8, (True, SURVIVAL): 45.0,
    (False, REACH): 0.9, (False, DENSE): -4.0, (False, SURVIVAL): 45.0,
}
NAMES = {(True, CHAIN): "chain", (False, REACH): "reach", DENSE: "dense", SURVIVAL: "survival"}
KNOWN_FAILURES = {}  # (algo, discrete, task) -> reason, with the measured returns: xfail(strict) until its owner fixes it
# One env and one gradient step per env step, on IQN's 64 x 64 quantile pairs and TD3's and DDPG's 256-256 networks:
# on the slower 2-core CPU IQN's 6 runs took 15-17 min and TD3's 19 min (DDPG's are alike): the slow tier.
SLOW = {"iqn", "td3", "ddpg"}


@functools.lru_cache(maxsize=None)
def final_returns(algo: str, discrete: bool):
    """Mean greedy return at the end of training, [SEEDS, 3 tasks], of `algo` at its class defaults."""
    train, Config = get_agent(algo)
    env = DiscreteTasks() if discrete else ContinuousTasks()
    steps = BUDGET[algo]
    config = Config.make(env, env_params=task_params(0), total_timesteps=steps, eval_freq=steps, num_eval_episodes=32)
    params = task_params(np.tile(np.array(TASKS), SEEDS))
    keys = jax.random.split(jax.random.PRNGKey(0), SEEDS * len(TASKS))
    axes = jax.tree_util.tree_map(lambda _: None, config).replace(env_params=0)
    _, evaluation = jax.jit(jax.vmap(train, in_axes=(axes, 0)))(config.replace(env_params=params), keys)
    returns = np.asarray(evaluation["return"])[:, -1].mean(-1).reshape(SEEDS, len(TASKS))
    print(f"\n{algo.upper()} ({'discrete' if discrete else 'continuous'}) at class defaults, {steps} steps, final "
          f"greedy return per seed (rows) and task (columns {TASKS}):\n{returns.round(2)}")
    return returns


def cases():
    for discrete, algos in ((True, ("ppo", "dqn", "sac", "pqn", "iqn")), (False, ("ppo", "sac", "td3", "ddpg"))):
        for algo in algos:
            for task in TASKS:
                reason = KNOWN_FAILURES.get((algo, discrete, task))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                marks += [pytest.mark.slow] if algo in SLOW else []
                name = f"{algo}-{'discrete' if discrete else 'continuous'}-{NAMES.get((discrete, task), NAMES.get(task))}"
                yield pytest.param(algo, discrete, task, marks=marks, id=name)


@pytest.mark.parametrize("algo, discrete, task", list(cases()))
def test_class_defaults_learn(algo, discrete, task):
    returns = final_returns(algo, discrete)[:, task]
    assert returns.min() >= BARS[(discrete, task)], returns
