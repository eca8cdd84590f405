"""Small, tested helpers for the executable PPO book.

Each public function names the chapter that derives it. Modules:
``budget``, ``envs``, ``networks``, ``rollout``, ``advantages``, ``objectives``,
``scaling``, ``trpo``, ``ppo``, ``checkpoint``, ``train`` (the command line),
``plotting``, ``book``.
"""

__version__ = "0.1.0"
