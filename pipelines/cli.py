"""The ``predmaint`` command."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from predmaint.errors import ConfigurationError, PredmaintError
from predmaint.settings import Settings, load_settings

log = logging.getLogger("predmaint")
#: Loggers of client libraries, silent unless -v.
QUIET_LIBRARIES = ("kafka", "urllib3", "niquests", "urllib3_future", "influxdb_client", "grafana_client", "bytewax",
                   "matplotlib")


def _settings(args) -> Settings:
    # main() loaded and validated them before the command ran (checks.validate).
    settings = getattr(args, "settings", None) or load_settings(args.config)
    if getattr(args, "bootstrap", None):
        settings = settings.replace(kafka=dataclasses.replace(settings.kafka, bootstrap=args.bootstrap))
    return settings


def cmd_simulate(args) -> int:
    from predmaint.connectors import kafka_io
    from predmaint.pipelines.runner import simulate

    settings = _settings(args)
    # One line naming kafka.bootstrap within 10 s, not kafka-python's 30 s of retries first.
    kafka_io.probe(settings.kafka, timeout_s=kafka_io.STARTUP_PROBE_TIMEOUT_S)
    stop = None
    if args.realtime or settings.simulator.mode == "realtime":
        import signal
        import threading

        settings = settings.replace(simulator=dataclasses.replace(settings.simulator, mode="realtime"))
        # Until stopped: SIGTERM (docker stop) and Ctrl-C end it after the message in hand.
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if args.duration:
            timer = threading.Timer(args.duration, stop.set)
            timer.daemon = True
            timer.start()
    truth = simulate(settings, stop=stop)
    print(json.dumps({k: truth[k] for k in ("messages", "invalid_messages", "faults")}, indent=2))
    return 0


#: After Ctrl-C, ``predmaint run`` gives the dataflow this long to stop before it exits anyway.
STOP_GRACE_S = 30.0


def _exit_if_stuck(grace_s: float) -> None:
    """Ctrl-C stops the dataflow as usual (``KeyboardInterrupt``); a process still running ``grace_s``
    later prints every thread's stack and exits with 130, as a second Ctrl-C does at once.

    Why: a run once did not stop within 60 s of SIGINT and said nothing (under load, in
    ``tests/test_recreated_topic.py``, after its broker had restarted empty; the cause was not
    found, perhaps a client library closing a connection), and a Ctrl-C that does nothing is worse
    than one that exits; the stacks say where it hung. Exiting at any
    moment loses nothing: it is what recovery is built for (``kill -9`` in ``make chaos``), and the
    next run resumes from the last snapshot.
    """
    import faulthandler
    import signal
    import threading

    stopping = threading.Event()

    def exit_now(why: str) -> None:
        print(f"predmaint run: {why}; exiting now (the next run resumes from the last snapshot); "
              "where each thread was:", file=sys.stderr, flush=True)
        faulthandler.dump_traceback(sys.stderr, all_threads=True)
        os._exit(130)

    def on_interrupt(signum, frame):
        if stopping.is_set():
            exit_now("Ctrl-C again while stopping")
        stopping.set()
        timer = threading.Timer(grace_s, exit_now, args=(f"the dataflow did not stop within {grace_s:g} s of Ctrl-C",))
        timer.daemon = True
        timer.start()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, on_interrupt)


def cmd_run(args) -> int:
    from predmaint.pipelines.runner import run_pipeline

    _exit_if_stuck(STOP_GRACE_S)
    settings = _settings(args)
    if args.no_recovery:
        settings = settings.replace(recovery=dataclasses.replace(settings.recovery, enabled=False))
    addresses = args.addresses.split(";") if args.addresses else None
    # The status line is said without -v (metrics.status_interval_s; 0 turns it off).
    logging.getLogger("predmaint.status").setLevel(logging.INFO)
    run_pipeline(settings, workers=args.workers, tail=not args.until_end,
                 process_id=args.process_id, addresses=addresses)
    return 0


def cmd_status(args) -> int:
    """Print the figures of a running pipeline, read from its /metrics endpoint."""
    from predmaint.connectors.metrics import format_report, read_status

    url = args.url
    if not url:
        settings = _settings(args)
        if not settings.metrics.port:
            raise ConfigurationError(f"{settings.source}: metrics.port is 0 (endpoint off); give --url")
        url = f"http://localhost:{settings.metrics.port}/metrics"
    print(format_report(url, read_status(url)))
    return 0


def cmd_demo(args) -> int:
    """Embedded broker + simulator + pipeline, bounded, then a per-asset summary."""
    from predmaint.connectors import kafka_io
    from predmaint.connectors.local_services import EmbeddedBroker
    from predmaint.connectors.storage import open_reader
    from predmaint.pipelines.runner import run_pipeline, simulate
    from predmaint.pipelines.summary import format_table, summarise, verdict

    settings = _settings(args)
    workdir = Path(args.workdir)
    _reset_demo_workdir(workdir, force=args.force)
    storage = settings.storage
    if not os.environ.get("PREDMAINT_STORAGE_URL"):
        storage = dataclasses.replace(storage, kind="sqlite", sqlite_path=str(workdir / "store.sqlite"))
    settings = settings.replace(
        storage=storage,
        recovery=dataclasses.replace(settings.recovery, dir=str(workdir / "recovery")),
        simulator=dataclasses.replace(settings.simulator,
                                      ground_truth_path=str(workdir / "ground_truth.json")))
    started = time.monotonic()
    with EmbeddedBroker() as broker:
        settings = settings.replace(kafka=dataclasses.replace(settings.kafka, bootstrap=broker.bootstrap))
        print(f"demo: embedded Kafka-protocol broker (Tansu) on {broker.bootstrap}", flush=True)
        truth = simulate(settings)
        print(f"demo: simulated {settings.simulator.hours:g} h of {len(settings.fleet)} assets: "
              f"{truth['messages']} messages + {truth['invalid_messages']} invalid ones "
              f"({time.monotonic() - started:.1f} s)")
        t0 = time.monotonic()
        run_pipeline(settings, workers=args.workers, tail=False)
        print(f"demo: pipeline consumed the topic in {time.monotonic() - t0:.1f} s")
        dead = kafka_io.read_topic(settings.kafka, settings.kafka.dead_letter_topic)
        delivered = _demo_delivery(settings, workdir)
    where = storage.url if storage.kind != "sqlite" else storage.sqlite_path
    print(f"demo: results in {storage.kind} store {where}; {len(dead)} message(s) in the dead-letter topic:")
    for _, value in dead:
        assert value is not None  # the pipeline writes every dead letter with a value
        d = json.loads(value)
        print(f"  - step={d['step']} asset={d['asset']} reason={d['reason']}")
    print(delivered)
    from predmaint.pipelines.report import render_report

    reader = open_reader(storage)
    try:
        rows = summarise(settings, reader, truth)
        page = render_report(settings, reader, workdir / "report")
    finally:
        reader.close()
    print()
    print(format_table(rows))
    ok, text = verdict(rows)
    print(f"\ndemo: report written to {page}")
    print(f"demo: {'OK' if ok else 'FAILED'}: {text} (total {time.monotonic() - started:.0f} s)")
    return 0 if ok else 1


#: Written into the folder ``predmaint demo`` creates; only such a folder is deleted without --force.
DEMO_MARKER = ".predmaint-demo"
#: What a demo workdir holds (one made before the marker existed is recognised by these).
_DEMO_CONTENTS = {DEMO_MARKER, "store.sqlite", "store.sqlite-wal", "store.sqlite-shm", "recovery",
                  "ground_truth.json", "outbox.sqlite", "outbox.sqlite-wal", "outbox.sqlite-shm", "report"}


def _reset_demo_workdir(workdir: Path, *, force: bool) -> None:
    """Empty ``workdir`` for a new demo, refusing to delete a folder the demo did not make (unless ``force``)."""
    if workdir.exists() or workdir.is_symlink():
        if not workdir.is_dir() or workdir.is_symlink():
            raise ConfigurationError(f"--workdir: {workdir} is not a folder; not replacing it")
        names = {p.name for p in workdir.iterdir()}
        if names and not force and DEMO_MARKER not in names and not names <= _DEMO_CONTENTS:
            raise ConfigurationError(
                f"--workdir: {workdir} exists and is not a predmaint demo folder (no {DEMO_MARKER}; it holds "
                f"{', '.join(sorted(names)[:3])}{', ...' if len(names) > 3 else ''}); the demo deletes its "
                f"workdir, so choose another one, or add --force to delete it")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / DEMO_MARKER).write_text("Made by predmaint demo; the next demo with this --workdir deletes it.\n")


def _interrupted(*_) -> None:
    raise KeyboardInterrupt


#: Commands that a SIGTERM unwinds like Ctrl-C (``finally`` blocks and exit hooks run, exit 130): they
#: start servers or processes of their own that must not outlive them (demo's embedded broker; bench's
#: broker, InfluxDB and spawned runs: one of those lived on for 50 minutes after a ``kill``). Commands
#: that stop on SIGTERM in their own way set their own handlers.
UNWIND_ON_SIGTERM = ("demo", "bench")


def unwind_on_sigterm() -> None:
    """From now on a SIGTERM raises ``KeyboardInterrupt`` in the main thread, as Ctrl-C does."""
    import signal

    signal.signal(signal.SIGTERM, _interrupted)


def cmd_check_config(args) -> int:
    """Validate the whole configuration, then reach Kafka and the storage with it."""
    from predmaint.pipelines import checks

    settings = _settings(args)
    skip = set(args.skip or ())
    services = [s for s in checks.SERVICES if s not in skip]
    for line in checks.validate(settings, services):
        print(f"ok  {line}", flush=True)
    if args.no_probe or not services:
        print(f"check-config: {settings.source}: valid (servers not contacted)")
        return 0
    checks.probe(settings, services, kafka_timeout_s=args.timeout,
                 report=lambda line: print(line, flush=True))
    print(f"check-config: {settings.source}: OK")
    return 0


def cmd_notify(args) -> int:
    """Deliver alert events from the alerts topic to the configured targets."""
    import signal
    import threading

    from predmaint.connectors import kafka_io
    from predmaint.connectors.deadletters import deadletter_to_influx
    from predmaint.connectors.notify import run_notify
    from predmaint.connectors.storage import open_writer
    from predmaint.domain import Point
    from predmaint.settings import build_targets

    settings = _settings(args)
    # Every target's secret first, then the broker, each in one line: a daemon started against an
    # unreachable broker says so at once instead of retrying it silently (it rides out later outages).
    for target in build_targets(settings.notify.targets).values():
        target.secret()
    kafka_io.probe(settings.kafka, timeout_s=kafka_io.STARTUP_PROBE_TIMEOUT_S)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # Opened on the first dead letter, without retries: a slow or absent
    # InfluxDB must neither delay start-up nor stall delivery (the outbox keeps
    # every dead letter anyway).
    writer = None

    def record_dead_letter(record: dict) -> None:
        nonlocal writer
        if writer is None:
            writer = open_writer(dataclasses.replace(settings.storage, max_retries=0))
        d = deadletter_to_influx(record)
        writer.write([Point(d["measurement"], d["tags"], d["fields"], d["time"])])

    try:
        stats = run_notify(kafka=settings.kafka, topic=settings.kafka.alerts_topic,
                           outbox_path=settings.notify.outbox_path, targets=settings.notify.targets,
                           stop_after_idle_s=args.exit_when_idle, on_deadletter=record_dead_letter, stop=stop)
    finally:
        if writer is not None:
            writer.close()
    print(stats)
    return 0


def cmd_receiver(args) -> int:
    import signal
    import threading

    from predmaint.connectors.webhook_receiver import WebhookReceiver

    secret = os.environ.get(args.secret_env)
    if not secret:
        raise ConfigurationError(f"set the signing secret in ${args.secret_env}")
    logging.getLogger().setLevel(logging.INFO)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with WebhookReceiver(secret, args.host, args.port) as rx:
        print(f"receiver: listening on {rx.url}", flush=True)
        seen = 0
        while not stop.wait(1.0):
            for e in rx.events[seen:]:
                print(json.dumps(e), flush=True)
            seen = len(rx.events)
    return 0


def cmd_shelve(args) -> int:
    """Withhold notifications of a rule (or all rules) on an asset until a time; list or remove shelves."""
    from predmaint.connectors.shelves import ANY_TIME, put_shelf, read_shelves, remove_shelves

    settings = _settings(args)
    path = Path(settings.suppression.shelves_path)
    if args.action == "list":
        shelves = read_shelves(path) if path.exists() else []
        for s in shelves:
            if not args.asset or s.asset == args.asset:
                print(f"{s.asset or '*'}\trule={s.rule or '*'}\t{s.start} .. {s.end}\t{s.reason}")
        if not shelves:
            print(f"no shelves in {path}")
        return 0
    if not args.asset:
        raise ConfigurationError(f"--asset: required to {args.action} a shelf")
    if settings.asset(args.asset) is None:
        raise ConfigurationError(f"--asset: {args.asset!r} is not in the fleet of {settings.source}")
    if args.rule and args.rule not in {r.name for r in settings.alert_rules}:
        raise ConfigurationError(f"--rule: no alert rule named {args.rule!r} in {settings.source}")
    if args.action == "remove":
        removed = remove_shelves(path, asset=args.asset, rule=args.rule)
        if not removed:
            raise ConfigurationError(f"--asset: no shelf of {args.asset}{' rule ' + args.rule if args.rule else ''} "
                                     f"in {path} (predmaint shelve list shows them)")
        for s in removed:
            print(f"removed shelf of {s.asset} rule={s.rule or '*'} from {s.start} until {s.end}")
        return 0
    if not args.until:
        raise ConfigurationError("--until: required to add a shelf (ISO 8601 time with zone)")
    shelf, replaced = put_shelf(path, asset=args.asset, rule=args.rule or "", until=args.until,
                                reason=args.reason, start=args.start)
    verb = "updated the shelf of" if replaced else "shelved"
    since = "" if shelf.start == ANY_TIME else f" from {shelf.start}"
    print(f"{verb} {shelf.asset} rule={shelf.rule or '*'}{since} until {shelf.end}: {shelf.reason}")
    return 0


def _demo_delivery(settings: Settings, workdir: Path) -> str:
    """Deliver the demo's alert events as signed webhooks to a local receiver."""
    import base64
    import secrets as secrets_module

    from predmaint.connectors.notify import run_notify
    from predmaint.connectors.webhook_receiver import WebhookReceiver

    secret = "whsec_" + base64.b64encode(secrets_module.token_bytes(24)).decode()
    os.environ["PREDMAINT_DEMO_WEBHOOK_SECRET"] = secret
    with WebhookReceiver(secret) as receiver:
        target = {"name": "demo-receiver", "kind": "webhook", "url": receiver.url,
                  "secret_env": "PREDMAINT_DEMO_WEBHOOK_SECRET", "timeout_s": 5}
        run_notify(kafka=settings.kafka, topic=settings.kafka.alerts_topic,
                   outbox_path=str(workdir / "outbox.sqlite"), targets=[target], stop_after_idle_s=2.0)
    lines = [f"demo: {len(receiver.events)} alert event(s) delivered to a local webhook receiver, "
             f"signatures verified ({receiver.rejected} rejected, {receiver.duplicates} duplicate(s) ignored):"]
    for e in (delivery["data"] for delivery in receiver.events):
        top = e["explanation"][0].get("feature", "-") if e.get("explanation") else "-"
        fault = f", fault {e['fault']}" if e.get("fault") else ""
        lines.append(f"  - {e['time']} {e['asset']}/{e['sensor']} {e['rule']} {e['state']} {e['severity']} "
                     f"(value {e['value']:.1f}, top feature {top}{fault})")
    return "\n".join(lines)


#: The environment variable naming the settings file when ``--config`` is not given (empty: the default).
CONFIG_ENV = "PREDMAINT_CONFIG"
#: ``--config``'s help; the option is taken before or after the command name.
CONFIG_HELP = f"YAML settings file (default: ${CONFIG_ENV}, else the packaged default.yaml)"


def _config_option_everywhere(parser: argparse.ArgumentParser) -> None:
    """Let every (sub)command take ``--config`` after its name too, without undoing one given before it.

    argparse copies a subcommand's defaults over the values parsed before the
    command name, so the subcommands' ``--config`` defaults to SUPPRESS (no value: keep the earlier one).
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                existing = subparser._option_string_actions.get("--config")
                if existing is None:
                    subparser.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE", help=CONFIG_HELP)
                else:
                    existing.default = argparse.SUPPRESS
                _config_option_everywhere(subparser)


def _services(args) -> tuple[str, ...] | None:
    """What a command connects to, so its settings are checked for that first; ``None``: it reads no settings."""
    command = args.command
    if command == "receiver":
        return None
    if command == "run":
        return ("kafka", "storage")
    if command in ("simulate", "notify"):
        return ("kafka",)
    if command == "report" and not getattr(args, "sqlite", None):
        return ("storage",)
    if command == "dashboards" and getattr(args, "dashboards_command", None) == "check":
        return ("storage",)
    # demo and bench start their own servers; check-config checks everything itself.
    return ()


def _version() -> str:
    from predmaint import __version__

    return f"predmaint {__version__}"


def build_parser() -> argparse.ArgumentParser:
    """The ``predmaint`` command's parser, every subcommand included."""
    parser = argparse.ArgumentParser(prog="predmaint", description=__doc__)
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log predmaint's progress (INFO) and the client libraries' warnings")
    parser.add_argument("--version", action="version", version=_version(), help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check-config", help="validate the configuration, then reach Kafka and the storage with it")
    p.add_argument("--no-probe", action="store_true", help="only validate; contact no server")
    p.add_argument("--skip", action="append", choices=("kafka", "storage"),
                   help="do not contact this service (repeatable)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for a Kafka broker (default 10)")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("simulate", help="produce a simulated fleet's telemetry to Kafka")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (overrides the config)")
    p.add_argument("--realtime", action="store_true",
                   help="stamp telemetry at wall-clock time and produce it as that time comes, until stopped "
                        "(simulator.mode: realtime; history of simulator.realtime_backfill_h first)")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="with --realtime: stop after this many seconds (default: until SIGTERM or Ctrl-C)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("run", help="run the streaming pipeline")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (overrides kafka.bootstrap)")
    p.add_argument("-w", "--workers", type=int, default=1, help="worker threads in this process")
    p.add_argument("-i", "--process-id", type=int, help="this process's index in a cluster")
    p.add_argument("-a", "--addresses", help="all cluster processes, 'host:port;host:port'")
    p.add_argument("--until-end", action="store_true", help="stop at the end of the topic instead of tailing")
    p.add_argument("--no-recovery", action="store_true", help="disable bytewax recovery (not advised)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("notify", help="deliver alert events to webhooks and CMMS work orders")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (overrides kafka.bootstrap)")
    p.add_argument("--exit-when-idle", type=float, metavar="SECONDS",
                   help="return once nothing arrived or is pending for this long (default: run until stopped)")
    p.set_defaults(func=cmd_notify)

    p = sub.add_parser("shelve", help="withhold alert notifications for an asset until a time; list, remove")
    p.add_argument("action", nargs="?", choices=("add", "list", "remove"), default="add",
                   help="add (default) a shelf, list the shelves, or remove an asset's (of --rule only, if given)")
    p.add_argument("--asset", help="asset id (required to add or remove; filters list)")
    p.add_argument("--rule", help="rule name (default: every rule)")
    p.add_argument("--until", help="add: end, ISO 8601 time with zone, e.g. 2026-01-02T06:00:00Z")
    p.add_argument("--start", help="add: start, ISO 8601 time with zone (default: any time; alerts are judged in event time)")
    p.add_argument("--reason", default="", help="add: why, shown with the withheld notifications")
    p.set_defaults(func=cmd_shelve)

    p = sub.add_parser("receiver", help="run a webhook receiver that verifies signatures (to try alerts)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8099, help="port to listen on (default 8099)")
    p.add_argument("--secret-env", default="PREDMAINT_WEBHOOK_SECRET",
                   help="environment variable holding the signing secret (default PREDMAINT_WEBHOOK_SECRET)")
    p.set_defaults(func=cmd_receiver)

    p = sub.add_parser("demo", help="embedded broker + simulator + pipeline, then a summary")
    p.add_argument("--workdir", default=".predmaint/demo",
                   help="folder for the demo's store, recovery and report (default .predmaint/demo); "
                        "deleted and re-created, so it must be a previous demo's or new")
    p.add_argument("--force", action="store_true", help="delete --workdir even if a demo did not make it")
    p.add_argument("-w", "--workers", type=int, default=1, help="worker threads of the pipeline (default 1)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("status", help="print a running pipeline's figures (its /metrics endpoint)")
    p.add_argument("--url", help="the endpoint (default: http://localhost:<metrics.port>/metrics)")
    p.set_defaults(func=cmd_status)

    from predmaint.dashboards import push
    from predmaint.pipelines import bench, chaos, evaluate, report

    bench.add_parser(sub)
    chaos.add_parser(sub)
    evaluate.add_parser(sub)
    report.add_parser(sub)
    push.add_parser(sub)
    _config_option_everywhere(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.config:
        args.config = os.environ.get(CONFIG_ENV) or None
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Client libraries speak only with -v, and then only warnings: their INFO lines (connections,
    # metadata) outnumbered predmaint's own four to one; predmaint reports their failures itself.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING if args.verbose else logging.CRITICAL)
    # The one place errors become messages and exit codes (predmaint.errors):
    # 2 when a setting or argument must change, 1 for other failures. Anything
    # else is a bug and keeps its traceback.
    if args.command in UNWIND_ON_SIGTERM:
        unwind_on_sigterm()
    try:
        services = _services(args)
        if services is not None:
            # The whole configuration (model specs, registry probe, secrets named) before any connection.
            from predmaint.pipelines import checks

            args.settings = load_settings(args.config)
            checks.validate(args.settings, services)
        return args.func(args)
    except PredmaintError as exc:
        kind = "configuration error" if isinstance(exc, ConfigurationError) else type(exc).__name__
        print(f"predmaint {args.command}: {kind}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM for the commands of UNWIND_ON_SIGTERM
        print(f"predmaint {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
