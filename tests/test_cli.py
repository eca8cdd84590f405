"""The command line: flags from the config, CSV + JSON output, clear errors, resume."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, fields

import pytest
import torch
from conftest import assert_identical, log_without_wall

from ppo_helpers import checkpoint, presets
from ppo_helpers.cli import (
    build_parser,
    configs_from_args,
    given_settings,
    main,
)
from ppo_helpers.outputs import LOG_HEADER
from ppo_helpers.ppo import PPO, PPOConfig
from ppo_helpers.run import RunConfig
from ppo_helpers.trpo import TRPO, TRPOConfig

torch.set_num_threads(1)

CARTPOLE_RUN = [  # the flags that PPO and TRPO share
    "--env", "CartPole-v1", "--num-envs", "2", "--num-steps", "64",
    "--num-minibatches", "2", "--hidden", "8",
]  # fmt: skip
CARTPOLE = [*CARTPOLE_RUN, "--update-epochs", "1"]
LUNAR = [
    "--env", "LunarLander-v3", "--num-envs", "2", "--num-steps", "64",
    "--update-epochs", "2", "--num-minibatches", "2", "--hidden", "16",
]  # fmt: skip
PENDULUM = [  # Box actions, observation normalisation on (presets.BOX_DEFAULTS)
    "--env", "Pendulum-v1", "--num-envs", "2", "--num-steps", "64",
    "--update-epochs", "2", "--num-minibatches", "2", "--hidden", "16",
]  # fmt: skip


def run_cli(argv, capsys) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse: --help, malformed flags
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def read_log(path) -> list[list[str]]:
    with open(path) as f:
        return list(csv.reader(f))


def test_help_shows_every_config_field_with_its_default_and_range(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    text = " ".join(out.split())  # undo argparse's line wrapping
    for f in (*fields(RunConfig), *fields(PPOConfig), *fields(TRPOConfig)):
        flag = "--env" if f.name == "env_id" else "--" + f.name.replace("_", "-")
        assert flag in text, flag
    assert "--gamma X Discount factor (default: 0.999; range [0, 1])" in text
    assert "(default: 16; range [1, 1024])" in text  # num_envs
    assert "(default: 0.2; range (0, 1))" in text  # clip_coef
    assert "--scale-rewards, --no-scale-rewards" in text
    assert "(default: 64 64; range >= 1)" in text  # hidden, each entry
    assert (
        "--num-minibatches N Minibatches per pass over a batch (default: 8; range >= 1)"
        in text
    )
    assert "(default: clip; one of clip, kl_penalty, dppo, unclipped)" in text
    assert (
        "--max-kl X delta, the bound on the mean KL per update (default: 0.01;" in text
    )
    assert "--algo NAME" in text


def test_run_writes_one_row_per_episode_and_one_json_line(tmp_path, capsys):
    log = tmp_path / "logs" / "run.csv"
    argv = [*CARTPOLE, "--total-steps", 1024, "--log", log, "--eval-episodes", 3]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert len(out.splitlines()) == 1
    summary = json.loads(out)
    for key in ("steps_to_solve", "wall_s_to_solve", "final_mean100", "steps_per_s"):
        assert key in summary
    assert summary["env_steps"] == 1024 and summary["eval_episodes"] == 3
    assert "mean100=" in err  # the progress line, on stderr
    header, *rows = read_log(log)
    assert ",".join(header) == LOG_HEADER
    assert len(rows) == summary["episodes"] > 0
    steps = [int(r[0]) for r in rows]
    assert steps == sorted(steps) and steps[-1] <= 1024
    assert summary["final_mean100"] == pytest.approx(
        sum(float(r[2]) for r in rows[-100:]) / len(rows[-100:])
    )
    # CartPole pays 1 per step, so each return is the episode's length
    assert all(float(r[2]) == int(r[3]) for r in rows)


def test_bad_input_ends_with_one_clear_line_and_no_traceback(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    empty, corrupt, foreign = (tmp_path / n for n in ("empty", "corrupt", "foreign"))
    for folder in (empty, corrupt, foreign):
        folder.mkdir()
    (corrupt / "step_0000000128.pt").write_bytes(b"\x00garbage" * 50)
    torch.save(torch.nn.Linear(2, 2).state_dict(), foreign / "step_0000000128.pt")
    cases = [
        (["--env", "LunarLander-v2"], "use `LunarLander-v3`"),
        (["--env", "NoSuchEnv-v0"], "unknown env id 'NoSuchEnv-v0'"),
        (["--env", "CarRacing-v3"], "CarRacing-v3 has observation space Box(0, 255"),
        (["--env", "Blackjack-v1"], "Blackjack-v1 has observation space Tuple("),
        (["--env", "FrozenLake-v1"], "FrozenLake-v1 has observation space Discrete"),
        (["--gamma", "1.5"], r"gamma must be in [0, 1], got 1.5"),
        (["--gamma", "abc"], "argument --gamma: invalid float value: 'abc'"),
        (["--total-steps", "-5"], "total_steps must be >= 1, got -5"),
        (["--objective", "best"], "argument --objective: invalid choice"),
        (["--resume"], "--resume needs --checkpoint-dir"),
        (["--resume", "--checkpoint-dir", empty], "no checkpoint"),
        (["--resume", "--checkpoint-dir", corrupt], "is not a readable checkpoint"),
        (["--resume", "--checkpoint-dir", foreign], "is not a ppo_helpers checkpoint"),
        (["--log", a_file / "run.csv"], "cannot write --log"),
        (["--checkpoint-dir", a_file / "ckpt"], "cannot write --checkpoint-dir"),
        (["--max-kl", "0.02"], "--max-kl is a TRPO setting: it needs --algo trpo"),
        (["--algo", "trpo", "--max-kl", "-1"], "max_kl must be > 0, got -1.0"),
        (
            ["--algo", "trpo", "--update-epochs", "3"],
            "--update-epochs is a PPO setting: --algo trpo does not use it",
        ),
        (
            ["--algo", "trpo", "--ent-coef", "0.01"],
            "--ent-coef is a PPO setting: --algo trpo does not use it",
        ),
        (["--algo", "sgd"], "argument --algo: invalid choice"),
        (  # 2 envs x 16 steps: 32 samples, checked at the first update
            [*CARTPOLE_RUN[:2], "--num-envs", "2", "--num-steps", "16"]
            + ["--num-minibatches", "33"],
            "num_minibatches must be in [1, 32] (the batch's samples), got 33",
        ),
    ]
    for argv, message in cases:
        code, out, err = run_cli(argv, capsys)
        assert code != 0, argv
        assert out == "", argv
        assert len(err.splitlines()) == 1, err
        assert message in err, (argv, err)
        assert "Traceback" not in err


def test_resume_refuses_a_changed_hyperparameter(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    code, _, err = run_cli(
        [*CARTPOLE, "--total-steps", 128, "--checkpoint-dir", ckpt, "--quiet"], capsys
    )
    assert code == 0, err
    argv = [*CARTPOLE, "--total-steps", 256, "--checkpoint-dir", ckpt, "--resume"]
    saved = checkpoint.latest(ckpt)
    for flags, message in (
        (["--gamma", "0.9"], "gamma=0.999, this run has gamma=0.9"),  # the run's
        (["--clip-coef", "0.1"], "clip_coef=0.2, this run has clip_coef=0.1"),  # PPO's
        (["--algo", "trpo"], f"{saved} was written by PPO, not by --algo trpo"),
        (["--max-kl", "0.02"], "--max-kl is a TRPO setting: it needs --algo trpo"),
    ):
        code, _, err = run_cli([*argv, *flags], capsys)
        assert code == 1 and len(err.splitlines()) == 1 and message in err, err
    # --total-steps may change: a finished run can be extended
    code, out, err = run_cli([*argv, "--quiet"], capsys)
    assert code == 0, err
    assert json.loads(out)["env_steps"] == 256


def test_trpo_trains_from_the_command_line_and_resumes_with_its_settings(
    tmp_path, capsys
):
    ckpt = tmp_path / "ckpt"
    argv = [*CARTPOLE_RUN, "--checkpoint-dir", ckpt, "--quiet"]
    code, out, err = run_cli(
        [*argv, "--algo", "trpo", "--max-kl", "0.02", "--total-steps", 128], capsys
    )
    assert code == 0, err
    assert json.loads(out)["algorithm"] == "TRPO"
    saved = checkpoint.load(checkpoint.latest(ckpt))["algorithm"]
    assert saved["name"] == "TRPO" and saved["state"] == {}
    assert saved["config"] == asdict(TRPOConfig(max_kl=0.02, num_minibatches=2))
    # --resume alone continues TRPO, with the checkpoint's settings
    code, out, err = run_cli([*argv, "--resume", "--total-steps", 256], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["algorithm"] == "TRPO" and summary["env_steps"] == 256
    # another algorithm, another TRPO setting or a PPO one is refused in one line
    for flags, message in (
        (["--algo", "ppo"], "was written by TRPO, not by --algo ppo"),
        (["--max-kl", "0.05"], "max_kl=0.02, this run has max_kl=0.05"),
        (["--num-minibatches", "4"], "num_minibatches=2, this run has num_mini"),
        (["--update-epochs", "1"], "--update-epochs is a PPO setting: --algo trpo"),
    ):
        code, _, err = run_cli(
            [*argv, "--resume", "--total-steps", 384, *flags], capsys
        )
        assert code == 1 and len(err.splitlines()) == 1 and message in err, err


def test_configs_from_args_sends_each_flag_to_its_config():
    args = build_parser().parse_args(
        ["--env", "Pendulum-v1", "--gamma", "0.9", "--algo", "trpo"]
        + ["--max-kl", "0.02", "--clip-coef", "0.1"]
    )
    assert given_settings(args, RunConfig) == {"env_id": "Pendulum-v1", "gamma": 0.9}
    assert given_settings(args, TRPOConfig) == {"max_kl": 0.02, "clip_coef": 0.1}
    assert given_settings(args, PPOConfig) == {"clip_coef": 0.1}  # a shared one
    run_cfg, algorithm, loaded = configs_from_args(args)
    assert loaded is None and type(algorithm) is TRPO
    assert (run_cfg, algorithm.config) == presets.for_env(
        "Pendulum-v1", "trpo", gamma=0.9, max_kl=0.02, clip_coef=0.1
    )
    assert algorithm.config.num_minibatches == 16  # Box actions: BOX_DEFAULTS
    run_cfg, algorithm, _ = configs_from_args(build_parser().parse_args([]))
    assert type(algorithm) is PPO  # no --algo: PPO, with the book's defaults
    assert (run_cfg, algorithm.config) == (RunConfig(), PPOConfig())


def test_a_resume_reads_its_checkpoint_once(tmp_path, capsys, monkeypatch):
    argv = [*CARTPOLE, "--checkpoint-dir", tmp_path / "ckpt", "--quiet"]
    code, _, err = run_cli([*argv, "--total-steps", 128], capsys)
    assert code == 0, err
    reads, load = [], checkpoint.load

    def counted(path):
        reads.append(path)
        return load(path)

    monkeypatch.setattr(checkpoint, "load", counted)
    code, out, err = run_cli([*argv, "--resume", "--total-steps", 256], capsys)
    assert code == 0, err
    assert len(reads) == 1 and json.loads(out)["resumed_from"] == str(reads[0])


@pytest.mark.processes
def test_a_real_process_reports_a_removed_env_in_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "ppo_helpers.cli", "--env", "LunarLander-v2"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "LunarLander-v3" in proc.stderr


@pytest.mark.processes
@pytest.mark.parametrize("env_flags", [LUNAR, PENDULUM], ids=["discrete", "box"])
def test_run_killed_with_sigkill_resumes_to_identical_weights_and_log(
    tmp_path, capsys, env_flags
):
    args = [*env_flags, "--total-steps", 6400, "--checkpoint-every", 640, "--quiet"]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    mine = ["--log", killed / "run.csv", "--checkpoint-dir", killed / "ckpt"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ppo_helpers.cli", *map(str, args + mine)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 300
        while checkpoint.latest(killed / "ckpt") is None:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.01)
        time.sleep(0.3)  # let it log episodes past the checkpoint, to be dropped
    finally:
        proc.kill()  # SIGKILL: no cleanup of any kind
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before the kill"
    assert checkpoint.latest(killed / "ckpt").name != "step_0000006400.pt"

    code, out, err = run_cli([*args, *mine, "--resume"], capsys)
    assert code == 0, err
    assert json.loads(out)["resumed_from"] is not None
    mine_whole = ["--log", whole / "run.csv", "--checkpoint-dir", whole / "ckpt"]
    code, _, err = run_cli([*args, *mine_whole], capsys)
    assert code == 0, err

    resumed = checkpoint.load(killed / "ckpt" / "step_0000006400.pt")
    uninterrupted = checkpoint.load(whole / "ckpt" / "step_0000006400.pt")
    for key in ("agent", "optimizer", "ranks", "algorithm"):
        assert_identical(resumed[key], uninterrupted[key], key)

    log_whole = log_without_wall(whole / "run.csv")
    assert len(log_whole) > 20
    assert log_without_wall(killed / "run.csv") == log_whole


def test_pendulum_trains_from_the_command_line_with_the_box_defaults(tmp_path, capsys):
    log = tmp_path / "run.csv"
    argv = ["--env", "Pendulum-v1", "--total-steps", 400, "--num-envs", 2]
    argv += ["--num-steps", 100, "--hidden", 16, "--log", log, "--eval-episodes", 2]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["env_steps"] == 400 and summary["eval_episodes"] == 2
    assert summary["solved_return"] is None and summary["steps_to_solve"] is None
    header, *rows = read_log(log)
    assert [int(r[3]) for r in rows] == [200, 200]  # cut by the time limit
