"""Tiny gymnax environments with known values, for testing what an algorithm learns.

- `TimeLimitEnv`: reward 1 on every step. With `params.terminal=False` the episode never terminates and is only truncated
  after `max_steps_in_episode` steps, so the true value of every state is 1 / (1 - gamma); an algorithm that treated
  the time limit as termination would learn the discounted number of remaining steps instead. With `params.terminal=True`
  the last step is a true terminal state and the value at time t is (1 - gamma^(T - t)) / (1 - gamma).
  The observation is [(t mod T) / T]: the one the time limit cuts off at is the first one again, whose value is learned,
  so the truncated run's bootstrapped values have a unique fixed point. (Observing [t / T] would leave the value of
  [1], seen only as a final observation, to the network's extrapolation v, and every value would settle at
  1 / (1 - gamma) + gamma^(T - t) (v - 1 / (1 - gamma)) instead: SAC's continuous critic extrapolated v = 12.7.)
- `ProbeEnv`: the five standard debugging probes (after Andy Jones, "Debugging RL, Without the Agonizing Pain"):
  1 constant reward; 2 observation-dependent reward; 3 two-step delayed reward; 4 action-dependent reward;
  5 action-and-observation-dependent reward. Discrete (2 actions) or continuous (1-D action in [-1, 1]).
Both select their variant through a leaf of their params, so one compiled training run can vmap over all variants.
After them: `train_variants`, which does that, and the checks the off-policy probe tests share.
"""

import common  # noqa: F401  first: it sets XLA's flags, and this module builds jax arrays when imported
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class State(environment.EnvState):
    time: int
    obs: jax.Array


@struct.dataclass
class Params(environment.EnvParams):
    max_steps_in_episode: int = 5
    terminal: bool = False  # TimeLimitEnv: the last step is a true terminal state
    probe: int = 1  # ProbeEnv: which of the five probes (a leaf, so one compiled run can vmap over all five)


class TimeLimitEnv(environment.Environment):
    """Observation: [(t mod T) / T]. Reward 1 per step; truncated (or, with params.terminal, terminated) after T
    steps."""

    def __init__(self, continuous: bool = False):
        super().__init__()
        self.continuous = continuous

    @property
    def default_params(self):
        return Params()

    def reset_env(self, key, params):
        state = State(time=0, obs=jnp.zeros(1))
        return state.obs, state

    def step_env(self, key, state, action, params):
        time = state.time + 1
        obs = jnp.array([(time % params.max_steps_in_episode) / params.max_steps_in_episode], jnp.float32)
        state = State(time=time, obs=obs)
        terminated = jnp.logical_and(params.terminal, time >= params.max_steps_in_episode)
        return state.obs, state, jnp.float32(1.0), terminated, {}

    def is_truncated(self, state, params):
        return jnp.logical_and(~jnp.asarray(params.terminal), state.time >= params.max_steps_in_episode)

    @property
    def name(self):
        return "TimeLimit"

    @property
    def num_actions(self):
        return 1 if self.continuous else 2

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (1,)) if self.continuous else spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (1,))


class ProbeEnv(environment.Environment):
    """The five probes, chosen by `params.probe` in 1..5. Every episode ends by termination, after 1 step (2 for
    probe 3).

    Probes 4 and 5 pay +1 for the good action and -1 for the other. With `linear` (continuous only) they pay the
    action itself instead (its negative where probe 5's observation is negative): a reward that is flat on either side
    of 0 gives a deterministic policy gradient nothing to climb (DDPG's actor, started on the wrong side, stayed at
    a = -1 in 1 of 8 seeds, whatever the exploration noise); a linear one points every actor to the good end, a = 1."""

    def __init__(self, continuous: bool = False, linear: bool = False):
        super().__init__()
        if linear and not continuous:
            raise ValueError("linear rewards need continuous actions; pass continuous=True.")
        self.continuous = continuous
        self.linear = linear

    @property
    def default_params(self):
        return Params(max_steps_in_episode=10)

    def reset_env(self, key, params):
        sign = jnp.where(jax.random.bernoulli(key), 1.0, -1.0)
        obs = jnp.where((params.probe == 2) | (params.probe == 5), sign, 0.0)[None]
        state = State(time=0, obs=obs)
        return state.obs, state

    def good_action(self, action):
        """Probes 4 and 5 reward 'action 1' (discrete) or a positive action (continuous)."""
        return action == 1 if not self.continuous else action[0] > 0

    def step_env(self, key, state, action, params):
        time = state.time + 1
        pay = jnp.clip(action[0], -1.0, 1.0) if self.linear else jnp.where(self.good_action(action), 1.0, -1.0)
        rewards = jnp.array([
            1.0,  # 1: constant
            state.obs[0],  # 2: the observation
            jnp.where(time >= 2, 1.0, 0.0),  # 3: one step later
            pay,  # 4: the action
            jnp.where(state.obs[0] > 0, pay, -pay),  # 5: the action matching the observation
        ])
        reward = rewards[params.probe - 1]
        done = jnp.where(params.probe == 3, time >= 2, True)
        obs = jnp.where(params.probe == 3, jnp.ones(1), state.obs)
        return obs, State(time=time, obs=obs), reward.astype(jnp.float32), done, {}

    @property
    def name(self):
        return f"Probe{'Continuous' if self.continuous else ''}"

    @property
    def num_actions(self):
        return 1 if self.continuous else 2

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (1,)) if self.continuous else spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (1,))


def train_variants(train, config, params, rng=None):
    """Train one agent per entry of the batched env `params` with a single compile (vmap over the env params only);
    `config` holds the params of one variant. Returns the batched train state."""
    axes = jax.tree_util.tree_map(lambda _: None, config).replace(env_params=0)
    rng = jax.random.PRNGKey(0) if rng is None else rng
    states, _ = jax.jit(jax.vmap(train, in_axes=(axes, None)))(config.replace(env_params=params), rng)
    return states


def variant(tree, i):
    """Entry i of a batched pytree (one variant's train state)."""
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def no_evaluation(config, train_state, rng):
    """An eval callback that plays no episodes: these tests read the learned values directly, and skipping the
    evaluation loop saves its compile time."""
    return {}


TIME_LIMIT = Params(max_steps_in_episode=jnp.array([5, 5]), terminal=jnp.array([False, True]), probe=jnp.array([1, 1]))
"""The two episode-end variants: truncated after 5 steps (index 0) and terminated after 5 steps (index 1)."""
PROBES = Params(max_steps_in_episode=jnp.full(5, 10), terminal=jnp.zeros(5, bool), probe=jnp.arange(1, 6))
"""The five probes, index i = probe i + 1."""


def assert_time_limit_values(q, gamma, name=""):
    """Check the learned Q on TIME_LIMIT. `q(i, obs [5, 1])` -> Q of variant i for the states t = 0..4, any leading
    axes (e.g. critics) and one entry per action last; every action is worth the same here."""
    t = np.arange(5)
    obs = (t / 5)[:, None].astype(np.float32)
    truncated, terminal = q(0, obs), q(1, obs)
    print(f"\n{name} Q(t, a) on the time limit, truncated:\n{truncated.round(2)}\nterminal:\n{terminal.round(2)}")
    # Truncated after 5 steps, reward 1 forever: every state is worth 1 / (1 - gamma) (10 for gamma = 0.9). Treating
    # the time limit as termination would give the discounted steps left instead: 4.1, 3.4, 2.7, 1.9, 1.0.
    np.testing.assert_allclose(truncated, np.full(truncated.shape, 1 / (1 - gamma)), rtol=0.1)
    # The 5th step is terminal: Q(t, a) = (1 - gamma^(5 - t)) / (1 - gamma), no bootstrap past it.
    expected = (1 - gamma ** (5 - t)) / (1 - gamma)
    np.testing.assert_allclose(terminal, np.broadcast_to(expected[:, None], terminal.shape), atol=0.3)


def assert_probes(q, act, probe, gamma, q_policy=None, name=""):
    """Check what was learned on PROBES. `q(i, obs [n, 1])` -> Q of variant i, any leading axes (e.g. critics), last
    axis the two actions: 0 and 1 (discrete) or -0.5 and +0.5 (continuous). `act(i, obs [n, 1])` -> the policy's
    deterministic actions [n, ...]. `q_policy(i, obs)` (optional, like `q` with one entry last) -> Q at the policy's
    own action, which must reach the best value, 1, on the action-dependent probes."""
    zero, both, steps = np.zeros((1, 1)), np.array([[-1.0], [1.0]]), np.array([[0.0], [1.0]])
    pay = 0.5 if probe.linear else 1.0  # what the good one of the two actions earns in probes 4 and 5
    for i, obs in enumerate([zero, both, steps, zero, both]):
        print(f"\n{name} probe {i + 1}: actions {np.ravel(act(i, obs))}, Q({obs.ravel()}, a):\n{q(i, obs).round(2)}")

    def close(i, obs, expected, atol, values=q):
        values = values(i, obs)
        np.testing.assert_allclose(values, np.broadcast_to(expected, values.shape), atol=atol)

    close(0, zero, [[1.0, 1.0]], 0.05)  # 1: constant reward, whatever the action
    close(1, both, [[-1.0, -1.0], [1.0, 1.0]], 0.1)  # 2: reward = observation
    close(2, steps, [[gamma, gamma], [1.0, 1.0]], 0.1)  # 3: reward one step later, discounted once
    close(3, zero, [[-pay, pay]], 0.2)  # 4: the good action earns `pay`, the other -`pay` ...
    assert bool(probe.good_action(act(3, zero)[0]))  # ... and the policy takes the good one
    close(4, both, [[pay, -pay], [-pay, pay]], 0.2)  # 5: the good action follows the sign of the observation
    assert [bool(probe.good_action(a)) for a in act(4, both)] == [False, True]
    if q_policy is not None:
        close(3, zero, [[1.0]], 0.2, q_policy)
        close(4, both, [[1.0], [1.0]], 0.2, q_policy)
