"""What each of the seed blog's defects costs the book's PPO, one at a time.

Chapter 9 runs the blog's algorithm as a whole. This script adds each of its
defects alone to the book's default PPO on LunarLander-v3 and trains it on the
reporting seeds (CONTRIBUTING.md, "Seeds"), with the defaults' budget:

- ``none``: the default config, as reported in ``benchmarks/results/reporting_seeds``;
- ``cap_no_bootstrap``: training episodes cut at 100 steps, and the cut reported
  as the task's end, so nothing is bootstrapped where it falls;
- ``no_reset``: the advantages run through episode ends, as if the batch were one
  long episode (the blog's return without a reset, here inside GAE);
- ``critic_broadcast``: the value loss compares values of shape (B, 1) with
  returns of shape (B,), which broadcasts to every value against every return.

The library has no switch for a bug, on purpose, so each defect is put in by
replacing one function for the run (``DEFECTS``). Every run ends with the same
deterministic evaluation over 100 full episodes as ``benchmarks/lunarlander.py``.

    python benchmarks/seed_blog_defects.py            # 4 defects x seeds 100-104
    python benchmarks/seed_blog_defects.py --quick    # a minute, a temp dir

Runs go two at a time (one process per core, torch on one thread each). The
JSON in ``--out`` (``book/data/seed_blog_defects.json``) is rewritten whole,
atomically, after every finished run, and a rerun skips the runs it holds.
"""

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import gymnasium as gym
import torch
from gymnasium.wrappers import TimeLimit
from lunarlander import machine_settings

from ppo_helpers import objectives, rollout, run
from ppo_helpers.advantages import gae, next_state_values
from ppo_helpers.run import RunConfig

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "book" / "data" / "seed_blog_defects.json"
ENV_ID = "LunarLander-v3"
CAPPED_ENV_ID = "SeedBlogCappedLunarLander-v3"
BLOG_CAP = 100  # the blog's episode cap, in env steps
SEEDS = (100, 101, 102, 103, 104)
EVAL_EPISODES = 100
QUICK = dict(seeds=(100,), total_steps=4_096, eval_episodes=2)


class CutIsTheEnd(gym.Wrapper):
    """Reports a time-limit cut as the task's end (terminated, not truncated).

    So the learner bootstraps nothing where the cut falls: the blog's 100-step
    cap as its update sees it.
    """

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated or truncated, False, info


def capped_lunar_lander(**kwargs) -> gym.Env:
    """LunarLander-v3 cut at ``BLOG_CAP`` steps, each cut reported as an end."""
    return CutIsTheEnd(TimeLimit(gym.make(ENV_ID, **kwargs), BLOG_CAP))


gym.register(
    CAPPED_ENV_ID,
    entry_point=capped_lunar_lander,
    reward_threshold=200.0,
    disable_env_checker=True,
)


def gae_without_reset(
    batch: rollout.RolloutBatch,
    gamma: float,
    gae_lambda: float,
    rewards: torch.Tensor | None = None,
) -> torch.Tensor:
    """``rollout.batch_gae`` as if no episode ever ended: advantages (T, N).

    Each env's column is one long episode: at an end the next state's value is
    that of the next episode's first observation, and the sum runs on into it.
    """
    never = torch.zeros_like(batch.episode_ends)
    next_values = next_state_values(
        batch.values, batch.last_values, never, never, batch.final_values
    )
    rewards = batch.rewards if rewards is None else rewards
    return gae(rewards, batch.values, next_values, never, gamma, gae_lambda)


def broadcast_value_loss(
    values: torch.Tensor,
    returns: torch.Tensor,
    old_values: torch.Tensor | None = None,
    clip_coef: float | None = None,
) -> torch.Tensor:
    """The blog's critic loss: scalar 0.5 * mean over i, j of (V_i - R_j)^2.

    ``values`` and ``returns`` (B,) as ``objectives.value_loss`` takes them; the
    blog's values had shape (B, 1), which broadcasts against (B,) to (B, B).
    The blog clipped no values, so ``clip_coef`` must stay None.
    """
    if clip_coef is not None:
        raise ValueError("broadcast_value_loss: the blog clipped no values")
    return 0.5 * ((values[:, None] - returns[None, :]) ** 2).mean()


@dataclass(frozen=True)
class Defect:
    """One defect: the env it trains on and the functions it replaces."""

    env_id: str = ENV_ID
    replaces: tuple[tuple[object, str, object], ...] = field(default=())


DEFECTS = {
    "none": Defect(),
    "cap_no_bootstrap": Defect(env_id=CAPPED_ENV_ID),
    "no_reset": Defect(replaces=((run, "batch_gae", gae_without_reset),)),
    "critic_broadcast": Defect(
        replaces=((objectives, "value_loss", broadcast_value_loss),)
    ),
}


def train_with(defect: str, seed: int, total_steps: int, eval_episodes: int) -> dict:
    """One run of the default config with ``defect``, and its greedy evaluation."""
    torch.set_num_threads(1)
    spec = DEFECTS[defect]
    cfg = RunConfig(env_id=spec.env_id, seed=seed, total_steps=total_steps)
    with ExitStack() as stack:
        for owner, name, replacement in spec.replaces:
            stack.enter_context(mock.patch.object(owner, name, replacement))
        result = run.train(cfg)
    returns = rollout.evaluate(result.agent, ENV_ID, eval_episodes)
    curve = [  # the mean of the last 100 training episodes, after each update
        [u["env_steps"], mean100]
        for u, mean100 in zip(result.updates, result.mean100_by_update(), strict=True)
        if mean100 is not None
    ]
    return dict(
        defect=defect,
        seed=seed,
        env_steps=result.updates[-1]["env_steps"],
        steps_to_solve=result.steps_to_solve,
        final_mean100=result.final_mean100,
        eval_mean=float(returns.mean()),
        eval_std=float(returns.std()),
        train_wall_s=result.wall_s,
        curve=curve,
    )


def write_atomically(path: Path, data: dict) -> None:
    """A run killed mid-write leaves the previous file whole."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        f.write(json.dumps(data, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget, temp dir")
    parser.add_argument("--out", type=Path, help=f"results JSON ({DEFAULT_OUT})")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (>= 1)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    plan = (
        QUICK
        if args.quick
        else dict(
            seeds=SEEDS,
            total_steps=RunConfig().total_steps,
            eval_episodes=EVAL_EPISODES,
        )
    )
    out = args.out or (
        Path(tempfile.mkdtemp()) / DEFAULT_OUT.name if args.quick else DEFAULT_OUT
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(out.read_text()) if out.exists() else {"runs": [], "sittings": []}
    data.update(
        command=" ".join(["python benchmarks/seed_blog_defects.py", *sys.argv[1:]]),
        plan={**plan, "defects": list(DEFECTS), "env_id": ENV_ID, "cap": BLOG_CAP},
        machine=machine_settings(),
    )
    done = {(r["defect"], r["seed"]) for r in data["runs"]}
    todo = [(d, s) for s in plan["seeds"] for d in DEFECTS if (d, s) not in done]
    sitting = dict(
        started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        load_average_start=os.getloadavg(),
        runs=len(todo),
    )
    print(f"{len(todo)} runs to go ({len(done)} done), {args.jobs} at a time -> {out}")
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, context) as pool:
        futures = [
            pool.submit(train_with, d, s, plan["total_steps"], plan["eval_episodes"])
            for d, s in todo
        ]
        for finished, future in enumerate(as_completed(futures), start=1):
            row = future.result()
            data["runs"].append(row)
            data["runs"].sort(
                key=lambda r: (r["seed"], list(DEFECTS).index(r["defect"]))
            )
            write_atomically(out, data)
            print(
                f"[{finished}/{len(todo)}, {time.perf_counter() - start:.0f} s] "
                f"{row['defect']:<17} seed {row['seed']}: eval {row['eval_mean']:7.1f}"
                f", last-100 {row['final_mean100']:7.1f}"
            )
    sitting.update(wall_s=time.perf_counter() - start, load_average_end=os.getloadavg())
    data["sittings"].append(sitting)
    write_atomically(out, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
