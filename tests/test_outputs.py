"""ppo_helpers.outputs: each output writes what a run did, and a resumed run
continues it without repeating or losing a step; and the one mean of returns."""

import csv
import io
import json
import sys

import pytest
from conftest import train_with

from ppo_helpers import outputs
from ppo_helpers.cli import main
from ppo_helpers.run import Episode, mean_return

EPISODES = [Episode(100, 0.5, -20.0, 40), Episode(200, 1.0, 35.5, 60)]
STATS = {"env_steps": 200, "approx_kl": 0.012, "entropy": 1.3, "wall_s": 1.0}


def read_scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in ``log_dir`` as TensorBoard's own reader sees it."""
    from tensorboard.backend.event_processing import event_accumulator

    reader = event_accumulator.EventAccumulator(str(log_dir))
    reader.Reload()
    return {
        tag: [(e.step, e.value) for e in reader.Scalars(tag)]
        for tag in reader.Tags()["scalars"]
    }


def test_mean_return_is_the_mean_of_the_last_window():
    assert mean_return([1.0, 2.0, 3.0, 10.0], window=2) == 6.5
    assert mean_return(range(150)) == pytest.approx(sum(range(50, 150)) / 100)
    assert mean_return([]) is None


def test_mean100_by_update_counts_the_episodes_each_update_had_finished(tiny):
    result = train_with(dict(tiny, seed=0, total_steps=512))
    returns = [e.episode_return for e in result.episodes]
    for u, mean100 in zip(result.updates, result.mean100_by_update(), strict=True):
        done = [r for e, r in zip(result.episodes, returns, strict=True)
                if e.env_steps <= u["env_steps"]]  # fmt: skip
        assert mean100 == mean_return(done)
    assert result.mean100_by_update()[-1] == result.final_mean100


def test_the_csv_log_holds_the_runs_episodes_and_is_cut_back_on_resume(tmp_path):
    path = tmp_path / "logs" / "run.csv"
    log = outputs.CSVLog(path)
    log(STATS, EPISODES)
    log.close()
    header, *rows = list(csv.reader(path.open()))
    assert ",".join(header) == outputs.LOG_HEADER
    assert [float(r[2]) for r in rows] == [-20.0, 35.5]
    resumed = outputs.CSVLog(path, EPISODES[:1])  # the checkpoint had seen one
    resumed(STATS, [Episode(300, 1.5, 7.25, 80)])
    resumed.close()
    _, *rows = list(csv.reader(path.open()))
    assert [(int(r[0]), float(r[2])) for r in rows] == [(100, -20.0), (300, 7.25)]


def test_progress_counts_steps_up_to_the_total_and_shows_the_mean100():
    screen = io.StringIO()
    progress = outputs.Progress(150, EPISODES[:1], file=screen)
    progress(STATS, EPISODES[1:])
    assert progress.bar.n == 150  # capped at total_steps
    assert "mean100=7.8" in screen.getvalue()  # (-20 + 35.5) / 2 = 7.75
    progress.close()


def test_tensorboard_scalars_read_back_with_tensorboards_reader(tmp_path):
    board = outputs.TensorBoard(tmp_path)
    board(STATS, EPISODES)
    board.close()
    scalars = read_scalars(tmp_path)
    assert scalars["episode/return"] == [(100, -20.0), (200, 35.5)]
    assert scalars["episode/length"] == [(100, 40.0), (200, 60.0)]
    assert scalars["update/approx_kl"] == [(200, pytest.approx(0.012))]
    assert "update/env_steps" not in scalars  # it is the step, not a scalar


def test_a_resumed_run_purges_what_came_after_its_checkpoint(tmp_path):
    first = outputs.TensorBoard(tmp_path)
    for steps in (100, 200, 300):  # killed after 300; the checkpoint was at 200
        first({"env_steps": steps, "entropy": 1.0}, [])
    first.close()
    resumed = outputs.TensorBoard(tmp_path, env_steps=200)
    resumed({"env_steps": 300, "entropy": 0.5}, [])
    resumed.close()
    assert read_scalars(tmp_path)["update/entropy"] == [
        (100, 1.0),
        (200, 1.0),
        (300, 0.5),
    ]


def test_outputs_call_each_and_close_all_even_when_one_fails():
    calls = []

    class Recorder:
        def __init__(self, name, fail=False):
            self.name, self.fail = name, fail

        def __call__(self, stats, new_episodes):
            calls.append((self.name, len(new_episodes)))

        def close(self):
            calls.append((self.name, "closed"))
            if self.fail:
                raise OSError(f"{self.name} failed")

    both = outputs.Outputs(Recorder("a", fail=True), Recorder("b"))
    both(STATS, EPISODES)
    with pytest.raises(OSError, match="a failed"):
        both.close()
    assert calls == [("a", 2), ("b", 2), ("a", "closed"), ("b", "closed")]


def test_the_command_line_writes_tensorboard_files(tmp_path, capsys):
    argv = ["--env", "CartPole-v1", "--total-steps", "1024", "--num-envs", "2"]
    argv += ["--num-steps", "256", "--quiet", "--tensorboard", str(tmp_path / "tb")]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    scalars = read_scalars(tmp_path / "tb")
    returns = scalars["episode/return"]
    assert len(returns) == summary["episodes"]
    assert returns[-1][0] <= summary["env_steps"]
    assert [step for step, _ in scalars["update/approx_kl"]] == [512, 1024]


def test_without_tensorboard_installed_the_flag_says_what_to_install(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    argv = ["--env", "CartPole-v1", "--total-steps", "256", "--quiet"]
    assert main([*argv, "--tensorboard", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "--tensorboard" in err and "pip install 'ppo_helpers[tensorboard]'" in err
    assert len(err.strip().splitlines()) == 1
