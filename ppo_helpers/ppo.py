"""PPO: a config, one update, and the training loop (chapters 3, 4, 5 and 8).

Everything here is assembled from ``rollout``, ``advantages`` and
``objectives``; this module only decides the order and the bookkeeping.
``train`` can write checkpoints and resume from them exactly (``checkpoint``
explains how); ``python -m ppo_helpers.train`` is its command line.
"""

import math
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
from ppo_helpers.advantages import batch_gae
from ppo_helpers.checks import check_range
from ppo_helpers.envs import make_vector_env
from ppo_helpers.networks import ActorCritic
from ppo_helpers.rollout import RolloutBatch, collect
from ppo_helpers.scaling import RewardScaler

OBJECTIVES = ("clip", "kl_penalty", "unclipped")
SOLVED_RETURN = 200.0
SOLVED_WINDOW = 100


class Range(NamedTuple):
    """An accepted interval; ``None`` leaves that side open."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def check(self, name: str, value: float) -> None:
        low, high, low_inclusive, high_inclusive = self
        check_range(
            name,
            value,
            low,
            high,
            low_inclusive=low_inclusive,
            high_inclusive=high_inclusive,
        )

    def __str__(self) -> str:
        """As in ``check_range``'s messages: ``[0, 1]``, ``(0, 1)``, ``>= 1``."""
        low, high, low_inclusive, high_inclusive = self
        if low is not None and high is not None:
            left = "[" if low_inclusive else "("
            right = "]" if high_inclusive else ")"
            return f"{left}{low}, {high}{right}"
        if low is not None:
            return f"{'>=' if low_inclusive else '>'} {low}"
        return f"{'<=' if high_inclusive else '<'} {high}"


# What each numeric PPOConfig field accepts; __post_init__ checks these and
# ``python -m ppo_helpers.train --help`` shows them.
# num_minibatches is in [1, batch_size], checked on its own.
RANGES = {
    "seed": Range(0),
    "total_steps": Range(1),
    "num_envs": Range(1, 1024),
    "num_steps": Range(1),
    "learning_rate": Range(0, 1, low_inclusive=False),
    "anneal_steps": Range(0),
    "adam_eps": Range(0, 1, low_inclusive=False),
    "gamma": Range(0, 1),
    "gae_lambda": Range(0, 1),
    "update_epochs": Range(1),
    "clip_coef": Range(0, 1, low_inclusive=False, high_inclusive=False),
    "beta": Range(0, low_inclusive=False),
    "kl_target": Range(0, low_inclusive=False),
    "ent_coef": Range(0, 1),
    "vf_coef": Range(0),
    "value_clip": Range(0),
    "max_grad_norm": Range(0),
}


@dataclass
class PPOConfig:
    """Every knob of a PPO run. Defaults are the book's LunarLander-v3 settings."""

    env_id: str = "LunarLander-v3"
    """Gymnasium id of a discrete-action environment."""
    seed: int = 0
    """Seeds torch, the envs' resets and the action sampling."""
    total_steps: int = 300_000
    """Env steps to train for, summed over all envs."""
    num_envs: int = 16
    """Envs stepped in lockstep (SyncVectorEnv)."""
    num_steps: int = 128
    """Steps per env in one rollout; a batch is num_envs * num_steps samples."""
    learning_rate: float = 1e-3
    """Adam step size at the start of training."""
    anneal_steps: int = 300_000
    """Env steps over which the step size falls linearly to 0; 0 keeps it fixed."""
    adam_eps: float = 1e-5
    """Adam's epsilon (1e-8 in torch by default)."""
    gamma: float = 0.999
    """Discount factor."""
    gae_lambda: float = 0.98
    """GAE lambda: 0 is TD(0), 1 is Monte Carlo."""
    update_epochs: int = 10
    """Passes over each batch."""
    num_minibatches: int = 8
    """Minibatches per pass; together they cover every sample once."""
    objective: str = "clip"
    """Policy objective: 'clip' (L^CLIP), 'kl_penalty' (L^KLPEN) or 'unclipped'."""
    clip_coef: float = 0.2
    """epsilon of L^CLIP, in (0, 1)."""
    beta: float = 1.0
    """Initial KL penalty coefficient (objective='kl_penalty')."""
    adaptive_beta: bool = True
    """Adapt beta after each update with the 1.5 / 2 rule (objective='kl_penalty')."""
    kl_target: float = 0.01
    """d_targ of the adaptive-beta rule."""
    ent_coef: float = 0.003
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    value_clip: float = 0.0
    """Clip the value change around the old value at this size; 0 turns it off."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip; 0 turns it off."""
    clip_per_network: bool = False
    """Clip actor and critic gradient norms separately; False clips one joint norm."""
    norm_adv: bool = True
    """Normalise advantages to mean 0, std 1 in each minibatch."""
    scale_rewards: bool = True
    """Divide rewards by a running std of the discounted return."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of both actor and critic."""

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        for name, accepted in RANGES.items():
            accepted.check(name, getattr(self, name))
        check_range("num_minibatches", self.num_minibatches, 1, self.batch_size)
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"objective must be one of {OBJECTIVES}, got {self.objective!r}"
            )
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be positive layer sizes, got {self.hidden}")

    @property
    def batch_size(self) -> int:
        """Samples per update: num_envs * num_steps."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        """Updates in the run: total_steps rounded up to whole batches."""
        return math.ceil(self.total_steps / self.batch_size)


def field_docs() -> dict[str, str]:
    """Each ``PPOConfig`` field's one-line doc, for ``--help`` and the book."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(PPOConfig))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr):
            docs[node.target.id] = nxt.value.value
    return docs


def _policy_objective(cfg, ratio, adv, logits_old, logits_new, beta) -> torch.Tensor:
    if cfg.objective == "clip":
        return objectives.clipped_surrogate(ratio, adv, cfg.clip_coef)
    if cfg.objective == "kl_penalty":
        kl = objectives.categorical_kl(logits_old, logits_new)
        return objectives.kl_penalty_objective(ratio, adv, kl, beta)
    return objectives.surrogate(ratio, adv)


def _clip_gradients(agent: ActorCritic, cfg: PPOConfig) -> None:
    """Scale gradients so their norm is at most ``max_grad_norm``.

    Per network (actor, critic) or jointly. Does what
    ``torch.nn.utils.clip_grad_norm_`` does, in a third of its time on these
    small networks (it runs 80 times per update).
    """
    if cfg.max_grad_norm == 0:
        return
    groups = (agent.actor, agent.critic) if cfg.clip_per_network else (agent,)
    for net in groups:
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.cat([g.ravel() for g in grads]))
        scale = torch.clamp(cfg.max_grad_norm / (norm + 1e-6), max=1.0)
        for g in grads:
            g.mul_(scale)


def _minibatches(samples: dict[str, torch.Tensor], minibatch_size: int):
    """Shuffle the samples, then yield consecutive minibatches (dicts like ``samples``).

    One gather per tensor and epoch, then slices: the same minibatches as
    indexing with each slice of ``torch.randperm``, in far fewer ops.
    """
    perm = torch.randperm(len(samples["obs"]))
    shuffled = {k: v[perm].split(minibatch_size) for k, v in samples.items()}
    for i in range(len(shuffled["obs"])):
        yield {k: chunks[i] for k, chunks in shuffled.items()}


def update(
    agent: ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: RolloutBatch,
    advantages: torch.Tensor,
    cfg: PPOConfig,
    beta: float = 1.0,
) -> dict[str, float]:
    """``cfg.update_epochs`` passes of minibatch Adam steps on one batch.

    ``advantages`` (T, N) come from ``gae`` on the (possibly scaled) rewards; the
    value target is ``advantages + batch.values``. Returns the diagnostics of the
    update: losses, entropy, ``approx_kl`` and ``clip_fraction`` (means over
    minibatches of the last epoch), the exact mean KL between the policy before
    and after the update, and the explained variance of the value targets.
    """
    obs = batch.obs.flatten(0, 1)
    values_old = batch.values.flatten()
    returns = advantages.flatten() + values_old
    with torch.no_grad():
        logits_old = agent.actor(obs)
    samples = {
        "obs": obs,
        "actions": batch.actions.flatten(),
        "logp_old": batch.logprobs.flatten(),
        "adv": advantages.flatten(),
        "returns": returns,
        "values_old": values_old,
        "logits_old": logits_old,
    }
    params = list(agent.parameters())
    last_epoch_stats = []
    for epoch in range(cfg.update_epochs):
        for mb in _minibatches(samples, cfg.minibatch_size):
            logits = agent.actor(mb["obs"])
            logp_all = torch.log_softmax(logits, dim=-1)
            logp = logp_all.gather(-1, mb["actions"].unsqueeze(-1)).squeeze(-1)
            logratio = logp - mb["logp_old"]
            ratio = logratio.exp()
            adv = mb["adv"]
            if cfg.norm_adv and len(adv) > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            policy_loss = -_policy_objective(
                cfg, ratio, adv, mb["logits_old"], logits, beta
            ).mean()
            v_loss = objectives.value_loss(
                agent.value(mb["obs"]),
                mb["returns"],
                mb["values_old"],
                cfg.value_clip or None,
            )
            entropy = -(logp_all.exp() * logp_all).sum(-1).mean()  # H(pi(.|s))
            loss = policy_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
            for p in params:  # optimizer.zero_grad(set_to_none=True), faster
                p.grad = None
            loss.backward()
            _clip_gradients(agent, cfg)
            optimizer.step()
            if epoch == cfg.update_epochs - 1:  # diagnostics: last epoch only
                with torch.no_grad():
                    last_epoch_stats.append(
                        torch.stack(
                            [
                                policy_loss,
                                v_loss,
                                entropy,
                                objectives.approx_kl(logratio),
                                objectives.clip_fraction(ratio, cfg.clip_coef),
                            ]
                        )
                    )
    with torch.no_grad():
        kl = objectives.categorical_kl(logits_old, agent.actor(obs)).mean()
        explained = 1 - (returns - values_old).var() / returns.var().clamp_min(1e-8)
    means = torch.stack(last_epoch_stats).mean(0).tolist()
    names = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
    out = dict(zip(names, means, strict=True))
    out.update(kl=kl.item(), explained_variance=explained.item(), beta=beta)
    return out


@dataclass
class TrainResult:
    """What ``train`` returns.

    ``episodes`` has one row per finished episode: (env_steps, wall_s,
    episode_return, episode_length). ``updates`` has one dict per update
    (``update``'s diagnostics plus ``env_steps``, ``wall_s``, ``learning_rate``).
    """

    agent: ActorCritic
    config: PPOConfig
    episodes: list[tuple[int, float, float, int]] = field(default_factory=list)
    updates: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0

    def _solved_row(self) -> tuple[int, float, float, int] | None:
        returns = np.array([e[2] for e in self.episodes])
        if len(returns) < SOLVED_WINDOW:
            return None
        window = np.lib.stride_tricks.sliding_window_view(returns, SOLVED_WINDOW)
        solved = np.flatnonzero(window.mean(axis=1) >= SOLVED_RETURN)
        return self.episodes[solved[0] + SOLVED_WINDOW - 1] if len(solved) else None

    @property
    def steps_to_solve(self) -> int | None:
        """First env step at which the mean of the last 100 returns was >= 200."""
        row = self._solved_row()
        return None if row is None else row[0]

    @property
    def wall_s_to_solve(self) -> float | None:
        """Training seconds until ``steps_to_solve``."""
        row = self._solved_row()
        return None if row is None else row[1]

    @property
    def final_mean100(self) -> float | None:
        returns = [e[2] for e in self.episodes[-SOLVED_WINDOW:]]
        return float(np.mean(returns)) if returns else None


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
        obs_dim = envs.single_observation_space.shape[0]
        agent = ActorCritic(obs_dim, int(envs.single_action_space.n), cfg.hidden)
        optimizer = torch.optim.Adam(
            agent.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True
        )
        scaler = RewardScaler(cfg.num_envs, cfg.gamma)
        return cls(
            cfg, envs, obs, agent, optimizer, scaler, TrainResult(agent, cfg), cfg.beta
        )

    def state_dict(self) -> dict:
        return {
            "config": asdict(self.cfg),
            "env_steps": self.env_steps,
            "beta": self.beta,
            "agent": self.agent.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "reward_scaler": self.scaler.state_dict(),
            "envs": checkpoint.env_state(self.envs, self.obs),
            "episodes": self.result.episodes,
            "updates": self.result.updates,
            "wall_s": self.result.wall_s,
        }

    def load_state_dict(self, state: dict, path: Path) -> None:
        """Continue from ``state``; its config must equal ours up to total_steps."""
        check_resume_config(state, self.cfg, path)
        self.agent.load_state_dict(state["agent"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["reward_scaler"])
        self.obs = checkpoint.restore_envs(self.envs, state["envs"])
        self.env_steps, self.beta = state["env_steps"], state["beta"]
        self.result.episodes = [tuple(e) for e in state["episodes"]]
        self.result.updates = list(state["updates"])
        self.result.wall_s = state["wall_s"]
        torch.set_rng_state(state["torch_rng"])


def load_agent(path: str | os.PathLike) -> ActorCritic:
    """The agent saved in checkpoint ``path``, e.g. for ``rollout.evaluate``."""
    state = checkpoint.load(path)
    weights = state["agent"]
    obs_dim = weights["actor.0.weight"].shape[1]
    n_actions = weights[f"actor.{2 * len(state['config']['hidden'])}.weight"].shape[0]
    agent = ActorCritic(obs_dim, n_actions, tuple(state["config"]["hidden"]))
    agent.load_state_dict(weights)
    return agent


def check_resume_config(state: dict, cfg: PPOConfig, path: str | os.PathLike) -> None:
    """Raise ``CheckpointError`` unless checkpoint ``state`` may continue as ``cfg``.

    Every field must be equal except ``total_steps``, which may grow or shrink.
    """
    try:
        saved = PPOConfig(**state["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise checkpoint.CheckpointError(
            f"{path} has an unusable config: {err}"
        ) from None
    for f in fields(PPOConfig):
        ours, theirs = getattr(cfg, f.name), getattr(saved, f.name)
        if f.name != "total_steps" and ours != theirs:
            raise checkpoint.CheckpointError(
                f"{path} was written with {f.name}={theirs!r}, "
                f"this run has {f.name}={ours!r}"
            )


def _iteration(
    run: _Run, update_fn: Callable[..., dict[str, float]], start: float
) -> tuple[dict[str, float], list[tuple[int, float, float, int]]]:
    """One rollout and one update: the body of ``train``'s loop."""
    cfg, optimizer = run.cfg, run.optimizer
    if cfg.anneal_steps:
        lr = cfg.learning_rate * max(0.0, 1 - run.env_steps / cfg.anneal_steps)
        optimizer.param_groups[0]["lr"] = lr
    batch, run.obs, finished = collect(run.envs, run.agent, run.obs, cfg.num_steps)
    run.env_steps += cfg.batch_size
    wall = time.perf_counter() - start
    new_episodes = [(run.env_steps, wall, ret, length) for ret, length in finished]
    run.result.episodes += new_episodes
    rewards = batch.rewards
    if cfg.scale_rewards:
        rewards = run.scaler.scale(rewards, batch.episode_ends)
    advantages = batch_gae(batch, cfg.gamma, cfg.gae_lambda, rewards)
    stats = update_fn(run.agent, optimizer, batch, advantages, cfg, run.beta)
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
    on_update: Callable[[dict[str, float], list[tuple[int, float, float, int]]], None]
    | None = None,
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
    chapters 2-4 share every line but the update step. Defaults to ``update``.

    With ``checkpoint_dir``, a checkpoint is written after the first update at
    or past every multiple of ``checkpoint_every`` env steps and after the last
    update (the newest ``checkpoint.KEEP`` are kept). ``resume=True`` continues
    from the newest checkpoint there (or ``resume`` names the file): the run
    then ends with exactly the weights and episode log of an uninterrupted run
    (chapter 8). ``cfg`` must equal the checkpoint's config except for
    ``total_steps``, so a finished run can also be extended.
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
