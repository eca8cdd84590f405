"""One switch between the book's full budgets and the quick ones used by CI.

``make test`` and CI set ``PPO_BOOK_QUICK=1``; ``make book`` does not. A notebook
writes ``budget(full=200_000, quick=4_000)`` so the reader sees both numbers.
"""

import os

QUICK_ENV_VAR = "PPO_BOOK_QUICK"


def is_quick() -> bool:
    """True when ``PPO_BOOK_QUICK`` is set to ``1`` (or ``true``/``yes``)."""
    return os.environ.get(QUICK_ENV_VAR, "").strip().lower() in {"1", "true", "yes"}


def budget(full, quick):
    """Return ``quick`` under ``PPO_BOOK_QUICK=1``, ``full`` otherwise.

    Works for any value: step counts, seed lists, epochs.
    """
    return quick if is_quick() else full
