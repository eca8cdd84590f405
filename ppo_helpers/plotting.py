"""Live training plots that redraw in place (chapter 8), and the book's colours.

In a notebook, ``LivePlot`` keeps one figure and replaces it through a display
handle at most once per ``min_interval_s``; executed notebooks (Jupyter Book,
nbval) store only the final frame. In a terminal it shows a tqdm progress line.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

# One colour per method, used in every chapter.
COLORS = {
    "reinforce": "#7f7f7f",
    "trpo": "#9467bd",
    "kl_penalty": "#ff7f0e",
    "kl_fixed": "#e6a157",
    "clip": "#1f77b4",
    "unclipped": "#d62728",
    "seed_blog": "#8c564b",
    "ppo": "#1f77b4",
    "target": "#2ca02c",
}


def in_notebook() -> bool:
    """True inside a Jupyter kernel (also when nbclient executes a notebook)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def moving_average(x, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start)."""
    x = np.asarray(x, dtype=float)
    cumsum = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    start = np.maximum(0, idx - window)
    return (cumsum[idx] - cumsum[start]) / (idx - start)


class LivePlot:
    """Episode return, episode length and update diagnostics, redrawn in place.

    ``update(stats, episodes)`` matches ``ppo.train``'s ``on_update``: ``stats``
    is one update's diagnostics (with ``env_steps``), ``episodes`` the new rows
    ``(env_steps, wall_s, episode_return, episode_length)``. ``redraw_s`` adds up
    the time spent drawing, so its cost can be reported.
    """

    def __init__(
        self,
        total_steps: int,
        title: str = "PPO training",
        solved_at: float | None = 200.0,
        window: int = 100,
        min_interval_s: float = 1.0,
        notebook: bool | None = None,
    ):
        self.total_steps, self.title = total_steps, title
        self.solved_at, self.window, self.min_interval_s = (
            solved_at,
            window,
            min_interval_s,
        )
        self.notebook = in_notebook() if notebook is None else notebook
        self.episodes: list[tuple] = []
        self.stats: list[dict] = []
        self.redraw_s = 0.0
        self.redraws = 0
        self._last_draw = -float("inf")
        self._handle = None
        self._bar = None
        if self.notebook:
            self.fig, self.axes = plt.subplots(1, 3, figsize=(13, 3.6))
            plt.close(self.fig)  # shown through the display handle only
        else:
            self._bar = tqdm(total=total_steps, unit="step", unit_scale=True)

    def update(self, stats: dict, episodes: list[tuple]) -> None:
        self.stats.append(stats)
        self.episodes += episodes
        if self._bar is not None:
            self._bar.n = min(int(stats["env_steps"]), self.total_steps)
            if self.episodes:
                recent = [e[2] for e in self.episodes[-self.window :]]
                self._bar.set_postfix(
                    mean100=f"{np.mean(recent):.1f}", episodes=len(self.episodes)
                )
            self._bar.refresh()
        elif time.perf_counter() - self._last_draw >= self.min_interval_s:
            self.draw()

    def close(self) -> None:
        """Draw the final frame (notebook) or close the progress line (terminal)."""
        if self._bar is not None:
            self._bar.close()
        else:
            self.draw()

    def draw(self) -> None:
        from IPython.display import display

        start = time.perf_counter()
        ax_ret, ax_len, ax_diag = self.axes
        for ax in self.axes:
            ax.clear()
        if self.episodes:
            steps, _, returns, lengths = (
                np.asarray(c) for c in zip(*self.episodes, strict=True)
            )
            ax_ret.plot(
                steps,
                returns,
                ".",
                ms=2,
                alpha=0.3,
                color=COLORS["ppo"],
                label="episode",
            )
            ax_ret.plot(
                steps,
                moving_average(returns, self.window),
                color=COLORS["ppo"],
                label=f"mean of last {self.window}",
            )
            ax_len.plot(steps, lengths, ".", ms=2, alpha=0.3, color=COLORS["ppo"])
            ax_len.plot(
                steps, moving_average(lengths, self.window), color=COLORS["ppo"]
            )
        if self.solved_at is not None:
            ax_ret.axhline(
                self.solved_at, color=COLORS["target"], ls="--", label="solved"
            )
        if self.stats:
            steps = [s["env_steps"] for s in self.stats]
            for key, color in (
                ("approx_kl", "C4"),
                ("clip_fraction", "C1"),
                ("entropy", "C2"),
            ):
                values = [s[key] for s in self.stats]
                scale = 0.1 if key == "entropy" else 1.0
                ax_diag.plot(
                    steps,
                    np.asarray(values) * scale,
                    color=color,
                    label=key if scale == 1 else "entropy / 10 (nats)",
                )
        ax_ret.set(
            title=f"{self.title}: episode return", xlabel="env steps", ylabel="return"
        )
        ax_len.set(
            title="episode length", xlabel="env steps", ylabel="steps per episode"
        )
        ax_diag.set(title="update diagnostics", xlabel="env steps", ylabel="value")
        for ax in self.axes:
            ax.set_xlim(0, self.total_steps)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize=8)
        self.fig.tight_layout()
        if self._handle is None:
            self._handle = display(self.fig, display_id=True)
        else:
            self._handle.update(self.fig)
        self._last_draw = time.perf_counter()
        self.redraw_s += self._last_draw - start
        self.redraws += 1
