"""What one PPO iteration costs, and what W processes buy (chapter 8).

An iteration is a rollout of ``num_steps`` vector steps followed by an update
of ``update_epochs * num_minibatches`` gradient steps. The model builds its
time from five straight lines, each fitted to timings of one part on one
machine (``benchmarks/scaling.py`` measures them):

- ``rollout``: seconds per vector step of ``n`` envs in one process (the
  policy's forward pass and sampling, the env steps, the bookkeeping);
- ``env``: the share of it that the envs' own ``step`` takes, per vector step
  of ``n`` envs; its slope is the cost per env step that worker processes can
  take over;
- ``pipes``: the messages that ``AsyncVectorEnv`` adds per vector step of
  ``n`` envs (sending actions, receiving observations);
- ``gradient``: seconds per gradient step (forward, backward, clipping, Adam)
  on a minibatch of ``m`` samples;
- ``allreduce``: seconds per gloo all-reduce of ``b`` bytes between two
  processes. For ``W`` processes it is taken as recursive halving and doubling:
  ``log2(W)`` times the two-process latency, and ``2 (W - 1) / W`` times its
  per-byte cost. On a 16-core machine (``benchmarks/results/
  scaling_humanoid_h200.md``) the all-reduces took 1.1, 2-3 and 8-10 times
  their two-rank time at 4, 8 and 16 ranks: ``log2(W)`` (2, 3, 4) is nearer
  than a ring's ``W - 1`` (3, 7, 15) up to 8 ranks, and neither fits 16, where
  every core runs a rank.

Three designs, for ``W`` workers on a machine of ``cores`` cores:

- ``"one process"``: everything in one process (``W`` is ignored);
- ``"async envs"``: one learner whose envs each step in a process of their own
  (``AsyncVectorEnv``), so the env steps spread over ``min(W, cores, envs)``
  cores while the learner waits; the update stays in one process;
- ``"dppo"``: ``W`` ranks, each with its own envs and a copy of the networks,
  whose gradients are averaged by an all-reduce before every Adam step, and
  whose advantage moments (once per epoch) and diagnostics (once per update)
  are too. With more ranks than cores, the ranks share the cores.

Under ``"strong"`` scaling the total envs and the batch stay those of one
process; under ``"weak"`` scaling every worker keeps the envs, so the batch
(and each minibatch) grows with ``W``, as in DPPO and DD-PPO.
"""

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ppo_helpers.checks import check_range

DESIGNS = ("one process", "async envs", "dppo")
SCALINGS = ("strong", "weak")


class Line(NamedTuple):
    """``fixed + slope * x`` seconds; ``x`` in the unit the fit was given."""

    fixed: float
    slope: float

    def __call__(self, x: float) -> float:
        return self.fixed + self.slope * x

    @classmethod
    def fit(cls, xs, seconds) -> "Line":
        """The line through ``(xs[i], seconds[i])`` (two points or more) with the
        least sum of squared relative misses, so that small sizes count as
        much as large ones."""
        xs, seconds = np.asarray(xs, float), np.asarray(seconds, float)
        if xs.shape != seconds.shape or len(np.unique(xs)) < 2:
            raise ValueError(
                "a line needs as many times as sizes, at two sizes or more; got "
                f"sizes {xs.tolist()} and {seconds.size} times"
            )
        slope, fixed = np.polyfit(xs, seconds, 1, w=1 / seconds)
        return cls(float(fixed), float(slope))


@dataclass(frozen=True)
class Costs:
    """The fitted parts of one task on one machine (see the module docstring).

    ``rollout``, ``env`` and ``pipes`` are seconds per vector step against the
    number of envs; ``gradient`` seconds per step against minibatch samples;
    ``allreduce`` seconds against bytes, between two processes. ``weights``
    counts the networks' parameters (float32, so a gradient is ``4 *
    weights`` bytes); ``cores`` is the machine's.
    """

    rollout: Line
    env: Line
    pipes: Line
    gradient: Line
    allreduce: Line
    weights: int
    cores: int

    @classmethod
    def from_dict(cls, fitted: dict) -> "Costs":
        """From ``{"rollout": [fixed, slope], ..., "weights": n, "cores": c}``
        (``benchmarks/cost_parts.py``'s ``"fitted"``)."""
        lines = {
            k: Line(*v) for k, v in fitted.items() if k not in ("weights", "cores")
        }
        return cls(**lines, weights=fitted["weights"], cores=fitted["cores"])


@dataclass(frozen=True)
class Workload:
    """One run's shape: ``num_envs`` per worker (weak) or in all (strong)."""

    num_envs: int
    num_steps: int
    update_epochs: int
    num_minibatches: int

    @property
    def gradient_steps(self) -> int:
        return self.update_epochs * self.num_minibatches


def allreduce_s(costs: Costs, workers: int, nbytes: float) -> float:
    """Seconds of one all-reduce of ``nbytes`` over ``workers`` processes."""
    if workers == 1:
        return 0.0
    latency, per_byte = costs.allreduce
    steps = math.log2(workers)
    return steps * latency + 2 * (workers - 1) / workers * per_byte * nbytes


def iteration_s(
    costs: Costs, work: Workload, design: str, workers: int, scaling: str
) -> dict[str, float]:
    """Predicted seconds of one iteration, by part, and the env steps it collects.

    Returns ``{"rollout", "update", "allreduce", "total"}`` in seconds (the
    all-reduces are part of the update) and ``"env_steps"`` (all workers).
    """
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}, got {design!r}")
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
    check_range("workers", workers, 1)
    if design == "one process":
        workers = 1
    total_envs = work.num_envs * (workers if scaling == "weak" else 1)
    if design == "dppo":
        if total_envs % workers:
            raise ValueError(
                f"num_envs ({total_envs} in all) must split evenly over {workers} ranks"
            )
        envs = total_envs // workers  # per rank
        shared = max(1.0, workers / costs.cores)  # ranks sharing a core
    else:
        envs, shared = total_envs, 1.0
    minibatch = envs * work.num_steps / work.num_minibatches  # per process
    rollout = costs.rollout(envs)
    if design == "async envs":  # env steps leave the learner, messages join
        env_per_step = costs.env.slope
        spread = min(workers, costs.cores, envs)
        rollout += costs.pipes(envs) - env_per_step * envs * (1 - 1 / spread)
    allreduce = 0.0
    if design == "dppo":
        per_step = allreduce_s(costs, workers, 4 * costs.weights)
        # advantage moments once per epoch and diagnostics once per update:
        # a few floats each, latency only
        small = (work.update_epochs + 1) * allreduce_s(costs, workers, 0)
        allreduce = work.gradient_steps * per_step + small
    update = shared * work.gradient_steps * costs.gradient(minibatch) + allreduce
    rollout = shared * work.num_steps * rollout
    return {
        "rollout": rollout,
        "update": update,
        "allreduce": allreduce,
        "total": rollout + update,
        "env_steps": total_envs * work.num_steps,
    }


def speedup(
    costs: Costs, work: Workload, design: str, workers: int, scaling: str
) -> float:
    """Env steps per second of ``design`` on ``workers``, over one process's.

    The baseline is one process with ``work.num_envs`` envs: the same batch
    under strong scaling, one worker's share under weak scaling.
    """
    run = iteration_s(costs, work, design, workers, scaling)
    one = iteration_s(costs, work, "one process", 1, scaling)
    return (run["env_steps"] / run["total"]) / (one["env_steps"] / one["total"])


def with_env_cost(costs: Costs, env_s: float) -> Costs:
    """``costs`` for an env whose own step takes ``env_s`` seconds per env step.

    The env's step is part of the rollout's slope, so the rollout's slope moves
    with it; everything else stays as measured.
    """
    check_range("env_s", env_s, 0.0)
    moved = env_s - costs.env.slope
    return replace(
        costs,
        rollout=Line(costs.rollout.fixed, costs.rollout.slope + moved),
        env=Line(costs.env.fixed, env_s),
    )


def crossover_env_s(costs: Costs, work: Workload, design: str, workers: int = 2):
    """The env cost per env step (s) above which ``design`` on ``workers`` beats
    one process under strong scaling, all else as measured; ``None`` if no env
    cost makes it pay.

    The iteration times are linear in the env cost, so the crossover is where
    the two lines meet.
    """

    def gain(env_s: float) -> float:  # one process's time minus the design's
        cheaper = with_env_cost(costs, env_s)
        one = iteration_s(cheaper, work, "one process", 1, "strong")["total"]
        return one - iteration_s(cheaper, work, design, workers, "strong")["total"]

    at_0, per_s = gain(0.0), gain(1.0) - gain(0.0)
    # per_s is a difference of two iteration times of order steps * envs
    # seconds: below float64 rounding of those, the two lines are parallel
    if per_s <= 1e-12 * work.num_steps * work.num_envs:
        return None if at_0 <= 0 else 0.0
    return max(0.0, -at_0 / per_s)
