"""Range checks that turn a bad hyperparameter into a clear ``ValueError``."""


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
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if not (too_low or too_high) and value == value:  # value == value rejects NaN
        return
    if low is not None and high is not None:
        left, right = "[" if low_inclusive else "(", "]" if high_inclusive else ")"
        accepted = f"in {left}{low}, {high}{right}"
    elif low is not None:
        accepted = f"{'>=' if low_inclusive else '>'} {low}"
    else:
        accepted = f"{'<=' if high_inclusive else '<'} {high}"
    raise ValueError(f"{name} must be {accepted}, got {value}")
