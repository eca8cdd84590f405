"""PPO's config and its update step (chapters 3, 4 and 5).

``PPOConfig`` holds every knob; each field's default, one-line doc and accepted
range are written once, in ``knob``, and read by ``__post_init__``, the command
line's ``--help`` and the book's config table. ``update`` is one PPO update,
assembled from ``objectives`` (its table of surrogate objectives) and the actor
interface of ``networks``; ``PPO`` is the algorithm that ``run.train`` takes,
which owns beta and its adaptive rule. The run around it (rollouts,
checkpoints, resume) is ``ppo_helpers.run``. ``Ranks``
says how the processes of a distributed run (chapter 8) share tensors; one
process is ``SINGLE``.
"""

import math
from dataclasses import dataclass, field, fields
from functools import partial

import gymnasium as gym
import torch

from ppo_helpers import objectives
from ppo_helpers.checks import Range
from ppo_helpers.envs import env_spaces
from ppo_helpers.networks import ActorCritic
from ppo_helpers.optim import explained_variance, gradient_step, minibatches
from ppo_helpers.ranks import SINGLE, Ranks, advantage_moments
from ppo_helpers.rollout import RolloutBatch

OBJECTIVES = tuple(objectives.OBJECTIVES)  # the names PPOConfig.objective accepts


class OneOf(tuple):
    """The accepted values of a field with a few named choices."""

    def check(self, name: str, value, config) -> None:
        if value not in self:
            raise ValueError(f"{name} must be one of {tuple(self)}, got {value!r}")

    def __str__(self) -> str:
        return "one of " + ", ".join(self)


AT_LEAST_0, AT_LEAST_1, POSITIVE, UNIT = (
    Range(0),
    Range(1),
    Range(0, None, False),
    Range(0, 1),
)


def knob(default, doc: str, accepted: Range | OneOf | None = None):
    """A config field with its one-line ``doc`` and what it ``accepted``."""
    return field(default=default, metadata={"doc": doc, "accepted": accepted})


@dataclass
class PPOConfig:
    """Every knob of a PPO run. Defaults are the book's LunarLander-v3 settings.

    They were chosen on tuning seeds 0-4 (``benchmarks/lunarlander.py``, sweeps
    of learning rate, entropy bonus and gradient clipping) and are reported on
    seeds 100-109 (``benchmarks/results/reporting_seeds/``), which chose nothing.

    ``PPOConfig.for_env`` starts from ``BOX_DEFAULTS`` instead when the env's
    actions are continuous.
    """

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
    update_epochs: int = knob(10, "Passes over each batch", AT_LEAST_1)
    num_minibatches: int = knob(8, "Minibatches per pass", Range(1, "batch_size"))
    objective: str = knob(
        "clip", "L^CLIP, L^KLPEN, Heess et al.'s DPPO or L^CPI", OneOf(OBJECTIVES)
    )
    clip_coef: float = knob(0.2, "epsilon of L^CLIP", Range(0, 1, False, False))
    beta: float = knob(
        1.0, "Initial KL penalty coefficient (kl_penalty, dppo)", POSITIVE
    )
    adaptive_beta: bool = knob(True, "Adapt beta after each update (kl_penalty, dppo)")
    kl_target: float = knob(0.01, "d_targ / KL_target (kl_penalty, dppo)", POSITIVE)
    ent_coef: float = knob(0.003, "Weight of the entropy bonus", UNIT)
    vf_coef: float = knob(0.5, "Weight of the value loss", AT_LEAST_0)
    value_clip: float = knob(0.0, "Clip V's change to this; 0 turns it off", AT_LEAST_0)
    max_grad_norm: float = knob(0.5, "Gradient-norm clip; 0 turns it off", AT_LEAST_0)
    clip_per_network: bool = knob(False, "Clip actor, critic apart; False: one norm")
    norm_adv: bool = knob(True, "Normalise advantages per minibatch")
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
        for f in fields(self):
            if f.metadata["accepted"] is not None:
                f.metadata["accepted"].check(f.name, getattr(self, f.name), self)

    @classmethod
    def for_env(cls, env_id: str | None = None, **overrides) -> "PPOConfig":
        """The book's config for ``env_id``: ``BOX_DEFAULTS`` for Box actions.

        ``overrides`` (any fields) win over both sets of defaults.
        """
        env_id = env_id or cls.env_id
        _, action_space = env_spaces(env_id)
        base = BOX_DEFAULTS if isinstance(action_space, gym.spaces.Box) else {}
        return cls(env_id=env_id, **{**base, **overrides})

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


BOX_DEFAULTS = dict(
    total_steps=500_000,
    anneal_steps=1_000_000,
    num_envs=32,
    num_minibatches=16,
    gamma=0.995,
    gae_lambda=0.98,
    ent_coef=0.0,
    norm_obs=True,
)
"""The book's changes to ``PPOConfig``'s defaults for Box actions.

Twice the envs of LunarLander (a 4,096-sample batch, minibatches of 256), no
entropy bonus, and observation normalisation as the reference implementations
use for continuous control. gamma 0.995 and lambda 0.98 lie between the PPO
paper's MuJoCo settings (0.99, 0.95) and LunarLander's; lr anneals over twice
the run (still half its start at 500k steps). Of thirteen settings run on
seeds 0-2 only this one solved LunarLanderContinuous-v3 on all three
(``benchmarks/continuous.py``; runs in ``benchmarks/results/continuous_tries/``).
Chosen on seeds 0-2; seeds 3-5, which chose nothing, checked it (``heldout.md``
there).
"""


def update(
    agent: ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: RolloutBatch,
    advantages: torch.Tensor,
    cfg: PPOConfig,
    beta: float = 1.0,
    ranks: Ranks = SINGLE,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """``cfg.update_epochs`` passes of minibatch Adam steps on one batch.

    ``advantages`` (T, N) come from ``gae`` on the (possibly scaled) rewards; the
    value target is ``advantages + batch.values``. Returns the diagnostics of the
    update: losses, entropy, ``approx_kl`` and ``clip_fraction`` (means over
    minibatches of the last epoch), the exact mean KL between the policy before
    and after the update, the explained variance of the value targets and the
    number of gradient steps taken.

    The policy loss is ``cfg.objective``'s entry of ``objectives.OBJECTIVES``
    at the given ``beta``. An objective with a ``stop`` (``dppo``) ends the
    update at the first minibatch whose KL from pi_old, before its step, exceeds
    ``stop`` times ``kl_target``, and takes no step on it (Heess et al. 2017's
    worker loop breaks before the gradient).
    With ``ranks`` of several processes (chapter 8), each rank passes its own
    batch; gradients, advantage moments, the early-stop KL and the diagnostics
    are averaged over ranks, so every rank takes the same steps and decisions.
    The minibatch order is drawn from ``generator`` (default: torch's global one).
    """
    objective = objectives.OBJECTIVES[cfg.objective]
    obs = batch.obs.flatten(0, 1)
    values_old = batch.values.flatten()
    returns = advantages.flatten() + values_old
    with torch.no_grad():
        params_old = agent.policy_params(obs)  # pi_old, frozen for this update
    samples = {
        "obs": obs,
        "actions": batch.actions.flatten(0, 1),
        "logp_old": batch.logprobs.flatten(),
        "adv": advantages.flatten(),
        "returns": returns,
        "values_old": values_old,
        "params_old": params_old,
    }
    groups = (
        [list(agent.actor.parameters()), list(agent.critic.parameters())]
        if cfg.clip_per_network
        else [list(agent.parameters())]
    )
    last_epoch_stats, steps, stop = [], 0, False
    for epoch in range(cfg.update_epochs):
        epoch_batches = list(minibatches(samples, cfg.minibatch_size, generator))
        if cfg.norm_adv:
            moments = advantage_moments([mb["adv"] for mb in epoch_batches], ranks)
        for i, mb in enumerate(epoch_batches):
            params = agent.policy_params(mb["obs"])
            logp, entropy = agent.actor.log_prob_entropy(params, mb["actions"])
            logratio = logp - mb["logp_old"]
            ratio = logratio.exp()
            adv = mb["adv"]
            if cfg.norm_adv and len(adv) * ranks.world_size > 1:
                adv_mean, adv_std = moments[i]
                adv = (adv - adv_mean) / (adv_std + 1e-8)
            kl_fn = partial(agent.actor.kl, mb["params_old"], params)
            policy_loss, mean_kl = objective.loss(ratio, adv, kl_fn, beta, cfg)
            v_loss = objectives.value_loss(
                agent.value(mb["obs"]),
                mb["returns"],
                mb["values_old"],
                cfg.value_clip or None,
            )
            entropy = entropy.mean()
            loss = policy_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
            if objective.stop is not None:  # the KL so far, before this step
                kl_all = ranks.average(mean_kl.detach().reshape(1)).item()
                stop = kl_all > objective.stop * cfg.kl_target
            if not stop:
                gradient_step(loss, optimizer, groups, cfg.max_grad_norm, ranks)
                steps += 1
            if epoch == cfg.update_epochs - 1 or stop:  # diagnostics: last epoch
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
            if stop:
                break
        if stop:
            break
    with torch.no_grad():
        kl = agent.actor.kl(params_old, agent.policy_params(obs)).mean()
        explained = torch.tensor(explained_variance(values_old, returns))
        shared = torch.cat(
            [torch.stack(last_epoch_stats).mean(0), kl.reshape(1), explained.reshape(1)]
        )
    shared = ranks.average(shared).tolist()
    names = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
    out = dict(zip(names, shared[:5], strict=True))
    out.update(kl=shared[5], explained_variance=shared[6], beta=beta, steps=steps)
    return out


class PPO:
    """PPO as ``run.train``'s algorithm: its config, its state and its update.

    ``cfg`` gives the update's settings (``update`` reads them); ``beta`` is the
    KL coefficient of the penalty objectives, starting at ``cfg.beta`` and, for
    an objective with an ``adapt`` rule and ``cfg.adaptive_beta``, adapted from
    the measured KL after every update (chapter 3). ``state_dict`` holds what a
    checkpoint must keep: beta.
    """

    def __init__(self, cfg: PPOConfig):
        self.cfg = cfg
        self.objective = objectives.OBJECTIVES[cfg.objective]
        self.beta = cfg.beta

    def update(
        self,
        agent: ActorCritic,
        optimizer: torch.optim.Optimizer,
        batch: RolloutBatch,
        advantages: torch.Tensor,
        ranks: Ranks = SINGLE,
        generator: torch.Generator | None = None,
    ) -> dict[str, float]:
        """``update`` at the current beta, then beta's rule; the diagnostics
        (their ``beta`` is the one this update used)."""
        stats = update(
            agent, optimizer, batch, advantages, self.cfg, self.beta, ranks, generator
        )
        if self.objective.adapt is not None and self.cfg.adaptive_beta:
            self.beta = objectives.adaptive_beta(
                self.beta, stats["kl"], self.cfg.kl_target, **self.objective.adapt
            )
        return stats

    def state_dict(self) -> dict:
        return {"beta": self.beta}

    def load_state_dict(self, state: dict) -> None:
        self.beta = state["beta"]
