"""Checkpoints: a run killed with SIGKILL and resumed ends bit-identical to the uninterrupted run; torn, corrupt and
incompatible checkpoints are refused with one sentence; a loaded checkpoint gives the trained policy."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import cli
import common
import rejax_ppo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = {  # long enough that the kill lands between two checkpoints, short enough for CI
    "ppo": ["--env", "CartPole-v1", "--num-seeds", "2", "--total-timesteps", "100000", "--eval-freq", "5000",
            "--checkpoint-every", "10000"],
    "dqn": ["--env", "CartPole-v1", "--num-seeds", "2", "--total-timesteps", "24000", "--eval-freq", "2000",
            "--checkpoint-every", "4000"],
}


def command(algo, args):
    return [sys.executable, os.path.join(ROOT, f"rejax_{algo}.py"), *RUNS[algo], *args]


def final_state(path):
    saved = cli.read_checkpoint(path)
    return saved["evals_done"], jax.tree_util.tree_leaves(saved["train_state"])


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_killed_run_resumes_bit_identical(algo, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = subprocess.run(command(algo, ["--out", str(whole)]), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    # The same run, killed with SIGKILL as soon as its first checkpoint exists, then resumed from it.
    process = subprocess.Popen(command(algo, ["--out", str(killed)]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = killed / "checkpoint.msgpack"
    while not checkpoint.exists() and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    evals_done, _ = final_state(checkpoint)
    num_evals, _ = final_state(whole / "checkpoint.msgpack")
    assert evals_done < num_evals, "the kill came after the last checkpoint; nothing was resumed"

    resumed = subprocess.run(command(algo, ["--resume", str(checkpoint)]), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from {checkpoint} at evaluation point {evals_done}" in resumed.stdout
    (a_done, a), (b_done, b) = final_state(whole / "checkpoint.msgpack"), final_state(checkpoint)
    assert a_done == b_done == num_evals and len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)  # bit for bit: parameters, optimiser states, buffers, rng, step counter
    if algo == "ppo":  # checkpoints change nothing: the same run without them ends with the same curves
        plain = [arg for arg in RUNS[algo] if arg not in ("--checkpoint-every", "10000")]
        script = os.path.join(ROOT, "rejax_ppo.py")
        free = subprocess.run([sys.executable, script, *plain, "--out", str(tmp_path / "free")], capture_output=True,
                              text=True, timeout=600)
        assert free.returncode == 0, free.stderr[-2000:]
        curves = [json.loads((folder / "curves.json").read_text()) for folder in (whole, tmp_path / "free")]
        assert curves[0]["eval_return"] == curves[1]["eval_return"]
    whole_curve = json.loads((whole / "curves.json").read_text())
    assert json.loads((killed / "curves.json").read_text()) == whole_curve  # evaluation history included


def test_torn_write_leaves_the_previous_checkpoint_and_corrupt_files_are_refused(tmp_path):
    path = str(tmp_path / "checkpoint.msgpack")
    state = {"params": np.arange(6, dtype=np.float32).reshape(2, 3)}
    cli.save_checkpoint(path, state, {"return": np.zeros((2, 1))}, 1, {"algorithm": "ppo"})
    # A writer killed mid-write leaves only its temporary file; the checkpoint itself is untouched.
    with open(f"{path}.tmp-12345", "wb") as f:
        f.write(b"\x85\xa6format")
    like = jax.eval_shape(lambda: state)
    restored, _, evals_done = cli.load_checkpoint(path, like, {"algorithm": "ppo"})
    np.testing.assert_array_equal(restored["params"], state["params"])
    with open(path, "r+b") as f:  # a truncated file (e.g. a copy that was cut short)
        f.truncate(20)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        cli.load_checkpoint(path, like, {"algorithm": "ppo"})


def test_incompatible_checkpoints_are_refused(tmp_path):
    path = str(tmp_path / "checkpoint.msgpack")
    meta = {"algorithm": "ppo", "env": "CartPole-v1", "num_seeds": 2, "seed": 0, "config": {"learning_rate": 0.001}}
    state = {"params": np.zeros((2, 3), np.float32)}
    cli.save_checkpoint(path, state, {}, 1, meta)
    like = jax.eval_shape(lambda: state)
    for change, message in [({"algorithm": "sac"}, "algorithm 'ppo' but this run has 'sac'"),
                            ({"env": "Acrobot-v1"}, "env 'CartPole-v1' but this run has 'Acrobot-v1'"),
                            ({"num_seeds": 3}, "num_seeds 2 but this run has 3"),
                            ({"config": {"learning_rate": 0.01}}, "learning_rate=0.001 but this run has learning_rate=0.01")]:
        with pytest.raises(ValueError, match=message):
            cli.load_checkpoint(path, like, {**meta, **change})
    with pytest.raises(ValueError, match=r"\['params'\] of shape \(2, 3\) float32 where this run needs \(2, 4\)"):
        cli.load_checkpoint(path, jax.eval_shape(lambda: {"params": np.zeros((2, 4), np.float32)}), meta)
    with pytest.raises(ValueError, match="No checkpoint at"):
        cli.load_checkpoint(str(tmp_path / "missing.msgpack"), like, meta)


def test_cli_refuses_a_checkpoint_of_another_run(tmp_path):
    out = tmp_path / "run"
    small = ["--env", "CartPole-v1", "--total-timesteps", "2000", "--eval-freq", "1000", "--num-envs", "4",
             "--num-steps", "50", "--num-minibatches", "2", "--checkpoint-every", "1000", "--out", str(out)]
    first = subprocess.run([sys.executable, os.path.join(ROOT, "rejax_ppo.py"), *small], capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    again = subprocess.run([sys.executable, os.path.join(ROOT, "rejax_ppo.py"), *small, "--num-seeds", "3",
                            "--resume", str(out / "checkpoint.msgpack")], capture_output=True, text=True, timeout=600)
    assert again.returncode == 2
    assert "error: Checkpoint" in again.stderr and "num_seeds 1 but this run has 3" in again.stderr
    assert "Traceback" not in again.stderr

    # The finished run's checkpoint gives its trained policy without retraining.
    config, train_state = cli.restore(str(out / "checkpoint.msgpack"))
    act = rejax_ppo.make_act(config, common.select_seed(train_state, 0))
    assert act(np.zeros(4, np.float32), jax.random.PRNGKey(0)) in (0, 1)
