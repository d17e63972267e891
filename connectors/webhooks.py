"""Standard Webhooks signing and verification (HMAC-SHA256, ``v1`` scheme).

Implements the symmetric part of the Standard Webhooks specification 1.0.0
(https://www.standardwebhooks.com, ``spec/standard-webhooks.md`` in
``standard-webhooks/standard-webhooks``):

* headers ``webhook-id``, ``webhook-timestamp`` (integer Unix seconds) and
  ``webhook-signature`` (space-delimited list of ``<version>,<base64>``);
* signed content ``{webhook-id}.{webhook-timestamp}.{raw body}``;
* signature ``v1,`` + base64(HMAC-SHA256(key, signed content));
* secrets serialised as ``whsec_`` + base64(key bytes);
* constant-time comparison and a 5-minute timestamp tolerance (the value the
  reference libraries enforce).

Secrets
-------
``whsec_<base64>`` is decoded to the key bytes, as the spec prescribes.
``bytes`` are used as the key as they are. Any other ``str`` is a *raw*
secret: its UTF-8 bytes are the key. The reference libraries base64-decode an
unprefixed string by default and need an explicit ``format="raw"`` option for
raw keys; we choose raw because Python's lenient base64 decoder would silently
turn an ordinary password into a different, shorter key. Always configure
``whsec_`` secrets when the receiver uses a reference library.

Examples
--------
The reference libraries' own test vector:

>>> sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
...      1614265330, b'{"test": 2432232314}')["webhook-signature"]
'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
>>> headers = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1_700_000_000, b"{}")
>>> verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, b"{}", now=1_700_000_100)
>>> verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, b"{}", now=1_700_000_301)
Traceback (most recent call last):
...
predmaint.errors.InvalidSignature: webhook-timestamp outside the 300 s tolerance
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

from predmaint.errors import InvalidSignature

__all__ = [
    "InvalidSignature",
    "SECRET_PREFIX",
    "TOLERANCE_S",
    "decode_secret",
    "sign",
    "signature",
    "verify",
]

#: Prefix of serialised symmetric secrets (Standard Webhooks).
SECRET_PREFIX = "whsec_"
#: Allowed distance between ``webhook-timestamp`` and the verifier's clock.
TOLERANCE_S = 5 * 60


SecretLike = str | bytes


def decode_secret(secret: SecretLike) -> bytes:
    """Return the HMAC key bytes for a configured secret.

    Parameters
    ----------
    secret : str or bytes
        ``"whsec_<base64>"`` (decoded as the spec prescribes), raw ``bytes``,
        or any other string, whose UTF-8 bytes are used as the key.

    Returns
    -------
    bytes
        The key.

    Raises
    ------
    ValueError
        If the secret is empty or a ``whsec_`` secret is not valid base64.
        The message never repeats the secret.

    Examples
    --------
    >>> decode_secret("whsec_c2VjcmV0")
    b'secret'
    >>> decode_secret("plain-secret")
    b'plain-secret'
    """
    if isinstance(secret, bytes):
        key = secret
    elif isinstance(secret, str):
        if secret.startswith(SECRET_PREFIX):
            encoded = secret[len(SECRET_PREFIX):]
            # Some providers hand out unpadded base64; add padding back so a
            # strict decode (validate=True) still accepts them.
            encoded += "=" * (-len(encoded) % 4)
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("whsec_ secret is not valid base64") from None
        else:
            key = secret.encode("utf-8")
    else:
        raise TypeError(f"secret must be str or bytes, not {type(secret).__name__}")
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _check_id(msg_id: str) -> str:
    # The spec warns that a '.' in the id (or timestamp) lets an attacker move
    # bytes between the id and the body while keeping the signature valid.
    if not msg_id or "." in msg_id or any(c in msg_id for c in "\r\n"):
        raise ValueError("webhook-id must be non-empty and contain no '.' or line breaks")
    return msg_id


def signature(secret: SecretLike, msg_id: str, timestamp: int, body: bytes) -> str:
    """Compute one ``v1,<base64>`` signature.

    Parameters
    ----------
    secret : str or bytes
        See :func:`decode_secret`.
    msg_id : str
        The ``webhook-id`` (idempotency key; stays the same across retries).
    timestamp : int
        Unix seconds of *this attempt* (changes on every retry).
    body : bytes
        The exact bytes sent as the request body.

    Returns
    -------
    str
        ``"v1," + base64(HMAC-SHA256(key, f"{msg_id}.{timestamp}.{body}"))``.
    """
    key = decode_secret(secret)
    to_sign = f"{_check_id(msg_id)}.{int(timestamp)}.".encode() + bytes(body)
    digest = hmac.new(key, to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign(
    secret: SecretLike | Iterable[SecretLike],
    msg_id: str,
    timestamp: int | float | None,
    body: bytes,
) -> dict[str, str]:
    """Build the three Standard Webhooks headers for one delivery attempt.

    Parameters
    ----------
    secret : str, bytes or iterable of them
        Signing secret. Several secrets (current first) produce several
        space-delimited signatures, which is how the spec rotates keys
        without downtime.
    msg_id : str
        The ``webhook-id``; use the event id so receivers can deduplicate.
    timestamp : int, float or None
        Unix seconds of the attempt; ``None`` means now. Fractions are
        truncated, as the spec's header is an integer.
    body : bytes
        The exact request body.

    Returns
    -------
    dict of str to str
        ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``.
    """
    ts = int(time.time() if timestamp is None else timestamp)
    secrets = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    if not secrets:
        raise ValueError("at least one signing secret is required")
    sigs = " ".join(signature(s, msg_id, ts, body) for s in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sigs}


def verify(
    secret: SecretLike | Iterable[SecretLike],
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance_s: float = TOLERANCE_S,
) -> None:
    """Verify a received delivery; return ``None`` or raise.

    Parameters
    ----------
    secret : str, bytes or iterable of them
        Accepted secret(s); any of them may match (key rotation).
    headers : mapping
        Request headers; names are matched case-insensitively.
    body : bytes
        The raw body as received (never a re-serialised JSON object).
    now : float, optional
        Verifier clock in Unix seconds; defaults to ``time.time()``.
    tolerance_s : float, optional
        Maximum distance between ``webhook-timestamp`` and ``now``, in both
        directions (default 300 s).

    Raises
    ------
    InvalidSignature
        If a header is missing or malformed, the timestamp is stale or in the
        future beyond the tolerance, or no ``v1`` signature matches.
    """
    lower = {str(k).lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    ts_raw = lower.get("webhook-timestamp")
    sig_header = lower.get("webhook-signature")
    if not (msg_id and ts_raw and sig_header):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        ts = int(ts_raw)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    # Checked before the HMAC so a replayed old delivery is refused even when
    # its signature is genuine (replay protection is the point of signing the
    # timestamp).
    if abs(current - ts) > tolerance_s:
        raise InvalidSignature(f"webhook-timestamp outside the {tolerance_s:g} s tolerance")
    try:
        _check_id(msg_id)
    except ValueError:
        raise InvalidSignature("webhook-id contains '.' or line breaks") from None

    secrets = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    expected = []
    for s in secrets:
        key = decode_secret(s)
        to_sign = f"{msg_id}.{ts}.".encode() + bytes(body)
        expected.append(hmac.new(key, to_sign, hashlib.sha256).digest())

    for versioned in sig_header.split(" "):
        version, sep, encoded = versioned.partition(",")
        if not sep or version != "v1":
            # Other schemes (v1a = ed25519) may ride along; ignore them.
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        for exp in expected:
            if hmac.compare_digest(exp, given):
                return None
    raise InvalidSignature("no matching v1 signature")
