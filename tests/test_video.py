"""--video: one deterministic episode of a trained policy rendered on the host after training, as a GIF for gymnax
envs with a renderer, brax's HTML viewer for brax envs, and one line (no crash) for an env without a renderer."""

import jax
import numpy as np
from PIL import Image

import cli
import common
import rejax_dqn
import rejax_ppo

SMALL = dict(total_timesteps=2_000, eval_freq=1_000, num_envs=4, num_steps=50, num_epochs=2, num_minibatches=2)


def untrained(module, config):
    """A train state with a leading run axis, as `cli.run` returns and `cli.restore` loads, without training."""
    state, _ = jax.jit(lambda key: module.train(config, key, num_evals=0))(jax.random.PRNGKey(0))
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[None], state)


def test_cli_video_of_the_best_cartpole_run_is_a_gif_of_its_episode(tmp_path, capsys):
    args = cli.make_args_class(rejax_ppo.Config)(env="CartPole-v1", num_seeds=2, out=str(tmp_path), video=True,
                                                  **SMALL)
    cli.run("ppo", rejax_ppo.Config, rejax_ppo.train, rejax_ppo.PPO.eval_callback, args)
    printed = capsys.readouterr().out
    steps = int(printed.split("video: run ")[1].split("(")[1].split(" steps")[0])
    gif = Image.open(tmp_path / "episode.gif")
    assert gif.format == "GIF" and gif.n_frames == steps > 1


def test_breakout_minatar_renders_a_gif(tmp_path):
    config = rejax_ppo.Config.make("Breakout-MinAtar", num_envs=2, num_steps=8, num_minibatches=2)
    path = cli.render_video(config, untrained(rejax_ppo, config), str(tmp_path))
    assert Image.open(path).n_frames > 1


def test_brax_renders_brax_html_viewer(tmp_path):
    env, params = common.make_env("brax/inverted_pendulum", episode_length=50)
    config = rejax_ppo.Config.make(env=env, env_params=params, num_envs=2, num_steps=8, num_minibatches=2)
    path = cli.render_video(config, untrained(rejax_ppo, config), str(tmp_path))
    html = open(path).read()
    assert path.endswith("episode.html") and "<html" in html.lower() and len(html) > 1000


def test_an_env_without_a_renderer_gets_one_line(tmp_path, capsys):
    config = rejax_dqn.Config.make("DeepSea-bsuite")
    assert cli.render_video(config, None, str(tmp_path)) is None
    assert "DeepSea-bsuite has no renderer" in capsys.readouterr().out
