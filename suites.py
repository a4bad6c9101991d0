"""Other environment suites behind the gymnax interface: `navix/`, `craftax/`, `jumanji/` and `playground/` names.

`common.make_env("<suite>/<name>", **options)` imports this module, and this module imports the suite, only when such a
name is asked for. Each adapter is a `common.Adapter`: it gives `reset_env` and `step_env` (whose `terminated` is a
real termination), and `Adapter.step` adds the time limit `max_steps_in_episode` as a truncation, resets finished
episodes and returns `info["final_observation"]`. Each suite's own time limit is ignored (navix), moved out of reach
(craftax) or turned into a truncation (jumanji), so only deaths, goals and the like count as terminations.

  navix/<name>       navix 0.7.4 (MiniGrid in JAX): the symbolic (H, W, 3) grid as a float image (PPO and DQN then
                     pick the conv torso); reward 1 at the goal. Options: `max_steps` (100, navix's own default) and
                     navix's `make` keywords.
  craftax/<name>     craftax 1.6.1: Craftax-Classic-Symbolic-v1 and Craftax-Symbolic-v1 (flat vectors), the -Pixels-
                     ones (images; not tried). Options: `max_steps` (craftax's max_timesteps: 10,000 classic, 100,000
                     full) and fields of craftax's EnvParams.
  jumanji/<name>     jumanji 1.1.2, one discrete action: the observation's numeric fields flattened into one float
                     vector; an `action_mask` field goes last, and the env declares `has_action_mask = True`.
                     Options: `max_steps` (the env's time_limit, or 1,000) and jumanji's `make` keywords.
  playground/<name>  MuJoCo Playground 0.2.0 on its JAX (MJX) implementation: actions in [-1, 1], vector
                     observations. Options: playground config overrides, `episode_length` (1,000) in agent steps.
  kinetix/<name>     unavailable: every kinetix-env release pins jax <= 0.9.0 (this project uses 0.10.2).
"""

import difflib
import functools
import importlib
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

import common

# suite -> (module to import, the pinned pip requirement that provides it); requirements-envs.txt holds the same pins
PACKAGES = {"navix": ("navix", "navix==0.7.4"), "craftax": ("craftax", "craftax==1.6.1"),
            "jumanji": ("jumanji", "jumanji==1.1.2"), "playground": ("mujoco_playground", "playground==0.2.0")}
CRAFTAX_ENVS = ("Craftax-Classic-Symbolic-v1", "Craftax-Symbolic-v1", "Craftax-Classic-Pixels-v1", "Craftax-Pixels-v1")
NEVER = 2**31 - 1  # a suite's own time limit, pushed out of reach so that the adapter's limit is the only one
RESET_RATIO = 16  # craftax: envs per fresh world made at each step (CraftaxEnv.step_batch; craftax's baseline's 16)


@struct.dataclass
class SuiteState:
    inner: Any  # the suite's own state (navix: its Timestep; jumanji: (state, timestep))
    time: int


@struct.dataclass
class SuiteParams:
    max_steps_in_episode: int
    inner: Any = None  # the suite's own parameters, where it has them (craftax)


def make(name: str, **options):
    """Return `(env, env_params)` for "<suite>/<name>"; refuse unknown suites, names and missing packages."""
    suite, _, env_id = name.partition("/")
    if suite == "kinetix":
        raise ValueError("kinetix/ environments are unavailable: every kinetix-env release pins jax <= 0.9.0 and "
                         "this project needs jax 0.10.2, so the two cannot be installed together.")
    adapters = {"navix": NavixEnv, "craftax": CraftaxEnv, "jumanji": JumanjiEnv, "playground": PlaygroundEnv}
    if suite not in adapters:
        raise ValueError(f"Unknown environment suite {suite!r} in {name!r}; use one of "
                         f"{', '.join(s + '/<name>' for s in adapters)}.")
    env = adapters[suite].create(env_id, **options)
    return env, env.default_params


def import_suite(suite: str):
    module, requirement = PACKAGES[suite]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"{suite}/ environments need the {module} package, which is not installed; run "
                         f"`pip install {requirement}` (or `pip install -r requirements-envs.txt` for every suite)."
                         ) from None


def check_name(suite: str, env_id: str, names):
    if env_id not in names:
        close = difflib.get_close_matches(env_id, list(names), n=3, cutoff=0.5)
        hint = (f"did you mean {', '.join(repr(f'{suite}/{c}') for c in close)}?" if close
                else f"available: {', '.join(sorted(names))}.")
        raise ValueError(f"Unknown {suite} environment {env_id!r}; {hint}")


class SuiteEnv(common.Adapter):
    """What every adapter shares: the suite's state in `SuiteState` with the step count, a `SuiteParams` with the
    time limit, the name, and spaces. A subclass gives `create`, `suite_reset(key, params) -> (obs, inner)` and
    `suite_step(key, inner, action, params) -> (obs, inner, reward, terminated, info)`."""

    suite = ""
    has_action_mask = False

    def __init__(self, env_id: str, env, max_steps: int, num_actions: int, discrete: bool = True, inner_params=None):
        if not (isinstance(max_steps, int) and max_steps >= 1):
            raise ValueError(f"{self.suite}/{env_id}: max_steps must be a positive integer, got {max_steps!r}.")
        self.env_id, self.env, self.max_steps = env_id, env, max_steps
        self.num_actions, self.discrete, self.inner_params = num_actions, discrete, inner_params

    @property
    def name(self):
        return f"{self.suite}/{self.env_id}"

    @property
    def default_params(self):
        return SuiteParams(self.max_steps, self.inner_params)

    def reset_env(self, key, params):
        obs, inner = self.suite_reset(key, params)
        return obs, SuiteState(inner, jnp.int32(0))

    def step_env(self, key, state, action, params):
        obs, inner, reward, terminated, info = self.suite_step(key, state.inner, action, params)
        return obs, SuiteState(inner, state.time + 1), reward.astype(jnp.float32), terminated.astype(bool), info

    def action_space(self, params=None):
        return spaces.Discrete(self.num_actions) if self.discrete else spaces.Box(-1.0, 1.0, (self.num_actions,))

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, self.observation_shape, jnp.float32)

    @functools.cached_property
    def observation_shape(self):
        """Traced, not run: the shape of what `reset` returns."""
        obs, _ = jax.eval_shape(self.reset, jax.random.PRNGKey(0))
        return obs.shape


class NavixEnv(SuiteEnv):
    """navix's `Environment` (its state is a `Timestep`). The adapter calls navix's `_step`, not `step`: `step` wraps
    `_step` in a `cond` with a reset, which vmapped runs both branches, and the adapter resets on its own already."""

    suite = "navix"

    @classmethod
    def create(cls, env_id: str, max_steps: int = 100, **options):
        nx = import_suite("navix")
        check_name("navix", env_id, nx.registry())
        # navix's own limit stays at max_steps (its time penalty, when asked for, scales with it); navix reports
        # reaching it as a truncation, which the adapter ignores: its own time limit decides
        env = nx.make(env_id, max_steps=max_steps, **options)
        return cls(env_id, env, max_steps, len(env.action_set))

    def suite_reset(self, key, params):
        timestep = self.env.reset(key)
        return timestep.observation.astype(jnp.float32), timestep

    def suite_step(self, key, timestep, action, params):
        timestep = self.env._step(timestep, action)
        return (timestep.observation.astype(jnp.float32), timestep, timestep.reward, timestep.is_termination(),
                {})


class CraftaxEnv(SuiteEnv):
    """craftax without its auto-reset; its `max_timesteps` (a termination in craftax) is moved out of reach and
    becomes the adapter's `max_steps_in_episode`, a truncation. Its info (achievements, discount) passes through."""

    suite = "craftax"

    @classmethod
    def create(cls, env_id: str, max_steps: int = None, **options):
        import_suite("craftax")
        check_name("craftax", env_id, CRAFTAX_ENVS)
        from craftax.craftax_env import make_craftax_env_from_name

        env = make_craftax_env_from_name(env_id, auto_reset=False)
        params = env.default_params.replace(**options) if options else env.default_params
        max_steps = int(params.max_timesteps) if max_steps is None else max_steps
        return cls(env_id, env, max_steps, env.num_actions, inner_params=params.replace(max_timesteps=NEVER))

    def suite_reset(self, key, params):
        return self.env.reset(key, params.inner)

    def suite_step(self, key, state, action, params):
        return self.env.step(key, state, action, params.inner)

    def step_batch(self, keys, state, action, params):
        """`step` of every env at once (what common.step_envs calls), with optimistic resets as in craftax's own
        PPO baseline: a reset generates a whole world, about 18 steps' work (64 envs: 167 resets/s against 2,969
        steps/s), and gymnax-style auto-reset makes one at every step of every env. Here only ceil(n / RESET_RATIO)
        worlds are made per step, and the i-th env whose episode ended starts in world i mod that count, so when
        more episodes than that end at one step, some of them start in the same world. A subclass that changes `step`
        must change this too (a wrapper around the env keeps its own `step`: see common.step_envs)."""
        keys_step, keys_reset = jnp.moveaxis(jax.vmap(jax.random.split)(keys), 1, 0)
        obs_step, state_step, reward, terminated, info = jax.vmap(self.step_env, in_axes=(0, 0, 0, None))(
            keys_step, state, action, params)
        truncated = state_step.time >= params.max_steps_in_episode
        done = terminated | truncated
        num_worlds = -(-action.shape[0] // RESET_RATIO)
        obs_reset, state_reset = jax.vmap(self.reset_env, in_axes=(0, None))(keys_reset[:num_worlds], params)
        world = (jnp.cumsum(done) - 1) % num_worlds  # the i-th finished env takes world i mod num_worlds
        pick = lambda reset, stepped: jnp.where(  # noqa: E731
            done.reshape(done.shape + (1,) * (stepped.ndim - 1)), reset[world], stepped)
        state, obs = jax.tree_util.tree_map(pick, (state_reset, obs_reset), (state_step, obs_step))
        info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_step}
        return obs, state, reward, terminated, truncated, info


class JumanjiEnv(SuiteEnv):
    """A jumanji env with one discrete action. A step with discount 0 ends in a termination, except at the env's own
    `time_limit` (Snake ends there with discount 0 too) or with discount > 0: those move the adapter's clock to its
    limit, so they are truncations."""

    suite = "jumanji"

    @classmethod
    def create(cls, env_id: str, max_steps: int = None, **options):
        jumanji = import_suite("jumanji")
        check_name("jumanji", env_id, jumanji.registered_environments())
        env = jumanji.make(env_id, **options)
        spec = env.action_spec
        if not isinstance(spec, importlib.import_module("jumanji.specs").DiscreteArray):
            raise ValueError(f"jumanji/{env_id} takes a {type(spec).__name__} action; rejax's algorithms need one "
                             f"discrete action (a DiscreteArray), so multi-dimensional actions are not supported.")
        _, timestep = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
        fields = getattr(timestep.observation, "_asdict", lambda: None)()
        if fields is None or not all(hasattr(v, "dtype") and (jnp.issubdtype(v.dtype, jnp.number) or v.dtype == bool)
                                     for v in fields.values()):
            raise ValueError(f"jumanji/{env_id}'s observation is not a flat record of numeric arrays "
                             f"({type(timestep.observation).__name__}), so it cannot be flattened into one vector.")
        masked = fields.get("action_mask") is not None and fields["action_mask"].shape == (int(spec.num_values),)
        max_steps = getattr(env, "time_limit", 1000) if max_steps is None else max_steps
        return (MaskedJumanjiEnv if masked else cls)(env_id, env, int(max_steps), int(spec.num_values))

    def flatten(self, observation):
        fields = observation._asdict()
        order = [k for k in fields if k != "action_mask"] + (["action_mask"] if self.has_action_mask else [])
        return jnp.concatenate([jnp.ravel(fields[k]).astype(jnp.float32) for k in order])

    def suite_reset(self, key, params):
        state, timestep = self.env.reset(key)
        return self.flatten(timestep.observation), state

    def suite_step(self, key, state, action, params):
        state, timestep = self.env.step(state, action)
        last = timestep.last()
        terminated = last & (timestep.discount == 0)
        return self.flatten(timestep.observation), state, timestep.reward, terminated, {"last": last}

    def step_env(self, key, state, action, params):
        obs, state, reward, terminated, info = super().step_env(key, state, action, params)
        own_limit = info["last"] & (~terminated | (state.time >= getattr(self.env, "time_limit", NEVER)))
        time = jnp.where(own_limit, jnp.maximum(state.time, params.max_steps_in_episode), state.time)
        return obs, state.replace(time=time), reward, terminated & ~own_limit, info


class MaskedJumanjiEnv(JumanjiEnv):
    """A jumanji env whose observation has an `action_mask`: the last `num_actions` entries of the flat observation
    (1.0 allowed, 0.0 forbidden)."""

    has_action_mask = True


class PlaygroundEnv(SuiteEnv):
    """A MuJoCo Playground env (brax-like state: `obs`, `reward`, `done`) on its JAX implementation. Its `done` is a
    termination; the time limit `episode_length` (from its config) is the adapter's, a truncation."""

    suite = "playground"

    @classmethod
    def create(cls, env_id: str, **options):
        try:  # warp (imported by mujoco's mjx) logs its start-up and every kernel it loads unless told not to
            import warp

            warp.config.quiet = True
        except ImportError:
            pass
        playground = import_suite("playground")
        check_name("playground", env_id, playground.registry.ALL_ENVS)
        config = playground.registry.get_default_config(env_id)
        config.update({"impl": "jax", **options})
        env = playground.registry.load(env_id, config=config)
        if not isinstance(env.observation_size, int):
            raise ValueError(f"playground/{env_id} gives a dict observation ({', '.join(env.observation_size)}); "
                             f"rejax's algorithms need one observation vector.")
        return cls(env_id, env, int(config.episode_length), env.action_size, discrete=False)

    def suite_reset(self, key, params):
        state = self.env.reset(key)
        return state.obs, state

    def suite_step(self, key, state, action, params):
        state = self.env.step(state, action)
        return state.obs, state, state.reward, state.done > 0, {}
