"""NAB normalised scores over a set of series: ours and the published detectors', on the same files.

NAB (Numenta Anomaly Benchmark, ``numenta/NAB`` commit ``ea702d7``, MIT)
publishes one normalised score per detector and application profile over its
58 series. The rule (``nab/runner.py``'s ``normalize``, restated in
``nab/SOURCE.md`` of the shared data; no NAB code is copied) is, over a set of
files::

    score = 100 * (raw - null) / (perfect - null)

with ``raw`` the sum of the detector's per-file raw scores
(:mod:`predmaint.models.nab_scoring`), ``null`` the same sum for the null
detector (one that never fires: ``-fn`` per scored window) and ``perfect``
``tp`` times the number of label windows in those files (every window detected
at its first row, no false positive). ``null`` and ``perfect`` are taken over
**the same files** as ``raw``: comparing a detector with a score published on
another set of files is meaningless.

On the 47 series in the shared data (93 windows, null -93.0 standard), the
published per-file results give ARTime 74.36, numenta (HTM) 70.64 and
contextOSE 69.51 under the standard profile (``tests/test_nab_corpus.py``).

This module does no I/O: the labels come from
:mod:`predmaint.connectors.datasets.nab` (:class:`NabLabels`), the published
per-file raw scores from its ``load_nab_published``.

Detections are timestamps (epoch milliseconds, datetimes or ``datetime64``):
each one marks the first row at or after it (in time; a duplicated timestamp
marks its first row in file order), which is the first row at which NAB could
credit it. Detections after the last row are outside the series and ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from predmaint.errors import EvaluationError
from predmaint.models.nab_scoring import CostMatrix, label_rows

__all__ = [
    "NAB_PROFILES",
    "CorpusScore",
    "NabLabels",
    "as_datetime64_ms",
    "normalised_score",
    "score_corpus",
    "score_published",
    "scoreboard",
]

#: NAB's application profiles (``config/profiles.json``), as :class:`CostMatrix`.
NAB_PROFILES: dict[str, CostMatrix] = {
    "standard": CostMatrix(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostMatrix(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostMatrix(tp=1.0, fp=0.11, fn=2.0),
}


def as_datetime64_ms(values: Iterable[Any] | np.ndarray) -> np.ndarray:
    """Timestamps as naive-UTC ``datetime64[ms]``.

    Integers are epoch milliseconds; aware datetimes are converted to UTC,
    naive ones taken as UTC; ISO strings and ``datetime64`` are accepted.

    Examples
    --------
    >>> as_datetime64_ms([1388534400000, "2014-01-01 00:05:00"])
    array(['2014-01-01T00:00:00.000', '2014-01-01T00:05:00.000'], dtype='datetime64[ms]')
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuM":
        arr = values
    else:
        items = list(values)
        if items and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            arr = np.array(items, dtype=np.int64)
        else:
            arr = np.empty(len(items), dtype=object)
            arr[:] = items
    if arr.size == 0:
        return np.empty(0, dtype="datetime64[ms]")
    if arr.dtype.kind in "iu":
        return arr.astype("int64").astype("datetime64[ms]")
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ms]")
    out = []
    for v in arr.ravel():
        if isinstance(v, datetime):
            if v.tzinfo is not None:
                v = v.astimezone(UTC).replace(tzinfo=None)
            out.append(np.datetime64(v, "ms"))
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            out.append(np.datetime64(int(v), "ms"))
        elif isinstance(v, np.datetime64):
            out.append(v.astype("datetime64[ms]"))
        else:
            out.append(np.datetime64(str(v), "ms"))
    return np.array(out, dtype="datetime64[ms]")


@dataclass(frozen=True)
class NabLabels:
    """The labels of one NAB series: its row timestamps (file order) and anomaly windows.

    Parameters
    ----------
    series : str
        Name relative to NAB's ``data/`` folder, e.g.
        ``"realKnownCause/machine_temperature_system_failure.csv"``; its first
        component is NAB's category.
    timestamps : numpy.ndarray
        ``datetime64[ms]`` of every row **in file order** (NAB scores rows in
        that order; a file may step back in time).
    windows : tuple of (datetime, datetime)
        NAB's label windows (``labels/combined_windows.json``), both ends
        inclusive and equal to row timestamps.

    Examples
    --------
    >>> t = np.datetime64("1970-01-01T00:00", "ms") + np.arange(10) * np.timedelta64(5, "m")
    >>> lab = NabLabels("cat/x.csv", t, ((datetime(1970, 1, 1, 0, 15), datetime(1970, 1, 1, 0, 25)),))
    >>> lab.category, lab.rows
    ('cat', 10)
    >>> lab.detection_rows([datetime(1970, 1, 1, 0, 16), 10 ** 12]).nonzero()[0].tolist()
    [4]
    """

    series: str
    timestamps: np.ndarray = field(repr=False, compare=False)
    windows: tuple[tuple[datetime, datetime], ...] = ()

    @property
    def category(self) -> str:
        return self.series.split("/", 1)[0] if "/" in self.series else ""

    @property
    def rows(self) -> int:
        return int(self.timestamps.shape[0])

    def detection_rows(self, detections: Iterable[Any] | np.ndarray) -> np.ndarray:
        """Boolean per row: the first row at or after each detection time (later ones are dropped)."""
        ts = np.asarray(self.timestamps, dtype="datetime64[ms]")
        det = as_datetime64_ms(detections)
        out = np.zeros(ts.shape[0], dtype=bool)
        if det.size == 0 or ts.size == 0:
            return out
        order = np.argsort(ts, kind="stable")
        pos = np.searchsorted(ts[order], det, side="left")
        out[order[pos[pos < ts.shape[0]]]] = True
        return out


def normalised_score(raw: float, null: float, perfect: float) -> float:
    """NAB's normalisation ``100 * (raw - null) / (perfect - null)`` (NaN when perfect == null).

    Examples
    --------
    >>> normalised_score(-93.0, -93.0, 93.0), normalised_score(93.0, -93.0, 93.0)
    (0.0, 100.0)
    """
    if perfect == null:
        return math.nan
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True)
class CorpusScore:
    """One detector's NAB score over a set of files under one profile.

    Attributes
    ----------
    detector, profile : str
    score : float
        Normalised score (100 perfect, 0 null).
    raw, null, perfect : float
        Sums over ``files`` of the raw scores, the null detector's and the perfect detector's.
    files : tuple of str
        The files scored.
    windows : int
        Label windows in them.
    by_category : dict
        Normalised score per NAB category (over that category's files).
    per_file : dict
        Raw score per file.
    missing : tuple of str
        Files asked for that this detector has no result for (published
        detectors only; its score covers ``files`` alone).
    """

    detector: str
    profile: str
    score: float
    raw: float
    null: float
    perfect: float
    files: tuple[str, ...]
    windows: int
    by_category: dict[str, float] = field(default_factory=dict)
    per_file: dict[str, float] = field(default_factory=dict, repr=False)
    missing: tuple[str, ...] = ()


def _labels_by_name(labels: Mapping[str, NabLabels] | Iterable[NabLabels]) -> dict[str, NabLabels]:
    if isinstance(labels, Mapping):
        return dict(labels)
    return {lab.series: lab for lab in labels}


def _aggregate(detector: str, profile: str, cost: CostMatrix, labels: dict[str, NabLabels],
               raw: dict[str, float], null: dict[str, float], missing: Sequence[str] = ()) -> CorpusScore:
    files = tuple(sorted(raw))
    perfect = {f: cost.tp * len(labels[f].windows) for f in files}
    by_cat: dict[str, list[str]] = {}
    for f in files:
        by_cat.setdefault(labels[f].category, []).append(f)
    categories = {c: normalised_score(sum(raw[f] for f in fs), sum(null[f] for f in fs), sum(perfect[f] for f in fs))
                  for c, fs in sorted(by_cat.items())}
    total_raw, total_null, total_perfect = (sum(d[f] for f in files) for d in (raw, null, perfect))
    return CorpusScore(detector, profile, normalised_score(total_raw, total_null, total_perfect), total_raw,
                       total_null, total_perfect, files, sum(len(labels[f].windows) for f in files), categories,
                       {f: raw[f] for f in files}, tuple(sorted(missing)))


def score_corpus(
    labels: Mapping[str, NabLabels] | Iterable[NabLabels],
    detections: Mapping[str, Iterable[Any]],
    profiles: Mapping[str, CostMatrix] = NAB_PROFILES,
    detector: str = "predmaint",
    probationary_percent: float = 0.15,
) -> dict[str, CorpusScore]:
    """NAB scores of our detections over the labelled files, per profile.

    Parameters
    ----------
    labels : mapping or iterable of NabLabels
        The files to score (keyed by series name).
    detections : mapping
        Series name -> detection timestamps (see :meth:`NabLabels.detection_rows`).
        Every labelled file needs an entry (an empty one for a silent detector).
    profiles : mapping, default NAB's three profiles
    detector : str
        Name carried into the result.
    probationary_percent : float, default 0.15

    Returns
    -------
    dict
        Profile name -> :class:`CorpusScore`.

    Raises
    ------
    EvaluationError
        When detections and labels name different files.

    Examples
    --------
    >>> t = np.datetime64("1970-01-01T00:00", "ms") + np.arange(20) * np.timedelta64(5, "m")
    >>> w = ((datetime(1970, 1, 1, 0, 50), datetime(1970, 1, 1, 1, 5)),)
    >>> lab = NabLabels("cat/x.csv", t, w)
    >>> s = score_corpus([lab], {"cat/x.csv": [datetime(1970, 1, 1, 0, 50)]}, probationary_percent=0.0)
    >>> s["standard"].score, s["standard"].raw, s["reward_low_FN_rate"].null
    (100.0, 1.0, -2.0)
    >>> score_corpus([lab], {"cat/x.csv": []})["standard"].score
    0.0
    """
    by_name = _labels_by_name(labels)
    unknown = sorted(set(detections) - set(by_name))
    absent = sorted(set(by_name) - set(detections))
    if unknown or absent:
        raise EvaluationError(f"NAB: detections for unlabelled files {unknown}; no detections entry for {absent}")
    out = {}
    for profile, cost in profiles.items():
        raw, null = {}, {}
        for name, lab in by_name.items():
            rows = label_rows(lab.timestamps, lab.windows, cost, probationary_percent)
            raw[name] = rows.score(lab.detection_rows(detections[name]))
            null[name] = rows.score(np.zeros(lab.rows, dtype=bool))
        out[profile] = _aggregate(detector, profile, cost, by_name, raw, null)
    return out


def score_published(
    labels: Mapping[str, NabLabels] | Iterable[NabLabels],
    published: Mapping[str, Mapping[str, Mapping[str, float]]],
    profiles: Mapping[str, CostMatrix] = NAB_PROFILES,
    null_detector: str = "null",
    probationary_percent: float = 0.15,
) -> dict[str, dict[str, CorpusScore]]:
    """Normalised scores of published detectors from their per-file raw scores, on the labelled files.

    Parameters
    ----------
    labels : mapping or iterable of NabLabels
        The files to score on.
    published : mapping
        Detector -> profile -> file -> raw score (NAB's
        ``results/<detector>/<detector>_<profile>_scores.csv``; read by
        :func:`predmaint.connectors.datasets.nab.load_nab_published`).
    profiles : mapping, default NAB's three profiles
        Profiles to score; their ``tp`` gives the perfect score.
    null_detector : str, default "null"
        The published detector whose per-file scores are the null baseline (as
        NAB's ``normalize`` does); where it has no result for a file, the null
        score is computed from the labels (``-fn`` per scored window; the two
        agree on every file of the shared data).
    probationary_percent : float, default 0.15

    Returns
    -------
    dict
        Detector -> profile -> :class:`CorpusScore`. A detector without a
        result for some labelled files is scored on the files it has, named in
        ``missing``: compare it only with scores over the same ``files``.

    Examples
    --------
    >>> t = np.datetime64("1970-01-01T00:00", "ms") + np.arange(20) * np.timedelta64(5, "m")
    >>> lab = NabLabels("cat/x.csv", t, ((datetime(1970, 1, 1, 0, 50), datetime(1970, 1, 1, 1, 5)),))
    >>> pub = {"good": {"standard": {"cat/x.csv": 0.5}}}
    >>> score_published([lab], pub, {"standard": NAB_PROFILES["standard"]})["good"]["standard"].score
    75.0
    """
    by_name = _labels_by_name(labels)
    computed_null: dict[str, dict[str, float]] = {}

    def null_of(profile: str, cost: CostMatrix, name: str) -> float:
        given = published.get(null_detector, {}).get(profile, {})
        if name in given:
            return float(given[name])
        cache = computed_null.setdefault(profile, {})
        if name not in cache:
            lab = by_name[name]
            rows = label_rows(lab.timestamps, lab.windows, cost, probationary_percent)
            cache[name] = rows.score(np.zeros(lab.rows, dtype=bool))
        return cache[name]

    out: dict[str, dict[str, CorpusScore]] = {}
    for det, per_profile in sorted(published.items()):
        for profile, cost in profiles.items():
            scores = per_profile.get(profile)
            if scores is None:
                continue
            have = [f for f in by_name if f in scores]
            missing = [f for f in by_name if f not in scores]
            raw = {f: float(scores[f]) for f in have}
            null = {f: null_of(profile, cost, f) for f in have}
            out.setdefault(det, {})[profile] = _aggregate(det, profile, cost, by_name, raw, null, missing)
    return out


def scoreboard(
    ours: Mapping[str, CorpusScore] | None,
    published: Mapping[str, Mapping[str, CorpusScore]],
    profile: str = "standard",
) -> list[tuple[str, float, int]]:
    """``(detector, normalised score, files)`` best first, ours beside the published detectors.

    Examples
    --------
    >>> a = CorpusScore("a", "standard", 50.0, 0.0, -1.0, 1.0, ("f",), 1)
    >>> b = CorpusScore("b", "standard", 70.0, 0.4, -1.0, 1.0, ("f",), 1)
    >>> scoreboard({"standard": a}, {"b": {"standard": b}})
    [('b', 70.0, 1), ('a', 50.0, 1)]
    """
    rows = [(s.detector, s.score, len(s.files)) for per in published.values() for p, s in per.items() if p == profile]
    if ours is not None and profile in ours:
        rows.append((ours[profile].detector, ours[profile].score, len(ours[profile].files)))
    return sorted(rows, key=lambda r: (-r[1] if not math.isnan(r[1]) else math.inf, r[0]))
