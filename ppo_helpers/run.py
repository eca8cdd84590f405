"""A PPO run: its state, the training loop, checkpoints and resume (chapters 2-5, 8).

``train`` collects a rollout, scales rewards, computes GAE advantages and calls
an update step (``ppo.update`` by default, TRPO's in chapter 2), again and
again. It writes checkpoints that resume exactly (``checkpoint`` explains how)
and reports through a callback; ``python -m ppo_helpers.train`` is its command
line. ``load_agent`` rebuilds a trained agent from a checkpoint.
"""

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from ppo_helpers import checkpoint, objectives
from ppo_helpers.checks import check_range
from ppo_helpers.envs import make_vector_env
from ppo_helpers.networks import ActorCritic
from ppo_helpers.ppo import PPOConfig, update
from ppo_helpers.rollout import batch_gae, collect
from ppo_helpers.scaling import RewardScaler

SOLVED_WINDOW = 100
# Fields that a resumed run may change: they do not alter what is trained.
RESUMABLE_CHANGES = ("total_steps", "solved_return")


class Episode(NamedTuple):
    """One finished episode: when it ended and how it went."""

    env_steps: int
    wall_s: float
    episode_return: float
    episode_length: int


@dataclass
class TrainResult:
    """What ``train`` returns.

    ``episodes`` has one ``Episode`` per finished episode, ``updates`` one dict
    per update (``update``'s diagnostics plus ``env_steps``, ``wall_s``,
    ``learning_rate``). ``solved_return`` is the threshold that "solved" means:
    ``config.solved_return``, else the env spec's ``reward_threshold`` (None if
    the env has none).
    """

    agent: ActorCritic
    config: PPOConfig
    solved_return: float | None = None
    episodes: list[Episode] = field(default_factory=list)
    updates: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0

    def _solved_episode(self) -> Episode | None:
        returns = np.array([e.episode_return for e in self.episodes])
        if self.solved_return is None or len(returns) < SOLVED_WINDOW:
            return None
        window = np.lib.stride_tricks.sliding_window_view(returns, SOLVED_WINDOW)
        solved = np.flatnonzero(window.mean(axis=1) >= self.solved_return)
        return self.episodes[solved[0] + SOLVED_WINDOW - 1] if len(solved) else None

    @property
    def steps_to_solve(self) -> int | None:
        """First env step at which the mean of the last 100 returns was solved."""
        episode = self._solved_episode()
        return None if episode is None else episode.env_steps

    @property
    def wall_s_to_solve(self) -> float | None:
        """Training seconds until ``steps_to_solve``."""
        episode = self._solved_episode()
        return None if episode is None else episode.wall_s

    @property
    def final_mean100(self) -> float | None:
        returns = [e.episode_return for e in self.episodes[-SOLVED_WINDOW:]]
        return float(np.mean(returns)) if returns else None


def solved_threshold(cfg: PPOConfig) -> float | None:
    """``cfg.solved_return``, else the env spec's ``reward_threshold``."""
    if cfg.solved_return is not None:
        return cfg.solved_return
    return gym.spec(cfg.env_id).reward_threshold


@dataclass
class _Run:
    """Everything that changes while ``train`` runs: what a checkpoint holds."""

    cfg: PPOConfig
    envs: gym.vector.VectorEnv
    obs: np.ndarray
    agent: ActorCritic
    optimizer: torch.optim.Optimizer
    scaler: RewardScaler
    result: TrainResult
    beta: float
    env_steps: int = 0

    @classmethod
    def start(cls, cfg: PPOConfig) -> "_Run":
        torch.manual_seed(cfg.seed)
        envs = make_vector_env(
            cfg.env_id, cfg.num_envs, wrapper=checkpoint.ReplayEpisodes
        )
        obs, _ = envs.reset(seed=cfg.seed)
        agent = ActorCritic(
            envs.single_observation_space,
            envs.single_action_space,
            cfg.hidden,
            cfg.norm_obs,
            cfg.log_std_init,
        )
        optimizer = torch.optim.Adam(
            agent.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True
        )
        scaler = RewardScaler(cfg.num_envs, cfg.gamma)
        result = TrainResult(agent, cfg, solved_threshold(cfg))
        return cls(cfg, envs, obs, agent, optimizer, scaler, result, cfg.beta)

    def state_dict(self) -> dict:
        return {
            "config": asdict(self.cfg),
            "spaces": {
                "observation": checkpoint.space_state(self.agent.observation_space),
                "action": checkpoint.space_state(self.agent.action_space),
            },
            "env_steps": self.env_steps,
            "beta": self.beta,
            "agent": self.agent.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "reward_scaler": self.scaler.state_dict(),
            "envs": checkpoint.env_state(self.envs, self.obs),
            "episodes": [tuple(e) for e in self.result.episodes],
            "updates": self.result.updates,
            "wall_s": self.result.wall_s,
        }

    def load_state_dict(self, state: dict, path: Path) -> None:
        """Continue from ``state``; its config must equal ours but for
        ``RESUMABLE_CHANGES``."""
        check_resume_config(state, self.cfg, path)
        self.agent.load_state_dict(state["agent"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["reward_scaler"])
        self.obs = checkpoint.restore_envs(self.envs, state["envs"])
        self.env_steps, self.beta = state["env_steps"], state["beta"]
        self.result.episodes = [Episode(*e) for e in state["episodes"]]
        self.result.updates = list(state["updates"])
        self.result.wall_s = state["wall_s"]
        torch.set_rng_state(state["torch_rng"])


def load_agent(path: str | os.PathLike) -> ActorCritic:
    """The agent saved in checkpoint ``path``, e.g. for ``rollout.evaluate``.

    Built from the saved spaces and config, with the observation statistics
    the run had reached.
    """
    state = checkpoint.load(path)
    agent = ActorCritic(
        checkpoint.space_from_state(state["spaces"]["observation"]),
        checkpoint.space_from_state(state["spaces"]["action"]),
        tuple(state["config"]["hidden"]),
        state["config"]["norm_obs"],
    )
    agent.load_state_dict(state["agent"])
    return agent


def check_resume_config(state: dict, cfg: PPOConfig, path: str | os.PathLike) -> None:
    """Raise ``CheckpointError`` unless checkpoint ``state`` may continue as ``cfg``.

    Every field must be equal except ``RESUMABLE_CHANGES``.
    """
    try:
        saved = PPOConfig(**state["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise checkpoint.CheckpointError(
            f"{path} has an unusable config: {err}"
        ) from None
    for f in fields(PPOConfig):
        ours, theirs = getattr(cfg, f.name), getattr(saved, f.name)
        if f.name not in RESUMABLE_CHANGES and ours != theirs:
            raise checkpoint.CheckpointError(
                f"{path} was written with {f.name}={theirs!r}, "
                f"this run has {f.name}={ours!r}"
            )


def _iteration(
    run: _Run, update_fn: Callable[..., dict[str, float]], start: float
) -> tuple[dict[str, float], list[Episode]]:
    """One rollout and one update: the body of ``train``'s loop."""
    cfg, optimizer = run.cfg, run.optimizer
    if cfg.anneal_steps:
        lr = cfg.learning_rate * max(0.0, 1 - run.env_steps / cfg.anneal_steps)
        optimizer.param_groups[0]["lr"] = lr
    batch, run.obs, finished = collect(run.envs, run.agent, run.obs, cfg.num_steps)
    run.env_steps += cfg.batch_size
    wall = time.perf_counter() - start
    new_episodes = [Episode(run.env_steps, wall, ret, n) for ret, n in finished]
    run.result.episodes += new_episodes
    rewards = batch.rewards
    if cfg.scale_rewards:
        rewards = run.scaler.scale(rewards, batch.episode_ends)
    advantages = batch_gae(batch, cfg.gamma, cfg.gae_lambda, rewards)
    stats = update_fn(run.agent, optimizer, batch, advantages, cfg, run.beta)
    if cfg.norm_obs:  # after the update, so that it saw the rollout's statistics
        run.agent.normalize.update(batch.obs.flatten(0, 1))
    if cfg.objective == "kl_penalty" and cfg.adaptive_beta:
        run.beta = objectives.adaptive_beta(run.beta, stats["kl"], cfg.kl_target)
    run.result.wall_s = time.perf_counter() - start
    stats.update(
        env_steps=run.env_steps,
        wall_s=run.result.wall_s,
        learning_rate=optimizer.param_groups[0]["lr"],
    )
    run.result.updates.append(stats)
    return stats, new_episodes


def train(
    cfg: PPOConfig,
    on_update: Callable[[dict[str, float], list[Episode]], None] | None = None,
    update_fn: Callable[..., dict[str, float]] | None = None,
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 50_000,
    resume: bool | str | os.PathLike = False,
) -> TrainResult:
    """Train a fresh agent with ``cfg``; bit-identical for a fixed seed on one machine.

    Another CPU takes other floating-point paths: its run differs in the numbers
    and agrees in the conclusions.

    ``on_update(stats, new_episodes)`` is called after every update, for a live
    plot or a progress line (``plotting.LivePlot.update`` fits it).
    ``update_fn(agent, optimizer, batch, advantages, cfg, beta) -> stats`` replaces
    the PPO update; TRPO (chapter 2) plugs in here, so the three algorithms of
    chapters 2-4 share every line but the update step. Defaults to ``ppo.update``.

    With ``checkpoint_dir``, a checkpoint is written after the first update at
    or past every multiple of ``checkpoint_every`` env steps and after the last
    update (the newest ``checkpoint.KEEP`` are kept). ``resume=True`` continues
    from the newest checkpoint there (or ``resume`` names the file): the run
    then ends with exactly the weights and episode log of an uninterrupted run
    (chapter 8). ``cfg`` must equal the checkpoint's config except for
    ``RESUMABLE_CHANGES``, so a finished run can also be extended.
    """
    update_fn = update if update_fn is None else update_fn
    check_range("checkpoint_every", checkpoint_every, 1)
    run = _Run.start(cfg)
    if resume:
        if resume is True:
            if checkpoint_dir is None:
                raise ValueError("resume=True needs checkpoint_dir")
            path, state = checkpoint.load_latest(checkpoint_dir)
        else:
            path = Path(resume)
            state = checkpoint.load(path)
        run.load_state_dict(state, path)
    start = time.perf_counter() - run.result.wall_s
    while run.env_steps < cfg.total_steps:
        previous = run.env_steps
        stats, new_episodes = _iteration(run, update_fn, start)
        if on_update is not None:
            on_update(stats, new_episodes)
        passed_mark = run.env_steps // checkpoint_every > previous // checkpoint_every
        if checkpoint_dir is not None and (
            passed_mark or run.env_steps >= cfg.total_steps
        ):
            checkpoint.save(
                checkpoint.path_for(checkpoint_dir, run.env_steps), run.state_dict()
            )
            checkpoint.prune(checkpoint_dir)
    run.envs.close()
    run.result.wall_s = time.perf_counter() - start
    return run.result
