"""Delivery targets of ``predmaint notify``: validated configuration, secrets by variable name.

A target is configuration, so it lives with the settings and is checked when
they load (errors name ``notify.targets[i]``); how a request is built for each
kind is :mod:`predmaint.connectors.cmms`, which must know every kind listed here
(a test holds the two together).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, cast, get_type_hints
from urllib.parse import urlsplit

from predmaint.errors import TargetConfigError

__all__ = ["DEFAULT_TIMEOUT_S", "TARGET_KINDS", "Target", "build_targets"]

#: Default request timeout; the Standard Webhooks spec recommends 15-30 s.
DEFAULT_TIMEOUT_S = 15.0

#: Target kinds: a signed generic webhook, or a CMMS whose work-order API is mapped.
TARGET_KINDS = ("webhook", "maintainx", "upkeep", "maximo")


@dataclass(frozen=True, repr=False)
class Target:
    """One delivery target, built from a config mapping by :meth:`from_config`.

    Attributes
    ----------
    name : str
        Unique name; keys the outbox rows and the work-order map.
    kind : {"webhook", "maintainx", "upkeep", "maximo"}
        Request mapping (see :mod:`predmaint.connectors.cmms`, which builds the requests).
    url : str
        Webhook endpoint, or the CMMS base URL (``https://api.getmaintainx.com``).
    secret_env : str or None
        Name of the environment variable holding the signing secret / API key.
        The value itself is never stored here.
    timeout_s : float
        Connect and per-read timeout (default 15 s).
    max_attempts : int
        Attempts before the event is dead-lettered.
    backoff_base_s, backoff_max_s : float
        Full-jitter exponential backoff: the n-th retry waits
        ``uniform(0, min(backoff_max_s, backoff_base_s * 2**(n-1)))``.
    retry_after_max_s : float
        Upper bound on an honoured ``Retry-After`` (a broken server must not
        park alerts for a day).
    options : dict
        CMMS options: ``asset_ids``, ``defaults``, ``close_status``.
    """

    name: str
    kind: str
    url: str
    secret_env: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_attempts: int = 12
    backoff_base_s: float = 2.0
    backoff_max_s: float = 1800.0
    retry_after_max_s: float = 3600.0
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "Target":
        """Validate a target config mapping.

        Parameters
        ----------
        cfg : mapping
            ``{name, kind, url, secret_env, timeout_s, max_attempts,
            backoff_base_s, backoff_max_s, retry_after_max_s, asset_ids,
            defaults, close_status}``; only ``name``, ``kind`` and ``url`` are
            required.

        Returns
        -------
        Target

        Raises
        ------
        TargetConfigError
            Missing or invalid setting.

        Examples
        --------
        >>> t = Target.from_config({"name": "ops", "kind": "webhook",
        ...                         "url": "https://hooks.example.com/x?token=abc"})
        >>> t
        Target(name='ops', kind='webhook', host='hooks.example.com')
        >>> t.timeout_s
        15.0
        """
        name = cfg.get("name")
        if not name or not isinstance(name, str):
            raise TargetConfigError("target needs a non-empty 'name'")
        kind = cfg.get("kind")
        if kind not in TARGET_KINDS:
            raise TargetConfigError(f"target {name!r}: kind must be one of {list(TARGET_KINDS)}, got {kind!r}")
        url = cfg.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if not parts or parts.scheme not in ("http", "https") or not parts.hostname:
            # The URL is not echoed: incoming-webhook URLs often embed a token.
            raise TargetConfigError(f"target {name!r}: 'url' must be an absolute http(s) URL")
        assert isinstance(url, str)  # parts is None unless url is a string
        # Every field is a setting except 'options', whose keys are settings themselves.
        known = {f.name for f in fields(cls) if f.name != "options"} | set(_OPTION_KEYS)
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise TargetConfigError(f"target {name!r}: unknown settings {unknown}")
        try:
            numbers = {k: typ(cfg.get(k, default)) for k, (typ, default) in _number_settings().items()}
        except (TypeError, ValueError) as exc:
            raise TargetConfigError(f"target {name!r}: invalid number ({type(exc).__name__})") from None
        t = cls(name=name, kind=kind, url=url, secret_env=cfg.get("secret_env") or None,
                options={k: cfg[k] for k in _OPTION_KEYS if k in cfg}, **numbers)
        if t.timeout_s <= 0 or t.max_attempts < 1 or t.backoff_base_s < 0 or t.backoff_max_s < 0:
            raise TargetConfigError(f"target {name!r}: timeout_s > 0, max_attempts >= 1 and backoffs >= 0 required")
        if kind != "webhook" and not t.secret_env:
            raise TargetConfigError(f"target {name!r}: kind {kind} needs 'secret_env' (API key)")
        return t

    def __repr__(self) -> str:
        # Only the host: paths and queries of webhook URLs can carry tokens.
        return f"Target(name={self.name!r}, kind={self.kind!r}, host={urlsplit(self.url).hostname!r})"

    def secret(self) -> str | None:
        """Read the secret from the environment (``None`` when no ``secret_env``).

        Raises
        ------
        TargetConfigError
            The variable is named but unset or empty (the message names the
            variable, not a value).
        """
        if not self.secret_env:
            return None
        value = os.environ.get(self.secret_env)
        if not value:
            raise TargetConfigError(f"target {self.name!r}: environment variable {self.secret_env} is not set")
        return value


#: Config settings gathered into :attr:`Target.options` (CMMS request options).
_OPTION_KEYS = ("asset_ids", "defaults", "close_status")


@functools.cache
def _number_settings() -> dict[str, tuple[type, int | float]]:
    """Numeric :class:`Target` settings as ``name -> (type, default)``.

    Read off the dataclass so that its field defaults stay the only place a
    default is written.
    """
    hints = get_type_hints(Target)
    # Every numeric field has a default (only name, kind and url are required).
    return {f.name: (hints[f.name], cast("int | float", f.default))
            for f in fields(Target) if hints[f.name] in (int, float)}


def build_targets(configs: Iterable[Mapping[str, Any] | Target]) -> dict[str, Target]:
    """Validate target configs and index them by name.

    Raises
    ------
    TargetConfigError
        Duplicate names, no targets, or an invalid target.
    """
    out: dict[str, Target] = {}
    for cfg in configs:
        t = cfg if isinstance(cfg, Target) else Target.from_config(cfg)
        if t.name in out:
            raise TargetConfigError(f"duplicate target name {t.name!r}")
        out[t.name] = t
    if not out:
        raise TargetConfigError("no delivery targets configured")
    return out
