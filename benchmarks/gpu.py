"""The seed project's GPU speed table, reproduced with our files at the same hyperparameters.

The seed's figures (an A100 80 GB, cleanRL's hyperparameters, 1M env steps per agent; the configs are
benchmarks/rejax_configs.py's `(algorithm, env, "seed-benchmark")` entries), per agent:

  PPO  brax/hopper       300 agents   0.8 s        SAC  brax/hopper   8.7 s      TD3  brax/hopper   10.6 s
  DDPG brax/hopper                    13.4 s       PPO  Breakout-MinAtar  300 agents  0.2 s
  DQN  Breakout-MinAtar   50 agents   12 min 19 s

Each row here trains `agents` agents in one jitted, vmapped call (compile timed apart) and reports the training time
per agent (wall time / agents) beside the seed's, and the agents' final returns (mean and min of their last
evaluation), so that a fast row is also a learning one. Where the seed gives no agent count (SAC, TD3, DDPG), 300.

Hyperparameter names mapped onto ours: fill_buffer -> learning_starts; a target's kept fraction per iteration
(`tau`/`polyak` in these configs) -> our fraction moved per gradient step, 1 - kept ** (1 / gradient_steps), the same
decay per iteration; rejax's hard DQN target copy every 1,000 steps -> tau 1 with target_update_freq 1,000. Our
continuous SAC's target entropy is -|A| (the config's ratio 0 is not used), and our PPO does not anneal the rate.

On a GPU: python benchmarks/gpu.py                        (the full table: minutes per row on an A100-class GPU)
On a CPU, to check that it runs: python benchmarks/gpu.py --agents 2 --steps 20000
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402
from rejax_configs import CONFIGS  # noqa: E402

ROWS = [  # (algorithm, env, agents, the seed's seconds per agent)
    ("ppo", "brax/hopper", 300, 0.8), ("sac", "brax/hopper", 300, 8.7), ("td3", "brax/hopper", 300, 10.6),
    ("ddpg", "brax/hopper", 300, 13.4), ("ppo", "Breakout-MinAtar", 300, 0.2), ("dqn", "Breakout-MinAtar", 50, 739.0),
]


def our_overrides(algo: str, seed: dict) -> dict:
    """The seed's config in our names (see the module docstring)."""
    activation = (seed.get("agent_kwargs") or seed.get("actor_kwargs") or {}).get("activation", "tanh")
    out = dict(num_envs=seed["num_envs"], learning_rate=seed["learning_rate"], gamma=seed["gamma"],
               total_timesteps=seed["total_timesteps"], eval_freq=seed["eval_freq"], activation=activation,
               normalize_observations=seed.get("normalize_observations", False))
    if algo == "ppo":
        out.update({k: seed[k] for k in ("num_steps", "num_epochs", "num_minibatches", "max_grad_norm", "gae_lambda",
                                         "clip_eps", "ent_coef", "vf_coef")}, anneal_lr=False)
        return out
    out.update(buffer_size=seed["buffer_size"], batch_size=seed["batch_size"], learning_starts=seed["fill_buffer"],
               gradient_steps=seed["gradient_steps"])
    if algo == "dqn":
        out.update(tau=1.0, target_update_freq=seed["target_update_freq"], max_grad_norm=seed["max_grad_norm"],
                   double=seed["ddqn"], dueling=False, **{k: seed[k] for k in ("eps_start", "eps_end",
                                                                                "exploration_fraction")})
        return out
    out["tau"] = 1.0 - seed["tau"] ** (1.0 / seed["gradient_steps"])
    if algo in ("td3", "ddpg"):
        out.update(max_grad_norm=seed["max_grad_norm"], exploration_noise=seed["exploration_noise"])
    if algo == "td3":
        out.update({k: seed[k] for k in ("target_noise", "target_noise_clip", "policy_delay")})
    return out


def run_row(algo: str, env_name: str, agents: int, steps=None) -> dict:
    train, Config = common.get_agent(algo)
    seed = CONFIGS[(algo, env_name, "seed-benchmark")]
    overrides = our_overrides(algo, seed)
    if steps is not None:  # a reduced run: fewer steps, the warm-up and evaluation spacing shrunk with them
        scale = steps / overrides["total_timesteps"]
        overrides.update(total_timesteps=steps, eval_freq=max(1, int(overrides["eval_freq"] * scale)))
        if "learning_starts" in overrides:
            overrides["learning_starts"] = max(overrides["batch_size"], int(overrides["learning_starts"] * scale))
    env, env_params = common.make_env(env_name, **seed.get("env_kwargs", {}))
    config = Config.make(env=env, env_params=env_params, **overrides)
    keys = jax.random.split(jax.random.PRNGKey(0), agents)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(train, in_axes=(None, 0))).lower(config, keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, evaluation = jax.block_until_ready(compiled(config, keys))
    train_s = time.perf_counter() - start
    final = np.asarray(evaluation["return"])[:, -1].mean(-1)
    return {"compile": compile_s, "per_agent": train_s / agents, "steps": config.total_env_steps, "final": final}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, help="agents per row (default: the seed's counts)")
    parser.add_argument("--steps", type=int, help="env steps per agent (default: the seed's 1M)")
    parser.add_argument("--rows", nargs="+", help="only these rows, e.g. ppo/brax/hopper dqn/Breakout-MinAtar")
    args = parser.parse_args()
    device = jax.devices()[0]
    print(f"{device.platform}: {device.device_kind}, {len(jax.devices())} device(s), jax {jax.__version__}")
    print(f"{'algorithm':9s} {'env':17s} {'agents':>6s} {'steps':>9s} {'compile':>8s} {'per agent':>10s} "
          f"{'seed':>8s} {'ratio':>6s}  final return mean (min)")
    for algo, env_name, agents, seed_seconds in ROWS:
        if args.rows and f"{algo}/{env_name}" not in args.rows:
            continue
        agents = args.agents or agents
        row = run_row(algo, env_name, agents, args.steps)
        ratio = row["per_agent"] / seed_seconds if args.steps is None else float("nan")
        print(f"{algo:9s} {env_name:17s} {agents:>6d} {row['steps']:>9,d} {row['compile']:>7.1f}s "
              f"{row['per_agent']:>9.2f}s {seed_seconds:>7.1f}s {ratio:>6.2f}  {row['final'].mean():.1f} "
              f"({row['final'].min():.1f})", flush=True)


if __name__ == "__main__":
    main()
