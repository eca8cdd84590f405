"""Collect fixed-length rollouts from a vector env (chapter 1; truncation in 5).

Time-major shapes throughout: ``T`` steps by ``N`` envs.
"""

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from ppo_helpers.advantages import gae, next_state_values
from ppo_helpers.envs import make_vector_env
from ppo_helpers.networks import ActorCritic
from ppo_helpers.timing import NOT_TIMED, PhaseTimes


@dataclass
class RolloutBatch:
    """What one rollout of ``T`` steps from ``N`` envs produced.

    ================  =========  ==================================================
    Field             Shape      Description
    ================  =========  ==================================================
    ``obs``           (T, N, D)  s_t, the observation the action was chosen in
    ``actions``       (T, N, ...)  a_t ~ pi_old(.|s_t): int64 (T, N) for Discrete,
                                 float32 (T, N, A) for Box, unclipped
    ``logprobs``      (T, N)     log pi_old(a_t|s_t)
    ``values``        (T, N)     V(s_t) under the critic at collection time
    ``rewards``       (T, N)     r_t as the env returned it (unscaled)
    ``terminated``    (T, N)     the episode reached a true end at step t: V = 0
    ``truncated``     (T, N)     a time limit cut it at step t: bootstrap
    ``final_values``  (T, N)     V(s_{t+1}) of the true last observation where
                                 ``truncated``, 0 elsewhere
    ``last_values``   (N,)       V(s_T) of the observation after the last step
    ================  =========  ==================================================
    """

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    final_values: torch.Tensor
    last_values: torch.Tensor

    @property
    def episode_ends(self) -> torch.Tensor:
        """(T, N) bool: an episode ended at step t, for either reason."""
        return self.terminated | self.truncated


@torch.inference_mode()
def collect(
    envs: gym.vector.VectorEnv,
    agent: ActorCritic,
    obs: np.ndarray,
    num_steps: int,
    times: PhaseTimes = NOT_TIMED,
    generator: torch.Generator | None = None,
) -> tuple[RolloutBatch, np.ndarray, list[tuple[float, int]]]:
    """Run ``agent`` for ``num_steps`` steps in every env of ``envs``.

    ``obs`` (N, D) is where the previous rollout stopped (or ``envs.reset``).
    Returns the batch, the observation to continue from, and the
    ``(return, length)`` of every episode that finished, in order. ``envs`` must
    autoreset in ``SAME_STEP`` mode (``envs.make_vector_env`` does) so that the
    true last observation of a truncated episode is in ``info["final_obs"]``.
    ``times`` gets the seconds spent in ``envs.step`` as "env stepping". Actions
    are drawn from ``generator`` (default: torch's global one).
    """
    shape = (num_steps, envs.num_envs)
    # What the envs return goes into NumPy arrays (a NumPy write costs a fraction
    # of a torch one, and this loop runs once per env step); they become tensors
    # at the end without a copy.
    obs_buf = np.zeros((*shape, obs.shape[-1]), dtype=np.float32)
    rewards = np.zeros(shape, dtype=np.float32)
    terminated = np.zeros(shape, dtype=bool)
    truncated = np.zeros(shape, dtype=bool)
    actor = agent.actor
    actions = torch.zeros((*shape, *actor.action_shape), dtype=actor.action_dtype)
    logprobs, final_values = torch.zeros(shape), torch.zeros(shape)
    episodes: list[tuple[float, int]] = []
    for t in range(num_steps):
        obs_buf[t] = obs
        obs_t = torch.from_numpy(obs_buf[t])
        actions[t], logprobs[t] = agent.act(obs_t, generator)
        env_actions = agent.env_action(actions[t])
        with times("env stepping"):
            obs, rewards[t], terminated[t], truncated[t], info = envs.step(env_actions)
        if truncated[t].any():
            cut = np.flatnonzero(truncated[t])
            final_obs = np.stack(info["final_obs"][cut]).astype(np.float32)
            final_values[t, cut] = agent.value(torch.from_numpy(final_obs))
        if "episode" in info:
            for i in np.flatnonzero(info["_episode"]):
                episodes.append(
                    (float(info["episode"]["r"][i]), int(info["episode"]["l"][i]))
                )
    # The critic does not change during the rollout, so V(s_t) for all T * N
    # observations comes from one forward pass rather than T small ones.
    obs_all = torch.from_numpy(obs_buf)
    batch = RolloutBatch(
        obs=obs_all,
        actions=actions,
        logprobs=logprobs,
        values=agent.value(obs_all),
        rewards=torch.from_numpy(rewards),
        terminated=torch.from_numpy(terminated),
        truncated=torch.from_numpy(truncated),
        final_values=final_values,
        last_values=agent.value(torch.as_tensor(obs, dtype=torch.float32)),
    )
    return batch, obs, episodes


@torch.inference_mode()
def evaluate(
    agent: ActorCritic,
    env_id: str,
    num_episodes: int = 100,
    seed: int = 10_000,
    deterministic: bool = True,
    num_envs: int = 10,
) -> np.ndarray:
    """Returns of ``num_episodes`` full episodes, shape (num_episodes,).

    ``deterministic`` takes the most likely action (``agent.mode``: the argmax,
    or the Gaussian's mean) instead of sampling. Each of ``num_envs`` envs plays
    a fixed quota of episodes, so short episodes are not over-represented. A
    seed far from training seeds keeps the evaluation episodes unseen.
    """
    num_envs = max(1, min(num_envs, num_episodes))
    quota = [
        num_episodes // num_envs + (i < num_episodes % num_envs)
        for i in range(num_envs)
    ]
    returns: list[list[float]] = [[] for _ in range(num_envs)]
    envs = make_vector_env(env_id, num_envs)
    obs, _ = envs.reset(seed=seed)
    while any(len(r) < q for r, q in zip(returns, quota, strict=True)):
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        action = agent.mode(obs_t) if deterministic else agent.act(obs_t)[0]
        obs, _, _, _, info = envs.step(agent.env_action(action))
        for i in np.flatnonzero(info.get("_episode", [])):
            if len(returns[i]) < quota[i]:
                returns[i].append(float(info["episode"]["r"][i]))
    envs.close()
    return np.array([r for env_returns in returns for r in env_returns])


def batch_gae(
    batch: RolloutBatch,
    gamma: float,
    gae_lambda: float,
    rewards: torch.Tensor | None = None,
) -> torch.Tensor:
    """GAE advantages (T, N) of a ``RolloutBatch`` (``advantages.gae``).

    ``next_state_values`` from the batch's bootstrap fields, then ``gae``.
    ``rewards`` (T, N) replaces ``batch.rewards``, e.g. with scaled rewards.
    """
    next_values = next_state_values(
        batch.values,
        batch.last_values,
        batch.terminated,
        batch.truncated,
        batch.final_values,
    )
    return gae(
        batch.rewards if rewards is None else rewards,
        batch.values,
        next_values,
        batch.episode_ends,
        gamma,
        gae_lambda,
    )
