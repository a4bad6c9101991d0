"""Each algorithm file stands alone: copied with common.py into an empty folder it gives the whole Python API (Config.make,
train jitted and vmapped over 2 seeds, make_act); with cli.py and requirements.txt beside them (and nothing else of the
project), its command line runs.

Each copied-file case runs in a fresh interpreter whose only importable project files are the copied ones (the folder is the
working directory and the script's own folder; PYTHONPATH is cleared), so a hidden import of another project file
fails here."""

import ast
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {  # budgets that cover warm-up, updates and two evaluation points, on each file's own kind of env
    "ppo": ("CartPole-v1", dict(total_timesteps=400, eval_freq=200, num_envs=2, num_steps=50, num_minibatches=2)),
    "dqn": ("CartPole-v1", dict(total_timesteps=400, eval_freq=200, learning_starts=100, num_envs=2, batch_size=16)),
    "sac": ("CartPole-v1", dict(total_timesteps=400, eval_freq=100, learning_starts=200, num_envs=2, batch_size=16)),
    "ddpg": ("Pendulum-v1", dict(total_timesteps=240, eval_freq=60, learning_starts=120, num_envs=2, batch_size=16)),
    "td3": ("Pendulum-v1", dict(total_timesteps=240, eval_freq=60, learning_starts=120, num_envs=2, batch_size=16)),
    "iqn": ("CartPole-v1", dict(total_timesteps=400, eval_freq=200, learning_starts=100, num_envs=2, batch_size=16)),
    "pqn": ("CartPole-v1", dict(total_timesteps=400, eval_freq=200, num_envs=2, num_steps=50, num_minibatches=2)),
}
API = """
import jax, numpy as np
import common
from rejax_{algo} import Config, train, make_act
config = Config.make({env!r}, num_eval_episodes=2, **{overrides!r})
keys = jax.random.split(jax.random.PRNGKey(0), 2)
train_state, evaluation = jax.jit(jax.vmap(train, in_axes=(None, 0)))(config, keys)
act = make_act(config, common.select_seed(train_state, 1))
obs, _ = config.env.reset(jax.random.PRNGKey(1), config.env_params)
action = np.asarray(act(obs, jax.random.PRNGKey(2)))
returns = np.asarray(evaluation["return"])
assert returns.shape[:2] == (2, config.num_evals + 1) and np.isfinite(returns).all(), returns.shape
print("api ok", action.shape, returns.shape)
"""


def run_alone(folder, args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def copy_alone(folder, algo, *extra):
    for name in (f"rejax_{algo}.py", "common.py", *extra):
        shutil.copy(os.path.join(ROOT, name), folder)


PROJECT = {name[:-3] for name in os.listdir(ROOT) if name.endswith(".py")}  # rejax_*, common, cli, suites


def project_imports(tree):
    """(module, inside `if __name__ == "__main__":`) for every import of a project module anywhere in `tree`."""
    found = []

    def visit(node, in_main):
        if isinstance(node, ast.If) and ast.unparse(node.test).replace("'", '"') == '__name__ == "__main__"':
            in_main = True
        if isinstance(node, ast.Import):
            found.extend((alias.name.split(".")[0], in_main) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module.split(".")[0], in_main))
        for child in ast.iter_child_nodes(node):
            visit(child, in_main)

    visit(tree, False)
    return [(module, in_main) for module, in_main in found if module in PROJECT]


@pytest.mark.parametrize("algo", list(SMALL))
def test_algorithm_file_imports_only_common_and_cli_in_main(algo):
    """Every algorithm file, read statically (nested and lazy imports included): the only project module it imports is
    common.py, and cli.py inside its `__main__` block. The copied-file runs below check the same at run time."""
    tree = ast.parse(open(os.path.join(ROOT, f"rejax_{algo}.py")).read())
    imports = project_imports(tree)
    assert ("common", False) in imports and ("cli", True) in imports, imports
    assert set(imports) <= {("common", False), ("cli", True)}, imports


# The copied-file runs are each a fresh interpreter compiling one or two programs (1-2 min on the slower 2-core CPU):
# PPO's run by default, the other files' in the slow tier, where the static check above covers them.
@pytest.mark.parametrize("algo", [a if a == "ppo" else pytest.param(a, marks=pytest.mark.slow) for a in SMALL])
def test_algorithm_file_with_common_alone_gives_the_python_api(algo, tmp_path):
    env_name, overrides = SMALL[algo]
    copy_alone(tmp_path, algo)
    (tmp_path / "api.py").write_text(API.format(algo=algo, env=env_name, overrides=overrides))
    api = run_alone(tmp_path, ["api.py"])
    assert api.returncode == 0 and "api ok" in api.stdout, api.stderr[-3000:]


@pytest.mark.parametrize("algo", [a if a == "ppo" else pytest.param(a, marks=pytest.mark.slow) for a in SMALL])
def test_algorithm_file_with_common_and_cli_runs_its_command_line(algo, tmp_path):
    env_name, overrides = SMALL[algo]
    copy_alone(tmp_path, algo, "cli.py", "requirements.txt")
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in overrides.items()]
    run = run_alone(tmp_path, [f"rejax_{algo}.py", "--env", env_name, "--num-seeds", "2", "--out", "results", *flags])
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["algorithm"] == algo and len(summary["final_return_per_seed"]) == 2
