"""Stable-Baselines3 PPO on LunarLander-v3: a reference for the book's own PPO.

Trains SB3's PPO with the RL Zoo's LunarLander hyperparameters, one seed at a
time, on the CPU with one torch thread, and measures what
``benchmarks/lunarlander.py`` measures for the book's PPO: env steps and wall
seconds until the mean of the last 100 training-episode returns reaches 200,
the final last-100 mean, env steps per second, and a deterministic evaluation
over fresh episodes (seeds 10,000 and up, the episodes the book's benchmark
uses). ``--eval-at`` also evaluates at matched budgets: for each budget N, the
policies of the last update at or before N and the first update past it (SB3
updates every 16 x 1,024 = 16,384 env steps), so that both sides of N are on
record. Evaluation time is left out of the wall-clock columns. Prints one line
per seed, then a markdown table with a median row, and writes every row to a
JSON file.

It needs its own venv (SB3 is not a dependency of the book)::

    python -m venv .venv-sb3
    .venv-sb3/bin/pip install -r benchmarks/requirements-sb3.txt
    OMP_NUM_THREADS=1 .venv-sb3/bin/python benchmarks/sb3_lunarlander.py \
        --seeds 100 101 102 103 104 --eval-at 100000 200000 300000 \
        --out benchmarks/results/reporting_seeds/sb3_lunarlander.json

A full run is 1M env steps per seed. Not part of ``make test``; not run in CI.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch

# The book's benchmark, next to this file: the same median (unsolved runs last).
from lunarlander import median
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

ENV_ID = "LunarLander-v3"
RESULTS = Path(__file__).resolve().parent / "results"
# RL Zoo (rl-zoo3 2.9.2), rl_zoo3/hyperparams/ppo.yml, entry LunarLander-v3
# (DLR-RM/rl-baselines3-zoo, hyperparams/ppo.yml): n_envs 16, n_timesteps 1e6,
# MlpPolicy; everything else is SB3's default (lr 3e-4, clip 0.2, vf_coef 0.5).
N_ENVS = 16
HYPERPARAMS = dict(
    n_steps=1024, batch_size=64, gae_lambda=0.98, gamma=0.999, n_epochs=4, ent_coef=0.01
)
COLUMNS = ["steps_to_solve", "wall_s_to_solve", "steps_per_s", "final_mean100"]
COLUMNS += ["eval_mean", "eval_std"]


class EpisodeLog(BaseCallback):
    """Records (env steps, wall seconds, return, length) per finished episode.

    At the start of every rollout (the policy then holds every update so far) it
    also evaluates the greedy policy where ``budgets`` ask for it: the last update
    at or before each budget, and the first one past it. Wall seconds exclude
    the time spent evaluating.
    """

    def __init__(self, budgets: list[int], eval_episodes: int, rollout_steps: int):
        super().__init__()
        self.budgets, self.eval_episodes = budgets, eval_episodes
        self.rollout_steps = rollout_steps
        self.eval_at: dict[int, dict] = {}

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()
        self.eval_s = 0.0
        self.episodes: list[tuple[int, float, float, int]] = []

    def _on_rollout_start(self) -> None:
        steps, span = self.num_timesteps, self.rollout_steps
        # this update is the last at or before a budget, or the first past it
        wanted = any(
            steps <= b < steps + span or steps - span < b <= steps for b in self.budgets
        )
        if wanted and steps not in self.eval_at:
            started = time.perf_counter()
            returns = evaluate(self.model, self.eval_episodes)
            self.eval_at[steps] = {
                "mean": float(returns.mean()),
                "std": float(returns.std()),
            }
            self.eval_s += time.perf_counter() - started

    def _on_step(self) -> bool:
        wall_s = time.perf_counter() - self.start - self.eval_s
        for info in self.locals["infos"]:
            if "episode" in info:  # added by SB3's Monitor wrapper
                ep = info["episode"]
                row = (self.num_timesteps, wall_s, float(ep["r"]), int(ep["l"]))
                self.episodes.append(row)
        return True


def evaluate(model: PPO, episodes: int) -> np.ndarray:
    """Deterministic returns of full episodes, episode k on a reset seeded 10_000+k."""
    env = gym.make(ENV_ID)
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=10_000 + k)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return np.array(returns)


def run_seed(
    seed: int, total_steps: int, eval_episodes: int, budgets: list[int]
) -> dict:
    # render_mode None: make_vec_env defaults to "rgb_array", which makes
    # LunarLander simulate exhaust particles and steps markedly slower.
    env = make_vec_env(ENV_ID, N_ENVS, seed=seed, env_kwargs={"render_mode": None})
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **HYPERPARAMS)
    rollout_steps = N_ENVS * HYPERPARAMS["n_steps"]
    log = EpisodeLog(budgets, eval_episodes, rollout_steps)
    started = time.perf_counter()
    model.learn(total_timesteps=total_steps, callback=log)
    wall_s = time.perf_counter() - started - log.eval_s
    env.close()
    returns = np.array([e[2] for e in log.episodes])
    solved = None
    if len(returns) >= 100:
        means = np.lib.stride_tricks.sliding_window_view(returns, 100).mean(axis=1)
        hits = np.flatnonzero(means >= 200)
        solved = log.episodes[hits[0] + 99] if len(hits) else None
    evals = evaluate(model, eval_episodes)
    return {
        "seed": seed,
        "env_steps": model.num_timesteps,
        "episodes": len(returns),
        "steps_to_solve": solved[0] if solved else None,
        "wall_s_to_solve": round(solved[1], 2) if solved else None,
        "final_mean100": float(returns[-100:].mean()) if len(returns) else None,
        "wall_s": round(wall_s, 2),
        "steps_per_s": round(model.num_timesteps / wall_s, 1),
        "eval_mean": float(evals.mean()),
        "eval_std": float(evals.std()),
        "eval_at": {str(k): v for k, v in sorted(log.eval_at.items())},
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| seed | " + " | ".join(COLUMNS) + " |", "|" + "---:|" * 7]
    for row in rows:
        cells = [
            "-" if row[c] is None else f"{row[c]:,.{0 if 'steps' in c else 1}f}"
            for c in COLUMNS
        ]
        lines.append(f"| {row['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--total-steps", type=int, default=1_000_000)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--eval-at", type=int, nargs="*", default=[], metavar="STEPS")
    parser.add_argument("--out", type=Path, default=RESULTS / "sb3_lunarlander.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_start = os.getloadavg()
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(seed, args.total_steps, args.eval_episodes, args.eval_at))
        print(json.dumps(rows[-1]), flush=True)
    med = {c: median([r[c] for r in rows]) for c in COLUMNS}
    print(markdown([*rows, {"seed": "median", **med}]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        "env_id": ENV_ID,
        "n_envs": N_ENVS,
        "hyperparams": HYPERPARAMS,
        "total_steps": args.total_steps,
        "eval_episodes": args.eval_episodes,
        "eval_at": args.eval_at,
        "command": "OMP_NUM_THREADS=1 .venv-sb3/bin/python "
        + " ".join(["benchmarks/sb3_lunarlander.py", *sys.argv[1:]]),
        "stable_baselines3": stable_baselines3.__version__,
        "torch": torch.__version__,
        "gymnasium": gym.__version__,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d"),
    }
    result = {"runs": rows, "median": med, "settings": settings}
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
