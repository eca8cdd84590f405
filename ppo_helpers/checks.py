"""Range checks that turn a bad hyperparameter into a clear ``ValueError``."""

from typing import NamedTuple


class Range(NamedTuple):
    """An accepted interval; ``None`` leaves a side open.

    ``high`` may name an attribute of the object checked (``"batch_size"``). A
    tuple value is checked entry by entry.
    """

    low: float | None = None
    high: float | str | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def check(self, name: str, value, owner=None) -> None:
        """Raise ``ValueError`` naming ``name``, the bad value and this range."""
        bound = self
        if isinstance(self.high, str):
            bound = self._replace(high=getattr(owner, self.high))
        low, high, low_inclusive, high_inclusive = bound
        for x in value if isinstance(value, tuple) else (value,):
            too_low = low is not None and (x < low if low_inclusive else x <= low)
            too_high = high is not None and (x > high if high_inclusive else x >= high)
            if too_low or too_high or x != x:  # x != x: NaN
                both = low is not None and high is not None
                raise ValueError(f"{name} must be {'in ' * both}{bound}, got {x}")

    def __str__(self) -> str:
        """``[0, 1]``, ``(0, 1)``, ``>= 1`` or ``< 5``."""
        low, high, low_inclusive, high_inclusive = self
        if low is not None and high is not None:
            left, right = "[" if low_inclusive else "(", "]" if high_inclusive else ")"
            return f"{left}{low}, {high}{right}"
        if low is not None:
            return f"{'>=' if low_inclusive else '>'} {low}"
        return f"{'<=' if high_inclusive else '<'} {high}"


def check_range(
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raise ``ValueError`` naming ``name``, ``value`` and the accepted range.

    >>> check_range("clip_coef", 1.5, 0, 1, low_inclusive=False, high_inclusive=False)
    Traceback (most recent call last):
    ValueError: clip_coef must be in (0, 1), got 1.5
    """
    Range(low, high, low_inclusive, high_inclusive).check(name, value)
