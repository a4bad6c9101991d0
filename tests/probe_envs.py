"""Tiny gymnax environments with known values, for testing what an algorithm learns.

- `TimeLimitEnv`: reward 1 on every step. With `params.terminal=False` the episode never terminates and is only truncated
  after `max_steps_in_episode` steps, so the true value of every state is 1 / (1 - gamma); an algorithm that treated
  the time limit as termination would learn the discounted number of remaining steps instead. With `params.terminal=True`
  the last step is a true terminal state and the value at time t is (1 - gamma^(T - t)) / (1 - gamma).
- `ProbeEnv`: the five standard debugging probes (after Andy Jones, "Debugging RL, Without the Agonizing Pain"):
  1 constant reward; 2 observation-dependent reward; 3 two-step delayed reward; 4 action-dependent reward;
  5 action-and-observation-dependent reward. Discrete (2 actions) or continuous (1-D action in [-1, 1]).
Both select their variant through a leaf of their params, so one compiled training run can vmap over all variants.
"""

import jax
import jax.numpy as jnp
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
    """Observation: [t / T]. Reward 1 per step; truncated (or, with params.terminal, terminated) after T steps."""

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
        state = State(time=time, obs=jnp.array([time / params.max_steps_in_episode], jnp.float32))
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
    probe 3)."""

    def __init__(self, continuous: bool = False):
        super().__init__()
        self.continuous = continuous

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
        good = self.good_action(action)
        rewards = jnp.array([
            1.0,  # 1: constant
            state.obs[0],  # 2: the observation
            jnp.where(time >= 2, 1.0, 0.0),  # 3: one step later
            jnp.where(good, 1.0, -1.0),  # 4: the action
            jnp.where(good == (state.obs[0] > 0), 1.0, -1.0),  # 5: the action matching the observation
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
