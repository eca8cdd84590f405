"""Same seed, same CPU: the same episodes and the same weights, bit for bit."""

from conftest import episodes_without_wall, same_weights, train_with

from ppo_helpers.cli import main


def test_same_seed_gives_identical_episodes_and_weights(tiny):
    a = train_with(dict(tiny, seed=7, total_steps=1536))
    b = train_with(dict(tiny, seed=7, total_steps=1536))
    assert len(a.episodes) > 5
    assert episodes_without_wall(a.episodes) == episodes_without_wall(b.episodes)
    assert same_weights(a.agent, b.agent)
    for stats_a, stats_b in zip(a.updates, b.updates, strict=True):
        assert {k: v for k, v in stats_a.items() if k != "wall_s"} == {
            k: v for k, v in stats_b.items() if k != "wall_s"
        }
    c = train_with(dict(tiny, seed=8, total_steps=1536))
    assert episodes_without_wall(a.episodes) != episodes_without_wall(c.episodes)


def test_writing_checkpoints_does_not_change_the_run(tmp_path, tiny):
    plain = train_with(dict(tiny, total_steps=1536))
    saving = train_with(
        dict(tiny, total_steps=1536),
        checkpoint_dir=tmp_path,
        checkpoint_every=256,
    )
    assert len(list(tmp_path.glob("step_*.pt"))) == 3  # the newest KEEP are kept
    assert episodes_without_wall(plain.episodes) == episodes_without_wall(
        saving.episodes
    )
    assert same_weights(plain.agent, saving.agent)


def test_command_line_logs_of_two_runs_match_except_wall_time(tmp_path, capsys):
    flags = ["--env", "CartPole-v1", "--num-envs", "2", "--num-steps", "64",
             "--total-steps", "1024", "--hidden", "8", "--update-epochs", "2",
             "--num-minibatches", "2", "--quiet"]  # fmt: skip
    logs = []
    for name in ("a.csv", "b.csv"):
        assert main([*flags, "--log", str(tmp_path / name)]) == 0
        rows = (tmp_path / name).read_text().splitlines()
        logs.append([row.split(",") for row in rows])
    capsys.readouterr()
    assert len(logs[0]) > 10
    assert [r[:1] + r[2:] for r in logs[0]] == [r[:1] + r[2:] for r in logs[1]]
