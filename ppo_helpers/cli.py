"""Command line: train PPO, log every episode, checkpoint, resume (chapter 9).

    python -m ppo_helpers.cli --env LunarLander-v3 --seed 0 \\
        --total-steps 1000000 --log run.csv --checkpoint-dir ckpt/

trains on any env with a flat Box observation and Discrete or Box actions; for
Box actions it starts from the book's continuous defaults (presets.BOX_DEFAULTS),
and flags given here override either set. It

writes one CSV row per finished episode (env_steps, wall_s, episode_return,
episode_length; flushed after every update), and with --tensorboard DIR
TensorBoard scalars of every episode and update; shows a progress line on stderr,
and ends by printing one JSON line with the run's summary on stdout. Every
field of the run's config and of PPO's and TRPO's (--algo trpo) is a flag;
--help lists each with its default and range.
After a crash or kill -9, the same command with --resume continues from the
newest checkpoint and ends with exactly the weights of an uninterrupted run;
the CSV is cut back to the rows that checkpoint had seen.

Bad input (an unknown env id, a value out of range, a missing or foreign
checkpoint, a path that cannot be written) ends with one line on stderr and
exit status 2 (a malformed flag) or 1 (anything else), never a traceback.
"""

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

import gymnasium as gym
import torch

from ppo_helpers import checkpoint, presets
from ppo_helpers.checks import OneOf, Range, check_range
from ppo_helpers.optim import UpdateConfig
from ppo_helpers.outputs import CSVLog, Outputs, Progress, TensorBoard
from ppo_helpers.ppo import PPOConfig
from ppo_helpers.ranks import SINGLE, Ranks, on_rank0
from ppo_helpers.rollout import evaluate
from ppo_helpers.run import (
    RESUMABLE_CHANGES,
    Algorithm,
    RunConfig,
    check_resume_config,
    progress_of,
    saved_configs,
    train,
)
from ppo_helpers.timing import NOT_TIMED, PhaseTimes
from ppo_helpers.trpo import TRPOConfig

PROG = "python -m ppo_helpers.cli"
FLAG_NAMES = {"env_id": ("--env", "--env-id")}
SHARED = {f.name for f in fields(UpdateConfig)}
CONFIG_GROUPS = (  # the flags' groups in --help: title, fields
    ("run config (run.RunConfig)", fields(RunConfig)),
    ("update, PPO and TRPO (optim.UpdateConfig)", fields(UpdateConfig)),
    ("PPO (ppo.PPOConfig)", [f for f in fields(PPOConfig) if f.name not in SHARED]),
    (
        "TRPO, with --algo trpo (trpo.TRPOConfig)",
        [f for f in fields(TRPOConfig) if f.name not in SHARED],
    ),
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block above it)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def integer(text: str) -> int:
    """An int that may also be written 1_000_000 or 1e6."""
    try:
        return int(text)
    except ValueError:
        value = float(text)  # a ValueError here makes argparse name the flag
        if not value.is_integer():
            raise
        return int(value)


def _config_help(f) -> str:
    """A field's doc, default and accepted values, as its ``knob`` states them."""
    accepted = f.metadata["accepted"]
    shown = " ".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
    suffix = "" if accepted is None else f"; {accepted}"
    if isinstance(accepted, Range):
        suffix = f"; range {accepted}"
    return f"{f.metadata['doc']} (default: {shown}{suffix})"


def _add_fields(group, config_fields) -> None:
    """One flag per dataclass field, with the type, doc and range of its ``knob``."""
    for f in config_fields:
        default = f.default
        flags = FLAG_NAMES.get(f.name, ("--" + f.name.replace("_", "-"),))
        # SUPPRESS: only flags given on the command line appear in the parsed
        # args, so a resumed run can tell them from the checkpoint's values.
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS, "help": _config_help(f)}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, tuple):
            kwargs.update(type=integer, nargs="+", metavar="N")
        elif isinstance(f.metadata["accepted"], OneOf):
            kwargs.update(choices=f.metadata["accepted"], metavar="NAME")
        elif isinstance(default, str):
            kwargs.update(type=str, metavar="ID")
        elif isinstance(default, int):
            kwargs.update(type=integer, metavar="N")
        else:  # a float, or None for an optional float
            kwargs.update(type=float, metavar="X")
        group.add_argument(*flags, **kwargs)


def build_parser(
    prog: str = PROG, description: str | None = None
) -> argparse.ArgumentParser:
    """One flag per field of ``RunConfig``, ``PPOConfig`` and ``TRPOConfig``,
    generated from the dataclasses and their docs.

    ``ppo_helpers.distributed`` adds its own flags to this parser.
    """
    parser = _Parser(
        prog=prog,
        description=description or "\n\n".join(__doc__.split("\n\n")[:3]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for title, config_fields in CONFIG_GROUPS:
        _add_fields(parser.add_argument_group(title), config_fields)
    run = parser.add_argument_group("run")
    run.add_argument(
        "--algo",
        choices=tuple(presets.ALGORITHMS),
        metavar="NAME",
        help="ppo, or trpo with the TRPO flags above (default: ppo, or the "
        "checkpoint's with --resume; one of ppo, trpo)",
    )
    run.add_argument(
        "--log",
        type=Path,
        metavar="CSV",
        help="write one row per finished episode here (default: no log)",
    )
    run.add_argument(
        "--checkpoint-dir",
        type=Path,
        metavar="DIR",
        help="write checkpoints into this folder (default: none)",
    )
    run.add_argument(
        "--checkpoint-every",
        type=integer,
        default=50_000,
        metavar="STEPS",
        help="env steps between checkpoints (default: 50000; range >= 1)",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in --checkpoint-dir",
    )
    run.add_argument(
        "--eval-episodes",
        type=integer,
        default=0,
        metavar="N",
        help="after training, evaluate the greedy policy on N episodes "
        "(default: 0, none; range >= 0)",
    )
    run.add_argument(
        "--threads",
        type=integer,
        default=1,
        metavar="N",
        help="torch threads (default: 1, fastest for small networks; range >= 1)",
    )
    run.add_argument(
        "--tensorboard",
        type=Path,
        metavar="DIR",
        help="also write TensorBoard scalars into this folder (default: none; "
        "needs pip install 'ppo_helpers[tensorboard]')",
    )
    run.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    return parser


def given_settings(args: argparse.Namespace, config_class: type) -> dict:
    """The fields of ``config_class`` among parsed ``args``: the flags given."""
    names = {f.name for f in fields(config_class)}
    return {k: v for k, v in vars(args).items() if k in names}


def _check_algorithm_flags(args: argparse.Namespace, algo: str) -> None:
    """``ValueError`` for a flag of the other algorithm's own settings."""
    other = "trpo" if algo == "ppo" else "ppo"
    given = given_settings(args, presets.ALGORITHMS[other][1]).keys() - SHARED
    if given:
        flag = "--" + sorted(given)[0].replace("_", "-")
        if other == "trpo":
            raise ValueError(f"{flag} is a TRPO setting: it needs --algo trpo")
        raise ValueError(f"{flag} is a PPO setting: --algo trpo does not use it")


def configs_from_args(
    args: argparse.Namespace,
) -> tuple[RunConfig, Algorithm, checkpoint.Loaded | None]:
    """The run's config, its algorithm and the checkpoint to resume from (None
    for a new run), read once: ``train`` takes it as it is.

    A new run starts from ``presets.for_env`` (the Box defaults for Box
    actions). When resuming, the checkpoint's configs are the base and flags
    given on the command line override them (``train`` then refuses any change
    but ``run.RESUMABLE_CHANGES``); the algorithm is the checkpoint's.
    """
    if not args.resume:
        algo = args.algo or "ppo"
        _check_algorithm_flags(args, algo)
        algo_class, config_class = presets.ALGORITHMS[algo]
        run_cfg, algo_cfg = presets.for_env(
            algo=algo,
            **given_settings(args, RunConfig),
            **given_settings(args, config_class),
        )
        return run_cfg, algo_class(algo_cfg), None
    if args.checkpoint_dir is None:
        raise ValueError("--resume needs --checkpoint-dir")
    loaded = checkpoint.load_latest(args.checkpoint_dir)
    path, state = loaded
    saved = saved_configs(state)
    by_class = {c.__name__: name for name, (c, _) in presets.ALGORITHMS.items()}
    algo = by_class.get(saved.algorithm)
    if algo is None or args.algo not in (None, algo):
        raise checkpoint.CheckpointError(
            f"{path} was written by {saved.algorithm}, not by --algo {args.algo}"
        )
    _check_algorithm_flags(args, algo)
    algo_class, config_class = presets.ALGORITHMS[algo]
    try:
        run_cfg = RunConfig(**{**saved.run, **given_settings(args, RunConfig)})
        algo_cfg = config_class(
            **{**saved.algorithm_config, **given_settings(args, config_class)}
        )
    except TypeError as err:
        raise checkpoint.CheckpointError(
            f"{path} has an unusable config: {err}"
        ) from None
    check_resume_config(saved.run, run_cfg, path, RESUMABLE_CHANGES)
    check_resume_config(saved.algorithm_config, algo_cfg, path)
    return run_cfg, algo_class(algo_cfg), loaded


def _open_outputs(
    args: argparse.Namespace,
    cfg: RunConfig,
    episodes: list,
    env_steps: int,
    ranks: Ranks,
) -> Outputs:
    """Check the checkpoint folder and open every output before any training.

    Files are rank 0's (``on_rank0``: an error there stops every rank); every
    rank gets a progress line, shown on rank 0 only. A resumed run's outputs
    start from the checkpoint's ``episodes`` and ``env_steps``.
    """
    files = []

    def open_files() -> None:
        if args.checkpoint_dir is not None:
            try:
                checkpoint.check_writable(args.checkpoint_dir)
            except OSError as err:
                raise OSError(
                    f"cannot write --checkpoint-dir {args.checkpoint_dir}: {err}"
                ) from None
        for flag, make in (
            ("log", lambda path: CSVLog(path, episodes)),
            ("tensorboard", lambda path: TensorBoard(path, env_steps)),
        ):
            path = getattr(args, flag)
            if path is None:
                continue
            try:
                files.append(make(path))
            except (OSError, ImportError) as err:
                Outputs(*files).close()
                if isinstance(err, ImportError):  # a missing optional package
                    raise ValueError(f"--{flag}: {err}") from None
                raise OSError(f"cannot write --{flag} {path}: {err}") from None

    on_rank0(ranks, open_files)
    quiet = args.quiet or ranks.rank > 0
    return Outputs(Progress(cfg.total_steps, episodes, disable=quiet), *files)


def train_from_args(
    args: argparse.Namespace,
    ranks: Ranks = SINGLE,
    phase_times: PhaseTimes = NOT_TIMED,
) -> dict:
    """Train as ``args`` say; return the summary that ``main`` prints.

    With several ``ranks`` (``ppo_helpers.distributed``) every rank calls it;
    rank 0 alone reads the checkpoint, writes the log, shows progress and
    evaluates, and its summary is the run's. ``phase_times`` goes to
    ``run.train`` (``benchmarks/distributed.py`` profiles with it).
    """
    check_range("checkpoint_every", args.checkpoint_every, 1)
    check_range("threads", args.threads, 1)
    check_range("eval_episodes", args.eval_episodes, 0)
    cfg, algorithm, loaded = on_rank0(ranks, lambda: configs_from_args(args))
    episodes, resume_steps = progress_of(loaded.state) if loaded else ([], 0)
    outputs = _open_outputs(args, cfg, episodes, resume_steps, ranks)
    torch.set_num_threads(args.threads)
    try:
        result = train(
            cfg,
            outputs,
            algorithm,
            checkpoint_dir=args.checkpoint_dir,
            checkpoint_every=args.checkpoint_every,
            resume=loaded or False,
            ranks=ranks,
            phase_times=phase_times,
        )
    finally:
        outputs.close()
    env_steps = result.updates[-1]["env_steps"] if result.updates else 0
    newest = checkpoint.latest(args.checkpoint_dir) if args.checkpoint_dir else None
    summary = {
        "env_id": cfg.env_id,
        "algorithm": type(algorithm).__name__,
        "seed": cfg.seed,
        "env_steps": env_steps,
        "episodes": len(result.episodes),
        "solved_return": result.solved_return,
        "steps_to_solve": result.steps_to_solve,
        "wall_s_to_solve": result.wall_s_to_solve,
        "final_mean100": result.final_mean100,
        "wall_s": round(result.wall_s, 3),
        "steps_per_s": round(env_steps / result.wall_s, 1) if result.wall_s else None,
        "resumed_from": str(loaded.path) if loaded else None,
        "checkpoint": str(newest) if newest else None,
        "log": str(args.log) if args.log else None,
    }
    if args.eval_episodes and ranks.rank == 0:
        returns = evaluate(result.agent, cfg.env_id, args.eval_episodes)
        summary.update(
            eval_episodes=len(returns),
            eval_mean=float(returns.mean()),
            eval_std=float(returns.std()),
        )
    return summary


def report(args: argparse.Namespace, ranks: Ranks = SINGLE, prog: str = PROG) -> int:
    """``train_from_args(args, ranks)``, its summary printed as one JSON line by
    rank 0.

    Returns the exit status: 0, 1 after bad input or an unusable file (one line
    on stderr, from rank 0), 130 when interrupted.
    """
    try:
        summary = train_from_args(args, ranks)
    except (ValueError, OSError, gym.error.Error) as err:
        # Bad input, or a file we cannot read or write: say what, on one line.
        message = " ".join(str(err).split()) or type(err).__name__
        if ranks.rank == 0:
            print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    if ranks.rank == 0:
        print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    return report(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
