"""Live training plots that redraw in place (chapter 9), and the book's colours.

In a notebook, ``LivePlot`` keeps one figure and replaces its image through a
display handle; executed notebooks (Jupyter Book, nbval) store only the final
frame. A redraw of the three panels costs about a tenth of a second on a laptop
CPU, so it runs on a time budget: at most once per ``min_interval_s`` and only
while the time spent drawing stays under ``max_overhead`` of the time since the
plot was made. ``redraw_s`` and ``redraws`` report what watching cost. In a
terminal it shows a tqdm progress line instead.
"""

import io
import time

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter

from ppo_helpers.outputs import Progress
from ppo_helpers.run import Episode, mean_return

# One colour per method, used in every chapter, and one per training diagnostic.
COLORS = {
    "reinforce": "#7f7f7f",
    "trpo": "#9467bd",
    "kl_penalty": "#ff7f0e",
    "kl_fixed": "#e377c2",
    "clip": "#1f77b4",
    "unclipped": "#d62728",
    "seed_blog": "#8c564b",
    "sb3": "#e6550d",  # Stable-Baselines3, beside the book's PPO (chapter 9)
    "ppo": "#1f77b4",
    "target": "#2ca02c",
    "approx_kl": "#9467bd",
    "clip_fraction": "#ff7f0e",
    "entropy": "#17becf",
    # Chapter 5: the two critics of the GAE measurement, the ablation variants.
    "critic_crude": "#c49c94",
    "critic_fitted": "#637939",
    "no_reward_scaling": "#8c6d31",
    "per_network_grad_clip": "#bcbd22",
    "no_adv_norm": "#843c39",
    "no_lr_anneal": "#393b79",
    # Chapter 6: the continuous-action choices beside BOX_DEFAULTS ("ppo").
    "state_sigma": "#d62728",
    "tanh_squash": "#ff7f0e",
    "no_norm_obs": "#9467bd",
}

DIAGNOSTICS = ("approx_kl", "clip_fraction", "entropy")

# The book's text column is about 690 px wide; a figure drawn 7 in wide at 100 dpi
# is shown at (almost) its own size, so 9-pt text stays 9 pt on the page.
COLUMN_WIDTH_IN = 7.0
BOOK_RC = {
    "figure.figsize": (COLUMN_WIDTH_IN, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 9.5,
    "axes.titlesize": 10,
    "axes.labelsize": 9.5,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 10.5,
}


def book_style() -> None:
    """Set matplotlib's defaults to the book's: column-wide figures, text >= 9 pt.

    Called by every chapter's imports cell, after pyplot is imported (Jupyter's
    inline backend sets its own defaults on import).
    """
    plt.rcParams.update(BOOK_RC)


# The clock the time budget reads; a module attribute so tests can replace it.
_clock = time.perf_counter


def in_notebook() -> bool:
    """True inside a Jupyter kernel (also when nbclient executes a notebook)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def moving_average(x, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start).

    ``x`` has shape (n,); so has the result.
    """
    x = np.asarray(x, dtype=float)
    cumsum = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    start = np.maximum(0, idx - window)
    return (cumsum[idx] - cumsum[start]) / (idx - start)


def thousands(x: float, _pos=None) -> str:
    """Tick label for env steps: 150000 -> '150k'."""
    return f"{x / 1000:.4g}k" if x else "0"


class LivePlot:
    """Episode return, episode length and update diagnostics, redrawn in place.

    ``update(stats, episodes)`` matches ``run.train``'s ``on_update``: ``stats``
    is one update's diagnostics (with ``env_steps``), ``episodes`` the new rows
    ``(env_steps, wall_s, episode_return, episode_length)``. Diagnostics missing
    from ``stats`` are left out of the plot. Call ``close()`` after training to
    draw the final frame.

    ``redraw_s`` adds up the time spent drawing and ``redraws`` counts the
    frames, so the cost of watching can be reported; ``max_overhead`` (0.05 by
    default) caps ``redraw_s`` at that fraction of the time since the plot was
    made, plus at most one frame. ``diagnostics=False`` leaves out the panel of
    update diagnostics, for a run watched through its episode log (chapter 8).
    """

    def __init__(
        self,
        total_steps: int,
        title: str = "PPO training",
        solved_at: float | None = 200.0,
        window: int = 100,
        min_interval_s: float = 1.0,
        notebook: bool | None = None,
        max_overhead: float = 0.05,
        color: str = COLORS["ppo"],
        diagnostics: bool = True,
    ):
        self.total_steps, self.title = total_steps, title
        self.solved_at, self.window = solved_at, window
        self.min_interval_s, self.max_overhead = min_interval_s, max_overhead
        self.color = color
        self.diagnostics = DIAGNOSTICS if diagnostics else ()
        self.notebook = in_notebook() if notebook is None else notebook
        self.episodes: list[tuple] = []
        self.stats: list[dict] = []
        self.redraw_s = 0.0
        self.redraws = 0
        self._start = _clock()
        self._last_draw = -float("inf")
        self._handle = None
        self.progress = None if self.notebook else Progress(total_steps)
        if self.notebook:
            self._make_figure()

    def _make_figure(self) -> None:
        """Build the figure and its artists (``lines``) once; ``draw`` moves data."""
        fig = plt.figure(figsize=(COLUMN_WIDTH_IN, 5.2))
        plt.close(fig)  # shown as an image through the display handle only
        grid = fig.add_gridspec(2, 2, height_ratios=(1.15, 1))
        ax_ret = fig.add_subplot(grid[0, :])
        ax_len = fig.add_subplot(grid[1, 0] if self.diagnostics else grid[1, :])
        fig.subplots_adjust(
            left=0.11, right=0.98, top=0.9, bottom=0.1, hspace=0.42, wspace=0.3
        )
        self.fig, self.axes = fig, (ax_ret, ax_len)
        dots = dict(ls="none", marker=".", ms=2, alpha=0.3, color=self.color)
        self.lines = {
            "return": ax_ret.plot([], [], **dots, label="episode")[0],
            "return_mean": ax_ret.plot(
                [], [], color=self.color, label=f"mean of last {self.window}"
            )[0],
            "length": ax_len.plot([], [], **dots)[0],
            "length_mean": ax_len.plot([], [], color=self.color)[0],
        }
        if self.solved_at is not None:
            ax_ret.axhline(
                self.solved_at,
                color=COLORS["target"],
                ls="--",
                label=f"solved ({self.solved_at:g})",
            )
        ax_ret.set(title="episode return", xlabel="env steps", ylabel="return")
        ax_len.set(
            title="episode length", xlabel="env steps", ylabel="steps per episode"
        )
        if self.diagnostics:
            ax_diag = fig.add_subplot(grid[1, 1])
            self.axes += (ax_diag,)
            for key in self.diagnostics:
                label = "entropy (nats)" if key == "entropy" else key
                self.lines[key] = ax_diag.plot([], [], color=COLORS[key], label=label)[
                    0
                ]
            ax_diag.set(
                title="update diagnostics",
                xlabel="env steps",
                ylabel="value (log scale)",
                yscale="log",
            )
            ax_diag.legend(loc="best", fontsize=9)
        for ax in self.axes:
            ax.set_xlim(0, self.total_steps)
            ax.xaxis.set_major_formatter(FuncFormatter(thousands))
            ax.grid(alpha=0.3)
        ax_ret.legend(loc="lower right", fontsize=9)
        self._suptitle = fig.suptitle(self.title)

    def update(self, stats: dict, episodes: list[tuple]) -> None:
        """Record one update; redraw if the time budget allows it."""
        self.stats.append(stats)
        self.episodes += episodes
        if self.progress is not None:
            self.progress(stats, [Episode(*e) for e in episodes])
        elif self.due():
            self.draw()

    __call__ = update  # an output (``outputs.Output``) for ``run.train``

    def due(self) -> bool:
        """Whether a redraw now keeps within ``min_interval_s`` and ``max_overhead``."""
        now = _clock()
        return (
            now - self._last_draw >= self.min_interval_s
            and self.redraw_s <= self.max_overhead * (now - self._start)
        )

    def recent_mean(self) -> float:
        """Mean return of the last ``window`` episodes (nan before the first)."""
        mean = mean_return((e[2] for e in self.episodes), self.window)
        return float("nan") if mean is None else mean

    def close(self) -> None:
        """Draw the final frame (notebook) or close the progress line (terminal)."""
        if self.progress is not None:
            self.progress.close()
        else:
            self.draw()

    def draw(self) -> None:
        """Move the data into the artists, render a PNG and show it in place."""
        from IPython.display import Image, display

        start = _clock()
        if self.episodes:
            steps, _, returns, lengths = (
                np.asarray(c) for c in zip(*self.episodes, strict=True)
            )
            self.lines["return"].set_data(steps, returns)
            self.lines["return_mean"].set_data(
                steps, moving_average(returns, self.window)
            )
            self.lines["length"].set_data(steps, lengths)
            self.lines["length_mean"].set_data(
                steps, moving_average(lengths, self.window)
            )
        if self.stats:
            steps = [s["env_steps"] for s in self.stats]
            for key in self.diagnostics:
                values = [s.get(key, np.nan) for s in self.stats]
                self.lines[key].set_data(steps, values)
        done = self.stats[-1]["env_steps"] if self.stats else 0
        for ax in self.axes:
            ax.relim()
            ax.autoscale_view(scalex=False)
            ax.set_xlim(0, max(self.total_steps, done))  # the last batch may overshoot
        status = f"{self.title}: {thousands(done)} of {thousands(self.total_steps)}"
        if self.episodes:
            status += (
                f" env steps, mean return of the last {self.window} episodes "
                f"{self.recent_mean():.1f}"
            )
        self._suptitle.set_text(status)
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png")
        image = Image(data=buffer.getvalue(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
        self._last_draw = _clock()
        self.redraw_s += self._last_draw - start
        self.redraws += 1
