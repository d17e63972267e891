"""``predmaint receiver`` (connectors/webhook_receiver.py): bounded bodies, verified before parsed, seen once parsed."""

import http.client
import resource

from predmaint.connectors.webhook_receiver import MAX_BODY_BYTES, WebhookReceiver
from predmaint.connectors.webhooks import sign
from predmaint.pipelines.cli import build_parser

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _post(rx, body: bytes, headers: dict, send_body: bool = True) -> int:
    host, port = rx.server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("POST", "/alerts")
    for k, v in {"Content-Length": str(len(body)), **headers}.items():
        conn.putheader(k, v)
    conn.endheaders()
    if send_body:
        conn.send(body)
    status = conn.getresponse().status
    conn.close()
    return status


def test_a_body_over_the_limit_is_refused_unread():
    with WebhookReceiver(SECRET) as rx:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # 300 MB announced, nothing sent: read, it would block (or fill memory); refused, it answers at once.
        status = _post(rx, b"", {"Content-Length": str(300 << 20)}, send_body=False)
        assert status == 413 and rx.rejected == 1 and rx.events == []
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < (64 << 10)  # KB: far below 300 MB
        assert _post(rx, b"{}", {"Content-Length": "many"}) == 411


def test_a_signed_body_that_is_not_json_is_refused_and_not_taken_as_seen():
    with WebhookReceiver(SECRET) as rx:
        bad = b"{not json"
        assert _post(rx, bad, sign(SECRET, "e:0", None, bad)) == 400
        good = b'{"event_id": "e:0"}'
        assert _post(rx, good, sign(SECRET, "e:0", None, good)) == 204  # the retry with the same id counts
        assert rx.events == [{"event_id": "e:0"}] and rx.duplicates == 0
        assert _post(rx, good, {"webhook-id": "e:1", "webhook-timestamp": "1", "webhook-signature": "v1,x"}) == 401
        assert MAX_BODY_BYTES >= 64 << 10  # an alert event with its explanation fits


def test_the_command_listens_on_this_machine_only_unless_told():
    parser = build_parser()
    assert parser.parse_args(["receiver"]).host == "127.0.0.1"
    assert parser.parse_args(["receiver", "--host", "0.0.0.0"]).host == "0.0.0.0"
