"""The statistics of every summary (IQM and mean with bootstrap intervals, probability of improvement) against hand
computations, and diverged runs: caught inside the run, named, left out of the statistics, the other runs kept."""

import json
import sys

import numpy as np
import pytest

import cli
import rejax_ppo
from rejax_ppo import Config

SMALL = dict(total_timesteps=2_000, eval_freq=1_000, num_envs=4, num_steps=50, num_epochs=2, num_minibatches=2)


def test_iqm_is_the_mean_of_the_middle_half():
    assert cli.iqm(np.array([100.0, 1, 2, 3, 4, 5, 6, 7])) == pytest.approx(4.5)  # drops 1, 2 and 7, 100
    assert cli.iqm(np.array([3.0, 1.0])) == pytest.approx(2.0)  # too few runs to trim


def test_probability_of_improvement_counts_ties_half():
    # pairs (x, y): 1 loses twice, 2 ties twice, 3 wins twice -> (2 + 0.5 * 2) / 6
    assert cli.probability_of_improvement(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0])) == pytest.approx(0.5)
    assert cli.probability_of_improvement(np.array([5.0, 6.0]), np.array([1.0, 2.0])) == 1.0


def test_bootstrap_intervals_match_a_hand_rolled_percentile_bootstrap():
    finals = np.random.default_rng(1).normal(300.0, 50.0, size=32)
    rng = np.random.default_rng(7)
    resampled = finals[rng.integers(0, 32, size=(20_000, 32))]
    for statistic, by_hand in ((cli.iqm, cli.iqm(resampled, axis=1)), (np.mean, resampled.mean(1))):
        low, high = cli.bootstrap_interval(statistic, finals)
        hand_low, hand_high = np.percentile(by_hand, [2.5, 97.5])
        width = hand_high - hand_low
        assert abs(low - hand_low) < 0.08 * width and abs(high - hand_high) < 0.08 * width
        assert low < statistic(finals) < high
    stats = cli.final_statistics(finals)
    assert stats["final_return_iqm"] == pytest.approx(cli.iqm(finals))
    assert stats["final_return_median"] == pytest.approx(np.median(finals))
    assert cli.bootstrap_interval(np.mean, np.array([7.0])) == (7.0, 7.0)
    assert cli.final_statistics(np.full(4, 500.0))["final_return_iqm_ci"] == [500.0, 500.0]


def test_a_diverging_setting_is_named_left_out_and_the_other_kept(tmp_path, capsys):
    args = cli.make_args_class(Config)(env="CartPole-v1", num_seeds=2, out=str(tmp_path), **SMALL,
                                       sweep=("learning_rate=1e-3,1e38",))
    _, _, summary = cli.run("ppo", Config, rejax_ppo.train, rejax_ppo.PPO.eval_callback, args)
    printed = capsys.readouterr().out
    assert summary["num_runs_left_out"] == 2
    assert [(d["seed"], d["setting"], d["first_seen_at_step"]) for d in summary["diverged"]] == [
        (0, {"learning_rate": 1e38}, 1000), (1, {"learning_rate": 1e38}, 1000)]
    assert "seed 1 (learning_rate=1e+38) diverged: non-finite train state at step 1,000" in printed
    best, broken = summary["settings"]
    assert best["learning_rate"] == 1e-3 and np.isfinite(best["final_return_iqm"]) and len(best["final_return_per_seed"]) == 2
    assert np.isnan(broken["final_return_iqm"]) and "every run diverged" in printed
    assert summary["final_return_mean"] == pytest.approx(best["final_return_mean"])  # only the kept runs
    scores = dict(np.load(tmp_path / "final_returns.npz"))  # rliable's score dict
    assert scores["learning_rate=0.001"].shape == (2, 1) and scores["learning_rate=1e+38"].shape == (0, 1)
    assert json.loads((tmp_path / "summary.json").read_text())["num_runs_left_out"] == 2


def test_the_command_fails_only_when_every_run_diverged(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["rejax_ppo.py"])
    for left_out, code in ((1, None), (2, 1)):
        summary = {"num_runs_left_out": left_out, "final_return_per_seed": [1.0, None]}
        monkeypatch.setattr(cli, "run", lambda *args, summary=summary: (None, None, summary))
        if code is None:
            cli.main("ppo", Config, rejax_ppo.train, rejax_ppo.PPO.eval_callback)
        else:
            with pytest.raises(SystemExit) as exit_:
                cli.main("ppo", Config, rejax_ppo.train, rejax_ppo.PPO.eval_callback)
            assert exit_.value.code == code
