"""Box action spaces: the Gaussian actor, its KL, rollouts, updates and resume."""

import copy
import math

import numpy as np
import pytest
import torch
from conftest import episodes_without_wall, same_weights, spaces
from torch.distributions import Normal, kl_divergence

from ppo_helpers import checkpoint, objectives, ppo, presets, run
from ppo_helpers.envs import ReplayEpisodes, make_vector_env
from ppo_helpers.networks import ActorCritic, ObservationNormalizer
from ppo_helpers.rollout import batch_gae, collect, evaluate
from ppo_helpers.run import RunConfig
from ppo_helpers.scaling import merge_moments
from ppo_helpers.trpo import trpo_update

EPS32 = torch.finfo(torch.float32).eps


def pendulum_configs(algo: str = "ppo", **kwargs):
    """The configs of a Pendulum run of a few seconds (``presets.for_env``'s Box
    defaults): 2 envs x 100 steps, a 16-unit network, 2 PPO epochs."""
    base = dict(num_envs=2, num_steps=100, num_minibatches=2, hidden=(16,))
    if algo == "ppo":
        base.update(update_epochs=2)
    return presets.for_env("Pendulum-v1", algo, **{**base, **kwargs})


def train_pendulum(checkpoint_dir=None, resume=False, **settings) -> run.TrainResult:
    """``run.train`` of PPO with ``pendulum_configs(**settings)``."""
    run_cfg, ppo_cfg = pendulum_configs(**settings)
    return run.train(
        run_cfg,
        algorithm=ppo.PPO(ppo_cfg),
        checkpoint_dir=checkpoint_dir,
        resume=resume,
    )


def gaussian_params(batch: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    mean = torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    log_std = 0.5 * torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    return torch.cat([mean, log_std], -1)


def test_gaussian_log_prob_and_entropy_match_their_closed_forms():
    agent = ActorCritic(*spaces(3, (-1.0, 1.0, 2))).double()
    params = gaussian_params(5, 2, seed=0)
    mean, log_std = params.chunk(2, -1)
    actions = torch.randn(5, 2, generator=torch.Generator().manual_seed(1)).double()
    logp, entropy = agent.actor.log_prob_entropy(params, actions)
    # log N(a; mu, sigma) = -(a - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2
    z = (actions - mean) / log_std.exp()
    expected = (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(logp, expected)  # float64 defaults: rtol 1e-7
    # H = sum over dimensions of 1/2 + log(2 pi)/2 + log sigma
    expected_h = (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum(-1)
    torch.testing.assert_close(entropy, expected_h)


def test_gaussian_kl_is_torchs_kl_and_zero_for_identical_policies():
    old, new = gaussian_params(6, 3, seed=2), gaussian_params(6, 3, seed=3)
    ours = objectives.gaussian_kl(*old.chunk(2, -1), *new.chunk(2, -1))
    p_old = Normal(old[:, :3], old[:, 3:].exp())
    p_new = Normal(new[:, :3], new[:, 3:].exp())
    torch.testing.assert_close(ours, kl_divergence(p_old, p_new).sum(-1))
    same = objectives.gaussian_kl(*old.chunk(2, -1), *old.chunk(2, -1))
    assert torch.equal(same, torch.zeros(6, dtype=torch.float64))
    assert (ours > 0).all()


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    old, new = gaussian_params(3, 2, seed=4), gaussian_params(3, 2, seed=5)
    agent = ActorCritic(*spaces(3, (-1.0, 1.0, 2))).double()
    exact = agent.actor.kl(old, new)
    torch.manual_seed(6)
    a = agent.actor.distribution(old).sample((200_000,))
    log_ratio = agent.actor.distribution(old).log_prob(a) - agent.actor.distribution(
        new
    ).log_prob(a)
    # 5 standard errors of a 200,000-sample mean: fails by chance with p < 1e-6
    standard_error = log_ratio.std(0) / len(a) ** 0.5
    assert ((log_ratio.mean(0) - exact).abs() <= 5 * standard_error).all()


def test_actions_are_clipped_for_the_env_but_scored_unclipped():
    agent = ActorCritic(*spaces(3, (-2.0, 2.0, 1)))
    with torch.no_grad():
        agent.actor.log_std.fill_(math.log(3.0))  # sigma 3: many samples beyond 2
    torch.manual_seed(0)
    obs = torch.zeros(2000, 3)
    actions, logp = agent.act(obs)
    sent = agent.env_action(actions)
    assert sent.dtype == np.float32 and sent.shape == (2000, 1)
    assert sent.min() == -2.0 and sent.max() == 2.0
    outside = (actions.abs() > 2).squeeze(-1)
    assert outside.float().mean() > 0.4  # P(|N(0, 3)| > 2) is about 0.5
    torch.testing.assert_close(logp, agent.dist(obs).log_prob(actions))
    clipped_logp = agent.dist(obs).log_prob(torch.from_numpy(sent))
    assert not torch.isclose(logp[outside], clipped_logp[outside]).any()
    assert torch.equal(logp[~outside], clipped_logp[~outside])
    assert torch.equal(agent.mode(obs), agent.dist(obs).mean)


@pytest.fixture(scope="module")
def pendulum_rollout():
    """A fresh agent's 450-step rollout in 2 Pendulum envs, and its episodes."""
    torch.manual_seed(0)
    envs = make_vector_env("Pendulum-v1", 2)
    obs, _ = envs.reset(seed=0)
    agent = ActorCritic(envs.single_observation_space, envs.single_action_space)
    batch, _, episodes = collect(envs, agent, obs, 450)
    envs.close()
    return agent, batch, episodes


@pytest.fixture(scope="module")
def pendulum_batch(pendulum_rollout):
    agent, batch, _ = pendulum_rollout
    return agent, batch, batch_gae(batch, 0.99, 0.95)


def test_pendulum_rollout_has_float_actions_and_bootstraps_every_time_limit(
    pendulum_rollout,
):
    _, batch, episodes = pendulum_rollout
    assert batch.obs.shape == (450, 2, 3) and batch.obs.dtype == torch.float32
    assert batch.actions.shape == (450, 2, 1) and batch.actions.dtype == torch.float32
    assert batch.logprobs.shape == (450, 2)
    # Pendulum never terminates; its TimeLimit cuts every episode at 200 steps
    assert not batch.terminated.any()
    cut = torch.zeros(450, dtype=torch.bool)
    cut[[199, 399]] = True
    assert torch.equal(batch.truncated, cut[:, None].expand(450, 2))
    assert [length for _, length in episodes] == [200] * 4
    # the bootstrap value there is V of the true last observation, not 0
    assert (batch.final_values[batch.truncated] != 0).all()
    advantages = batch_gae(batch, 0.99, 1.0)
    # With lambda = 1, A_t + V(s_t) at t = 199 is r_199 + gamma V(s_200)
    torch.testing.assert_close(
        advantages[199] + batch.values[199],
        batch.rewards[199] + 0.99 * batch.final_values[199],
    )


def test_observation_normalizer_tracks_the_mean_and_variance_of_all_batches():
    gen = torch.Generator().manual_seed(0)
    batches = [3 + 2 * torch.randn(n, 4, generator=gen) for n in (5, 40, 300)]
    norm = ObservationNormalizer(4)
    for b in batches:
        norm.update(b)
    everything = torch.cat(batches).double()
    torch.testing.assert_close(norm.mean, everything.mean(0))
    torch.testing.assert_close(norm.var, everything.var(0, correction=0))
    scaled = norm(everything.float())
    # mean 0 after scaling, up to float32 rounding: a mean of n terms errs by at
    # most n eps mean|x|, and scaling each x errs by about eps |x| / std
    n = len(scaled)
    rounding = EPS32 * (
        n * scaled.abs().mean(0) + everything.abs().max(0).values / everything.std(0)
    )
    assert (scaled.mean(0).abs() <= rounding).all()
    torch.testing.assert_close(scaled.std(0, correction=0), torch.ones(4))
    assert norm(torch.full((1, 4), 1e6)).max() == 10.0  # clipped


def test_merge_moments_of_two_halves_is_the_moments_of_the_whole():
    x = torch.randn(100, generator=torch.Generator().manual_seed(1)).double()
    a, b = x[:30], x[30:]
    count, mean, var = merge_moments(
        30, a.mean(), a.var(correction=0), 70, b.mean(), b.var(correction=0)
    )
    assert count == 100
    torch.testing.assert_close(mean, x.mean())
    torch.testing.assert_close(var, x.var(correction=0))


def test_box_run_is_bit_identical_twice_and_resumes_exactly(tmp_path):
    assert pendulum_configs()[0].norm_obs  # the Box defaults normalise observations
    a, b = train_pendulum(total_steps=800), train_pendulum(total_steps=800)
    assert (
        episodes_without_wall(a.episodes) == episodes_without_wall(b.episodes)
        and len(a.episodes) == 4
    )
    assert same_weights(a.agent, b.agent)
    train_pendulum(tmp_path, total_steps=400)
    resumed = train_pendulum(tmp_path, resume=True, total_steps=800)
    assert episodes_without_wall(resumed.episodes) == episodes_without_wall(a.episodes)
    assert same_weights(resumed.agent, a.agent)
    # the saved agent carries its spaces and observation statistics
    saved = run.load_agent(checkpoint.latest(tmp_path))
    assert saved.action_space == a.agent.action_space
    assert torch.equal(saved.normalize.mean, a.agent.normalize.mean)
    assert saved.normalize.count.item() == 800


def test_a_tanh_squashed_run_trains_saves_and_reloads_squashed(tmp_path):
    result = train_pendulum(tmp_path, total_steps=400, action_squash="tanh")
    assert result.agent.actor.squash == "tanh" and len(result.updates) == 2
    saved = run.load_agent(checkpoint.latest(tmp_path))
    assert saved.actor.squash == "tanh"
    far = torch.tensor([[-50.0], [0.0], [50.0]])  # tanh's ends and its middle
    np.testing.assert_allclose(saved.env_action(far)[:, 0], [-2.0, 0.0, 2.0])
    clipped = train_pendulum(total_steps=400)
    assert not same_weights(clipped.agent, result.agent)  # the envs saw other actions


def test_replay_rebuilds_a_pendulum_episode_from_float_actions():
    envs = make_vector_env("Pendulum-v1", 2, wrapper=ReplayEpisodes)
    obs, _ = envs.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(57):
        obs, *_ = envs.step(rng.uniform(-2, 2, (2, 1)).astype(np.float32))
    state = checkpoint.env_state(envs, obs)
    assert state["episodes"][0]["actions"].shape == (57, 1)
    assert state["episodes"][0]["actions"].dtype == torch.float32
    fresh = make_vector_env("Pendulum-v1", 2, wrapper=ReplayEpisodes)
    assert np.array_equal(checkpoint.restore_envs(fresh, state), obs)
    envs.close()
    fresh.close()


def test_evaluate_uses_the_agents_observation_statistics():
    torch.manual_seed(0)
    agent = train_pendulum(total_steps=400).agent
    before = evaluate(agent, "Pendulum-v1", num_episodes=2, num_envs=2)
    agent.normalize.mean.add_(5.0)  # other statistics: other actions
    after = evaluate(agent, "Pendulum-v1", num_episodes=2, num_envs=2)
    assert before.shape == after.shape == (2,)
    assert not np.array_equal(before, after)


def test_solved_takes_the_env_specs_threshold_or_the_override():
    assert run.solved_threshold(RunConfig()) == 200  # LunarLander-v3's spec
    assert run.solved_threshold(RunConfig(env_id="CartPole-v1")) == 475
    assert run.solved_threshold(pendulum_configs()[0]) is None  # Pendulum has none
    pendulum_solved = pendulum_configs(solved_return=-200.0)[0]
    assert run.solved_threshold(pendulum_solved) == -200.0


@pytest.mark.parametrize("solved", [None, -2000.0])
def test_steps_to_solve_follows_the_threshold(solved):
    result = run.TrainResult(
        agent=None, config=None, algorithm=None, solved_return=solved
    )
    result.episodes = [
        run.Episode(200 * (i + 1), 0.0, -1000.0, 200) for i in range(100)
    ]
    assert result.steps_to_solve == (None if solved is None else 20_000)


def test_trpo_update_keeps_a_gaussian_policy_within_max_kl(pendulum_batch):
    agent0, batch, advantages = pendulum_batch
    agent = copy.deepcopy(agent0)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3)
    # the critic's minibatches: 100 of the batch's 900 samples each
    _, cfg = pendulum_configs("trpo", num_minibatches=9)
    stats = trpo_update(agent, optimizer, batch, advantages, cfg)
    assert stats["accepted"] == 1.0 and stats["surrogate_gain"] > 0
    obs = batch.obs.flatten(0, 1)
    with torch.no_grad():  # measured with torch's own KL, not the actor's
        kl = kl_divergence(agent0.dist(obs), agent.dist(obs)).mean().item()
    assert 0 < kl <= cfg.max_kl == 0.01
    assert not torch.equal(agent.actor.log_std, agent0.actor.log_std)  # it moves too


@pytest.mark.parametrize("objective", ["clip", "kl_penalty"])
def test_ppo_update_on_a_gaussian_policy_reports_the_exact_kl(
    pendulum_batch, objective
):
    agent0, batch, advantages = pendulum_batch
    agent = copy.deepcopy(agent0)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3)
    # minibatches of 100 of the batch's 900 samples
    _, cfg = pendulum_configs(objective=objective, num_minibatches=9)
    stats = ppo.update(agent, optimizer, batch, advantages, cfg, beta=1.0)
    obs = batch.obs.flatten(0, 1)
    with torch.no_grad():
        kl = kl_divergence(agent0.dist(obs), agent.dist(obs)).mean().item()
    # Two float32 formulas whose O(1) terms cancel down to a KL-sized result:
    # each keeps about eps / KL of relative accuracy
    assert stats["kl"] == pytest.approx(kl, rel=10 * EPS32 / kl)
    assert stats["kl"] > 0


def test_the_gaussian_starts_at_log_std_init_in_a_network_and_in_a_run():
    agent = ActorCritic(*spaces(3, (-1.0, 1.0, 2)), log_std_init=-0.5)
    assert torch.equal(agent.actor.log_std.detach(), torch.full((2,), -0.5))
    assert pendulum_configs()[0].log_std_init == 0.0  # the PPO paper's sigma = 1
    first = train_pendulum(total_steps=200, log_std_init=-0.5).updates[0]
    # the entropy of N(mu, sigma^2) in one dimension is 1/2 log(2 pi e) + log sigma;
    # after one update sigma has moved from exp(-0.5) by far less than 0.1
    assert first["entropy"] == pytest.approx(
        0.5 * math.log(2 * math.pi * math.e) - 0.5, abs=0.1
    )


def test_a_state_dependent_sigma_run_saves_and_reloads_its_head(tmp_path):
    result = train_pendulum(tmp_path, total_steps=400, state_dependent_std=True)
    assert not hasattr(result.agent.actor, "log_std")
    saved = run.load_agent(checkpoint.latest(tmp_path))
    assert saved.actor.state_dependent_std and same_weights(saved, result.agent)
