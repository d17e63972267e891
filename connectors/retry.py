"""Retry timing shared by every connector that retries (storage writes, alert delivery)."""

from __future__ import annotations

import random
from typing import Protocol


class Jitter(Protocol):
    """A source of jitter: :class:`random.Random`, the :mod:`random` module, or a test double."""

    def uniform(self, a: float, b: float) -> float: ...


def backoff_delay(attempt_no: int, base_s: float, max_s: float, rng: Jitter | None = None) -> float:
    """Full-jitter exponential backoff before retry number ``attempt_no``.

    Parameters
    ----------
    attempt_no : int
        Number of attempts made so far (>= 1).
    base_s, max_s : float
        Base and cap of the exponential window.
    rng : random.Random, optional
        Source of jitter (seedable in tests).

    Returns
    -------
    float
        ``uniform(0, min(max_s, base_s * 2**(attempt_no - 1)))``. Full jitter
        spreads retries of many failed deliveries so they do not hit a
        recovering receiver in lock-step.

    Examples
    --------
    >>> class Top:  # an rng that always draws the top of the window
    ...     def uniform(self, a, b): return b
    >>> [backoff_delay(n, 0.5, 3.0, Top()) for n in range(1, 6)]
    [0.5, 1.0, 2.0, 3.0, 3.0]
    """
    source: Jitter = rng or random
    exp = min(max(attempt_no - 1, 0), 62)  # 2**62 is plenty and avoids overflow
    window = min(max_s, base_s * (2 ** exp))
    return source.uniform(0.0, window)
