"""Shared test setup: torch on one thread (as in the book), so tests are fast and
deterministic on a shared 2-core machine; and a guard that every test which starts
a Python process (torchrun, the command line, pytest) is marked ``processes``."""

import csv
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

torch.set_num_threads(1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Fail a test that starts a Python process without ``@pytest.mark.processes``.

    ``make unit-paths`` leaves the marked tests out (they test how processes
    start, meet and fail, which no numeric path changes); an unmarked one would
    run once per path, and its timing would depend on the load of the others.
    Fixtures are set up inside this protocol, so module fixtures count too.
    Other programs (fc-list, ldconfig, that libraries start) are left alone.
    """
    if item.get_closest_marker("processes"):
        return (yield)
    real_init = subprocess.Popen.__init__

    def guarded_init(popen, args, *rest, **kwargs):
        command = args if isinstance(args, list | tuple) else str(args).split()
        program = Path(str(command[0]))
        if program.name.startswith("python") or str(program) == sys.executable:
            pytest.fail(
                f"{item.nodeid} starts a Python process ({program.name}): "
                "mark it @pytest.mark.processes",
                pytrace=False,
            )
        real_init(popen, args, *rest, **kwargs)

    with mock.patch.object(subprocess.Popen, "__init__", guarded_init):
        return (yield)


@pytest.fixture
def tiny():
    """Settings (``presets.configs``: of ``RunConfig`` and ``PPOConfig``) for a
    LunarLander PPO run of a few seconds (checkpoint and determinism tests): 2
    envs x 64 steps, a 16-unit network."""
    return dict(
        env_id="LunarLander-v3",
        num_envs=2,
        num_steps=64,
        update_epochs=2,
        num_minibatches=2,
        hidden=(16,),
    )


def train_with(settings: dict, algo: str = "ppo", **train_kwargs):
    """``run.train`` of ``algo`` (``presets.ALGORITHMS``) with ``settings`` sent
    by ``presets.configs`` to the run's config and the algorithm's; the other
    keywords (``checkpoint_dir``, ``resume``, ...) go to ``run.train``."""
    from ppo_helpers import presets, run

    run_cfg, algo_cfg = presets.configs(algo, **settings)
    algorithm = presets.ALGORITHMS[algo][0](algo_cfg)
    return run.train(run_cfg, algorithm=algorithm, **train_kwargs)


def spaces(obs_dim: int, actions: int | tuple[float, float, int]):
    """A flat Box observation space of ``obs_dim`` and an action space:
    ``Discrete(actions)`` for an int, ``Box(low, high, (dim,))`` for a tuple."""
    import gymnasium as gym
    import numpy as np

    observation = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    if isinstance(actions, int):
        return observation, gym.spaces.Discrete(actions)
    low, high, dim = actions
    return observation, gym.spaces.Box(low, high, (dim,), np.float32)


def assert_identical(a, b, where: str) -> None:
    """Equal bit for bit, through nested dicts, lists and tensors."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    else:
        assert a == b, where


def episodes_without_wall(episodes) -> list[tuple]:
    """``run.Episode``s as (env_steps, return, length): what a fixed seed fixes."""
    return [(e.env_steps, e.episode_return, e.episode_length) for e in episodes]


def log_without_wall(path: Path) -> list[list[str]]:
    """The rows of a run's CSV log (``python -m ppo_helpers.cli --log``) without
    the wall-time column."""
    with open(path, newline="") as f:
        return [[r[0], r[2], r[3]] for r in csv.reader(f)]


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """The same parameter and buffer names, and equal bit for bit."""
    a_state, b_state = a.state_dict(), b.state_dict()
    return a_state.keys() == b_state.keys() and all(
        torch.equal(a_state[k], b_state[k]) for k in a_state
    )
