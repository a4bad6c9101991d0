"""PyPI rejax 0.1.3 beside gymnax 1.0.1 and jax 0.10, for the side-by-side benchmarks (the library never imports it).

Install (benchmark only, never in requirements.txt):  pip install rejax==0.1.3 --no-deps chex

Two things stand between rejax 0.1.3 and this stack, and this module bridges both the same way for every script:
- gymnax 1.0.1's `step` returns (obs, state, reward, terminated, truncated, info); rejax unpacks five values.
  `FiveTupleStep(env)` gives it (obs, state, reward, terminated | truncated, info): rejax ends and never bootstraps
  every episode, time limits included, which is how it behaves with the gymnax it was written for.
- rejax's networks module imports distrax. Where distrax does not import (its tensorflow-probability breaks under
  some jax 0.10 installs), `import_rejax` registers a stand-in module with the three distributions rejax's discrete
  agents sample from, in plain jax: `Categorical` (PPO, SAC), `EpsilonGreedy` (DQN, PQN, IQN) and `Uniform` (IQN's
  quantile fractions). Each samples with `jax.random.categorical` / `jax.random.uniform` as distrax does. rejax's
  continuous agents need the real distrax (0.1.9 with tfp-nightly imports here).
"""

import sys
import types

import jax
import jax.numpy as jnp


class FiveTupleStep:
    """A gymnax 1.0.1 env seen through the 5-tuple `step` rejax 0.1.3 unpacks (done = terminated | truncated)."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):  # everything but step is the wrapped env's ("env" guarded for copy/deepcopy)
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        return obs, state, reward, terminated | truncated, info


def as_shape(sample_shape) -> tuple:
    """distrax takes an int or a sequence as `sample_shape`."""
    return (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)


class Categorical:
    def __init__(self, logits=None, probs=None):
        self.logits = jax.nn.log_softmax(logits) if logits is not None else jnp.log(probs)

    def sample(self, seed, sample_shape=()):
        return jax.random.categorical(seed, self.logits, shape=as_shape(sample_shape) + self.logits.shape[:-1])

    def log_prob(self, value):
        return jnp.take_along_axis(self.logits, jnp.asarray(value)[..., None].astype(int), -1)[..., 0]

    def entropy(self):
        return -jnp.sum(jnp.exp(self.logits) * self.logits, -1)

    def mode(self):
        return jnp.argmax(self.logits, -1)

    @property
    def probs(self):
        return jnp.exp(self.logits)


class EpsilonGreedy(Categorical):
    """Probability 1 - eps shared by the greedy action(s), eps spread uniformly over all actions."""

    def __init__(self, preferences, epsilon, dtype=int):
        greedy = (preferences == preferences.max(-1, keepdims=True)).astype(jnp.float32)
        super().__init__(probs=(1 - epsilon) * greedy / greedy.sum(-1, keepdims=True) + epsilon / preferences.shape[-1])


class Uniform:
    def __init__(self, low=0.0, high=1.0):
        self.low, self.high = jnp.asarray(low), jnp.asarray(high)

    def sample(self, seed, sample_shape=()):
        shape = as_shape(sample_shape) + jnp.broadcast_shapes(self.low.shape, self.high.shape)
        return self.low + (self.high - self.low) * jax.random.uniform(seed, shape)


def import_rejax():
    """`import rejax`, with the distrax stand-in registered first where the real distrax does not import."""
    try:
        import distrax  # noqa: F401
    except Exception:
        sys.modules["distrax"] = types.SimpleNamespace(Categorical=Categorical, EpsilonGreedy=EpsilonGreedy,
                                                       Uniform=Uniform)
    import rejax

    return rejax
