"""Settings declared once, and checks that turn a bad one into a clear ``ValueError``.

A config field is a ``knob``: its default, a one-line doc and what it accepts (a
``Range`` or ``OneOf``), read by ``check_fields``, the command line's ``--help``
and the book's config tables.
"""

from dataclasses import field, fields
from typing import NamedTuple


class Range(NamedTuple):
    """An accepted interval; ``None`` leaves a side open.

    A tuple value is checked entry by entry.
    """

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def check(self, name: str, value) -> None:
        """Raise ``ValueError`` naming ``name``, the bad value and this range."""
        low, high, low_inclusive, high_inclusive = self
        for x in value if isinstance(value, tuple) else (value,):
            too_low = low is not None and (x < low if low_inclusive else x <= low)
            too_high = high is not None and (x > high if high_inclusive else x >= high)
            if too_low or too_high or x != x:  # x != x: NaN
                both = low is not None and high is not None
                raise ValueError(f"{name} must be {'in ' * both}{self}, got {x}")

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


class OneOf(tuple):
    """The accepted values of a field with a few named choices."""

    def check(self, name: str, value) -> None:
        if value not in self:
            raise ValueError(f"{name} must be one of {tuple(self)}, got {value!r}")

    def __str__(self) -> str:
        return "one of " + ", ".join(self)


AT_LEAST_0, AT_LEAST_1, POSITIVE, UNIT = (
    Range(0),
    Range(1),
    Range(0, None, False),
    Range(0, 1),
)


def knob(default, doc: str, accepted: Range | OneOf | None = None):
    """A config field with its one-line ``doc`` and what it ``accepted``."""
    return field(default=default, metadata={"doc": doc, "accepted": accepted})


def check_fields(config) -> None:
    """Raise ``ValueError`` for the first ``knob`` of dataclass ``config`` whose
    value lies outside what it accepts."""
    for f in fields(config):
        if f.metadata["accepted"] is not None:
            f.metadata["accepted"].check(f.name, getattr(config, f.name))
