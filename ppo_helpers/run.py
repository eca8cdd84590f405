"""A run: its config, its state, the loop, checkpoints, resume (chapters 2-5, 9).

``RunConfig`` holds the run's settings: env, seed, budgets, envs, gamma and
lambda, the optimiser, scaling and the network. ``train`` collects a rollout,
scales rewards, computes GAE advantages and hands them to an ``Algorithm``
(``ppo.PPO`` by default, ``trpo.TRPO`` in chapter 2; each holds its own
config), again and again, in one process or, with ``ranks`` (chapter 8), in
several. It writes checkpoints that resume exactly (``checkpoint`` explains how)
and reports through a callback; ``python -m ppo_helpers.cli`` is its command
line. ``load_agent`` rebuilds a trained agent from a checkpoint.
"""

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import NamedTuple, Protocol

import gymnasium as gym
import numpy as np
import torch

from ppo_helpers import checkpoint, seeding
from ppo_helpers.checks import (
    AT_LEAST_0,
    AT_LEAST_1,
    UNIT,
    OneOf,
    Range,
    check_fields,
    check_range,
    knob,
)
from ppo_helpers.envs import ReplayEpisodes, make_vector_env
from ppo_helpers.networks import ActorCritic
from ppo_helpers.ppo import PPO
from ppo_helpers.ranks import (
    SINGLE,
    Ranks,
    check_same_weights,
    merged_moments,
    on_rank0,
)
from ppo_helpers.rollout import RolloutBatch, batch_gae, collect
from ppo_helpers.scaling import RewardScaler
from ppo_helpers.timing import NOT_TIMED, PhaseTimes

SOLVED_WINDOW = 100


@dataclass
class RunConfig:
    """The settings of a run, whatever its algorithm. Defaults are the book's
    LunarLander-v3 ones (``ppo.PPOConfig`` says how they were chosen);
    ``presets.for_env`` starts from ``presets.BOX_DEFAULTS`` for Box actions."""

    env_id: str = knob("LunarLander-v3", "Gymnasium id; see envs.check_spaces")
    seed: int = knob(0, "Seeds torch, the envs' resets and the sampling", AT_LEAST_0)
    total_steps: int = knob(300_000, "Env steps to train, over all envs", AT_LEAST_1)
    num_envs: int = knob(16, "Envs stepped in lockstep", Range(1, 1024))
    async_envs: bool = knob(False, "Step each env in a process of its own")
    num_steps: int = knob(128, "Rollout steps per env (batch = x num_envs)", AT_LEAST_1)
    learning_rate: float = knob(1e-3, "Adam step size at the start", Range(0, 1, False))
    anneal_steps: int = knob(300_000, "Env steps to anneal lr to 0; 0: off", AT_LEAST_0)
    adam_eps: float = knob(1e-5, "Adam's epsilon (torch's is 1e-8)", Range(0, 1, False))
    gamma: float = knob(0.999, "Discount factor", UNIT)
    gae_lambda: float = knob(0.98, "GAE lambda: 0 is TD(0), 1 is Monte Carlo", UNIT)
    scale_rewards: bool = knob(True, "Divide rewards by a running std of the return")
    norm_obs: bool = knob(False, "Normalise observations by running mean and std")
    log_std_init: float = knob(0.0, "Initial log sigma of a Gaussian policy (Box)")
    action_squash: str = knob(
        "clip", "How a Gaussian's action meets the Box bounds", OneOf(("clip", "tanh"))
    )
    state_dependent_std: bool = knob(
        False, "A Gaussian's log sigma from its net per state; False: one vector"
    )
    hidden: tuple[int, ...] = knob((64, 64), "Hidden sizes of both nets", AT_LEAST_1)
    solved_return: float | None = knob(None, "Last-100 mean that solves; None: spec's")

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        if not self.hidden:
            raise ValueError("hidden must name at least one layer size, got ()")
        check_fields(self)

    @property
    def batch_size(self) -> int:
        """Samples per update and rank: num_envs * num_steps."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        """Updates in the run: total_steps rounded up to whole batches."""
        return math.ceil(self.total_steps / self.batch_size)


# Fields that a resumed run may change: they do not alter what is trained.
RESUMABLE_CHANGES = ("total_steps", "solved_return", "async_envs")


class Algorithm(Protocol):
    """What ``train`` asks of an algorithm (``ppo.PPO``, ``trpo.TRPO``).

    ``update`` changes ``agent`` from one rollout's ``batch`` and its
    ``advantages`` (T, N), averaging over ``ranks`` whatever it computes from
    its own rank's batch, drawing any random numbers (minibatch order) from
    ``generator``, and returns float diagnostics; an update that ignored
    ``ranks`` would let the ranks' weights drift apart, which the check at every
    checkpoint catches. ``config`` is a dataclass of its settings (a checkpoint
    keeps them, and a resume must not change them); ``state_dict`` is what a
    checkpoint keeps of its state, and ``load_state_dict`` restores it.
    """

    config: object

    def update(
        self,
        agent: ActorCritic,
        optimizer: torch.optim.Optimizer,
        batch: RolloutBatch,
        advantages: torch.Tensor,
        ranks: Ranks,
        generator: torch.Generator,
    ) -> dict[str, float]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def mean_return(returns: Iterable[float], window: int = SOLVED_WINDOW) -> float | None:
    """Mean of the last ``window`` of ``returns`` (None while there are none).

    With the default window, the "mean of the last 100 episodes" that says
    whether a run solved its task, and that every curve of the book plots.
    """
    recent = list(returns)[-window:]
    return float(np.mean(recent)) if recent else None


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
    the env has none). ``algorithm`` is the one that trained ``agent`` (its
    ``config``, and its state at the end).
    """

    agent: ActorCritic
    config: RunConfig
    algorithm: Algorithm
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
        """``mean_return`` of the run's last 100 episodes."""
        return mean_return(e.episode_return for e in self.episodes[-SOLVED_WINDOW:])

    def mean100_by_update(self) -> list[float | None]:
        """``mean_return`` of the episodes finished by each update, in order."""
        returns = [e.episode_return for e in self.episodes]
        ends = np.array([e.env_steps for e in self.episodes])
        finished = np.searchsorted(
            ends, [u["env_steps"] for u in self.updates], "right"
        )
        return [
            mean_return(returns[max(0, done - SOLVED_WINDOW) : done])
            for done in finished
        ]


def solved_threshold(cfg: RunConfig) -> float | None:
    """``cfg.solved_return``, else the env spec's ``reward_threshold``."""
    if cfg.solved_return is not None:
        return cfg.solved_return
    return gym.spec(cfg.env_id).reward_threshold


@dataclass
class RunState:
    """Everything that changes while ``train`` runs: what a checkpoint holds."""

    cfg: RunConfig
    envs: gym.vector.VectorEnv
    obs: np.ndarray
    agent: ActorCritic
    optimizer: torch.optim.Optimizer
    scaler: RewardScaler
    result: TrainResult
    algorithm: Algorithm
    ranks: Ranks
    generator: torch.Generator  # action sampling and minibatch order
    env_steps: int = 0

    @classmethod
    def start(
        cls, cfg: RunConfig, algorithm: Algorithm, ranks: Ranks = SINGLE
    ) -> "RunState":
        """A fresh run, seeded by ``seeding.seeds``: the weights start the same
        on every rank, the envs and sampling streams differ."""
        seeds = seeding.seeds(cfg.seed, ranks.rank, cfg.num_envs)
        envs = make_vector_env(
            cfg.env_id,
            cfg.num_envs,
            wrapper=ReplayEpisodes,
            asynchronous=cfg.async_envs,
        )
        obs, _ = envs.reset(seed=seeds.envs)
        agent, generator = seeding.seeded_build(
            seeds.weights,
            lambda: ActorCritic(
                envs.single_observation_space,
                envs.single_action_space,
                cfg.hidden,
                cfg.norm_obs,
                cfg.log_std_init,
                cfg.action_squash,
                cfg.state_dependent_std,
            ),
        )
        if seeds.sampling is not None:
            generator.manual_seed(seeds.sampling)
        optimizer = torch.optim.Adam(
            agent.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True
        )
        scaler = RewardScaler(cfg.num_envs, cfg.gamma)
        result = TrainResult(agent, cfg, algorithm, solved_threshold(cfg))
        return cls(
            cfg,
            envs,
            obs,
            agent,
            optimizer,
            scaler,
            result,
            algorithm,
            ranks,
            generator,
        )

    def rank_state(self) -> dict:
        """What differs between ranks: sampling stream, reward scaler, envs."""
        return {
            "torch_rng": self.generator.get_state(),
            "reward_scaler": self.scaler.state_dict(),
            "envs": checkpoint.env_state(self.envs, self.obs),
        }

    def state_dict(self) -> dict:
        """The checkpoint: shared state, and ``rank_state`` of every rank.

        Every rank must call it (it gathers); only rank 0's copy is complete
        enough to save, and only rank 0 saves.
        """
        return {
            "config": asdict(self.cfg),
            "spaces": {
                "observation": checkpoint.space_state(self.agent.observation_space),
                "action": checkpoint.space_state(self.agent.action_space),
            },
            "env_steps": self.env_steps,
            "algorithm": {
                "name": type(self.algorithm).__name__,
                "config": asdict(self.algorithm.config),
                "state": self.algorithm.state_dict(),
            },
            "agent": self.agent.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ranks": self.ranks.gather(self.rank_state()),
            "episodes": [tuple(e) for e in self.result.episodes],
            "updates": self.result.updates,
            "wall_s": self.result.wall_s,
        }

    def load_state_dict(self, state: dict, path: Path) -> None:
        """Continue from ``state``; its run config must equal ours but for
        ``RESUMABLE_CHANGES``, and its algorithm and that one's config ours."""
        saved = saved_configs(state)
        check_resume_config(saved.run, self.cfg, path, RESUMABLE_CHANGES)
        if len(state["ranks"]) != self.ranks.world_size:
            raise checkpoint.CheckpointError(
                f"{path} was written by {len(state['ranks'])} ranks, "
                f"this run has {self.ranks.world_size}"
            )
        ours = type(self.algorithm).__name__
        if saved.algorithm != ours:
            raise checkpoint.CheckpointError(
                f"{path} was written by {saved.algorithm}, this run trains with {ours}"
            )
        check_resume_config(saved.algorithm_config, self.algorithm.config, path)
        self.algorithm.load_state_dict(state["algorithm"]["state"])
        mine = state["ranks"][self.ranks.rank]
        self.agent.load_state_dict(state["agent"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(mine["reward_scaler"])
        self.obs = checkpoint.restore_envs(self.envs, mine["envs"])
        self.result.episodes, self.env_steps = progress_of(state)
        self.result.updates = list(state["updates"])
        self.result.wall_s = state["wall_s"]
        self.generator.set_state(mine["torch_rng"])


def load_agent(path: str | os.PathLike) -> ActorCritic:
    """The agent saved in checkpoint ``path``, e.g. for ``rollout.evaluate``.

    Built from the saved spaces and config, with the observation statistics
    the run had reached.
    """
    state = checkpoint.load(path)
    cfg = RunConfig(**saved_configs(state).run)
    agent = ActorCritic(
        checkpoint.space_from_state(state["spaces"]["observation"]),
        checkpoint.space_from_state(state["spaces"]["action"]),
        cfg.hidden,
        cfg.norm_obs,
        action_squash=cfg.action_squash,
        state_dependent_std=cfg.state_dependent_std,
    )
    agent.load_state_dict(state["agent"])
    return agent


def progress_of(state: dict) -> tuple[list[Episode], int]:
    """The episode log and the env steps of a checkpoint's ``state``."""
    return [Episode(*e) for e in state["episodes"]], state["env_steps"]


class SavedConfigs(NamedTuple):
    """The configs a checkpoint was written with, as ``RunState.state_dict``
    stores them: the run's fields, the algorithm's class name and its fields."""

    run: dict
    algorithm: str
    algorithm_config: dict


def saved_configs(state: dict) -> SavedConfigs:
    """``SavedConfigs`` of a checkpoint's ``state``."""
    algorithm = state["algorithm"]
    return SavedConfigs(state["config"], algorithm["name"], algorithm["config"])


def _save(directory: str | os.PathLike, env_steps: int, state: dict) -> None:
    checkpoint.save(checkpoint.path_for(directory, env_steps), state)
    checkpoint.prune(directory)


def check_resume_config(
    saved: dict, ours, path: str | os.PathLike, resumable: Iterable[str] = ()
) -> None:
    """Raise ``CheckpointError`` unless a checkpoint's ``saved`` config (a dict of
    the fields of ``ours``' dataclass) may continue as ``ours``: every field
    equal except those named in ``resumable``."""
    try:
        saved_config = type(ours)(**saved)
    except (TypeError, ValueError) as err:
        raise checkpoint.CheckpointError(
            f"{path} has an unusable {type(ours).__name__}: {err}"
        ) from None
    for f in fields(ours):
        theirs, mine = getattr(saved_config, f.name), getattr(ours, f.name)
        if f.name not in resumable and mine != theirs:
            raise checkpoint.CheckpointError(
                f"{path} was written with {f.name}={theirs!r}, "
                f"this run has {f.name}={mine!r}"
            )


def one_iteration(
    run: RunState, start: float, times: PhaseTimes = NOT_TIMED
) -> tuple[dict[str, float], list[Episode]]:
    """One rollout and one update: the body of ``train``'s loop.

    With several ranks, each collects its own rollout; the env steps count all
    ranks, and every rank records every rank's episodes (in rank order) and
    updates the observation statistics from all ranks' observations, so that
    all ranks stay identical but for their envs. ``times`` gets the seconds of
    each phase (``timing``).
    """
    cfg, optimizer, ranks = run.cfg, run.optimizer, run.ranks
    if cfg.anneal_steps:
        lr = cfg.learning_rate * max(0.0, 1 - run.env_steps / cfg.anneal_steps)
        optimizer.param_groups[0]["lr"] = lr
    with times("rollout"):
        batch, run.obs, finished = collect(
            run.envs, run.agent, run.obs, cfg.num_steps, times, run.generator
        )
    run.env_steps += cfg.batch_size * ranks.world_size
    with times("statistics"):
        # one gather per iteration: rank 0's clock, every rank's episodes and states
        shared = ranks.gather(
            (time.perf_counter() - start, finished, batch.obs if cfg.norm_obs else None)
        )
        wall = shared[0][0]
        finished = [ep for _, rank_finished, _ in shared for ep in rank_finished]
        new_episodes = [Episode(run.env_steps, wall, ret, n) for ret, n in finished]
        run.result.episodes += new_episodes
    with times("advantages"):
        rewards = batch.rewards
        if cfg.scale_rewards:
            merge = None if ranks.world_size == 1 else partial(merged_moments, ranks)
            rewards = run.scaler.scale(rewards, batch.episode_ends, merge)
        advantages = batch_gae(batch, cfg.gamma, cfg.gae_lambda, rewards)
    with times("update"):
        stats = run.algorithm.update(
            run.agent, optimizer, batch, advantages, ranks, run.generator
        )
    with times("statistics"):
        if cfg.norm_obs:  # after the update, so that it saw the rollout's statistics
            all_obs = torch.cat([obs for _, _, obs in shared], dim=1)
            run.agent.normalize.update(all_obs.flatten(0, 1))
    run.result.wall_s = time.perf_counter() - start
    stats.update(
        env_steps=run.env_steps,
        wall_s=run.result.wall_s,
        learning_rate=optimizer.param_groups[0]["lr"],
    )
    run.result.updates.append(stats)
    return stats, new_episodes


def train(
    cfg: RunConfig,
    on_update: Callable[[dict[str, float], list[Episode]], None] | None = None,
    algorithm: Algorithm | None = None,
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 50_000,
    resume: bool | str | os.PathLike | checkpoint.Loaded = False,
    ranks: Ranks = SINGLE,
    phase_times: PhaseTimes = NOT_TIMED,
) -> TrainResult:
    """Train a fresh agent with ``cfg``; bit-identical for a fixed seed on one machine.

    Another CPU takes other floating-point paths: its run differs in the numbers
    and agrees in the conclusions.

    ``on_update(stats, new_episodes)`` is called after every update, for a live
    plot or a progress line (``plotting.LivePlot.update`` fits it).
    ``algorithm`` (an ``Algorithm``) updates the agent after each rollout and
    keeps its own config and state; it defaults to ``ppo.PPO()``. ``trpo.TRPO``
    (chapter 2) plugs in here, so the three algorithms of chapters 2-4 share every line
    but the update step.

    With ``checkpoint_dir``, a checkpoint is written after the first update at
    or past every multiple of ``checkpoint_every`` env steps and after the last
    update (the newest ``checkpoint.KEEP`` are kept). ``resume=True`` continues
    from the newest checkpoint there (or ``resume`` names the file, or is one
    already read, a ``checkpoint.Loaded``, which is not read again): the run
    then ends with exactly the weights and episode log of an uninterrupted run
    (chapter 9). ``cfg`` must equal the checkpoint's run config except for
    ``RESUMABLE_CHANGES``, so a finished run can also be extended, and
    ``algorithm`` the checkpoint's, config included.

    ``phase_times`` (a ``timing.PhaseTimes``) adds up the seconds that each
    phase of every iteration takes, for a profile.

    With ``ranks`` of several processes (``ppo_helpers.distributed``, chapter
    8) every rank calls ``train`` with the same arguments; each steps its own
    envs, the update averages over ranks, and only rank 0 reads and writes
    checkpoints, which hold every rank's state.
    """
    algorithm = PPO() if algorithm is None else algorithm
    check_range("checkpoint_every", checkpoint_every, 1)
    if resume is True and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    run = RunState.start(cfg, algorithm, ranks)
    try:  # the envs are closed on any error too: their processes end
        check_same_weights(run.agent, ranks)
        if resume and not isinstance(resume, checkpoint.Loaded):
            resume = on_rank0(
                ranks,
                lambda: (
                    checkpoint.load_latest(checkpoint_dir)
                    if resume is True
                    else checkpoint.Loaded(Path(resume), checkpoint.load(resume))
                ),
            )
        if resume:
            run.load_state_dict(resume.state, resume.path)
        start = time.perf_counter() - run.result.wall_s
        while run.env_steps < cfg.total_steps:
            previous = run.env_steps
            stats, new_episodes = one_iteration(run, start, phase_times)
            if on_update is not None:
                on_update(stats, new_episodes)
            mark = checkpoint_every
            passed_mark = run.env_steps // mark > previous // mark
            if checkpoint_dir is not None and (
                passed_mark or run.env_steps >= cfg.total_steps
            ):
                check_same_weights(run.agent, ranks)
                state = run.state_dict()  # on every rank: it gathers
                on_rank0(ranks, partial(_save, checkpoint_dir, run.env_steps, state))
    finally:
        run.envs.close()
    run.result.wall_s = time.perf_counter() - start
    return run.result
