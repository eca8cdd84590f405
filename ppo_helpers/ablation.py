"""The PPO paper's comparison of surrogate objectives, re-run (chapter 7).

Schulman et al. (2017), section 6.1 and Table 1, compare eleven settings of the
policy objective: no clipping or penalty (plain ``L^CPI``), ``L^CLIP`` at three
epsilons, the adaptive KL penalty at three targets and the fixed KL penalty at
four betas, all with the hyperparameters of the paper's Table 3. ``SETTINGS``
names them, ``paper_config`` builds the config of one run, ``run_setting``
trains it and scores it as the paper does (the mean return of the last 100
episodes), ``random_score`` measures the score that normalises to 0, and ``normalise``
turns scores into the table (``stats`` gives its intervals).
``benchmarks/objective_ablation.py`` runs the sweep.
"""

import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ppo_helpers.envs import make_env
from ppo_helpers.ppo import PPO, PPOConfig
from ppo_helpers.presets import configs
from ppo_helpers.run import RunConfig, train


class Setting(NamedTuple):
    """One row of the paper's Table 1: our name, its label, the config changes."""

    name: str
    label: str
    overrides: dict
    paper_score: float  # the paper's average normalised score


SETTINGS = (
    Setting("no_clip", "No clipping or penalty", dict(objective="unclipped"), -0.39),
    Setting("clip_0.1", "Clipping, ε = 0.1", dict(clip_coef=0.1), 0.76),
    Setting("clip_0.2", "Clipping, ε = 0.2", dict(clip_coef=0.2), 0.82),
    Setting("clip_0.3", "Clipping, ε = 0.3", dict(clip_coef=0.3), 0.70),
    *(
        Setting(
            f"adaptive_kl_{d_targ}",
            f"Adaptive KL, d_targ = {d_targ}",
            dict(objective="kl_penalty", kl_target=d_targ, beta=1.0),
            score,
        )
        for d_targ, score in ((0.003, 0.68), (0.01, 0.74), (0.03, 0.71))
    ),
    *(
        Setting(
            f"fixed_kl_{beta:g}",
            f"Fixed KL, β = {beta:g}",
            dict(objective="kl_penalty", adaptive_beta=False, beta=beta),
            score,
        )
        for beta, score in ((0.3, 0.62), (1.0, 0.71), (3.0, 0.72), (10.0, 0.69))
    ),
)
SETTING_BY_NAME = {s.name: s for s in SETTINGS}

PAPER_HYPERPARAMETERS = dict(
    num_envs=1,  # one env: horizon T = 2048 samples per update
    num_steps=2048,
    num_minibatches=32,  # minibatches of 64
    update_epochs=10,
    learning_rate=3e-4,
    anneal_steps=0,  # constant step size
    gamma=0.99,
    gae_lambda=0.95,
    ent_coef=0.0,
    hidden=(64, 64),
    log_std_init=0.0,  # sigma starts at 1
    max_grad_norm=0.0,  # the paper clips no gradients
    norm_obs=True,  # as its reference implementation (baselines ppo1) does
    scale_rewards=False,
    value_clip=0.0,
)
"""The paper's Table 3 (MuJoCo) as settings of ``presets.configs``; see chapter 7
for the choices the paper leaves open (observation normalisation, gradient
clipping)."""


def paper_config(
    env_id: str, setting: str, seed: int, total_steps: int
) -> tuple[RunConfig, PPOConfig]:
    """The configs of one run: Table 3's hyperparameters with ``setting``'s
    objective."""
    overrides = SETTING_BY_NAME[setting].overrides
    return configs(
        env_id=env_id,
        seed=seed,
        total_steps=total_steps,
        **{**PAPER_HYPERPARAMETERS, "objective": "clip", **overrides},
    )


def run_setting(
    env_id: str,
    setting: str,
    seed: int,
    total_steps: int,
    on_update: Callable | None = None,
) -> tuple[dict, list[dict]]:
    """Train one run; return its summary row and its per-update curve.

    The row has the run's ``final_score`` (the mean return of its last 100
    episodes, the paper's score), ``env_steps``, ``wall_s``, ``episodes`` and
    the mean over updates of the exact KL between the policies before and after
    each update (``mean_kl``), its maximum, and the last beta. Each curve point
    has ``env_steps``, the mean return of the last (up to) 100 episodes so far,
    the update's ``kl`` and the ``beta`` it used.
    """
    start = time.perf_counter()
    run_cfg, ppo_cfg = paper_config(env_id, setting, seed, total_steps)
    result = train(run_cfg, on_update, PPO(ppo_cfg))
    wall_s = time.perf_counter() - start
    curve = [
        dict(
            env_steps=int(u["env_steps"]),
            mean100=float("nan") if mean100 is None else mean100,
            kl=u["kl"],
            beta=u["beta"],
        )
        for u, mean100 in zip(result.updates, result.mean100_by_update(), strict=True)
    ]
    kls = np.array([u["kl"] for u in result.updates])
    row = dict(
        task=env_id,
        setting=setting,
        seed=seed,
        final_score=result.final_mean100,
        env_steps=int(result.updates[-1]["env_steps"]),
        wall_s=wall_s,
        episodes=len(result.episodes),
        mean_kl=float(kls.mean()),
        max_kl=float(kls.max()),
        final_beta=float(result.updates[-1]["beta"]),
    )
    return row, curve


def random_score(env_id: str, episodes: int = 100, seed: int = 0) -> float:
    """Mean return of ``episodes`` episodes of uniformly random actions."""
    env = make_env(env_id, seed)
    returns = []
    for i in range(episodes):
        env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def normalise(score, random: float, best: float):
    """The paper's per-task score: 0 for the random policy, 1 for the best setting."""
    if best == random:
        raise ValueError(f"best ({best}) equals random ({random}): cannot normalise")
    return (np.asarray(score, dtype=float) - random) / (best - random)
