"""IMS adapter: the per-snapshot feature tables of an IMS run to failure, one asset per bearing.

Source: NSF I/UCR Center for Intelligent Maintenance Systems (IMS), University
of Cincinnati, with Rexnord Technical Services, "Bearing Data Set", NASA Ames
Prognostics Data Repository (J. Lee, H. Qiu, G. Yu, J. Lin, 2007). The
per-snapshot tables were computed by a third party (``fatemeh-studio/nasa-bearing-anomaly``
commit ``a651f94``); see ``ims_bearing_test2/SOURCE.md`` and
``ims_bearing_test1/SOURCE.md`` in the shared data.

A run is one or more CSV tables joined on ``file_index`` (the snapshot's
position in the run); one of them has the ``timestamp`` column (the original
snapshot file name's time, no zone: taken as UTC). Feature columns are named
``Bearing<N>_ch<M>_<stat>``: test 2 has one channel per bearing
(``test2_raw.csv``: rms, mean, std, max, kurt (excess), skew; optionally
``test2_spectral.csv``: 18 more), test 1 two (``test1_raw.csv``). Any table
with that column pattern works.

Each bearing ``N`` becomes asset ``ims-<run>-bearing<N>``: rig facts ``rpm``
2000 and the Rexnord ZA-2115 geometry (16 rollers per row, roller 0.331 in,
pitch 2.815 in, contact angle 15.17 deg; Qiu et al. 2006), and one vibration
sensor per accelerometer channel (``ch1``, ``ch2``) that ``reports: features``:
each snapshot is one reading carrying that channel's statistics as its overall
values (all but :data:`IMS_NOT_VIBRATION`), so the run is modelled as a plant's
vibration transmitters would be, by the vibration defaults, not as two dozen
unrelated process values. Readings are at the snapshot's real time (test 1 has
24 gaps longer than 15 min, the largest 6 d 4 h 26 min: they stay gaps).

Labels (:class:`ImsLabels`) come from :data:`IMS_RUNS`, a table of the runs'
facts keyed by the run's fingerprint (its first snapshot's file name, e.g.
``2004.02.12.10.32.39``), each fact with its source. An unknown run still
loads: its labels say ``"unknown"`` and the last snapshot is the last row.
Snapshots recorded after the rig stopped (test 2's 982 and 983) are dropped
from the readings unless ``include_after_stop=True``.

Examples
--------
>>> ims_column("Bearing3_ch2_kurt")
(3, 'ch2_kurt', 'kurt')
>>> ims_column("file_index") is None
True
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from predmaint.connectors.datasets.base import (
    Recording,
    natural_key,
    parse_floats,
    parse_times_ms,
    read_table,
    safe_id,
)
from predmaint.errors import EvaluationError
from predmaint.telemetry import Reading

__all__ = [
    "IMS_NOT_VIBRATION",
    "IMS_RIG",
    "IMS_RUNS",
    "IMS_SAMPLE_RATE_HZ",
    "ImsLabels",
    "ImsRunFacts",
    "ims_column",
    "ims_tables",
    "load_ims",
    "overall_readings",
]

_COLUMN = re.compile(r"^Bearing(\d+)_(ch\d+)_(.+)$")

#: Statistics of the tables that are not vibration: the mean of an accelerometer's signal is its
#: DC offset (the ICP bias and the DAQ's), which moves when the rig is restarted, not when a
#: bearing wears; predmaint's own features remove it too (:mod:`predmaint.features.time_domain`).
#: The tables' ``rms`` is taken about zero, so it carries that offset (``rms² = mean² + std²``;
#: test 1's channels sit at a DC of about -0.11 g beside 0.08 g of vibration): the vibration's RMS,
#: what predmaint's ``accel_rms`` is, is the ``std`` column, which is kept. Test 1 bearing 4's y
#: channel shows why: at snapshots 885 and 978 its ``rms`` jumps by 0.05 g and drops by 0.04 g
#: while its ``std`` stays at 0.078-0.080 g, a step of the offset alone.
IMS_NOT_VIBRATION = ("mean", "rms")
#: The snapshots' sample rate (ims_bearing_test2/SOURCE.md: the data fit 20.48 kHz, not the readme's 20 kHz).
IMS_SAMPLE_RATE_HZ = 20480.0

#: The rig (every run): shaft speed and Rexnord ZA-2115 geometry (ims_bearing_test2/SOURCE.md,
#: from Qiu et al. 2006: pitch 2.815 in, roller 0.331 in, 16 rollers per row, 15.17 deg).
IMS_RIG: dict[str, Any] = {
    "rpm": 2000.0,
    "bearing": {"n_elements": 16, "ball_diameter_mm": round(0.331 * 25.4, 4),
                "pitch_diameter_mm": round(2.815 * 25.4, 4), "contact_angle_deg": 15.17},
}


@dataclass(frozen=True)
class ImsRunFacts:
    """What is known of one IMS run, each fact with its source.

    Attributes
    ----------
    run : str
        ``"test1"``, ``"test2"``...
    first_snapshot : str
        The fingerprint: file name of the run's first snapshot.
    failed : dict
        Bearing -> fault (``"outer_race"``, ``"inner_race"``, ``"roller"``) of
        the bearings that failed; the other bearings of the run did not.
    last_live_snapshot : int
        ``file_index`` of the last snapshot recorded while the rig ran.
    quiet_before_snapshot : int
        No alert is acceptable on any bearing before this ``file_index``.
    sources : dict
        Fact name -> where it comes from.
    """

    run: str
    first_snapshot: str
    failed: dict[int, str]
    last_live_snapshot: int
    quiet_before_snapshot: int
    sources: dict[str, str] = field(default_factory=dict)


#: Known runs keyed by fingerprint (the first snapshot's file name).
IMS_RUNS: dict[str, ImsRunFacts] = {
    "2004.02.12.10.32.39": ImsRunFacts(
        run="test2",
        first_snapshot="2004.02.12.10.32.39",
        failed={1: "outer_race"},
        last_live_snapshot=981,
        quiet_before_snapshot=500,
        sources={
            "failed": "ims_bearing_test2/SOURCE.md 'Labels / ground truth': the run ended in an outer-race "
                      "failure of bearing 1 (IMS readme); bearings 2-4 did not fail",
            "last_live_snapshot": "ims_bearing_test2/SOURCE.md: snapshots 982 and 983 were recorded after the "
                                  "rig had stopped (RMS ~0.001-0.004); the last live snapshot is 981",
            "quiet_before_snapshot": "ims_bearing_test2/SOURCE.md: bearing-1 RMS stays at its early-run level "
                                     "over snapshots 0-499 (mean 0.0772, max 0.0802); the incipient defect is "
                                     "first seen at 540 (envelope BPFO line); evaluation.ims.quiet_before_snapshot",
        },
    ),
    "2003.10.22.12.06.24": ImsRunFacts(
        run="test1",
        first_snapshot="2003.10.22.12.06.24",
        failed={3: "inner_race", 4: "roller"},
        last_live_snapshot=2155,
        quiet_before_snapshot=1000,
        sources={
            "failed": "ims_bearing_test1/SOURCE.md 'Ground truth' (IMS readme): at the end of the test bearing 3 "
                      "had an inner-race defect and bearing 4 a roller-element defect; bearings 1 and 2 did not fail",
            "last_live_snapshot": "ims_bearing_test1/SOURCE.md: no post-shutdown tail, the last snapshot (2155) "
                                  "is the live, highest-RMS state",
            "quiet_before_snapshot": "ims_bearing_test1/SOURCE.md: alerts on bearings 3 and 4 early in the run "
                                     "(the first days) are false; it gives no snapshot. The product's detection "
                                     "issue sets the expectation at snapshot 1,000 of 2,156 (no bearing "
                                     "degrades measurably before; the failing bearings' RMS rises in the last "
                                     "quarter), which this table adopts",
        },
    ),
    # Not in the shared data: known so that the run, when it is evaluated, is judged on its facts
    # (its first snapshot, the failed bearing, the rig's stop) instead of reported as unknown.
    "2004.03.04.09.27.46": ImsRunFacts(
        run="test3",
        first_snapshot="2004.03.04.09.27.46",
        failed={3: "outer_race"},
        last_live_snapshot=6322,
        quiet_before_snapshot=4448,
        sources={
            "failed": "IMS readme (Set No. 3): recorded from 2004-03-04 09:27:46; at the end of the test an "
                      "outer-race failure occurred in bearing 3; bearings 1, 2 and 4 did not fail",
            "last_live_snapshot": "fatemeh-studio/nasa-bearing-anomaly data/README.md 'The post-shutdown tail' "
                                  "(commit 5fca28c): the shipped run has 6,324 snapshots (the readme's 4,448 end on "
                                  "2004-04-04, the files go on to 2004-04-18); 6323 was recorded after the rig stopped "
                                  "(RMS ~0.002-0.004 on every bearing), so the last live snapshot is 6322",
            "quiet_before_snapshot": "the same README and Ben Yagoub & Ziani (2025) Table 10: bearing 3 is normal at "
                                     "snapshot 4,448 (the readme's end, 1.1x its early RMS) and suspect from 6,093 "
                                     "(2004-04-16); no alert is acceptable before 4,448",
        },
    ),
}


@dataclass(frozen=True)
class ImsLabels:
    """Ground truth of one bearing of an IMS run.

    Attributes
    ----------
    run : str
        Run id (``"test2"``...; the table's name prefix for an unknown run).
    known : bool
        Whether the run's fingerprint is in :data:`IMS_RUNS`.
    bearing : int
    failed : bool or None
        None when unknown.
    fault : str
        ``"outer_race"``, ``"inner_race"``, ``"roller"``, ``"none"`` or ``"unknown"``.
    failed_bearings : tuple of int or None
        Every bearing of the run that failed (None when unknown).
    file_index, ts_ms : numpy.ndarray
        Snapshot numbers and times (epoch ms) of the readings, in order.
    last_live_snapshot, last_live_ts_ms : int
        The last snapshot while the rig ran (for an unknown run: the last row).
    quiet_before_snapshot, quiet_before_ts_ms : int or None
        No alert is acceptable before this snapshot (None when unknown).
    dropped_after_stop : int
        Snapshots after ``last_live_snapshot`` left out of the readings.
    sources : dict
        Fact name -> source.
    """

    run: str
    known: bool
    bearing: int
    failed: bool | None
    fault: str
    failed_bearings: tuple[int, ...] | None
    file_index: np.ndarray = field(repr=False, compare=False)
    ts_ms: np.ndarray = field(repr=False, compare=False)
    last_live_snapshot: int = -1
    last_live_ts_ms: int = -1
    quiet_before_snapshot: int | None = None
    quiet_before_ts_ms: int | None = None
    dropped_after_stop: int = 0
    sources: Mapping[str, str] = field(default_factory=dict, repr=False)


def ims_column(name: str) -> tuple[int, str, str] | None:
    """``(bearing, sensor id, statistic)`` of a feature column, or None for other columns."""
    m = _COLUMN.match(name)
    if m is None:
        return None
    return int(m.group(1)), f"{m.group(2)}_{m.group(3)}", m.group(3)


def ims_tables(folder: Path) -> list[list[Path]]:
    """The runs in a folder (searched recursively): tables named ``<run>_<part>.csv`` grouped by ``<run>``.

    ``ims_bearing_test2`` gives ``[[features/test2_raw.csv, features/test2_spectral.csv]]``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise EvaluationError(f"IMS: folder not found: {root}")
    groups: dict[str, list[Path]] = {}
    for p in sorted(root.rglob("*.csv"), key=lambda q: natural_key(q.as_posix())):
        groups.setdefault(p.stem.split("_", 1)[0], []).append(p)
    if not groups:
        raise EvaluationError(f"IMS: no feature table (*.csv) under {root}")
    return list(groups.values())


def _join(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, list[str] | None, dict[str, np.ndarray]]:
    """(file_index, ts_ms, filenames or None, feature columns) of tables joined on file_index."""
    index = ts = None
    filenames: list[str] | None = None
    features: dict[str, np.ndarray] = {}
    for path in paths:
        cols = read_table(Path(path))
        if "file_index" not in cols:
            raise EvaluationError(f"{path}: expected a file_index column")
        idx = parse_floats(cols["file_index"], f"{path}: file_index").astype(np.int64)
        order = np.argsort(idx, kind="stable")
        idx = idx[order]
        if np.any(np.diff(idx) <= 0):
            raise EvaluationError(f"{path}: file_index values repeat")
        if index is not None and not np.array_equal(idx, index):
            raise EvaluationError(f"{path}: its file_index values differ from the other tables'")
        index = idx
        if "timestamp" in cols:
            ts = parse_times_ms([cols["timestamp"][i] for i in order], str(path))
        if "filename" in cols:
            filenames = [cols["filename"][i] for i in order]
        for name, cells in cols.items():
            if ims_column(name) is not None:
                if name in features:
                    raise EvaluationError(f"{path}: column {name} is also in another table")
                features[name] = parse_floats([cells[i] for i in order], f"{path}: {name}")
    if index is None or ts is None:
        raise EvaluationError(f"IMS tables {[str(p) for p in paths]}: need a file_index and a timestamp column")
    if not features:
        raise EvaluationError(f"IMS tables {[str(p) for p in paths]}: no Bearing<N>_ch<M>_<stat> column")
    if np.any(np.diff(ts) <= 0):
        raise EvaluationError(f"IMS tables {[str(p) for p in paths]}: timestamps do not increase with file_index")
    return index, ts, filenames, features


def _fingerprint(ts_ms: np.ndarray, filenames: list[str] | None) -> str:
    if filenames:
        return filenames[0]
    return datetime.fromtimestamp(int(ts_ms[0]) / 1000, tz=UTC).strftime("%Y.%m.%d.%H.%M.%S")


def _position(index: np.ndarray, snapshot: int) -> int | None:
    hits = np.flatnonzero(index == snapshot)
    return int(hits[0]) if hits.size else None


def overall_readings(asset: str, ts_ms: np.ndarray,
                     tables: Mapping[str, tuple[Sequence[str], np.ndarray]]) -> Iterator[Reading]:
    """One ``features`` reading per snapshot and channel: the channel's finite statistics of that row.

    ``tables`` maps a channel to its statistic names and a (snapshot x statistic) array.

    Examples
    --------
    >>> rows = {"ch1": (("rms", "kurt"), np.array([[0.07, 0.1], [0.08, np.nan]]))}
    >>> [(r.sensor, r.ts_ms, r.features) for r in overall_readings("b1", np.array([0, 600_000]), rows)]
    [('ch1', 0, {'rms': 0.07, 'kurt': 0.1}), ('ch1', 600000, {'rms': 0.08})]
    """
    channels = sorted(tables, key=natural_key)
    for i, t in enumerate(np.asarray(ts_ms, dtype=np.int64).tolist()):
        for ch in channels:
            names, values = tables[ch]
            feats = {n: float(v) for n, v in zip(names, values[i].tolist()) if math.isfinite(v)}
            if feats:
                yield Reading(asset, ch, "vibration", t, 0.0, "", np.empty(0), features=feats)


def load_ims(source: Path | Sequence[Path], include_after_stop: bool = False) -> list[Recording[ImsLabels]]:
    """One :class:`Recording` per bearing of one IMS run.

    Parameters
    ----------
    source : Path or sequence of Path
        The tables of one run (joined on ``file_index``), or a folder holding
        exactly one run (:func:`ims_tables`).
    include_after_stop : bool, default False
        Keep snapshots recorded after the rig stopped in the readings.

    Raises
    ------
    EvaluationError
        Missing or inconsistent tables, or a folder with several runs.
    """
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        runs = ims_tables(Path(source))
        if len(runs) != 1:
            raise EvaluationError(f"IMS: {source} holds {len(runs)} runs {[[p.name for p in r] for r in runs]}; "
                                  f"pass one run's tables")
        paths = runs[0]
    else:
        paths = [Path(source)] if isinstance(source, (str, Path)) else [Path(p) for p in source]
    index, ts, filenames, features = _join(paths)
    facts = IMS_RUNS.get(_fingerprint(ts, filenames))
    run = facts.run if facts else paths[0].stem.split("_", 1)[0]
    last_live = facts.last_live_snapshot if facts and _position(index, facts.last_live_snapshot) is not None \
        else int(index[-1])
    live = index <= last_live if not include_after_stop else np.ones(index.shape[0], dtype=bool)
    # bearing -> channel -> [(column, statistic)]
    by_bearing: dict[int, dict[str, list[tuple[str, str]]]] = {}
    for name in features:
        col = ims_column(name)
        assert col is not None  # features holds matching columns only
        bearing, sensor, stat = col
        if stat not in IMS_NOT_VIBRATION:
            by_bearing.setdefault(bearing, {}).setdefault(sensor.split("_", 1)[0], []).append((name, stat))
    out = []
    for bearing in sorted(by_bearing):
        asset = safe_id(f"ims-{run}-bearing{bearing}")
        channels = by_bearing[bearing]
        sensors = [{"sensor": ch, "kind": "vibration", "unit": "g", "reports": "features",
                    "sample_rate_hz": IMS_SAMPLE_RATE_HZ} for ch in sorted(channels, key=natural_key)]
        tables = {ch: (tuple(stat for _, stat in cols), np.column_stack([features[name][live] for name, _ in cols]))
                  for ch, cols in channels.items()}
        t_live = ts[live]
        registry = {"asset": asset, "rpm": IMS_RIG["rpm"], "bearing": dict(IMS_RIG["bearing"]), "sensors": sensors}
        quiet = facts.quiet_before_snapshot if facts else None
        qpos = _position(index, quiet) if quiet is not None else None
        labels = ImsLabels(
            run=run,
            known=facts is not None,
            bearing=bearing,
            failed=(bearing in facts.failed) if facts else None,
            fault=(facts.failed.get(bearing, "none")) if facts else "unknown",
            failed_bearings=tuple(sorted(facts.failed)) if facts else None,
            file_index=index[live],
            ts_ms=t_live,
            last_live_snapshot=last_live,
            last_live_ts_ms=int(ts[index == last_live][0]),
            quiet_before_snapshot=quiet,
            quiet_before_ts_ms=int(ts[qpos]) if qpos is not None else None,
            dropped_after_stop=int((~live).sum()),
            sources=dict(facts.sources) if facts else {"run": "unknown run: first snapshot "
                                                              f"{_fingerprint(ts, filenames)} not in IMS_RUNS"},
        )

        def readings(asset: str = asset, t: np.ndarray = t_live, tables: dict = tables) -> Iterator[Reading]:
            return overall_readings(asset, t, tables)

        name = f"{run}/bearing{bearing}"
        out.append(Recording("ims", name, asset, registry, readings, labels))
    return out
