"""Small, tested helpers for the executable PPO book.

Each public function names the chapter that derives it. The modules, in layers
from the bottom (a module imports only from layers below it; CONTRIBUTING.md):

1. pure math: ``checks``, ``advantages``, ``objectives``, ``scaling``,
   ``stats`` (aggregates over runs, with intervals), ``timing`` (seconds per
   phase), ``cost_model`` (what an iteration costs on W workers, chapter 8),
   ``seeding`` (every seed of a run); and ``ranks`` (what the processes of one
   run share);
2. what the math acts on: ``networks``, ``envs``, ``rollout``; ``optim`` (one
   gradient step, minibatches);
3. one algorithm step: ``ppo`` (``PPOConfig``, the update, ``PPO``), ``trpo``
   (``TRPOConfig``, ``TRPO``);
4. a run: ``run`` (``RunConfig``, the loop, its state, resume), ``checkpoint``;
5. the fronts: ``presets`` (the book's settings for an env), ``cli``
   (the command line), ``distributed`` (the same under torchrun), ``outputs`` (CSV
   log, progress line, TensorBoard), ``plotting``, ``book``, ``budget``,
   ``ablation`` (chapter 7's comparison of objectives).

The names below are the public API; ``from ppo_helpers import cli`` and the
like import the modules themselves.
"""

from importlib.metadata import version

from ppo_helpers.networks import ActorCritic
from ppo_helpers.ppo import PPO, PPOConfig, update
from ppo_helpers.presets import BOX_DEFAULTS, for_env
from ppo_helpers.ranks import Ranks
from ppo_helpers.rollout import RolloutBatch, collect, evaluate
from ppo_helpers.run import Episode, RunConfig, TrainResult, load_agent
from ppo_helpers.trpo import TRPO, TRPOConfig

__version__ = version("ppo_helpers")  # one number, pyproject.toml's
__all__ = [
    "BOX_DEFAULTS",
    "ActorCritic",
    "Episode",
    "PPO",
    "PPOConfig",
    "TRPO",
    "Ranks",
    "RolloutBatch",
    "RunConfig",
    "TRPOConfig",
    "TrainResult",
    "collect",
    "evaluate",
    "for_env",
    "load_agent",
    "update",
]
