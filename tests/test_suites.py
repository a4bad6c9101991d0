"""The other suites (suites.py) behind the gymnax interface: episode ends, observations, action masks and errors.

Each adapter gets the checks tests/test_brax.py makes for brax: a time-limit truncation is truncated and not
terminated (so the algorithms bootstrap it), a termination is terminated, and `final_observation` is the observation
before the reset. One jitted rollout per environment serves all its checks (the time limit and a switch that forces
a termination are inputs, not constants), because compiling a suite's step dominates on a CPU. A suite that is not
installed skips its tests with the reason.
"""

import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import common
import suites

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def need(suite):
    pytest.importorskip(suites.PACKAGES[suite][0], reason=f"{suites.PACKAGES[suite][1]} is not installed "
                                                          f"(pip install -r requirements-envs.txt)")


@functools.lru_cache(maxsize=None)
def make(name, **options):
    return common.make_env(name, **options)


@functools.lru_cache(maxsize=None)
def rollout_fn(name, tweak=None):
    """A jitted `rollout(params, actions, force)`: two copies of env `name` reset, `tweak(state, force)` applied,
    then one step per action; returns the per-step `(obs, reward, terminated, truncated, final_obs)`."""
    env, _ = make(name)

    def rollout(params, actions, force):
        obs, state = common.reset_envs(env, params, jax.random.PRNGKey(0), 2)
        state = state if tweak is None else tweak(state, force)

        def step(carry, xs):
            state, _ = carry
            key, action = xs
            action = jnp.broadcast_to(action, (2,) + action.shape)
            obs, state, reward, terminated, truncated, final_obs = common.step_envs(env, params, key, state, action)
            return (state, obs), (obs, reward, terminated, truncated, final_obs)

        keys = jax.random.split(jax.random.PRNGKey(1), len(actions))
        return obs, jax.lax.scan(step, (state, obs), (keys, actions))[1]

    return jax.jit(rollout)


def run(name, actions, max_steps, force=False, tweak=None):
    env, params = make(name)
    first_obs, (obs, reward, terminated, truncated, final_obs) = rollout_fn(name, tweak)(
        params.replace(max_steps_in_episode=max_steps), jnp.asarray(actions), force)
    return [np.asarray(x) for x in (first_obs, obs, reward, terminated, truncated, final_obs)]


def check_truncation(name, actions, max_steps, **kwargs):
    """A time limit of `max_steps` ends every `max_steps`-th step as a truncation, never a termination, and its
    final observation is the pre-reset one (it differs from the reset observation returned)."""
    _, obs, _, terminated, truncated, final_obs = run(name, actions, max_steps, **kwargs)
    ends = (np.arange(len(actions)) + 1) % max_steps == 0
    assert not terminated.any()
    assert (truncated == ends[:, None]).all()
    differs = (final_obs[ends] != obs[ends]).reshape(ends.sum(), obs.shape[1], -1).any(-1)
    assert (final_obs[~ends] == obs[~ends]).all() and differs.all()


def check_observations(name, actions, **kwargs):
    """The observations `run` gives have the observation space's shape and are float32, as the rewards are."""
    env, params = make(name)
    first_obs, obs, reward, *_ = run(name, actions, 10, **kwargs)
    space = env.observation_space(params)
    assert first_obs.shape == (2,) + space.shape and obs.shape == (len(actions), 2) + space.shape
    assert first_obs.dtype == obs.dtype == np.float32 and reward.dtype == np.float32
    return space.shape


# --- navix -----------------------------------------------------------------------------------------------------------
NAVIX = "navix/Navix-Empty-8x8-v0"
FORWARD, RIGHT = 2, 1  # navix's action set: rotate ccw, rotate cw, forward, ...
TO_GOAL = [FORWARD] * 5 + [RIGHT] + [FORWARD] * 5  # start (1, 1) facing east, goal at (6, 6): the optimal 11 steps


def test_navix_observation_is_the_symbolic_grid_as_a_float_image():
    need("navix")
    assert check_observations(NAVIX, [RIGHT] * 12) == (8, 8, 3)  # a 3-D observation: PPO and DQN pick their conv torso


def test_navix_reaching_the_goal_is_a_termination_with_reward_one():
    need("navix")
    first_obs, obs, reward, terminated, truncated, final_obs = run(NAVIX, TO_GOAL + [FORWARD], 20)
    assert terminated[10].all() and not terminated[:10].any() and not truncated.any()
    assert (reward[10] == 1.0).all() and reward.sum() == 2.0  # navix pays 1 at the goal, nothing else
    assert (obs[10] == first_obs).all()  # the reset (Empty-8x8 always starts the same) ...
    assert (final_obs[10] != first_obs).any()  # ... and the observation at the goal, before it


def test_navix_time_limit_is_a_truncation():
    need("navix")
    check_truncation(NAVIX, [RIGHT] * 12, 3)


# --- craftax ---------------------------------------------------------------------------------------------------------
CRAFTAX = "craftax/Craftax-Classic-Symbolic-v1"


def kill(state, force):
    """Set the player's health to 0 where `force`: craftax ends the episode on its next step (the player died)."""
    health = jnp.where(force, 0, state.inner.player_health)
    return state.replace(inner=state.inner.replace(player_health=health))


def test_craftax_observation_and_its_time_limit_moved_to_the_adapter():
    need("craftax")
    env, params = make(CRAFTAX)
    assert params.max_steps_in_episode == 10_000 and params.inner.max_timesteps == suites.NEVER
    assert check_observations(CRAFTAX, [0] * 4, tweak=kill) == (1345,) and env.action_space(params).n == 17


def test_craftax_time_limit_is_a_truncation_and_death_a_termination():
    need("craftax")
    check_truncation(CRAFTAX, [0] * 4, 2, tweak=kill)  # action 0 is noop
    _, obs, _, terminated, truncated, final_obs = run(CRAFTAX, [0] * 4, 2, force=True, tweak=kill)
    assert terminated[0].all() and not truncated[0].any() and (final_obs[0] != obs[0]).any()


def test_craftax_resets_optimistically_one_world_per_sixteen_envs():
    """Envs whose episode ended start in one of ceil(n / 16) fresh worlds; the others step on, untouched."""
    need("craftax")
    env, params = make(CRAFTAX)
    obs, state = common.reset_envs(env, params, jax.random.PRNGKey(0), 4)
    force = jnp.array([False, True, False, True])
    step = jax.jit(lambda state, key: common.step_envs(env, params, key, state, jnp.zeros(4, jnp.int32)))
    out = step(kill(state, force), jax.random.PRNGKey(1))
    next_obs, next_state, _, terminated, truncated, final_obs = jax.tree.map(np.asarray, out)
    assert (terminated == np.asarray(force)).all() and not truncated.any()
    np.testing.assert_array_equal(next_state.time, [1, 0, 1, 0])
    np.testing.assert_array_equal(next_obs[[0, 2]], final_obs[[0, 2]])  # stepped on
    np.testing.assert_array_equal(next_obs[1], next_obs[3])  # one fresh world for 4 envs: both died, both start in it
    assert (next_obs[1] != final_obs[1]).any()

# --- jumanji ---------------------------------------------------------------------------------------------------------
KNAPSACK = "jumanji/Knapsack-v1"


def test_jumanji_observation_is_flat_with_the_action_mask_last():
    need("jumanji")
    env, params = make(KNAPSACK)
    assert env.has_action_mask and check_observations(KNAPSACK, [0, 0]) == (4 * 50,)  # weights, values, packed, mask
    first_obs, obs, *_ = run(KNAPSACK, [0, 0], 10)
    assert (first_obs[:, -50:] == 1.0).all()  # every item may be packed at first
    assert (obs[0, :, -50] == 0.0).all() and (obs[0, :, -49:] == 1.0).all()  # item 0, once packed, may not


def test_jumanji_game2048_has_a_mask_and_a_flat_board():
    need("jumanji")
    env, params = make("jumanji/Game2048-v1")
    assert env.has_action_mask and env.observation_space(params).shape == (4 * 4 + 4,)
    assert not suites.JumanjiEnv.has_action_mask and not suites.NavixEnv.has_action_mask


def test_jumanji_invalid_action_is_a_termination_and_time_limit_a_truncation():
    need("jumanji")
    _, obs, _, terminated, truncated, final_obs = run(KNAPSACK, [0, 0], 10)  # item 0 twice: knapsack ends the episode
    assert terminated[1].all() and not terminated[0].any() and not truncated.any()
    assert (final_obs[1] != obs[1]).any(axis=-1).all()
    check_truncation(KNAPSACK, [0, 1, 2, 3, 4, 5], 3)  # 3 distinct items: within budget, no termination


def test_jumanji_own_time_limit_is_a_truncation():
    need("jumanji")
    env, params = common.make_env("jumanji/Snake-v1", time_limit=2)
    assert params.max_steps_in_episode == 2  # the env's own time_limit is the default
    obs, state = common.reset_envs(env, params, jax.random.PRNGKey(0), 2)
    params = params.replace(max_steps_in_episode=100)  # the adapter's limit far away: jumanji's ends the episode
    step = jax.jit(lambda state, key: common.step_envs(env, params, key, state, jnp.zeros(2, jnp.int32)))
    ends = []
    for t in range(2):
        obs, state, reward, terminated, truncated, final_obs = step(state, jax.random.PRNGKey(t))
        ends.append((bool(terminated.any()), bool(truncated.all())))
    assert ends == [(False, False), (False, True)]


def test_jumanji_multi_dimensional_actions_are_refused():
    need("jumanji")
    with pytest.raises(ValueError, match="jumanji/BinPack-v2 takes a MultiDiscreteArray action; .*one discrete"):
        common.make_env("jumanji/BinPack-v2")


# --- playground ------------------------------------------------------------------------------------------------------
PLAYGROUND = "playground/CartpoleBalance"


def nan_pose(state, force):
    """Make the pose NaN where `force`: playground's cartpole reports done (its one termination) on NaN."""
    qpos = jnp.where(force, jnp.nan, state.inner.data.qpos)
    return state.replace(inner=state.inner.replace(data=state.inner.data.replace(qpos=qpos)))


def test_playground_observation_actions_and_episode_length():
    need("playground")
    env, params = make(PLAYGROUND)
    assert params.max_steps_in_episode == 1000 and env.action_space(params).shape == (1,)
    assert env.action_space(params).low == -1.0 and env.action_space(params).high == 1.0
    assert check_observations(PLAYGROUND, np.zeros((4, 1), np.float32), tweak=nan_pose) == (5,)


def test_playground_time_limit_is_a_truncation_and_done_a_termination():
    need("playground")
    check_truncation(PLAYGROUND, np.zeros((4, 1), np.float32), 2, tweak=nan_pose)
    _, _, _, terminated, truncated, _ = run(PLAYGROUND, np.zeros((4, 1), np.float32), 2, force=True, tweak=nan_pose)
    assert terminated[0].all() and not truncated[0].any()


# --- names and errors ------------------------------------------------------------------------------------------------
def test_unknown_names_get_close_matches():
    need("navix")
    with pytest.raises(ValueError, match="Unknown navix environment 'Navix-Empty-8x8-v1'; did you mean "
                                         "'navix/Navix-Empty-8x8-v0'"):
        common.make_env("navix/Navix-Empty-8x8-v1")
    with pytest.raises(ValueError, match=r"Unknown environment 'navx/Empty'.*navix/<name>"):
        common.make_env("navx/Empty")


def test_kinetix_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="kinetix-env release pins jax <= 0.9.0"):
        common.make_env("kinetix/h_hard_thrust")


@pytest.mark.parametrize("suite", sorted(suites.PACKAGES))
def test_a_missing_suite_names_the_pip_command(monkeypatch, suite):
    real_import = suites.importlib.import_module

    def fail(name, *args):
        if name == suites.PACKAGES[suite][0]:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(suites.importlib, "import_module", fail)
    pin = suites.PACKAGES[suite][1]
    with pytest.raises(ValueError, match=f"run `pip install {pin}`"):
        common.make_env(f"{suite}/Anything")


@pytest.mark.slow  # a fresh interpreter compiling mjx physics on 2 devices: about 4 min
def test_ppo_cli_on_playground_over_two_devices_writes_results(tmp_path):
    """The command line end to end on a suite, split over 2 devices: playground's state holds zero-size arrays
    (mocap_pos with no mocap bodies), which jax keeps replicated, and the run must still go through."""
    need("playground")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "rejax_ppo.py"), "--env", PLAYGROUND, "--num-seeds", "2",
         "--cpu-devices", "2", "--total-timesteps", "1024", "--eval-freq", "512", "--num-envs", "8", "--num-steps",
         "64", "--num-eval-episodes", "1", "--env-kwargs", '{"episode_length": 100}', "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["env"] == PLAYGROUND and np.isfinite(summary["final_return_mean"])
    assert "Warp" not in result.stdout + result.stderr  # warp's start-up log is silenced
