"""Small tasks with no tuned entry, for checking that an algorithm's CLASS defaults learn an environment they were not
tuned on (tests/test_defaults.py). Each env holds three tasks, chosen by the leaf `params.task`, so one compiled
training run can vmap over seeds and tasks at once.

`DiscreteTasks` (two actions: 0 = left / push -0.1, 1 = right / push +0.1; 6-dim observation):
  0 chain:    a sparse goal chain of 6 states, one-hot observation, start in state 0; -0.01 per step, +1 and
              termination on reaching state 5; 30-step time limit. Optimal 0.96; uniformly random about 0.44.
  1 dense:    x starts uniform in [-1, 1] and moves by +-0.1 (clipped to [-1, 1]); reward -|x'| every step; 20-step
              time limit, no termination.
  2 survival: x starts uniform in [-0.2, 0.2]; x' = 1.2 x +- 0.1 is unstable; +1 per step, termination when |x'| > 1
              (bad: it ends the reward), 50-step time limit. Optimal 50; uniformly random about 12.
The dense and survival tasks observe [x, 0, 0, 0, 0, 0].

`ContinuousTasks` (action in [-1, 1]^2; 2-dim observation, the position p):
  0 reach:    p starts at distance 0.8 from the origin (uniform angle), moves by 0.2 a; -0.01 per step, +1 and
              termination when |p'| < 0.2; 30-step time limit. Optimal 0.97; random about -0.1.
  1 dense:    p starts uniform in [-1, 1]^2, moves by 0.2 a (clipped to [-1, 1]^2); reward -|p'| every step; 20-step
              time limit, no termination.
  2 survival: p starts uniform in [-0.2, 0.2]^2; p' = 1.2 p + 0.1 a; +1 per step, termination when max|p'| > 1;
              50-step time limit. Optimal 50.
"""

import common  # noqa: F401  first: it sets XLA's flags
import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

CHAIN, DENSE, SURVIVAL = 0, 1, 2
REACH = 0  # the continuous env's goal task
CHAIN_LENGTH = 6
TIME_LIMITS = (30, 20, 50)


@struct.dataclass
class State(environment.EnvState):
    time: int
    pos: jax.Array  # chain: [1] state index; otherwise the position


@struct.dataclass
class Params(environment.EnvParams):
    max_steps_in_episode: int = 30
    task: int = 0


def task_params(task):
    """Params of one task (an int) or of a batch of tasks (an int array), with each task's time limit."""
    if isinstance(task, int):
        return Params(max_steps_in_episode=TIME_LIMITS[task], task=task)
    task = jnp.asarray(task)
    return Params(max_steps_in_episode=jnp.asarray(TIME_LIMITS)[task], task=task)


class DiscreteTasks(environment.Environment):
    @property
    def default_params(self):
        return task_params(CHAIN)

    def reset_env(self, key, params):
        x = jax.random.uniform(key, (1,), minval=-1.0, maxval=1.0)
        pos = jnp.where(params.task == CHAIN, 0.0, jnp.where(params.task == DENSE, x, 0.2 * x))
        state = State(time=0, pos=pos)
        return self.get_obs(state, params), state

    def get_obs(self, state, params):
        one_hot = jax.nn.one_hot(state.pos[0].astype(jnp.int32), CHAIN_LENGTH)
        position = jnp.zeros(CHAIN_LENGTH).at[0].set(state.pos[0])
        return jnp.where(params.task == CHAIN, one_hot, position)

    def step_env(self, key, state, action, params):
        push = jnp.where(action == 1, 1.0, -1.0)
        chain = jnp.clip(state.pos + push, 0.0, CHAIN_LENGTH - 1.0)
        dense = jnp.clip(state.pos + 0.1 * push, -1.0, 1.0)
        survival = 1.2 * state.pos + 0.1 * push
        pos = jnp.select([params.task == CHAIN, params.task == DENSE], [chain, dense], survival)
        at_goal = pos[0] >= CHAIN_LENGTH - 1
        fell = jnp.abs(pos[0]) > 1.0
        reward = jnp.select([params.task == CHAIN, params.task == DENSE],
                            [jnp.where(at_goal, 1.0, -0.01), -jnp.abs(pos[0])], 1.0)
        terminated = jnp.select([params.task == CHAIN, params.task == DENSE], [at_goal, False], fell)
        state = State(time=state.time + 1, pos=pos)
        return self.get_obs(state, params), state, reward.astype(jnp.float32), terminated, {}

    @property
    def name(self):
        return "DiscreteTasks"

    @property
    def num_actions(self):
        return 2

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (CHAIN_LENGTH,))


class ContinuousTasks(environment.Environment):
    @property
    def default_params(self):
        return task_params(REACH)

    def reset_env(self, key, params):
        angle = jax.random.uniform(key, (), minval=0.0, maxval=2 * jnp.pi)
        x = jax.random.uniform(key, (2,), minval=-1.0, maxval=1.0)
        circle = 0.8 * jnp.array([jnp.cos(angle), jnp.sin(angle)])
        pos = jnp.select([params.task == REACH, params.task == DENSE], [circle, x], 0.2 * x)
        return pos, State(time=0, pos=pos)

    def step_env(self, key, state, action, params):
        action = jnp.clip(action, -1.0, 1.0)
        moved = jnp.clip(state.pos + 0.2 * action, -1.0, 1.0)
        pos = jnp.where(params.task == SURVIVAL, 1.2 * state.pos + 0.1 * action, moved)
        distance = jnp.linalg.norm(pos)
        at_goal, fell = distance < 0.2, jnp.max(jnp.abs(pos)) > 1.0
        reward = jnp.select([params.task == REACH, params.task == DENSE],
                            [jnp.where(at_goal, 1.0, -0.01), -distance], 1.0)
        terminated = jnp.select([params.task == REACH, params.task == DENSE], [at_goal, False], fell)
        return pos, State(time=state.time + 1, pos=pos), reward.astype(jnp.float32), terminated, {}

    @property
    def name(self):
        return "ContinuousTasks"

    @property
    def num_actions(self):
        return 2

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (2,))

    def observation_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (2,))
