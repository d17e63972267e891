"""``predmaint chaos`` (``make chaos``): faults injected into real processes on loopback, with counts.

Everything runs for real: an embedded Tansu broker and an InfluxDB 1.x
(:mod:`predmaint.connectors.local_services`), ``predmaint run`` and
``predmaint notify`` as subprocesses, and an HTTP target on loopback that
plays a webhook receiver and a MaintainX-style CMMS. Nothing is mocked.

Pipeline scenarios stream the simulated fleet (with one sensor silent for a
while, so that alerts are raised and cleared) into a streaming ``predmaint
run`` over ``stream_s`` seconds while the fault happens; then the streaming run
is stopped (SIGINT) and ``predmaint run --until-end`` closes the last windows,
as an operator would. Each is compared with ``baseline``, the same data
through one uninterrupted ``--until-end`` run:

* points stored / lost / extra: ``health``, ``features`` and ``alerts`` points
  in InfluxDB, by measurement, tags and time, missing from or not in the
  baseline (an extra point would be a window stored twice under another time);
  changed: health values that differ from the baseline's;
* alert events on the topic and duplicated ones (the same ``event_id`` again:
  at-least-once after a restart, which ``predmaint notify`` deduplicates);
* dead letters: on the dead-letter topic and in the ``deadletters`` measurement;
* crashes: a process that exited on its own with an error, or printed a Rust panic;
* recover_s: seconds from the end of the fault until the first point stored after it.

Delivery scenarios publish alert events (raised, escalated, cleared) and run
``predmaint notify`` against the target while it is down, answers 500, answers
429 with Retry-After, or while notify itself is killed: delivered, lost,
resent (a webhook-id seen again, deduplicated by the receiver) and work orders
created twice (the CMMS API has no idempotency key; notify looks a work order
up before creating it again, see :mod:`predmaint.connectors.cmms`).

The last line of output is one JSON object with every row and the totals.

This module is the command and its report; the fake target is
:mod:`predmaint.connectors.faulty_target`, the processes and counts
:mod:`predmaint.pipelines.chaos_harness`, the faults
:mod:`predmaint.pipelines.chaos_scenarios`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from predmaint.connectors.local_services import EmbeddedBroker, LocalInfluxDB
from predmaint.pipelines.chaos_harness import Harness, Row
from predmaint.pipelines.chaos_scenarios import COMBINED, FULL, SCENARIOS

__all__ = ["COLUMNS", "SHORT", "add_parser", "cmd_chaos", "format_table", "main", "run_chaos", "totals"]

#: The short version (``--short``, the test): the same faults, several in one run, to keep it near a minute.
SHORT = ["hostile_kill9_influx_stopped", "webhook_429_notify_kill9"]


# --------------------------------------------------------------------------- report


COLUMNS = [("scenario", "scenario"), ("sent", "sent"), ("stored", "stored"), ("lost", "lost"), ("extra", "extra"),
           ("changed", "changed"), ("alert_events", "alerts"), ("dup_alert_events", "dup alerts"),
           ("delivered", "delivered"), ("resent", "resent"), ("dup_work_orders", "dup WOs"),
           ("dead_topic", "DL topic"), ("dup_dead_topic", "DL resent"), ("dead_measurement", "DL meas."),
           ("hostile", "hostile"),
           ("hostile_dead_lettered", "hostile DL"), ("crashes", "crashes"), ("recover_s", "recover s")]


def format_table(rows: list[Row]) -> str:
    """The rows as a fixed-width table, ``-`` where a count does not apply, notes below."""
    cells = [[h for _, h in COLUMNS]] + [["-" if getattr(r, k) is None else str(getattr(r, k)) for k, _ in COLUMNS]
                                          for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c[i].rjust(widths[i]) if i else c[i].ljust(widths[i]) for i in range(len(COLUMNS)))
             for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [""] + [f"{r.scenario}: {r.note}" for r in rows if r.note]
    return "\n".join(lines)


def totals(rows: list[Row]) -> dict:
    """What ``make chaos`` promises, over every row (scenarios that could not measure a count are left out)."""
    def total(key: str) -> int:
        return sum(getattr(r, key) or 0 for r in rows)

    hostile, dead_lettered = total("hostile"), total("hostile_dead_lettered")
    hostile_rows = [r for r in rows if r.hostile]
    return {"lost": total("lost"), "extra": total("extra"), "changed": total("changed"),
            "dup_work_orders": total("dup_work_orders"), "resent": total("resent"),
            "dup_alert_events_on_topic": total("dup_alert_events"),
            "dup_dead_letters_on_topic": total("dup_dead_topic"), "crashes": total("crashes"),
            "hostile": hostile, "hostile_dead_lettered_pct": round(100.0 * dead_lettered / hostile, 2) if hostile else None,
            "dead_letters_topic_equals_measurement": all(r.dead_topic == r.dead_measurement for r in hostile_rows)}


def run_chaos(scenarios: list[str], *, hours: float, stream_s: float, outage_s: float, hostile_n: int,
              webhook_outage_s: float, alerts_n: int, log: Callable[[str], None] = print) -> list[Row]:
    """Start a broker and an InfluxDB, run ``baseline`` and then each of ``scenarios``; return the rows."""
    unknown = [s for s in scenarios if s not in FULL + COMBINED]
    if unknown:
        raise ValueError(f"unknown chaos scenario(s) {', '.join(unknown)}; known: {', '.join(FULL)}")
    workdir = Path(tempfile.mkdtemp(prefix="predmaint-chaos-"))
    rows = []
    # The broker restart last: it empties the broker every other scenario uses.
    ordered = sorted(scenarios, key=lambda s: s == "broker_restarted_empty")
    with EmbeddedBroker() as broker, LocalInfluxDB() as influxdb:
        harness = Harness(workdir, broker, influxdb, hours=hours, stream_s=stream_s, outage_s=outage_s,
                          hostile_n=hostile_n, webhook_outage_s=webhook_outage_s, alerts_n=alerts_n, log=log)
        for name in ["baseline", *ordered]:
            t0 = time.monotonic()
            row = SCENARIOS[name](harness)
            rows.append(row)
            log(f"chaos: {name} done in {time.monotonic() - t0:.0f} s: lost={row.lost} crashes={row.crashes}")
    return rows


def add_parser(sub) -> None:
    p = sub.add_parser("chaos", help="fault injection on loopback (kill -9, outages, hostile input) with counts")
    p.add_argument("--short", action="store_true", help="a few scenarios, seconds of outage (what the test runs)")
    p.add_argument("--scenario", action="append", choices=FULL + COMBINED, help="run only these (repeatable)")
    p.add_argument("--hours", type=float, help="hours of simulated telemetry (default 6, short 1)")
    p.add_argument("--stream-s", type=float, help="seconds over which the telemetry is produced (default 30, short 6)")
    p.add_argument("--outage-s", type=float, help="InfluxDB outages (default 60, short 3)")
    p.add_argument("--hostile", type=int, help="hostile messages mixed in (default 10000, short 300)")
    p.set_defaults(func=cmd_chaos)


def cmd_chaos(args) -> int:
    """``predmaint chaos``: one table, then one JSON line; exit 1 unless nothing was lost, duplicated or crashed."""
    short = bool(args.short)
    rows = run_chaos(args.scenario or (SHORT if short else FULL),
                     hours=args.hours or (1.0 if short else 6.0), stream_s=args.stream_s or (6.0 if short else 30.0),
                     outage_s=args.outage_s if args.outage_s is not None else (3.0 if short else 60.0),
                     hostile_n=args.hostile if args.hostile is not None else (300 if short else 10_000),
                     webhook_outage_s=3.0 if short else 20.0, alerts_n=10 if short else 40,
                     log=lambda s: print(s, file=sys.stderr, flush=True))
    print(format_table(rows))
    t = totals(rows)
    print(json.dumps({"chaos": t, "rows": [asdict(r) for r in rows]}, separators=(",", ":")))
    ok = t["lost"] == 0 and t["extra"] == 0 and t["dup_work_orders"] == 0 and t["crashes"] == 0 and \
        t["hostile_dead_lettered_pct"] in (None, 100.0) and t["dead_letters_topic_equals_measurement"]
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m predmaint.pipelines.chaos", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["chaos", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
