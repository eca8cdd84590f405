"""Chapter 7: the paper's Table 1 settings and its score normalisation."""

import gymnasium as gym
import numpy as np
import pytest

from ppo_helpers import ablation
from ppo_helpers.optim import minibatch_size
from ppo_helpers.ppo import PPOConfig
from ppo_helpers.run import RunConfig


def test_the_eleven_settings_of_table_1_with_the_papers_scores():
    assert len(ablation.SETTINGS) == 11
    assert len(ablation.SETTING_BY_NAME) == 11
    paper = [s.paper_score for s in ablation.SETTINGS]
    assert max(paper) == ablation.SETTING_BY_NAME["clip_0.2"].paper_score == 0.82
    assert min(paper) == ablation.SETTING_BY_NAME["no_clip"].paper_score == -0.39


@pytest.mark.parametrize(
    "setting,objective",
    [
        ("no_clip", "unclipped"),
        ("clip_0.3", "clip"),
        ("adaptive_kl_0.01", "kl_penalty"),
        ("fixed_kl_10", "kl_penalty"),
    ],
)
def test_paper_config_is_table_3_with_the_settings_objective(setting, objective):
    run_cfg, cfg = ablation.paper_config(
        "Pendulum-v1", setting, seed=3, total_steps=4096
    )
    assert isinstance(run_cfg, RunConfig) and isinstance(cfg, PPOConfig)
    assert cfg.objective == objective
    assert run_cfg.batch_size == 2048  # horizon T = 2048
    assert minibatch_size(run_cfg.batch_size, cfg.num_minibatches) == 64
    assert cfg.update_epochs == 10
    assert run_cfg.learning_rate == 3e-4 and run_cfg.anneal_steps == 0
    assert (run_cfg.gamma, run_cfg.gae_lambda, cfg.ent_coef) == (0.99, 0.95, 0.0)
    assert run_cfg.hidden == (64, 64) and cfg.max_grad_norm == 0.0
    assert run_cfg.seed == 3 and run_cfg.total_steps == 4096
    assert run_cfg.env_id == "Pendulum-v1"


def test_kl_settings_fix_or_adapt_beta_from_one():
    _, adaptive = ablation.paper_config("Pendulum-v1", "adaptive_kl_0.03", 0, 2048)
    assert adaptive.adaptive_beta and adaptive.beta == 1.0
    assert adaptive.kl_target == 0.03
    _, fixed = ablation.paper_config("Pendulum-v1", "fixed_kl_0.3", 0, 2048)
    assert not fixed.adaptive_beta and fixed.beta == 0.3
    _, clip = ablation.paper_config("Pendulum-v1", "clip_0.1", 0, 2048)
    assert clip.clip_coef == 0.1


def test_normalise_maps_random_to_0_and_best_to_1():
    assert ablation.normalise(-40.0, random=-40.0, best=-5.0) == 0.0
    assert ablation.normalise(-5.0, random=-40.0, best=-5.0) == 1.0
    np.testing.assert_allclose(
        ablation.normalise([-22.5, -75.0], random=-40.0, best=-5.0), [0.5, -1.0]
    )
    with pytest.raises(ValueError, match="cannot normalise"):
        ablation.normalise(1.0, random=2.0, best=2.0)


def test_random_score_is_the_mean_of_random_episodes():
    # CartPole pays 1 per step, so a return is a length: replay the documented
    # seeding (episode i resets with seed + i, the actions drawn from seed)
    env = gym.make("CartPole-v1")
    env.action_space.seed(3)
    lengths = []
    for i in range(5):
        env.reset(seed=3 + i)
        length, done = 0, False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            length, done = length + 1, terminated or truncated
        lengths.append(length)
    assert len(set(lengths)) > 1  # the episodes differ, so the mean says something
    assert ablation.random_score("CartPole-v1", episodes=5, seed=3) == np.mean(lengths)


def test_a_short_run_gives_a_row_and_a_curve():
    row, curve = ablation.run_setting(
        "Pendulum-v1", "fixed_kl_1", seed=0, total_steps=2048
    )
    assert row["env_steps"] == 2048 and len(curve) == 1
    assert row["episodes"] == 10  # Pendulum's episodes are 200 steps
    assert row["final_beta"] == 1.0 and row["mean_kl"] == curve[0]["kl"] >= 0
