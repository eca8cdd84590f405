"""benchmarks/seed_blog_defects.py: each defect is the blog's, and nothing else;
and the committed results (book/data) hold every planned run."""

import importlib
import json
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from gymnasium.wrappers import TimeLimit

from ppo_helpers import objectives
from ppo_helpers.advantages import discounted_returns
from ppo_helpers.rollout import RolloutBatch, batch_gae

ROOT = Path(__file__).resolve().parents[1]
EPS32 = torch.finfo(torch.float32).eps


def defects_script():
    """benchmarks/seed_blog_defects.py as a module (benchmarks/ is no package).

    Imported by name from a path entry (pyproject.toml's pytest ``pythonpath``),
    so that the sweep's spawned workers, which get this process's ``sys.path``,
    import it the same way.
    """
    return importlib.import_module("seed_blog_defects")


@pytest.fixture(scope="module")
def script():
    return defects_script()


def batch(rewards, values, ends, terminated=None, last_values=None) -> RolloutBatch:
    """A RolloutBatch of one env (T, 1) with only what the advantages read."""
    rewards, values = torch.tensor(rewards)[:, None], torch.tensor(values)[:, None]
    ends = torch.tensor(ends)[:, None]
    terminated = ends if terminated is None else torch.tensor(terminated)[:, None]
    t = len(rewards)
    return RolloutBatch(
        obs=torch.zeros(t, 1, 1),
        actions=torch.zeros(t, 1),
        logprobs=torch.zeros(t, 1),
        rewards=rewards,
        values=values,
        terminated=terminated,
        truncated=ends & ~terminated,
        final_values=torch.zeros(t, 1),
        last_values=torch.zeros(1) if last_values is None else last_values,
    )


def test_without_a_reset_and_a_critic_the_advantage_is_the_blogs_return(script):
    # lambda = 1 and V = 0: GAE is the discounted return; without the reset it
    # runs through the end at step 2, as the blog's one backward sum does
    rewards = [-1.0, -1.0, -100.0, 5.0, 100.0]
    ends = [False, False, True, False, True]
    b = batch(rewards, [0.0] * 5, ends)
    leaky = script.gae_without_reset(b, 0.99, 1.0)[:, 0]
    never = torch.zeros(5, 1, dtype=torch.bool)
    blog = discounted_returns(torch.tensor(rewards)[:, None], never, 0.99)[:, 0]
    # the same recursion; at most one rounding per step of it
    assert torch.allclose(leaky, blog, rtol=len(rewards) * EPS32, atol=0)
    assert leaky[2] > 0 > batch_gae(b, 0.99, 1.0)[2, 0]  # the crash looks good


def test_a_batch_with_no_episode_end_is_left_as_it_was(script):
    b = batch(
        [1.0, -2.0, 0.5], [0.3, -0.1, 0.2], [False] * 3, last_values=torch.tensor([0.7])
    )
    assert torch.equal(script.gae_without_reset(b, 0.9, 0.95), batch_gae(b, 0.9, 0.95))


def test_at_an_end_the_next_value_is_the_next_episodes_first(script):
    # lambda = 0: A_t = r_t + gamma V(s_{t+1}) - V(s_t), with s_{t+1} the reset
    # observation even where the episode ended
    b = batch([1.0, 2.0, 3.0], [0.5, 4.0, 1.0], [True, False, False])
    advantages = script.gae_without_reset(b, 0.5, 0.0)[:, 0]
    assert advantages[0] == pytest.approx(1.0 + 0.5 * 4.0 - 0.5, rel=EPS32)


def test_the_broadcast_loss_is_the_mean_over_every_pair(script):
    values, returns = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.0, 3.0, 9.0])
    pairs = [(v - r) ** 2 for v in values.tolist() for r in returns.tolist()]
    expected = 0.5 * sum(pairs) / len(pairs)
    loss = script.broadcast_value_loss(values, returns)
    assert loss.item() == pytest.approx(expected, rel=len(pairs) * EPS32)
    assert objectives.value_loss(values, returns).item() != pytest.approx(expected)


def test_the_broadcast_loss_is_smallest_at_the_batch_mean_everywhere(script):
    # mean_ij (v_i - R_j)^2 = mean_i (v_i - mean R)^2 + var R: whatever the
    # state, the critic is pulled to one number, the batch's mean return
    returns = torch.tensor([-3.0, 0.5, 2.0, 7.5])
    values = torch.full((4,), returns.mean().item(), requires_grad=True)
    loss = script.broadcast_value_loss(values, returns)
    loss.backward()
    # zero but for the rounding of the mean: about one eps per term summed
    tolerance = len(returns) * EPS32 * returns.abs().max().item()
    assert values.grad.abs().max().item() <= tolerance
    variance = returns.var(unbiased=False).item()
    assert loss.item() == pytest.approx(0.5 * variance, rel=len(returns) ** 2 * EPS32)


def test_the_blog_clipped_no_values(script):
    with pytest.raises(ValueError, match="clipped no values"):
        script.broadcast_value_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), 0.2)


def test_a_cut_is_reported_as_the_end(script):
    env = script.CutIsTheEnd(TimeLimit(gym.make("CartPole-v1"), 3))
    env.reset(seed=0)
    steps = [env.step(0)[2:4] for _ in range(3)]  # (terminated, truncated)
    assert steps[-1] == (True, False) and all(not truncated for _, truncated in steps)


def hover(obs) -> int:
    """Main engine while falling, else a side engine against the tilt."""
    if obs[3] < 0:
        return 2
    return 1 if obs[4] < -0.05 else 3 if obs[4] > 0.05 else 0


def test_the_capped_lander_ends_at_the_blogs_cap_as_a_termination(script):
    lengths = {}
    for env_id in ("LunarLander-v3", script.CAPPED_ENV_ID):
        env = gym.make(env_id)
        obs, _ = env.reset(seed=2)  # a seed on which hover() lasts 1000 steps
        length, terminated, truncated = 0, False, False
        while not (terminated or truncated):
            obs, _, terminated, truncated, _ = env.step(hover(obs))
            length += 1
        lengths[env_id] = (length, terminated, truncated)
    assert lengths["LunarLander-v3"] == (1000, False, True)
    assert lengths[script.CAPPED_ENV_ID] == (script.BLOG_CAP, True, False)
    assert gym.spec(script.CAPPED_ENV_ID).reward_threshold == 200.0


def test_the_committed_results_hold_every_planned_run(script):
    data = json.loads(script.DEFAULT_OUT.read_text())
    runs = {(r["defect"], r["seed"]) for r in data["runs"]}
    assert runs == {(d, s) for d in script.DEFECTS for s in script.SEEDS}
    assert set(data["plan"]["seeds"]) == set(script.SEEDS) and min(script.SEEDS) >= 100
    for r in data["runs"]:
        assert r["env_steps"] >= data["plan"]["total_steps"]
        steps = [s for s, _ in r["curve"]]
        assert steps == sorted(steps) and steps[-1] == r["env_steps"]


@pytest.mark.processes  # a process pool
def test_a_quick_sweep_writes_every_run_and_a_rerun_adds_none(script, tmp_path, capsys):
    out = tmp_path / "defects.json"
    assert script.main(["--quick", "--out", str(out), "--jobs", "1"]) == 0
    first = json.loads(out.read_text())
    assert {r["defect"] for r in first["runs"]} == set(script.DEFECTS)
    assert script.main(["--quick", "--out", str(out), "--jobs", "1"]) == 0
    second = json.loads(out.read_text())
    assert second["runs"] == first["runs"] and len(second["sittings"]) == 2
    assert "0 runs to go" in capsys.readouterr().out


def test_jobs_below_one_is_refused_by_name(script, capsys):
    with pytest.raises(SystemExit):
        script.main(["--quick", "--jobs", "0"])
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err
