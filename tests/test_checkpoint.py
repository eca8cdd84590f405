"""Checkpoints: atomic files, clear errors, exact env replay, exact resume."""

from dataclasses import asdict

import numpy as np
import pytest
import torch
from conftest import train_with

from ppo_helpers import checkpoint, run
from ppo_helpers.checkpoint import CheckpointError
from ppo_helpers.envs import ReplayEpisodes, make_vector_env


def test_save_writes_atomically_and_load_round_trips(tmp_path):
    state = {"weights": torch.arange(6.0).view(2, 3), "steps": 7, "log": [(1, 2.5)]}
    path = checkpoint.save(tmp_path / "step_0000000007.pt", state)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    loaded = checkpoint.load(path)
    assert loaded["format"] == checkpoint.FORMAT
    assert loaded["version"] == checkpoint.VERSION
    assert torch.equal(loaded["weights"], state["weights"])
    assert loaded["steps"] == 7 and loaded["log"] == [(1, 2.5)]


def test_a_save_that_dies_midway_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = checkpoint.save(tmp_path / "step_0000000001.pt", {"x": torch.ones(3)})
    before = path.read_bytes()

    def dies_midway(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, {"x": torch.zeros(3)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_missing_corrupt_and_foreign_files_raise_checkpoint_error(tmp_path):
    assert issubclass(CheckpointError, ValueError)
    good = checkpoint.save(tmp_path / "good.pt", {"x": torch.ones(2)})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:100])
    random_bytes = tmp_path / "random.pt"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(1000))
    foreign = tmp_path / "foreign.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), foreign)
    future = tmp_path / "future.pt"
    torch.save({"format": checkpoint.FORMAT, "version": 99}, future)
    older = tmp_path / "older.pt"  # version 3 kept PPO's beta at the top level
    torch.save({"format": checkpoint.FORMAT, "version": 3, "beta": 1.0}, older)
    cases = [
        (tmp_path / "missing.pt", "no checkpoint file"),
        (truncated, "not a readable checkpoint"),
        (random_bytes, "not a readable checkpoint"),
        (foreign, "not a ppo_helpers checkpoint"),
        (future, "version 99"),
        (older, "version 3; .* resume it with the ppo_helpers that wrote it"),
    ]
    for path, message in cases:
        with pytest.raises(CheckpointError, match=message) as err:
            checkpoint.load(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoint.load_latest(tmp_path / "empty")


def test_latest_and_prune_go_by_step_number(tmp_path):
    for steps in (512, 2048, 1024, 100_000):
        checkpoint.save(checkpoint.path_for(tmp_path, steps), {})
    assert checkpoint.latest(tmp_path).name == "step_0000100000.pt"
    checkpoint.prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step_0000002048.pt",
        "step_0000100000.pt",
    ]


def _step_randomly(envs, obs, rng, steps):
    rows = []
    for _ in range(steps):
        obs, reward, terminated, truncated, info = envs.step(rng.integers(0, 4, 3))
        done = info.get("_episode", np.zeros(3, bool))
        rows.append((obs.copy(), reward, terminated, truncated, done.copy()))
        if done.any():
            rows.append(info["episode"]["r"][done].copy())
    return obs, rows


def test_replay_rebuilds_lunarlander_mid_episode():
    rng = np.random.default_rng(0)
    envs = make_vector_env("LunarLander-v3", 3, wrapper=ReplayEpisodes)
    obs, _ = envs.reset(seed=5)
    obs, _ = _step_randomly(envs, obs, rng, 150)  # some episodes ended, some not
    state = checkpoint.env_state(envs, obs)
    assert {e["episode"] for e in state["episodes"]} != {0}
    assert all(len(e["actions"]) > 0 for e in state["episodes"])

    fresh = make_vector_env("LunarLander-v3", 3, wrapper=ReplayEpisodes)
    fresh.reset(seed=123)  # any seed: the replay overrides it
    restored = checkpoint.restore_envs(fresh, state)
    np.testing.assert_array_equal(restored, obs)
    # From here both must go on identically, episode returns included.
    _, expected = _step_randomly(envs, obs, np.random.default_rng(1), 300)
    _, got = _step_randomly(fresh, restored, np.random.default_rng(1), 300)
    assert len(expected) == len(got)
    for a, b in zip(expected, got, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_replay_that_does_not_reach_the_saved_observation_fails():
    envs = make_vector_env("CartPole-v1", 2, wrapper=ReplayEpisodes)
    obs, _ = envs.reset(seed=0)
    obs, *_ = envs.step(np.array([0, 1]))
    state = checkpoint.env_state(envs, obs)
    state["obs"][1, 0] += 1e-3
    with pytest.raises(CheckpointError, match="did not reach the saved obs"):
        checkpoint.restore_envs(
            make_vector_env("CartPole-v1", 2, wrapper=ReplayEpisodes), state
        )


def _same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _same_state(a[key], b[key])
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def test_resumed_run_ends_with_exactly_the_uninterrupted_weights(tmp_path, tiny):
    full = train_with(dict(tiny, total_steps=1536))
    # The first run stops at 768 steps (a checkpoint is written at its end),
    # in the middle of episodes; the second continues it to 1536.
    train_with(
        dict(tiny, total_steps=768),
        checkpoint_dir=tmp_path,
        checkpoint_every=10**9,
    )
    assert checkpoint.latest(tmp_path).name == "step_0000000768.pt"
    saved = checkpoint.load(checkpoint.latest(tmp_path))
    saved_envs = saved["ranks"][0]["envs"]["episodes"]
    assert all(len(e["actions"]) > 0 for e in saved_envs)  # mid-episode: replayed
    resumed = train_with(
        dict(tiny, total_steps=1536), checkpoint_dir=tmp_path, resume=True
    )
    _same_state(full.agent.state_dict(), resumed.agent.state_dict())
    saved = run.load_agent(checkpoint.latest(tmp_path))
    _same_state(full.agent.state_dict(), saved.state_dict())
    assert len(full.episodes) > 5
    drop_wall = [(s, r, n) for s, _, r, n in full.episodes]
    assert drop_wall == [(s, r, n) for s, _, r, n in resumed.episodes]
    assert [u["env_steps"] for u in resumed.updates] == list(range(128, 1537, 128))


def test_a_checkpoint_keeps_the_run_config_and_the_algorithms_config_and_state(
    tmp_path, tiny
):
    result = train_with(
        dict(tiny, total_steps=128, clip_coef=0.1), checkpoint_dir=tmp_path
    )
    state = checkpoint.load(checkpoint.latest(tmp_path))
    assert state["version"] == checkpoint.VERSION == 5
    assert state["config"] == asdict(result.config)
    assert state["algorithm"] == {
        "name": "PPO",
        "config": asdict(result.algorithm.config),
        "state": {"beta": 1.0},
    }
    assert state["algorithm"]["config"]["clip_coef"] == 0.1
    assert "clip_coef" not in state["config"] and "gamma" in state["config"]
    # run.saved_configs names the parts, for readers outside run.RunState
    assert run.saved_configs(state) == (
        asdict(result.config),
        "PPO",
        asdict(result.algorithm.config),
    )


def test_resume_refuses_a_different_config(tmp_path, tiny):
    train_with(dict(tiny, total_steps=128), checkpoint_dir=tmp_path)
    longer = dict(tiny, total_steps=256)
    for changed, message in (
        ({"gamma": 0.99}, "gamma=0.999, this run has gamma=0.99"),  # RunConfig's
        ({"clip_coef": 0.1}, "clip_coef=0.2, this run has clip_coef=0.1"),  # PPO's
    ):
        with pytest.raises(CheckpointError, match=message):
            train_with({**longer, **changed}, checkpoint_dir=tmp_path, resume=True)
    without_epochs = {k: v for k, v in longer.items() if k != "update_epochs"}
    with pytest.raises(CheckpointError, match="written by PPO, this run trains with"):
        train_with(without_epochs, "trpo", checkpoint_dir=tmp_path, resume=True)
    resumed = train_with(longer, checkpoint_dir=tmp_path, resume=True)
    assert [u["env_steps"] for u in resumed.updates] == [128, 256]


def test_envs_in_their_own_processes_train_and_resume_as_in_one(tmp_path, tiny):
    """AsyncVectorEnv steps the same envs as SyncVectorEnv, so the run is the
    same bit for bit; a checkpoint written with one resumes with the other."""
    in_one = train_with(dict(tiny, total_steps=768))
    train_with(
        dict(tiny, total_steps=384, async_envs=True),
        checkpoint_dir=tmp_path,
    )
    saved = checkpoint.load(checkpoint.latest(tmp_path))
    assert all(len(e["actions"]) > 0 for e in saved["ranks"][0]["envs"]["episodes"])
    resumed = train_with(
        dict(tiny, total_steps=768), checkpoint_dir=tmp_path, resume=True
    )
    _same_state(in_one.agent.state_dict(), resumed.agent.state_dict())
    assert [e[2:] for e in in_one.episodes] == [e[2:] for e in resumed.episodes]
    # and the other way round: written in one process, resumed in several
    train_with(
        dict(tiny, total_steps=1152, async_envs=True),
        checkpoint_dir=tmp_path,
        resume=True,
    )
    longer = train_with(dict(tiny, total_steps=1152))
    resumed = run.load_agent(checkpoint.latest(tmp_path))
    _same_state(longer.agent.state_dict(), resumed.state_dict())


def test_checkpointing_envs_without_the_replay_wrapper_is_refused():
    envs = make_vector_env("CartPole-v1", 2)  # CartPole has a `state` attribute
    obs, _ = envs.reset(seed=0)
    with pytest.raises(TypeError, match="wrapper=ReplayEpisodes"):
        checkpoint.env_state(envs, obs)
