"""Secrets named by the settings and read from the environment, never printed or pickled."""

from __future__ import annotations

import os

__all__ = ["Secret", "secret_from_env"]


class Secret:
    """A secret read from the environment; prints as ``'***'``.

    Examples
    --------
    >>> s = Secret("INFLUX_TOKEN", "t0ps3cret")
    >>> s
    Secret(INFLUX_TOKEN=***)
    >>> s.get()
    't0ps3cret'
    """

    __slots__ = ("env", "_value")

    def __init__(self, env: str, value: str | None):
        self.env = env
        self._value = value

    def get(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.env}={'***' if self._value else 'unset'})"

    __str__ = __repr__

    def __reduce__(self):
        # Re-read from the environment instead of pickling the value into
        # bytewax recovery snapshots.
        return (secret_from_env, (self.env,))


def secret_from_env(env: str | None) -> Secret | None:
    return Secret(env, os.environ.get(env)) if env else None
