"""Where a run's progress goes: outputs for ``run.train``'s ``on_update``.

An output is a callable ``output(stats, new_episodes)``, called after every
update with ``update``'s diagnostics (plus ``env_steps``, ``wall_s`` and
``learning_rate``) and the episodes that finished in it, and a ``close()``.
Each starts from the episodes a run already has, so that a resumed run
continues its outputs rather than repeating or losing rows:

- ``CSVLog``: one row per finished episode (``LOG_HEADER``);
- ``Progress``: a terminal progress line with the mean of the last 100 returns;
- ``TensorBoard``: scalars for TensorBoard (``pip install ppo_helpers[tensorboard]``);
- ``Outputs``: several of them as one, closed together.

``plotting.LivePlot`` is an output too, for notebooks.
"""

import os
import sys
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, TextIO

from tqdm import tqdm

from ppo_helpers.run import SOLVED_WINDOW, Episode, mean_return

LOG_HEADER = "env_steps,wall_s,episode_return,episode_length"


class Output(Protocol):
    """What ``run.train`` calls after each update, and what closes it."""

    def __call__(self, stats: dict[str, float], new_episodes: list[Episode]) -> None:
        """``stats`` of one update; ``new_episodes`` finished during it."""

    def close(self) -> None:
        """Flush and release files; called once, after the last update."""


def _log_row(e: Episode) -> str:
    # repr keeps every bit of the return, so the logs of two runs compare exactly
    return f"{e.env_steps},{e.wall_s:.3f},{e.episode_return!r},{e.episode_length}\n"


class CSVLog:
    """The episode log as CSV at ``path``: env steps, wall seconds, return, length.

    Opening writes the header and ``episodes`` (the run's episodes so far; none
    for a new run) to a temporary file and renames it over ``path``, so a
    resumed run's log holds exactly the checkpoint's episodes: rows that the
    interrupted run wrote after its last checkpoint are dropped, none repeat.
    Rows are appended and flushed after every update.
    """

    def __init__(self, path: str | os.PathLike, episodes: Iterable[Episode] = ()):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w") as f:
                f.write(LOG_HEADER + "\n")
                f.writelines(_log_row(e) for e in episodes)
            os.replace(tmp, self.path)  # atomic: the old log stays whole until here
        finally:
            tmp.unlink(missing_ok=True)
        self.file: TextIO = open(self.path, "a")  # noqa: SIM115 (closed by close)

    def __call__(self, stats: dict[str, float], new_episodes: list[Episode]) -> None:
        self.file.writelines(_log_row(e) for e in new_episodes)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class Progress:
    """A tqdm line on ``file`` (stderr): env steps of ``total_steps``, and the mean100.

    The bar appears at the first update, so that a run which fails in its
    set-up prints nothing but its error.
    """

    def __init__(
        self,
        total_steps: int,
        episodes: Iterable[Episode] = (),
        disable: bool = False,
        file: TextIO | None = None,
    ):
        self.total_steps, self.disable = total_steps, disable
        self.file = sys.stderr if file is None else file  # stderr as it is now
        self.recent = deque((e.episode_return for e in episodes), maxlen=SOLVED_WINDOW)
        self.bar: tqdm | None = None

    def __call__(self, stats: dict[str, float], new_episodes: list[Episode]) -> None:
        self.recent.extend(e.episode_return for e in new_episodes)
        if self.bar is None:
            self.bar = tqdm(
                total=self.total_steps,
                unit="step",
                unit_scale=True,
                disable=self.disable,
                file=self.file,
            )
        self.bar.n = min(int(stats["env_steps"]), self.total_steps)
        if self.recent:
            mean100 = mean_return(self.recent)
            self.bar.set_postfix(mean100=f"{mean100:.1f}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class TensorBoard:
    """Scalars in TensorBoard event files under ``log_dir``, against env steps.

    Per episode: ``episode/return`` and ``episode/length``; per update, every
    entry of the update's stats as ``update/<name>`` (approx KL, clip
    fraction, entropy, losses, learning rate, ...). ``env_steps`` is where a
    resumed run starts: events the interrupted run wrote after it are purged
    (``SummaryWriter``'s ``purge_step``), so TensorBoard shows one clean curve.
    """

    def __init__(self, log_dir: str | os.PathLike, env_steps: int = 0):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError(
                "TensorBoard output needs the tensorboard package: "
                "pip install 'ppo_helpers[tensorboard]'"
            ) from None
        self.writer = SummaryWriter(
            str(log_dir), purge_step=env_steps + 1 if env_steps else None
        )

    def __call__(self, stats: dict[str, float], new_episodes: list[Episode]) -> None:
        for e in new_episodes:
            self.writer.add_scalar("episode/return", e.episode_return, e.env_steps)
            self.writer.add_scalar("episode/length", e.episode_length, e.env_steps)
        step = int(stats["env_steps"])
        for name, value in stats.items():
            if name != "env_steps":
                self.writer.add_scalar(f"update/{name}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class Outputs:
    """Several outputs as one: each called in turn, and all closed together."""

    def __init__(self, *outputs: Output):
        self.outputs = outputs

    def __call__(self, stats: dict[str, float], new_episodes: list[Episode]) -> None:
        for output in self.outputs:
            output(stats, new_episodes)

    def close(self) -> None:
        """Close every output, even when one fails; then raise the first error."""
        errors = []
        for output in self.outputs:
            try:
                output.close()
            except Exception as err:  # noqa: BLE001 (re-raised below)
                errors.append(err)
        if errors:
            raise errors[0]
