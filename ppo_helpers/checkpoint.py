"""Checkpoints that resume a run exactly, even after ``kill -9`` (chapter 9).

A checkpoint is one file, written between two updates (never in the middle of
a rollout). It holds everything that changes while PPO trains:

* the network weights, observation statistics and Adam's moment estimates
  (two ``state_dict``s), and the env's spaces that the network was built for;
* the algorithm's name and state (PPO's beta, TRPO's settings), the step
  counter, the config, the episode log and the update diagnostics so far;
* per rank (one in a single process; chapter 8 runs several): the state of
  its random number generator (action sampling, minibatch order), the reward
  scaler's running statistics and the environments.

The environments are the hard part: a LunarLander episode lives in a Box2D
world, which cannot be pickled. So we do not save the world; we save how to
rebuild it. An episode is fixed by two things: how it started (its reset seed)
and what the agent did since (its actions). ``envs.ReplayEpisodes`` wraps each
sub-env and keeps both:

* the sub-env that ``reset(seed=s)`` seeded resets its episode ``k`` with
  ``seeding.episode_seed(s, k)``, a hash of ``(s, k)``. Knowing ``(s, k)`` is enough
  to restart the episode; no random generator state has to be saved.
* it records the actions taken since that reset.

To resume, ``restore_envs`` resets each sub-env with its episode's seed and
replays its actions (at most 1,000 steps per LunarLander env, well under a
second), then checks that the observation it reaches equals the saved one bit
for bit. Training always runs through the same wrapper, so a run that writes
checkpoints and one that does not follow the same code and give the same
weights.

Files are written atomically: to a temporary file in the same folder, flushed
to disk (``os.fsync``), then renamed over the final name (``os.replace``), so a
kill at any moment leaves either the old checkpoint or the new one, never half
a file. They are read with ``torch.load(weights_only=True)``, which builds
only tensors and plain Python containers and never runs code from the file.
A format tag and a version number tell our files from any other.
"""

import os
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from ppo_helpers.envs import ReplayError

FORMAT = "ppo_helpers.checkpoint"
VERSION = 5  # 5: the run's config under "config", the algorithm's with its state
KEEP = 3
"""Checkpoints kept in a folder; older ones are deleted after each save."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, foreign or does not fit the run."""


def _call_sub_envs(envs: gym.vector.VectorEnv, name: str) -> tuple:
    """``ReplayEpisodes.<name>()`` of every sub-env, in or out of this process."""
    try:
        return envs.unwrapped.call(name)
    except AttributeError:
        raise TypeError(
            "checkpointing needs make_vector_env(..., wrapper=ReplayEpisodes)"
        ) from None
    except ReplayError as err:
        raise CheckpointError(str(err)) from None


def _episode_statistics(envs: gym.vector.VectorEnv) -> RecordEpisodeStatistics:
    env = envs
    while not isinstance(env, RecordEpisodeStatistics):
        env = getattr(env, "env", None)
        if env is None:
            raise TypeError("checkpointing needs envs from make_vector_env")
    return env


def env_state(envs: gym.vector.VectorEnv, obs: np.ndarray) -> dict:
    """The replay state of every sub-env, and ``obs`` (N, D) to check it against."""
    return {
        "obs": torch.from_numpy(np.array(obs, copy=True)),
        "episodes": list(_call_sub_envs(envs, "replay_state")),
    }


def restore_envs(envs: gym.vector.VectorEnv, state: dict) -> np.ndarray:
    """Replay each sub-env to where ``env_state`` saw it; return the obs (N, D).

    ``envs`` is a fresh vector env from ``make_vector_env(...,
    wrapper=ReplayEpisodes)``. The episode statistics (return and length so far)
    are rebuilt too, so the episodes in progress are reported as if never
    interrupted.
    """
    stats = _episode_statistics(envs)
    saved_obs = state["obs"].numpy()
    if len(state["episodes"]) != envs.num_envs:
        raise CheckpointError(
            f"checkpoint has {len(state['episodes'])} envs, the run has {envs.num_envs}"
        )
    envs.unwrapped.set_attr("to_replay", list(state["episodes"]))
    replayed = _call_sub_envs(envs, "replay")
    for i, (episode, (_, episode_return)) in enumerate(
        zip(state["episodes"], replayed, strict=True)
    ):
        stats.episode_returns[i] = episode_return
        stats.episode_lengths[i] = len(episode["actions"])
    obs = np.stack([obs for obs, _ in replayed]).astype(saved_obs.dtype)
    if not np.array_equal(obs, saved_obs):
        raise CheckpointError(
            "replaying the saved episodes did not reach the saved observations: "
            "the env does not behave as when the checkpoint was written"
        )
    return obs


def space_state(space: gym.spaces.Space) -> dict:
    """A Discrete or Box space as plain values, to save beside the weights."""
    if isinstance(space, gym.spaces.Discrete):
        return {"n": int(space.n)}
    return {"low": torch.as_tensor(space.low), "high": torch.as_tensor(space.high)}


def space_from_state(state: dict) -> gym.spaces.Space:
    """The space that ``space_state`` saved."""
    if "n" in state:
        return gym.spaces.Discrete(state["n"])
    return gym.spaces.Box(state["low"].numpy(), state["high"].numpy())


def path_for(directory: str | os.PathLike, env_steps: int) -> Path:
    """``directory/step_0000051200.pt``: zero-padded, so names sort by step."""
    return Path(directory) / f"step_{env_steps:010d}.pt"


def latest(directory: str | os.PathLike) -> Path | None:
    """The newest checkpoint in ``directory``, or None if there is none."""
    found = sorted(Path(directory).glob("step_*.pt"))
    return found[-1] if found else None


def check_writable(directory: str | os.PathLike) -> Path:
    """Create ``directory`` if needed and prove a file can be written there.

    Raises ``OSError`` with the path in its message otherwise, before any
    training time is spent.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / f".write_test.{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()
    return directory


def save(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` (tensors and plain containers) to ``path`` atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    # Make the rename itself durable: fsync the folder's entry list.
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def prune(directory: str | os.PathLike, keep: int = KEEP) -> None:
    """Delete all but the newest ``keep`` checkpoints in ``directory``."""
    for old in sorted(Path(directory).glob("step_*.pt"))[:-keep]:
        old.unlink(missing_ok=True)


def load(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by ``save``; ``CheckpointError`` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for foreign bytes
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {reason})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a ppo_helpers checkpoint (no {FORMAT!r} format tag)"
        )
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path} is checkpoint format version {state.get('version')!r}; "
            f"this ppo_helpers reads version {VERSION}: resume it with the "
            "ppo_helpers that wrote it, or start the run again"
        )
    return state


class Loaded(NamedTuple):
    """A checkpoint read from disk: where it came from, and what ``load`` gave."""

    path: Path
    state: dict


def load_latest(directory: str | os.PathLike) -> Loaded:
    """The newest checkpoint in ``directory``, with its path."""
    path = latest(directory)
    if path is None:
        raise CheckpointError(f"no checkpoint (step_*.pt) in {directory} to resume")
    return Loaded(path, load(path))
