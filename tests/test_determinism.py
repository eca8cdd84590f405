"""Same seed, same CPU: the same episodes and the same weights, bit for bit."""

from conftest import episodes_without_wall, same_weights

from ppo_helpers import ppo, run
from ppo_helpers.train import main


def test_same_seed_gives_identical_episodes_and_weights(tiny):
    a = run.train(ppo.PPOConfig(seed=7, total_steps=1536, **tiny))
    b = run.train(ppo.PPOConfig(seed=7, total_steps=1536, **tiny))
    assert len(a.episodes) > 5
    assert episodes_without_wall(a.episodes) == episodes_without_wall(b.episodes)
    assert same_weights(a.agent, b.agent)
    for stats_a, stats_b in zip(a.updates, b.updates, strict=True):
        assert {k: v for k, v in stats_a.items() if k != "wall_s"} == {
            k: v for k, v in stats_b.items() if k != "wall_s"
        }
    c = run.train(ppo.PPOConfig(seed=8, total_steps=1536, **tiny))
    assert episodes_without_wall(a.episodes) != episodes_without_wall(c.episodes)


def test_writing_checkpoints_does_not_change_the_run(tmp_path, tiny):
    plain = run.train(ppo.PPOConfig(total_steps=1536, **tiny))
    saving = run.train(
        ppo.PPOConfig(total_steps=1536, **tiny),
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
