"""Envs, networks and rollouts: seeding, shapes, terminated vs truncated."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import spaces

from ppo_helpers.envs import (
    EnvIdError,
    UnsupportedSpaceError,
    check_spaces,
    make_env,
    make_vector_env,
)
from ppo_helpers.networks import ActorCritic
from ppo_helpers.rollout import collect, evaluate


def rollout(seed: int, env_id="CartPole-v1", steps=64, num_envs=3, **env_kwargs):
    torch.manual_seed(seed)
    envs = make_vector_env(env_id, num_envs, **env_kwargs)
    obs, _ = envs.reset(seed=seed)
    agent = ActorCritic(envs.single_observation_space, envs.single_action_space)
    batch, next_obs, episodes = collect(envs, agent, obs, steps)
    return agent, batch, next_obs, episodes


def test_same_seed_gives_identical_rollouts_and_another_seed_does_not():
    _, a, obs_a, eps_a = rollout(3)
    _, b, obs_b, eps_b = rollout(3)
    for name in a.__dataclass_fields__:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert eps_a == eps_b
    _, c, _, _ = rollout(4)
    assert not torch.equal(a.obs, c.obs)


def test_batch_shapes_and_logprobs_match_the_policy():
    agent, batch, next_obs, _ = rollout(0, steps=20, num_envs=4)
    assert batch.obs.shape == (20, 4, 4)
    for name in ("actions", "logprobs", "values", "rewards", "terminated"):
        assert getattr(batch, name).shape == (20, 4)
    assert batch.last_values.shape == (4,)
    assert next_obs.shape == (4, 4)
    with torch.no_grad():
        dist = agent.dist(batch.obs.flatten(0, 1))
        logp = dist.log_prob(batch.actions.flatten()).view(20, 4)
        torch.testing.assert_close(batch.logprobs, logp)
        torch.testing.assert_close(batch.values, agent.value(batch.obs))


def test_truncation_is_kept_apart_from_termination_and_bootstrapped():
    # CartPole cut at 10 steps: a random policy rarely falls before, so most
    # episode ends are truncations; both kinds must appear as recorded.
    agent, batch, _, episodes = rollout(1, steps=60, max_episode_steps=10)
    assert batch.truncated.any()
    assert not (batch.truncated & batch.terminated).any()
    # Where truncated, final_values holds V of the true last observation: a real
    # critic output, not the 0 of a terminated step nor V of the reset state.
    t, i = (x[0] for x in torch.nonzero(batch.truncated, as_tuple=True))
    assert batch.final_values[t, i] != 0
    assert (batch.final_values[~batch.truncated] == 0).all()
    assert all(length <= 10 for _, length in episodes)
    assert len(episodes) == int(batch.episode_ends.sum())


def test_final_values_come_from_the_true_last_observation():
    agent, batch, _, _ = rollout(2, steps=40, num_envs=1, max_episode_steps=7)
    # Rebuild the first truncated episode's last observation by replaying it.
    env = gym.make("CartPole-v1", max_episode_steps=7)
    obs, _ = env.reset(seed=2)
    for t in range(7):
        obs, *_ = env.step(int(batch.actions[t, 0]))
    assert batch.truncated[6, 0]
    with torch.no_grad():
        expected = agent.value(torch.as_tensor(obs, dtype=torch.float32)[None])[0]
    torch.testing.assert_close(batch.final_values[6, 0], expected)


def test_new_policy_is_close_to_uniform_after_orthogonal_init():
    torch.manual_seed(0)
    agent = ActorCritic(*spaces(8, 4))
    probs = agent.dist(torch.randn(256, 8)).probs
    # each head row has norm 0.01 (its gain) and 64 tanh features have norm <= 8,
    # so |logit| <= 0.08 (Cauchy-Schwarz): no probability beyond softmax's reach
    reach = math.exp(0.08) / (math.exp(0.08) + 3 * math.exp(-0.08))
    assert (probs - 0.25).abs().max() <= reach - 0.25
    w = agent.actor.net[0].weight
    # Orthogonal rows scaled by sqrt(2): W W^T = 2 I (64 x 8 has orthogonal columns).
    # Householder QR is orthogonal to O(n eps); each entry sums 64 products: the
    # tolerance is 64 eps times the gain^2 of 2.
    atol = 64 * torch.finfo(torch.float32).eps * 2
    torch.testing.assert_close(w.T @ w, 2 * torch.eye(8), atol=atol, rtol=0)


def test_act_samples_like_dist():
    torch.manual_seed(0)
    agent = ActorCritic(*spaces(4, 3))
    obs = torch.randn(1, 4).expand(20_000, 4)
    actions, logp = agent.act(obs)
    expected = agent.dist(obs[:1]).probs[0]
    freq = torch.bincount(actions, minlength=3).float() / len(actions)
    # 5 standard errors of a frequency from 20,000 draws, sqrt(p (1 - p) / n)
    standard_error = (expected * (1 - expected) / len(actions)).sqrt().detach()
    assert ((freq - expected.detach()).abs() <= 5 * standard_error).all()
    torch.testing.assert_close(logp, agent.dist(obs).log_prob(actions))


def test_evaluate_plays_exactly_the_requested_number_of_episodes():
    torch.manual_seed(0)
    agent = ActorCritic(*spaces(4, 2))
    returns = evaluate(agent, "CartPole-v1", num_episodes=7, num_envs=3, seed=5)
    # CartPole pays 1 per step: replay env i (seed 5 + i) for its quota of 3, 2, 2
    # greedy episodes, each reset continuing the env's own random stream
    replayed = []
    for i, quota in enumerate((3, 2, 2)):
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=5 + i)
        for _ in range(quota):
            length, done = 0, False
            while not done:
                action = agent.mode(torch.as_tensor(obs)[None])[0]
                obs, _, terminated, truncated, _ = env.step(int(action))
                length, done = length + 1, terminated or truncated
            replayed.append(length)
            obs, _ = env.reset()
    np.testing.assert_array_equal(returns, replayed)


@pytest.mark.parametrize(
    "env_id,hint",
    [("LunarLander-v2", "LunarLander-v3"), ("NoSuchEnv-v0", "CartPole-v1")],
)
def test_removed_or_unknown_env_ids_say_what_to_use(env_id, hint):
    with pytest.raises(EnvIdError, match=hint):
        make_env(env_id)
    with pytest.raises(EnvIdError, match=hint):
        make_vector_env(env_id, 2)


def test_make_env_is_seeded_and_vector_env_validates_size():
    a, b = make_env("LunarLander-v3", seed=9), make_env("LunarLander-v3", seed=9)
    c = make_env("LunarLander-v3", seed=10)
    np.testing.assert_array_equal(a.step(0)[0], b.step(0)[0])
    assert not np.array_equal(a.step(0)[0], c.step(0)[0])
    with pytest.raises(ValueError, match=r"num_envs must be >= 1, got 0"):
        make_vector_env("CartPole-v1", 0)


@pytest.mark.parametrize(
    ("observation_space", "action_space", "message"),
    [
        (gym.spaces.Box(0, 255, (96, 96, 3)), gym.spaces.Discrete(2), "observation"),
        (
            gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,))}),
            gym.spaces.Discrete(2),
            "observation",
        ),
        (gym.spaces.Box(-1, 1, (4,)), gym.spaces.MultiDiscrete([2, 3]), "action"),
    ],
)
def test_unsupported_spaces_are_named_in_one_error(
    observation_space, action_space, message
):
    with pytest.raises(UnsupportedSpaceError, match=f"Some-v0 has {message} space"):
        check_spaces("Some-v0", observation_space, action_space)
