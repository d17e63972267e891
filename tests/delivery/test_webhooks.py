"""Standard Webhooks signing/verification against the spec and its reference vector."""

import base64
import hashlib
import hmac

import pytest

from predmaint.connectors.webhooks import InvalidSignature, decode_secret, sign, signature, verify

# Test vector of the reference libraries (standard-webhooks/standard-webhooks,
# libraries/python/tests/test_webhooks.py::test_sign_function).
REF_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REF_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
REF_TS = 1614265330
REF_BODY = b'{"test": 2432232314}'
REF_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_reference_vector():
    h = sign(REF_SECRET, REF_ID, REF_TS, REF_BODY)
    assert h == {"webhook-id": REF_ID, "webhook-timestamp": str(REF_TS), "webhook-signature": REF_SIG}
    verify(REF_SECRET, h, REF_BODY, now=REF_TS)


def test_signature_is_hmac_over_id_timestamp_body():
    key = b"k" * 32
    body = b'{"a":1}'
    expected = base64.b64encode(hmac.new(key, b"evt:1.1700000000." + body, hashlib.sha256).digest()).decode()
    assert signature(key, "evt:1", 1_700_000_000, body) == "v1," + expected
    # whsec_ form of the same key gives the same signature.
    assert signature("whsec_" + base64.b64encode(key).decode(), "evt:1", 1_700_000_000, body) == "v1," + expected


def test_raw_string_secret_is_utf8_key():
    assert decode_secret("pässword") == "pässword".encode()
    h = sign("pässword", "e:1", 100, b"x")
    verify("pässword", h, b"x", now=100)
    with pytest.raises(InvalidSignature):
        verify("whsec_" + base64.b64encode(b"other").decode(), h, b"x", now=100)


def test_unpadded_whsec_secret_accepted():
    padded = "whsec_" + base64.b64encode(b"abcd1").decode()
    assert padded.endswith("=")
    assert decode_secret(padded.rstrip("=")) == b"abcd1"


@pytest.mark.parametrize("bad", ["whsec_!!!not-base64!!!", "whsec_", "", b""])
def test_bad_secrets_rejected_without_echo(bad):
    with pytest.raises(ValueError) as ei:
        decode_secret(bad)
    if isinstance(bad, str) and len(bad) > 6:
        assert bad[6:] not in str(ei.value)


def test_tolerance_both_directions():
    h = sign(REF_SECRET, "e:1", 1_000_000, b"{}")
    verify(REF_SECRET, h, b"{}", now=1_000_000 + 300)
    verify(REF_SECRET, h, b"{}", now=1_000_000 - 300)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(REF_SECRET, h, b"{}", now=1_000_000 + 301)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(REF_SECRET, h, b"{}", now=1_000_000 - 301)


def test_stale_replay_refused_even_with_valid_signature():
    h = sign(REF_SECRET, REF_ID, REF_TS, REF_BODY)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(REF_SECRET, h, REF_BODY)  # real clock: years later


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header(missing):
    h = sign(REF_SECRET, "e:1", 100, b"{}")
    del h[missing]
    with pytest.raises(InvalidSignature, match="missing"):
        verify(REF_SECRET, h, b"{}", now=100)


def test_headers_case_insensitive():
    h = {k.upper(): v for k, v in sign(REF_SECRET, "e:1", 100, b"{}").items()}
    verify(REF_SECRET, h, b"{}", now=100)


def test_tampered_body_wrong_secret_bad_timestamp():
    h = sign(REF_SECRET, "e:1", 100, b'{"a":1}')
    with pytest.raises(InvalidSignature, match="no matching"):
        verify(REF_SECRET, h, b'{"a":2}', now=100)
    with pytest.raises(InvalidSignature, match="no matching"):
        verify("whsec_" + base64.b64encode(b"x" * 24).decode(), h, b'{"a":1}', now=100)
    with pytest.raises(InvalidSignature, match="integer"):
        verify(REF_SECRET, dict(h, **{"webhook-timestamp": "abc"}), b'{"a":1}', now=100)
    # Changing the timestamp invalidates the signature (it is signed).
    with pytest.raises(InvalidSignature, match="no matching"):
        verify(REF_SECRET, dict(h, **{"webhook-timestamp": "101"}), b'{"a":1}', now=100)


def test_multiple_signatures_and_rotation():
    old, new = "whsec_" + base64.b64encode(b"o" * 24).decode(), "whsec_" + base64.b64encode(b"n" * 24).decode()
    h = sign([new, old], "e:1", 100, b"{}")
    sigs = h["webhook-signature"].split(" ")
    assert len(sigs) == 2 and all(s.startswith("v1,") for s in sigs)
    verify(old, h, b"{}", now=100)  # receiver not rotated yet
    verify(new, h, b"{}", now=100)
    # Unknown schemes and garbage entries are skipped, a valid v1 still matches.
    h["webhook-signature"] = "v1a,AAAA v2,xyz v1,@@@ nocomma " + sigs[0]
    verify(new, h, b"{}", now=100)
    # Receiver with a list of accepted secrets.
    verify([old, new], sign(new, "e:1", 100, b"{}"), b"{}", now=100)


def test_id_with_dot_rejected():
    with pytest.raises(ValueError):
        sign(REF_SECRET, "a.b", 100, b"{}")
    h = sign(REF_SECRET, "ab", 100, b"{}")
    h["webhook-id"] = "a.b"
    with pytest.raises(InvalidSignature):
        verify(REF_SECRET, h, b"{}", now=100)


def test_error_messages_never_contain_secret_or_expected_signature():
    h = sign(REF_SECRET, "e:1", 100, b"{}")
    good = h["webhook-signature"]
    h["webhook-signature"] = "v1,AAAA"
    with pytest.raises(InvalidSignature) as ei:
        verify(REF_SECRET, h, b"{}", now=100)
    msg = str(ei.value)
    assert REF_SECRET[6:] not in msg and good[3:] not in msg
