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


class RetryWindow:
    """When to retry, warn and give up while a service stays unavailable: the timing of one outage.

    A call that may fail temporarily keeps one window for as long as it
    retries. :meth:`failed` is told of every failed attempt and answers the
    delay before the next one (capped exponential backoff with jitter), or
    ``None`` once ``retry_for_s`` have passed since the first failure (or
    ``max_retries`` retries were made). :meth:`should_warn` is true for the
    first failure and then once per ``warn_every_s``, so a long outage is
    reported a few times, not on every attempt. Pure timing: the caller
    sleeps, logs and raises.

    Parameters
    ----------
    retry_for_s : float
        How long to keep retrying after the first failure.
    base_s, max_s : float
        First backoff window and its cap (see :func:`backoff_delay`); the cap
        bounds how long a recovered service waits for the next attempt.
    max_retries : int, optional
        Also give up after this many retries (``0``: never retry).
    warn_every_s : float
        Interval between warnings while the outage lasts.
    rng : random.Random, optional
        Source of jitter.

    Examples
    --------
    >>> class Top:  # an rng that always draws the top of the window
    ...     def uniform(self, a, b): return b
    >>> w = RetryWindow(retry_for_s=10.0, base_s=1.0, max_s=4.0, warn_every_s=5.0, rng=Top())
    >>> now, plan = 100.0, []
    >>> while (delay := w.failed(now)) is not None:
    ...     plan.append((now - 100.0, delay, w.should_warn(now)))
    ...     now += delay
    >>> plan  # (time since the first failure, delay, warn?)
    [(0.0, 1.0, True), (1.0, 2.0, False), (3.0, 4.0, False), (7.0, 3.0, True)]
    >>> w.attempts, w.elapsed_s(now)
    (5, 10.0)
    >>> RetryWindow(retry_for_s=10.0, max_retries=0).failed(0.0) is None
    True
    """

    def __init__(self, retry_for_s: float, *, base_s: float = 0.2, max_s: float = 5.0,
                 max_retries: int | None = None, warn_every_s: float = 30.0, rng: Jitter | None = None):
        self.retry_for_s = retry_for_s
        self.base_s = base_s
        self.max_s = max_s
        self.max_retries = max_retries
        self.warn_every_s = warn_every_s
        self.rng = rng
        #: Failed attempts so far.
        self.attempts = 0
        self.started: float | None = None
        self._next_warning: float | None = None

    def elapsed_s(self, now: float) -> float:
        """Seconds since the first failure (0 before it)."""
        return 0.0 if self.started is None else now - self.started

    def failed(self, now: float) -> float | None:
        """Record a failed attempt at ``now``; the delay before the next one, or ``None``: give up."""
        if self.started is None:
            self.started = now
        self.attempts += 1
        remaining = self.started + self.retry_for_s - now
        if remaining <= 0 or (self.max_retries is not None and self.attempts > self.max_retries):
            return None
        return min(remaining, backoff_delay(self.attempts, self.base_s, self.max_s, self.rng))

    def should_warn(self, now: float) -> bool:
        """True at the first failure, then at most once per ``warn_every_s``."""
        if self._next_warning is None or now >= self._next_warning:
            self._next_warning = now + self.warn_every_s
            return True
        return False
