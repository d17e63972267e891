"""``predmaint evaluate``: any labelled corpus through the real dataflow, scored beside the published detectors.

Every recording of a corpus (:mod:`predmaint.connectors.datasets`) becomes one
asset of a one-asset fleet added to the user's settings (the packaged default
unless ``--config``), and its readings go through
:func:`predmaint.pipelines.runner.replay`: the same
:func:`~predmaint.pipelines.dataflow.build_flow` as ``predmaint run``, with
bytewax's testing source and sinks. What is scored is what the flow emits:
the champion's health points and the alert events of the rules on health.
Nothing here is a parameter of a file or a corpus: the windows, models and
rules are the settings' own, the facts of each dataset come from its adapter,
and the targets from :data:`TARGETS_FILE` (not the product's configuration).

* **NAB**: an alert *raised* is a detection; NAB's normalised score under its
  three profiles, overall and per category, beside every published detector
  on the same files (:mod:`predmaint.models.nab_corpus`).
* **SKAB**: a row is predicted anomalous while an alert of its asset is open and
  its value has not come back (from the start of the window that raised it to
  the start of the first window of the healthy run that cleared it: the
  off-delay's windows, judged healthy, only confirm the recovery); outlier F1/FAR/MAR over the test parts and the changepoint NAB
  score (:mod:`predmaint.models.skab_scoring`).
* **IMS**: per bearing, the first alert, its lead time before the last live
  snapshot, alerts in the quiet period, and alerts on healthy bearings before
  the failing bearing's first alert.
* **CWRU**: per fault, the normal recording then the fault recording as one
  stream; ROC AUC of the champion's raw score on the fault windows against
  the normal windows after the first half, and the share of alert events in
  the fault part whose ``fault`` names the recording's fault
  (:mod:`predmaint.features.diagnosis`).
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import importlib.resources
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from predmaint.connectors.datasets import (
    load_cwru,
    load_ims,
    load_nab,
    load_nab_profiles,
    load_nab_published,
    load_skab,
)
from predmaint.connectors.datasets.base import Recording, natural_key
from predmaint.errors import ConfigurationError, EvaluationError
from predmaint.models.alerting import ROUTINE_REASON
from predmaint.models.nab_corpus import score_corpus, score_published
from predmaint.models.skab_scoring import changepoint_score, changepoints_from_outliers, outlier_score, published_table
from predmaint.pipelines import steps
from predmaint.pipelines.runner import Replay, replay
from predmaint.pipelines.scoreboard import finite, format_result, json_default, plot_result, targets_met
from predmaint.settings import Settings, load_settings
from predmaint.settings.loading import parse_fleet

__all__ = ["CORPUS_FOLDERS", "SHARED_DATA_ENV", "TARGETS_FILE", "add_parser", "evaluate_corpus", "run",
           "shared_data_dir", "targets"]

#: Names the folder that holds the datasets (``nab/``, ``ims_bearing_test2/``...), when ``--data`` does not.
SHARED_DATA_ENV = "PREDMAINT_SHARED_DATA"
#: Each corpus' folder under the shared data; IMS has one folder per run.
CORPUS_FOLDERS: dict[str, tuple[str, ...]] = {
    "nab": ("nab",), "skab": ("skab",), "ims": ("ims_bearing_test2", "ims_bearing_test1"), "cwru": ("cwru_bearing",)}
#: The evaluation's targets (package data of predmaint.pipelines).
TARGETS_FILE = "evaluation_targets.yaml"
#: CWRU: samples between snapshot starts (a quarter of 4,096; see load_cwru).
CWRU_HOP = 1024
#: Alert events that count as a detection: one per episode.
DETECTION_STATES = ("raised",)


def shared_data_dir() -> Path:
    """The datasets' folder, ``$PREDMAINT_SHARED_DATA``; never guessed from where predmaint is installed."""
    value = os.environ.get(SHARED_DATA_ENV)
    if not value:
        raise ConfigurationError(f"no dataset folder: give --data DIR or set {SHARED_DATA_ENV} "
                                 f"(the folder holding nab/, skab/, ims_bearing_test2/, cwru_bearing/)")
    return Path(value)


def targets() -> dict[str, dict[str, float]]:
    """The targets of each corpus (``evaluation_targets.yaml``)."""
    text = importlib.resources.files("predmaint.pipelines").joinpath(TARGETS_FILE).read_text()
    return yaml.safe_load(text)


# ----------------------------------------------------------------------------
# Replaying one recording
# ----------------------------------------------------------------------------


def recording_settings(settings: Settings, rec: Recording) -> Settings:
    """``settings`` with a fleet of one asset: the recording's registry entry."""
    doc = [{"site": "evaluation", "lines": [{"line": rec.corpus, "assets": [rec.registry]}]}]
    return settings.replace(fleet=parse_fleet(doc, f"{rec.corpus} {rec.name}: registry"))


def detection_rules(settings: Settings) -> set[str]:
    """The alert rules on the champion's verdict (its health, its novelty): their raised events are the detections."""
    return {r.name for r in settings.alert_rules if r.metric in ("health", steps.NOVELTY)}


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


@dataclasses.dataclass(frozen=True)
class Replayed:
    """One recording replayed: its detections, open alert intervals and the champion's window scores."""

    recording: Recording
    detections_ms: tuple[int, ...]
    #: (start, end) epoch ms of the windows judged anomalous: from the start of the window that
    #: raised an alert to the start of the first healthy window of the run that cleared it (end
    #: None: still open).
    open_ms: tuple[tuple[int, int | None], ...]
    #: The champion's health points: (window end ms, sensor, health, raw score, phase).
    windows: tuple[tuple[int, str, float, float, str], ...]
    alerts: tuple[dict, ...]
    dead_letters: int


def replay_recording(settings: Settings, rec: Recording) -> Replayed:
    s = recording_settings(settings, rec)
    out: Replay = replay(s, rec.stream())
    rules = detection_rules(s)
    # A routine (the alert rules' routine_days) is recorded but not news: no one is told, nothing is detected.
    events = [a for a in out.alerts if a["rule"] in rules and not a.get("suppressed_by", "").startswith(ROUTINE_REASON)]
    detections = tuple(_ms(a["time"]) for a in events if a["state"] in DETECTION_STATES)
    opened: dict[str, int] = {}
    intervals: list[tuple[int, int | None]] = []
    for a in events:
        length_ms = int(steps.sensor_window_length_s(s, rec.asset, a["sensor"]) * 1000)
        if a["state"] == "raised":
            opened[a["alert_id"]] = _ms(a["time"]) - length_ms
        elif a["state"] == "cleared" and a["alert_id"] in opened:
            # Judged anomalous until the first window back on the healthy side (the off-delay's
            # windows only confirmed the recovery): from the start of the raising window to its start.
            intervals.append((opened.pop(a["alert_id"]), _ms(a.get("recovered_at") or a["time"]) - length_ms))
    intervals += [(t, None) for t in opened.values()]
    # A health point without health or raw score (non-finite, so not written) has no score to rank.
    windows = tuple(sorted((p.time_ns // 1_000_000, p.tags["sensor"], float(p.fields["health"]),
                            float(p.fields["raw_score"]), str(p.fields["phase"]))
                           for p in out.health(s.model.label) if "health" in p.fields and "raw_score" in p.fields))
    return Replayed(rec, detections, tuple(sorted(intervals, key=lambda iv: iv[0])), windows, tuple(events),
                    len(out.dead_letters))


#: What forked workers replay, set just before the pool forks: recordings read their readings through
#: closures, which do not pickle, and a forked worker needs nothing sent.
_FORKED: tuple[Settings, Sequence[Recording]] | None = None


def _replay_forked(i: int) -> tuple:
    assert _FORKED is not None
    settings, recordings = _FORKED
    r = replay_recording(settings, recordings[i])
    return i, r.detections_ms, r.open_ms, r.windows, r.alerts, r.dead_letters


def default_jobs() -> int:
    """The CPUs this process may use: one replay each."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def replay_all(settings: Settings, recordings: Sequence[Recording], corpus: str,
               progress: Callable[[str], None], jobs: int = 1) -> list[Replayed]:
    """Replay every recording, in ``jobs`` forked processes at once (each its own dataflow), in order.

    A recording's replay is independent of every other (its own one-asset fleet and flow), so
    they run side by side; results come back in the recordings' order, whatever finished first.
    """
    t0 = time.monotonic()
    jobs = min(jobs, len(recordings))
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        out = []
        for i, rec in enumerate(recordings, 1):
            out.append(replay_recording(settings, rec))
            progress(f"evaluate {corpus}: {i}/{len(recordings)} {rec.name} ({time.monotonic() - t0:.0f} s)")
        return out
    global _FORKED
    _FORKED = (settings, recordings)
    done: dict[int, Replayed] = {}
    try:
        # Fork, not spawn: nothing to pickle. The parent runs no dataflow while the pool lives.
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for i, *fields in pool.imap_unordered(_replay_forked, range(len(recordings))):
                done[i] = Replayed(recordings[i], *fields)
                progress(f"evaluate {corpus}: {len(done)}/{len(recordings)} {recordings[i].name} "
                         f"({time.monotonic() - t0:.0f} s, {jobs} processes)")
    finally:
        _FORKED = None
    return [done[i] for i in range(len(recordings))]


# ----------------------------------------------------------------------------
# Scoring per corpus
# ----------------------------------------------------------------------------


def score_nab(data: Path, replayed: list[Replayed]) -> dict[str, Any]:
    labels = {r.recording.name: r.recording.labels for r in replayed}
    profiles = load_nab_profiles(data)
    detections = {name: [np.datetime64(ms, "ms") for ms in r.detections_ms]
                  for name, r in ((r.recording.name, r) for r in replayed)}
    ours = score_corpus(labels, detections, profiles)
    # A corpus of one's own has no published results beside it: ours alone is scored.
    published = (score_published(labels, load_nab_published(data, files=sorted(labels)), profiles)
                 if (data / "results").is_dir() else {})
    board = {det: {p: round(s.score, 2) for p, s in per.items()} for det, per in published.items()
             if all(not s.missing for s in per.values())}
    return {
        "files": len(labels),
        "windows": sum(len(lab.windows) for lab in labels.values()),
        "detections": sum(len(r.detections_ms) for r in replayed),
        "score": {p: round(s.score, 2) for p, s in ours.items()},
        "by_category": {p: {c: round(v, 2) for c, v in s.by_category.items()} for p, s in ours.items()},
        "by_file": {name: round(v, 3) for name, v in ours["standard"].per_file.items()},
        "published": board,
    }


def _predicted_rows(ts_ms: np.ndarray, open_ms: Iterable[tuple[int, int | None]]) -> np.ndarray:
    pred = np.zeros(ts_ms.shape[0], dtype=np.int8)
    for start, end in open_ms:
        pred[(ts_ms >= start) & (ts_ms < (end if end is not None else np.iinfo(np.int64).max))] = 1
    return pred


def score_skab(replayed: list[Replayed]) -> dict[str, Any]:
    outliers, changepoints, free_alerts = [], [], 0
    for r in replayed:
        lab = r.recording.labels
        if not lab.labelled:
            free_alerts += len(r.detections_ms)
            continue
        ts, anomaly, cp = lab.test_part()
        pred = _predicted_rows(ts, r.open_ms)
        outliers.append((anomaly, pred))
        changepoints.append((ts, cp, changepoints_from_outliers(pred)))
    o = outlier_score(outliers)
    c = changepoint_score(changepoints)
    pub = published_table()
    return {
        "experiments": o.experiments, "f1": round(o.f1, 3), "far_pct": round(o.far_pct, 2),
        "mar_pct": round(o.mar_pct, 2),
        "changepoint": {p: round(v, 2) for p, v in c.scores.items()},
        "changepoint_missed": c.missed, "changepoint_false_positives": c.false_positives,
        "anomaly_free_alerts": free_alerts,
        "published": {"experiments": pub.experiments, "note": pub.note,
                      "outlier": {d: {"f1": f1, "far_pct": far, "mar_pct": mar} for d, (f1, far, mar) in pub.outlier.items()},
                      "changepoint": {d: v[0] for d, v in pub.changepoint.items()}},
    }


def _snapshot_at(lab, t_ms: int) -> int:
    """The snapshot whose window raised an alert at ``t_ms``: the last one before it."""
    i = int(np.searchsorted(lab.ts_ms, t_ms, side="left")) - 1
    return int(lab.file_index[max(i, 0)])


#: Result key of a bearing's health curve: plotted, left out of the JSON line (thousands of points).
CURVE_KEY = "health_curve"


def _health_curve(r: Replayed) -> dict[str, list]:
    """The bearing's worst champion health per snapshot, and the snapshots whose windows raised an alert."""
    lab = r.recording.labels
    worst: dict[int, float] = {}
    for end_ms, _, health, _, phase in r.windows:
        if phase == "monitoring":
            snap = _snapshot_at(lab, end_ms)
            worst[snap] = min(health, worst.get(snap, 100.0))
    return {"snapshot": sorted(worst), "health": [worst[k] for k in sorted(worst)],
            "alerts": sorted(_snapshot_at(lab, t) for t in r.detections_ms),
            "last_live_snapshot": lab.last_live_snapshot, "quiet_before_snapshot": lab.quiet_before_snapshot}


def score_ims(replayed: list[Replayed]) -> dict[str, Any]:
    runs: dict[str, dict[str, Any]] = {}
    for r in replayed:
        lab = r.recording.labels
        run = runs.setdefault(lab.run, {"bearings": {}, "failed": list(lab.failed_bearings or ())})
        first = min(r.detections_ms) if r.detections_ms else None
        # A run without ground truth (not in IMS_RUNS) has no quiet period and no failing bearing to count from.
        quiet = None if lab.quiet_before_ts_ms is None else \
            sum(t < lab.quiet_before_ts_ms for t in r.detections_ms)
        run["bearings"][lab.bearing] = {
            "failed": lab.failed, "fault": lab.fault, "alerts": len(r.detections_ms),
            "first_alert_snapshot": None if first is None else _snapshot_at(lab, first),
            "lead_h": None if first is None else round((lab.last_live_ts_ms - first) / 3.6e6, 1),
            "quiet_alerts": quiet, "_first_ms": first,
            CURVE_KEY: _health_curve(r),
        }
    for run in runs.values():
        failed_firsts = [b["_first_ms"] for b in run["bearings"].values() if b["failed"] and b["_first_ms"]]
        earliest_failed = min(failed_firsts) if failed_firsts else None
        for b in run["bearings"].values():
            first = b.pop("_first_ms")
            b["before_failed_bearing"] = None if b["failed"] is None else \
                bool(not b["failed"] and first is not None and (earliest_failed is None or first < earliest_failed))
    return runs


def _auc(negative: Sequence[float], positive: Sequence[float]) -> float:
    """ROC AUC as the probability that a positive outscores a negative (ties count half)."""
    neg, pos = np.asarray(negative, float), np.asarray(positive, float)
    if neg.size == 0 or pos.size == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (pos.size * neg.size))


def evaluate_cwru(settings: Settings, recordings: list[Recording], progress: Callable[[str], None],
                  jobs: int = 1) -> dict:
    normal = [r for r in recordings if r.labels.fault == "normal"]
    if not normal:
        raise EvaluationError("cwru: no normal recording (normal_*.mat) to learn from")
    base = normal[0]
    base_readings = list(base.stream())
    step = base_readings[1].ts_ms - base_readings[0].ts_ms if len(base_readings) > 1 else 1000
    faults, joined, starts = [], [], []
    for rec in recordings:
        if rec.labels.fault == "normal":
            continue
        fault = list(rec.stream())
        shift = base_readings[-1].ts_ms + step - fault[0].ts_ms
        stream = base_readings + [dataclasses.replace(x, asset=base.asset, ts_ms=x.ts_ms + shift) for x in fault]
        faults.append(rec)
        joined.append(dataclasses.replace(base, name=f"{base.name}+{rec.name}", readings=tuple(stream)))
        starts.append(stream[len(base_readings)].ts_ms)
    half = base_readings[len(base_readings) // 2].ts_ms
    out: dict[str, Any] = {}
    for rec, r, fault_start in zip(faults, replay_all(settings, joined, "cwru", progress, jobs), starts):
        neg = [w[3] for w in r.windows if half < w[0] <= fault_start]
        pos = [w[3] for w in r.windows if w[0] > fault_start]
        named = [a for a in r.alerts if _ms(a["time"]) > fault_start and a["state"] != "cleared"]
        right = [a for a in named if a.get("fault") == rec.labels.fault]
        out[rec.labels.fault] = {"file": rec.name, "auc": round(_auc(neg, pos), 3), "normal_windows": len(neg),
                                 "fault_windows": len(pos), "alerts": len(named),
                                 "fault_type_share": round(len(right) / len(named), 3) if named else 0.0}
    return out


def evaluate_corpus(settings: Settings, corpus: str, data: Path, *, series: str | None = None,
                    progress: Callable[[str], None] = lambda _: None, jobs: int = 1) -> dict[str, Any]:
    """Evaluate one corpus, ``jobs`` recordings at once; returns the JSON-ready result (without targets).

    Only the champion is scored, so the challengers are left out of the replays: each model
    of a sensor learns on its own, so the champion's health is the same without them.
    """
    t0 = time.monotonic()
    settings = settings.replace(challengers=())
    if corpus == "nab":
        result = score_nab(data, replay_all(settings, load_nab(data, series), corpus, progress, jobs))
    elif corpus == "skab":
        result = score_skab(replay_all(settings, load_skab(data, series), corpus, progress, jobs))
    elif corpus == "ims":
        recordings = [rec for folder in _ims_folders(data) for rec in load_ims(folder)
                      if series is None or fnmatch.fnmatch(rec.name, series)]
        result = score_ims(replay_all(settings, recordings, corpus, progress, jobs))
    elif corpus == "cwru":
        # One snapshot per vibration window, a quarter-snapshot apart in the recording: ~110 windows per file.
        spacing = settings.window.length_for("vibration")
        result = evaluate_cwru(settings, load_cwru(data, series, snapshot_spacing_s=spacing,
                                                   snapshot_hop=CWRU_HOP), progress, jobs)
    else:
        raise ConfigurationError(f"evaluate: unknown corpus {corpus!r}; one of {sorted(CORPUS_FOLDERS)}")
    return {"corpus": corpus, "model": settings.model.label, "seconds": round(time.monotonic() - t0, 1),
            **result}


def _ims_folders(data: Path) -> list[Path]:
    """An IMS run folder, or a folder of runs: one folder per test, the shared ones first.

    Every other folder whose name holds ``ims`` and that holds a table is a run too (a third
    test put beside the shared two is evaluated, not skipped); its labels are those of
    :data:`~predmaint.connectors.datasets.ims.IMS_RUNS` if its fingerprint is known, else unknown.
    """
    if any(data.glob("*.csv")) or (data / "features").is_dir():
        return [data]
    shared = [data / name for name in CORPUS_FOLDERS["ims"] if (data / name).is_dir()]
    others = sorted((p for p in data.iterdir() if p.is_dir() and p not in shared and "ims" in p.name.lower()
                     and any(p.rglob("*.csv"))), key=lambda p: natural_key(p.name))
    return shared + others or [data]


# ----------------------------------------------------------------------------
# Targets, output, command line
# ----------------------------------------------------------------------------


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("evaluate", help="score the configured models on labelled corpora through the dataflow",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpora", nargs="*", choices=[*sorted(CORPUS_FOLDERS), []], default=None, metavar="CORPUS",
                   help=f"corpora to evaluate, of {sorted(CORPUS_FOLDERS)} (default: all)")
    p.add_argument("--config", default=argparse.SUPPRESS,
                   help="settings file (default: the packaged default.yaml); also accepted before the command")
    p.add_argument("--data", type=Path, help=f"the corpus folder (default: ${SHARED_DATA_ENV}/<corpus folder>)")
    p.add_argument("--series", help="NAB series, SKAB experiments, IMS bearings (test2/bearing1) or CWRU files "
                                    "to take: a glob on their names (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object per corpus on stdout")
    p.add_argument("--plot", type=Path, help="folder for one PNG per corpus (default .predmaint/evaluate)")
    p.add_argument("--check", action="store_true", help="exit 1 when a target of evaluation_targets.yaml is missed")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--jobs", "-j", type=int, default=default_jobs(),
                   help="recordings replayed at once, one process each (default: the CPUs available)")
    p.set_defaults(func=run)
    return p


def without_curves(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` without the per-bearing health curves (they are for the plot)."""
    return {k: without_curves(v) if isinstance(v, dict) else v for k, v in result.items() if k != CURVE_KEY}


def run(args: argparse.Namespace) -> int:
    """Evaluate each corpus; print its scoreboard (and JSON); 0 ok, 1 a target missed with ``--check``."""
    settings = load_settings(getattr(args, "config", None))
    corpora = args.corpora or sorted(CORPUS_FOLDERS)
    goals = targets()
    progress = (lambda _: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    missed = False
    for corpus in corpora:
        if args.data is not None:
            data = args.data
        else:
            root = shared_data_dir()
            data = root / CORPUS_FOLDERS[corpus][0] if corpus != "ims" else root
        if not data.is_dir():
            raise ConfigurationError(f"--data: folder not found: {data} (give --data or set {SHARED_DATA_ENV})")
        result = evaluate_corpus(settings, corpus, data, series=args.series, progress=progress,
                                 jobs=max(1, args.jobs))
        met = targets_met(corpus, result, goals.get(corpus, {}))
        result["targets_met"] = met
        missed |= not all(met.values())
        png = plot_result(result, (args.plot or Path(".predmaint/evaluate")) / f"evaluate-{corpus}.png")
        text = format_result(result) + "".join(f"\ntarget {k}: {'met' if ok else 'MISSED'}" for k, ok in met.items())
        print(text + f"\nplot: {png}", file=sys.stderr if args.json else sys.stdout, flush=True)
        if args.json:
            print(json.dumps({corpus: finite(without_curves(result))}, allow_nan=False, default=json_default),
                  flush=True)
    return 1 if args.check and missed else 0
