"""Draw the training curves of ``--log`` CSVs: the mean of the last 100 returns.

One panel per env (the file name's prefix before ``_``: ``llc`` or ``pend``),
one line per file, the target as a dashed line, the x axis in env steps. Used
for ``benchmarks/results/continuous_tries/``:

    python benchmarks/plot_tries.py OUT.png RUN.csv [RUN.csv ...] \\
        [--highlight NAME ...] [--target ENV=VALUE ...]

Files whose stem starts with a ``--highlight`` name are drawn thick; the others
thin and grey, so the chosen setting stands out among those tried.
"""

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ppo_helpers.plotting import moving_average, thousands  # noqa: E402
from ppo_helpers.run import SOLVED_WINDOW  # noqa: E402

ENV_IDS = {"llc": "LunarLanderContinuous-v3", "pend": "Pendulum-v1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("csvs", type=Path, nargs="+")
    parser.add_argument("--highlight", nargs="*", default=[])
    parser.add_argument("--target", nargs="*", default=[], metavar="ENV=VALUE")
    args = parser.parse_args()
    targets = dict(t.split("=") for t in args.target)
    envs = sorted({path.stem.split("_")[0] for path in args.csvs})
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for path in sorted(p for p in args.csvs if p.stem.split("_")[0] == env):
            rows = list(csv.DictReader(path.open()))
            steps = [int(r["env_steps"]) for r in rows]
            returns = [float(r["episode_return"]) for r in rows]
            full = slice(SOLVED_WINDOW - 1, None)  # where the window is full
            chosen = any(path.stem.startswith(h) for h in args.highlight)
            ax.plot(
                steps[full],
                moving_average(returns, SOLVED_WINDOW)[full],
                lw=1.8 if chosen else 0.7,
                color=None if chosen else "0.7",
                label=path.stem if chosen else None,
                zorder=3 if chosen else 2,
            )
        if env in targets:
            ax.axhline(float(targets[env]), ls="--", color="k", lw=0.8)
        ax.set(
            title=ENV_IDS.get(env, env),
            xlabel="env steps",
            ylabel="mean of the last 100 returns",
        )
        ax.xaxis.set_major_formatter(thousands)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
