"""PPO: a config, one update, and the training loop (chapters 3, 4, 5 and 8).

Everything here is assembled from ``rollout``, ``advantages`` and
``objectives``; this module only decides the order and the bookkeeping.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ppo_helpers import objectives
from ppo_helpers.advantages import gae, next_state_values
from ppo_helpers.checks import check_range
from ppo_helpers.envs import make_vector_env
from ppo_helpers.networks import ActorCritic
from ppo_helpers.rollout import RolloutBatch, collect
from ppo_helpers.scaling import RewardScaler

OBJECTIVES = ("clip", "kl_penalty", "unclipped")
SOLVED_RETURN = 200.0
SOLVED_WINDOW = 100


@dataclass
class PPOConfig:
    """Every knob of a PPO run. Defaults are the book's LunarLander-v3 settings."""

    env_id: str = "LunarLander-v3"
    """Gymnasium id of a discrete-action environment."""
    seed: int = 0
    """Seeds torch, the envs' resets and the action sampling."""
    total_steps: int = 300_000
    """Env steps to train for, summed over all envs."""
    num_envs: int = 8
    """Envs stepped in lockstep (SyncVectorEnv)."""
    num_steps: int = 256
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
    clip_per_network: bool = True
    """Clip actor and critic gradient norms separately rather than jointly."""
    norm_adv: bool = True
    """Normalise advantages to mean 0, std 1 in each minibatch."""
    scale_rewards: bool = True
    """Divide rewards by a running std of the discounted return."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of both actor and critic."""

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        check_range("total_steps", self.total_steps, 1)
        check_range("num_envs", self.num_envs, 1, 1024)
        check_range("num_steps", self.num_steps, 1)
        check_range("learning_rate", self.learning_rate, 0, 1, low_inclusive=False)
        check_range("anneal_steps", self.anneal_steps, 0)
        check_range("adam_eps", self.adam_eps, 0, 1, low_inclusive=False)
        check_range("gamma", self.gamma, 0, 1)
        check_range("gae_lambda", self.gae_lambda, 0, 1)
        check_range("update_epochs", self.update_epochs, 1)
        check_range("num_minibatches", self.num_minibatches, 1, self.batch_size)
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"objective must be one of {OBJECTIVES}, got {self.objective!r}"
            )
        check_range(
            "clip_coef", self.clip_coef, 0, 1, low_inclusive=False, high_inclusive=False
        )
        check_range("beta", self.beta, 0, low_inclusive=False)
        check_range("kl_target", self.kl_target, 0, low_inclusive=False)
        check_range("ent_coef", self.ent_coef, 0, 1)
        check_range("vf_coef", self.vf_coef, 0)
        check_range("value_clip", self.value_clip, 0)
        check_range("max_grad_norm", self.max_grad_norm, 0)
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
    if cfg.max_grad_norm == 0:
        return
    if cfg.clip_per_network:
        torch.nn.utils.clip_grad_norm_(agent.actor.parameters(), cfg.max_grad_norm)
        torch.nn.utils.clip_grad_norm_(agent.critic.parameters(), cfg.max_grad_norm)
    else:
        torch.nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)


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
    actions, logp_old = batch.actions.flatten(), batch.logprobs.flatten()
    adv_all = advantages.flatten()
    values_old = batch.values.flatten()
    returns = adv_all + values_old
    with torch.no_grad():
        logits_old = agent.actor(obs)
    stats: dict[str, list[float]] = {}
    for _ in range(cfg.update_epochs):
        stats = {
            k: []
            for k in (
                "policy_loss",
                "value_loss",
                "entropy",
                "approx_kl",
                "clip_fraction",
            )
        }
        for idx in torch.randperm(cfg.batch_size).split(cfg.minibatch_size):
            dist = agent.dist(obs[idx])
            logits = dist.logits
            logratio = dist.log_prob(actions[idx]) - logp_old[idx]
            ratio = logratio.exp()
            adv = adv_all[idx]
            if cfg.norm_adv and len(idx) > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            policy_loss = -_policy_objective(
                cfg, ratio, adv, logits_old[idx], logits, beta
            ).mean()
            v_loss = objectives.value_loss(
                agent.value(obs[idx]),
                returns[idx],
                values_old[idx],
                cfg.value_clip or None,
            )
            entropy = dist.entropy().mean()
            loss = policy_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            _clip_gradients(agent, cfg)
            optimizer.step()
            with torch.no_grad():
                for key, value in (
                    ("policy_loss", policy_loss),
                    ("value_loss", v_loss),
                    ("entropy", entropy),
                    ("approx_kl", objectives.approx_kl(logratio)),
                    ("clip_fraction", objectives.clip_fraction(ratio, cfg.clip_coef)),
                ):
                    stats[key].append(value.item())
    with torch.no_grad():
        kl = objectives.categorical_kl(logits_old, agent.actor(obs)).mean().item()
        explained = 1 - (returns - values_old).var() / returns.var().clamp_min(1e-8)
    out = {k: float(np.mean(v)) for k, v in stats.items()}
    out.update(kl=kl, explained_variance=explained.item(), beta=beta)
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

    @property
    def steps_to_solve(self) -> int | None:
        """First env step at which the mean of the last 100 returns was >= 200."""
        returns = [e[2] for e in self.episodes]
        for i in range(SOLVED_WINDOW, len(returns) + 1):
            if np.mean(returns[i - SOLVED_WINDOW : i]) >= SOLVED_RETURN:
                return self.episodes[i - 1][0]
        return None

    @property
    def final_mean100(self) -> float | None:
        returns = [e[2] for e in self.episodes[-SOLVED_WINDOW:]]
        return float(np.mean(returns)) if returns else None


def train(
    cfg: PPOConfig,
    on_update: Callable[[dict[str, float], list[tuple[int, float, float, int]]], None]
    | None = None,
    update_fn: Callable[..., dict[str, float]] | None = None,
) -> TrainResult:
    """Train a fresh agent with ``cfg``; deterministic for a fixed seed on the CPU.

    ``on_update(stats, new_episodes)`` is called after every update, for a live
    plot or a progress line (``plotting.LivePlot.update`` fits it).
    ``update_fn(agent, optimizer, batch, advantages, cfg, beta) -> stats`` replaces
    the PPO update; TRPO (chapter 2) plugs in here, so the three algorithms of
    chapters 2-4 share every line but the update step. Defaults to ``update``.
    """
    update_fn = update if update_fn is None else update_fn
    torch.manual_seed(cfg.seed)
    envs = make_vector_env(cfg.env_id, cfg.num_envs)
    obs, _ = envs.reset(seed=cfg.seed)
    envs.action_space.seed(cfg.seed)
    obs_dim = envs.single_observation_space.shape[0]
    agent = ActorCritic(obs_dim, int(envs.single_action_space.n), cfg.hidden)
    optimizer = torch.optim.Adam(
        agent.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True
    )
    scaler = RewardScaler(cfg.num_envs, cfg.gamma)
    result = TrainResult(agent, cfg)
    beta, env_steps, start = cfg.beta, 0, time.perf_counter()
    for _ in range(cfg.num_updates):
        if cfg.anneal_steps:
            lr = cfg.learning_rate * max(0.0, 1 - env_steps / cfg.anneal_steps)
            optimizer.param_groups[0]["lr"] = lr
        batch, obs, finished = collect(envs, agent, obs, cfg.num_steps)
        env_steps += cfg.batch_size
        wall = time.perf_counter() - start
        new_episodes = [(env_steps, wall, ret, length) for ret, length in finished]
        result.episodes += new_episodes
        rewards = batch.rewards
        if cfg.scale_rewards:
            rewards = scaler.scale(rewards, batch.episode_ends)
        next_values = next_state_values(
            batch.values,
            batch.last_values,
            batch.terminated,
            batch.truncated,
            batch.final_values,
        )
        advantages = gae(
            rewards,
            batch.values,
            next_values,
            batch.episode_ends,
            cfg.gamma,
            cfg.gae_lambda,
        )
        stats = update_fn(agent, optimizer, batch, advantages, cfg, beta)
        if cfg.objective == "kl_penalty" and cfg.adaptive_beta:
            beta = objectives.adaptive_beta(beta, stats["kl"], cfg.kl_target)
        stats.update(
            env_steps=env_steps,
            wall_s=time.perf_counter() - start,
            learning_rate=optimizer.param_groups[0]["lr"],
        )
        result.updates.append(stats)
        if on_update is not None:
            on_update(stats, new_episodes)
    envs.close()
    result.wall_s = time.perf_counter() - start
    return result
