"""Small, tested helpers for the executable PPO book.

Each public function names the chapter that derives it. Modules:
``budget``, ``envs``, ``networks``, ``rollout``, ``advantages``, ``objectives``,
``trpo``, ``ppo``, ``plotting``.
"""

__version__ = "0.1.0"
