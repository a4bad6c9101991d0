"""Hyperparameter sweeps in one jitted run (`--sweep`), their results files, and what --track logs to wandb."""

import glob
import json
import os
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cli
import common
import rejax_ppo
from rejax_ppo import Config

SMALL = dict(total_timesteps=2_000, eval_freq=1_000, num_envs=4, num_steps=50, num_epochs=2, num_minibatches=2)
LEARNING_RATES = (3e-4, 1e-3, 3e-3)
Args = cli.make_args_class(Config)


def run(tmp, **flags):
    args = Args(**{"env": "CartPole-v1", "out": str(tmp), **SMALL, **flags})
    return cli.run("ppo", Config, rejax_ppo.train, rejax_ppo.PPO.eval_callback, args)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 3-value learning-rate sweep x 2 seeds through the CLI plumbing, tracked by wandb offline (compiled once)."""
    tmp = tmp_path_factory.mktemp("sweep")
    saved = {k: os.environ.get(k) for k in ("WANDB_MODE", "WANDB_DIR", "WANDB_SILENT")}
    os.environ.update(WANDB_MODE="offline", WANDB_DIR=str(tmp), WANDB_SILENT="true")
    try:
        result = run(tmp / "run", num_seeds=2, seed=5, track=True,
                     sweep=("learning_rate=" + ",".join(map(str, LEARNING_RATES)),))
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    return tmp, result


def test_sweep_equals_the_six_single_runs(swept):
    _, (train_state, evaluation, _) = swept
    # As in the CLI, the whole config is an input of the compiled program (constants would be folded otherwise).
    config = Config.make("CartPole-v1", **SMALL)
    single = jax.jit(rejax_ppo.train)
    for g, learning_rate in enumerate(LEARNING_RATES):
        for i in range(2):  # run g * num_seeds + i: setting g, seed 5 + i
            swept = config.replace(learning_rate=jnp.float32(learning_rate))
            state, expected = single(swept, jax.random.PRNGKey(5 + i))
            got = common.select_seed((train_state.params, evaluation["return"]), g * 2 + i)
            for x, y in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves((state.params, expected["return"]))):
                np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_summary_and_files_rank_settings_best_first(swept):
    tmp, (_, _, summary) = swept
    rows = summary["settings"]
    assert sorted(row["learning_rate"] for row in rows) == sorted(LEARNING_RATES)
    iqms = [row["final_return_iqm"] for row in rows]
    assert iqms == sorted(iqms, reverse=True) and all(len(row["final_return_per_seed"]) == 2 for row in rows)
    assert all(0 <= row["best_improves_on_this"] <= 1 for row in rows[1:]) and "best_improves_on_this" not in rows[0]
    lines = (tmp / "run" / "settings.csv").read_text().splitlines()
    assert lines[0].startswith("learning_rate,final_return_iqm,final_return_mean,final_return_median")
    assert [float(line.split(",")[0]) for line in lines[1:]] == [row["learning_rate"] for row in rows]
    curves = json.loads((tmp / "run" / "curves.json").read_text())
    assert len(curves["eval_return"]) == 6 and curves["runs"][3] == {"learning_rate": 1e-3, "seed": 1}
    assert (tmp / "run" / "curves.csv").read_text().startswith("learning_rate,seed,env_steps,eval_return")
    assert json.loads((tmp / "run" / "config.json").read_text())["sweep"] == {"learning_rate": list(LEARNING_RATES)}


def wandb_records(path):
    """The records of an offline .wandb file: a 7-byte header, then LevelDB-log blocks of 32 KiB whose records have a
    7-byte header (crc, length, type: 1 whole, 2 first, 3 middle, 4 last piece)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, pending = open(path, "rb").read(), 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pending, pos = pending + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def item_key(item):
    return item.key or "/".join(item.nested_key)


def test_track_logs_every_seed_of_every_setting_to_one_offline_run(swept):
    tmp, (_, evaluation, summary) = swept
    runs = glob.glob(str(tmp / "wandb" / "offline-run-*" / "*.wandb"))
    assert len(runs) == 1  # one wandb run for the whole sweep
    history, final = [], {}
    for record in wandb_records(runs[0]):
        if record.WhichOneof("record_type") == "history":
            history.append({item_key(item): json.loads(item.value_json) for item in record.history.item})
        elif record.WhichOneof("record_type") == "summary":
            final.update({item_key(item): json.loads(item.value_json) for item in record.summary.update})
    assert [row["_step"] for row in history] == [0, 1000, 2000]
    returns = np.asarray(evaluation["return"]).mean(-1)  # [run, eval point]
    for g, learning_rate in enumerate(LEARNING_RATES):
        label = f"learning_rate={learning_rate:g}"
        for i in range(2):
            logged = [row[f"{label}/seed_{i}/eval/episodic_return"] for row in history]
            np.testing.assert_allclose(logged, returns[g * 2 + i], rtol=1e-6)
        assert f"{label}/seed_0/charts/episodic_return" in history[-1]
        np.testing.assert_allclose(history[-1][f"{label}/eval/episodic_return"], returns[g * 2:g * 2 + 2, -1].mean())
    best = summary["settings"][0]
    assert final[f"learning_rate={best['learning_rate']:g}/final_return"] == pytest.approx(best["final_return_mean"])
    assert final[f"learning_rate={best['learning_rate']:g}/final_return_iqm"] == pytest.approx(best["final_return_iqm"])
    for row, point in zip(history, returns.T):  # the IQM over all runs and its interval, next to the mean
        assert row["eval/episodic_return_iqm"] == pytest.approx(cli.iqm(point))
        assert row["eval/episodic_return_iqm_ci_low"] <= row["eval/episodic_return_iqm"] <= \
            row["eval/episodic_return_iqm_ci_high"]


@pytest.mark.parametrize("spec, message", [
    ("num_envs=2,4", "Cannot sweep num_envs: it is a static field"),
    ("eval_freq=500,1000", "Cannot sweep eval_freq: it is a static field"),
    ("learning_rat=1e-3,3e-3", "did you mean 'learning_rate'"),
    ("env_params=1,2", "only numeric hyperparameters"),
    ("learning_rate", "--sweep takes NAME=V1,V2"),
    ("gamma=0.9,1.5", "gamma must lie in [0, 1]"),
])
def test_bad_sweeps_are_refused_before_tracing(tmp_path, monkeypatch, spec, message):
    monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("traced a refused sweep"))
    with pytest.raises(ValueError) as error:
        run(tmp_path, sweep=(spec,))
    assert message in str(error.value)


def test_api_sweep_grid_times_seeds_with_vmap():
    config = Config.make("CartPole-v1", **SMALL)
    configs, axes, settings = cli.sweep_grid(config, {"learning_rate": [1e-3, 3e-3], "gamma": [0.99, 0.995]})
    assert settings[1] == {"learning_rate": 1e-3, "gamma": 0.995} and configs.learning_rate.shape == (4,)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    over_seeds = jax.vmap(rejax_ppo.train, in_axes=(None, 0))
    _, evaluation = jax.eval_shape(jax.vmap(over_seeds, in_axes=(axes, None)), configs, keys)  # traced, not compiled
    assert evaluation["return"].shape == (4, 2, config.num_evals + 1, config.num_eval_episodes)
