"""Seeded Gymnasium environments, single and vectorised (chapter 1 onwards).

Vector envs use Gymnasium's ``SAME_STEP`` autoreset: when an episode ends, the
observation returned is already the first one of the next episode and the true
last observation is in ``info["final_obs"]``. That is what lets the rollout
bootstrap ``V(s_T)`` after a time-limit truncation (chapter 5).
``ReplayEpisodes`` makes each env's current episode rebuildable from its seed
and actions, which is how a checkpoint saves envs (``checkpoint``, chapter 9).
"""

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from ppo_helpers.checks import check_range
from ppo_helpers.seeding import episode_seed


class EnvIdError(ValueError):
    """An env id that Gymnasium does not know, or that it has removed."""


def check_env_id(env_id: str) -> None:
    """Raise ``EnvIdError`` with what to use instead if ``env_id`` cannot be made.

    ``LunarLander-v2`` was removed in Gymnasium 1.0; the message says to use
    ``LunarLander-v3``.
    """
    try:
        gym.spec(env_id)
    except gym.error.DeprecatedEnv as err:
        raise EnvIdError(f"env id {env_id!r} was removed: {err}") from None
    except gym.error.Error as err:
        raise EnvIdError(
            f"unknown env id {env_id!r} ({err}); "
            "for example use 'CartPole-v1' or 'LunarLander-v3'"
        ) from None


class UnsupportedSpaceError(ValueError):
    """An env whose observation or action space the book's networks cannot handle."""


def check_spaces(env_id: str, observation_space, action_space) -> None:
    """Raise ``UnsupportedSpaceError`` unless the spaces fit ``networks.ActorCritic``.

    Supported: a flat ``Box`` observation (shape ``(D,)``) and a ``Discrete`` or
    flat ``Box`` (shape ``(A,)``) action space. The message names what the env
    has and what is supported.
    """
    flat_box = isinstance(observation_space, gym.spaces.Box) and (
        len(observation_space.shape) == 1
    )
    if not flat_box:
        raise UnsupportedSpaceError(
            f"{env_id} has observation space {observation_space}; supported: a "
            "flat Box of shape (D,) (images and dicts need another network)"
        )
    flat_actions = isinstance(action_space, gym.spaces.Box) and (
        len(action_space.shape) == 1
    )
    if not (isinstance(action_space, gym.spaces.Discrete) or flat_actions):
        raise UnsupportedSpaceError(
            f"{env_id} has action space {action_space}; supported: Discrete, "
            "or a flat Box of shape (A,)"
        )


def env_spaces(env_id: str) -> tuple[gym.spaces.Space, gym.spaces.Space]:
    """(observation space, action space) of ``env_id``, both checked first.

    ``check_env_id``, then ``check_spaces`` on one instance of the env.
    """
    check_env_id(env_id)
    env = gym.make(env_id)
    env.close()
    check_spaces(env_id, env.observation_space, env.action_space)
    return env.observation_space, env.action_space


def make_env(env_id: str, seed: int | None = None, **kwargs) -> gym.Env:
    """One environment, reset once with ``seed`` so its randomness is fixed.

    ``kwargs`` go to ``gym.make`` (e.g. ``render_mode="rgb_array"``, only for
    drawing frames: rendering LunarLander while training is about 3x slower).
    """
    check_env_id(env_id)
    env = gym.make(env_id, **kwargs)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def make_vector_env(
    env_id: str,
    num_envs: int,
    wrapper: Callable[[gym.Env], gym.Env] | None = None,
    asynchronous: bool = False,
    **kwargs,
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id``, with episode statistics.

    Seed it with ``obs, info = envs.reset(seed=seed)``: copy ``i`` gets
    ``seed + i``. ``info["episode"]`` then reports each finished episode's
    return ``"r"`` and length ``"l"``, masked by ``info["_episode"]``.
    By default all copies step in this process (``SyncVectorEnv``); with
    ``asynchronous`` each steps in a process of its own (``AsyncVectorEnv``),
    which gives the same observations and pays only where an env step costs
    more than the messages to and from its process (chapter 8 measures where).
    ``wrapper``, if given, wraps each copy (``ReplayEpisodes``, chapter 9).
    """
    check_range("num_envs", num_envs, 1)
    check_env_id(env_id)

    def make_one() -> gym.Env:
        env = gym.make(env_id, **kwargs)
        return env if wrapper is None else wrapper(env)

    vector_env = AsyncVectorEnv if asynchronous else SyncVectorEnv
    envs = vector_env(
        [make_one for _ in range(num_envs)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    try:
        check_spaces(env_id, envs.single_observation_space, envs.single_action_space)
    except UnsupportedSpaceError:
        envs.close()
        raise
    return RecordEpisodeStatistics(envs)


class ReplayError(ValueError):
    """An episode that cannot be replayed: never seeded, or the env changed."""


class ReplayEpisodes(gym.Wrapper):
    """Makes the current episode of one env rebuildable from (seed, actions).

    ``reset(seed=s)`` starts the stream: episode 0 is reset with
    ``seeding.episode_seed(s, 0)``, and each later ``reset()`` (the vector env's
    autoreset) starts episode ``k`` with ``episode_seed(s, k)``. ``actions``
    lists the actions taken since the current episode began, as the env got
    them (ints, or float vectors for a Box).
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.stream_seed: int | None = None
        self.episode = 0
        self.actions: list[np.ndarray] = []
        # what checkpoint.restore_envs hands each sub-env (VectorEnv.set_attr),
        # so that envs stepped in other processes (AsyncVectorEnv) replay there
        self.to_replay: dict | None = None

    def _seed(self) -> int | None:
        if self.stream_seed is None:
            return None
        return episode_seed(self.stream_seed, self.episode)

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.stream_seed, self.episode = int(seed), 0
        elif self.stream_seed is not None:
            self.episode += 1
        self.actions = []
        return self.env.reset(seed=self._seed(), options=options)

    def step(self, action):
        self.actions.append(np.array(action, copy=True))
        return self.env.step(action)

    def replay_state(self) -> dict:
        """What ``replay`` needs: the stream seed, the episode number, the actions."""
        if self.stream_seed is None:
            raise ReplayError("an env never reset with a seed cannot be replayed")
        space = self.action_space
        actions = np.array(self.actions, dtype=space.dtype).reshape(-1, *space.shape)
        return {
            "stream_seed": self.stream_seed,
            "episode": self.episode,
            "actions": torch.from_numpy(actions),
        }

    def replay(self, state: dict | None = None) -> tuple[np.ndarray, float]:
        """Rebuild the episode in ``state`` (default: ``to_replay``); return its
        observation and return."""
        state = self.to_replay if state is None else state
        self.stream_seed, self.episode = (
            int(state["stream_seed"]),
            int(state["episode"]),
        )
        obs, _ = self.env.reset(seed=self._seed())
        # rows of a NumPy array: np.int64 or float vectors, as the vector env
        # passes them, in case an env tells them apart
        self.actions = list(state["actions"].numpy())
        episode_return = 0.0
        for action in self.actions:
            obs, reward, terminated, truncated, _ = self.env.step(action)
            episode_return += float(reward)
            if terminated or truncated:
                raise ReplayError(
                    "replaying a saved episode ended it early: the env does not "
                    "behave as when the checkpoint was written (another version?)"
                )
        return obs, episode_return
