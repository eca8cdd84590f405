"""PPO's config and its update step (chapters 3, 4 and 5).

``PPOConfig`` holds the settings that PPO's update reads (``optim.UpdateConfig``'s
shared ones and PPO's own); each field's default, one-line doc and accepted range
are written once, in ``checks.knob``. ``update`` is one PPO update, assembled from
``objectives`` (its table of surrogate objectives) and the actor interface of
``networks``; ``PPO`` is the algorithm that ``run.train`` takes, which owns beta
and its adaptive rule. The run around it (rollouts, checkpoints, resume) is
``ppo_helpers.run``.
"""

from dataclasses import dataclass
from functools import partial

import torch

from ppo_helpers import objectives
from ppo_helpers.checks import AT_LEAST_1, POSITIVE, UNIT, OneOf, knob
from ppo_helpers.networks import ActorCritic
from ppo_helpers.optim import (
    UpdateConfig,
    explained_variance,
    gradient_step,
    minibatch_size,
    minibatches,
)
from ppo_helpers.ranks import SINGLE, Ranks, advantage_moments
from ppo_helpers.rollout import RolloutBatch

OBJECTIVES = tuple(objectives.OBJECTIVES)  # the names PPOConfig.objective accepts


@dataclass
class PPOConfig(UpdateConfig):
    """The settings of PPO's update. Defaults are the book's LunarLander-v3 ones.

    They were chosen on tuning seeds 0-4 (``benchmarks/lunarlander.py``, sweeps
    of learning rate, entropy bonus and gradient clipping) and are reported on
    seeds 100-109 (``benchmarks/results/reporting_seeds/``), which chose nothing.
    ``presets.for_env`` starts from ``presets.BOX_DEFAULTS`` instead when the
    env's actions are continuous.
    """

    update_epochs: int = knob(10, "Passes over each batch", AT_LEAST_1)
    objective: str = knob(
        "clip", "L^CLIP, L^KLPEN, Heess et al.'s DPPO or L^CPI", OneOf(OBJECTIVES)
    )
    beta: float = knob(
        1.0, "Initial KL penalty coefficient (kl_penalty, dppo)", POSITIVE
    )
    adaptive_beta: bool = knob(True, "Adapt beta after each update (kl_penalty, dppo)")
    kl_target: float = knob(0.01, "d_targ / KL_target (kl_penalty, dppo)", POSITIVE)
    ent_coef: float = knob(0.003, "Weight of the entropy bonus", UNIT)
    clip_per_network: bool = knob(False, "Clip actor, critic apart; False: one norm")


def update(
    agent: ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: RolloutBatch,
    advantages: torch.Tensor,
    cfg: PPOConfig,
    beta: float | None = None,
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
    at the given ``beta`` (default ``cfg.beta``). Each pass splits the batch's
    T * N samples into ``cfg.num_minibatches`` shuffled minibatches. An
    objective with a ``stop`` (``dppo``) ends the update at the first minibatch
    whose KL from pi_old, before its step, exceeds ``stop`` times ``kl_target``,
    and takes no step on it (Heess et al. 2017's worker loop breaks before the
    gradient).
    With ``ranks`` of several processes (chapter 8), each rank passes its own
    batch; gradients, advantage moments, the early-stop KL and the diagnostics
    are averaged over ranks, so every rank takes the same steps and decisions.
    The minibatch order is drawn from ``generator`` (default: torch's global one).
    """
    objective = objectives.OBJECTIVES[cfg.objective]
    beta = cfg.beta if beta is None else beta
    obs = batch.obs.flatten(0, 1)
    size = minibatch_size(len(obs), cfg.num_minibatches)
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
        epoch_batches = list(minibatches(samples, size, generator))
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

    ``config`` (default ``PPOConfig()``) gives the update's settings; ``beta``
    is the KL coefficient of the penalty objectives, starting at
    ``config.beta`` and, for an objective with an ``adapt`` rule and
    ``config.adaptive_beta``, adapted from the measured KL after every update
    (chapter 3). ``state_dict`` holds what a checkpoint must keep: beta.
    """

    def __init__(self, config: PPOConfig | None = None):
        self.config = PPOConfig() if config is None else config
        self.objective = objectives.OBJECTIVES[self.config.objective]
        self.beta = self.config.beta

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
        cfg = self.config
        stats = update(
            agent, optimizer, batch, advantages, cfg, self.beta, ranks, generator
        )
        if self.objective.adapt is not None and cfg.adaptive_beta:
            self.beta = objectives.adaptive_beta(
                self.beta, stats["kl"], cfg.kl_target, **self.objective.adapt
            )
        return stats

    def state_dict(self) -> dict:
        return {"beta": self.beta}

    def load_state_dict(self, state: dict) -> None:
        self.beta = state["beta"]
