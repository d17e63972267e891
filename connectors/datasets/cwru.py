"""CWRU adapter: each Case Western Reserve bearing recording as one asset with a drive-end vibration sensor.

Source: Case Western Reserve University Bearing Data Center
(https://engineering.case.edu/bearingdatacenter), files vendored byte-for-byte
from ``yyxyz/CaseWesternReserveUniversityData`` commit ``b19e5a7``; see
``cwru_bearing/SOURCE.md`` in the shared data (no licence stated: attribute CWRU).

Files are MATLAB v5 ``.mat`` (read with :func:`scipy.io.loadmat`) named by
CWRU's convention: ``normal_<load hp>_<n>.mat`` for the normal baseline and
``<rate>_Drive_End_<IR|OR|B><mils>[@<o'clock>]_<load hp>_<n>.mat`` for seeded
drive-end faults (inner race, outer race, ball). Any file so named is picked
up. Variables: ``X<n>_DE_time`` (drive-end acceleration, g by convention) and
``X<n>RPM`` (the shaft speed recorded for the run; when absent, CWRU's nominal
speed for the load is used: 0 hp 1797, 1 hp 1772, 2 hp 1750, 3 hp 1730 rpm).

Sampling: the fault files named ``12k_`` are 12 kHz; the normal baseline is
**48 kHz** (SOURCE.md caveat: its machine lines only match the fault files'
at 48 kHz), as are ``48k_`` files. Those are decimated by 4 to 12 kHz with
:func:`scipy.signal.decimate` (anti-aliasing filter, then every 4th sample),
the convention of ``predmaint evaluate cwru``.

Each file becomes asset ``cwru-<file stem>`` (``@`` becomes ``-``) with one
sensor ``de-accel``: kind ``vibration``, unit ``g`` (readings carry samples in g
as recorded; the telemetry decoder converts g to m/s², factor :data:`G`),
12,000 Hz. ``rpm`` is the file's, the bearing is the drive end's SKF
6205-2RS JEM given as CWRU's defect frequencies in multiples of shaft speed
(:data:`SKF_6205`), ISO 10816-3 group 2 on a rigid foundation as in the
evaluation config (the 2 hp test motor is below the standard's 15 kW range).
Readings are consecutive, non-overlapping snapshots of 4,096 samples (the
remainder is dropped); a snapshot lasts 0.34 s but their ``ts_ms`` are spaced
**1 s** apart by default (``snapshot_spacing_s``), from the time the ``.mat``
file was written (its header's "Created on", UTC assumed): the recordings carry
no acquisition time, so this only orders the snapshots.

Labels (:class:`CwruLabels`): fault ``"normal"``, ``"inner_race"``,
``"outer_race"`` or ``"ball"``, with diameter, load and the file's facts.

Examples
--------
>>> parse_cwru_name("12k_Drive_End_OR007@6_0_130.mat")
{'fault': 'outer_race', 'diameter_in': 0.007, 'load_hp': 0, 'number': 130, 'rate_hz': 12000.0, 'clock': 6}
>>> parse_cwru_name("normal_0_97.mat")["rate_hz"]
48000.0
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from predmaint.connectors.datasets.base import Recording, natural_key, require_dir, safe_id
from predmaint.errors import EvaluationError
from predmaint.telemetry import Reading

__all__ = [
    "CWRU_SENSOR",
    "NOMINAL_RPM",
    "SAMPLE_RATE_HZ",
    "SKF_6205",
    "SNAPSHOT_SAMPLES",
    "CwruLabels",
    "G",
    "cwru_files",
    "load_cwru",
    "parse_cwru_name",
    "read_drive_end",
]

#: Standard gravity: CWRU records acceleration in g; the stream's features are in m/s².
G = 9.80665
CWRU_SENSOR = "de-accel"
SAMPLE_RATE_HZ = 12000.0
SNAPSHOT_SAMPLES = 4096
#: CWRU's nominal shaft speed per motor load (hp), used when a file has no RPM variable (SOURCE.md).
NOMINAL_RPM = {0: 1797.0, 1: 1772.0, 2: 1750.0, 3: 1730.0}
#: Drive-end SKF 6205-2RS JEM defect frequencies, multiples of shaft speed (CWRU's "Bearing
#: Information" table; GUIDE.md §5). CWRU's "rolling element" figure 4.7135 is twice the
#: ball-spin frequency (SOURCE.md), so ``bsf`` is half of it (2.357, what 9 balls of 0.3126 in on a
#: 1.537 in pitch at 0 deg give).
SKF_6205 = {"bpfo": 3.5848, "bpfi": 5.4152, "bsf": 4.7135 / 2, "ftf": 0.39828}
ISO_GROUP = 2
ISO_FOUNDATION = "rigid"

_FAULTS = {"IR": "inner_race", "OR": "outer_race", "B": "ball"}
_FAULT_NAME = re.compile(r"^(\d+)k_Drive_End_(IR|OR|B)(\d{3})(?:@(\d+))?_(\d)_(\d+)$")
_NORMAL_NAME = re.compile(r"^normal_(\d)_(\d+)$", re.IGNORECASE)
_HEADER_TIME = re.compile(rb"Created on: (\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})")


@dataclass(frozen=True)
class CwruLabels:
    """What one CWRU recording is.

    Attributes
    ----------
    fault : str
        ``"normal"``, ``"inner_race"``, ``"outer_race"`` or ``"ball"``.
    diameter_in : float
        Fault diameter in inches (0 for normal).
    load_hp : int
        Motor load.
    number : int
        CWRU's file number.
    rpm : float
        Shaft speed.
    rpm_source : str
        ``"file"`` (its RPM variable) or ``"nominal"`` (CWRU's speed for the load).
    recorded_rate_hz : float
        Sampling rate of the file (48 kHz files are decimated to 12 kHz).
    decimated_by : int
    snapshots : int
        Readings yielded (4,096 samples each).
    clock : int or None
        Outer-race fault position in o'clock.
    """

    fault: str
    diameter_in: float
    load_hp: int
    number: int
    rpm: float
    rpm_source: str
    recorded_rate_hz: float
    decimated_by: int
    snapshots: int
    clock: int | None = None


def parse_cwru_name(filename: str) -> dict[str, Any]:
    """Fault, diameter, load, number, sampling rate (and clock) from a CWRU file name.

    Raises
    ------
    EvaluationError
        A name that does not follow CWRU's convention (see the module docstring).
    """
    stem = filename[:-4] if filename.lower().endswith(".mat") else filename
    m = _NORMAL_NAME.match(stem)
    if m:
        # CWRU's normal baselines are recorded at 48 kHz (SOURCE.md caveat).
        return {"fault": "normal", "diameter_in": 0.0, "load_hp": int(m.group(1)), "number": int(m.group(2)),
                "rate_hz": 48000.0, "clock": None}
    m = _FAULT_NAME.match(stem)
    if m:
        return {"fault": _FAULTS[m.group(2)], "diameter_in": int(m.group(3)) / 1000, "load_hp": int(m.group(5)),
                "number": int(m.group(6)), "rate_hz": float(m.group(1)) * 1000.0,
                "clock": int(m.group(4)) if m.group(4) else None}
    raise EvaluationError(f"CWRU: {filename!r} is not named normal_<hp>_<n>.mat or "
                          f"<rate>k_Drive_End_<IR|OR|B><mils>[@<clock>]_<hp>_<n>.mat")


def read_drive_end(path: Path, unit_scale: float = 1.0, decimate_by: int = 1) -> tuple[np.ndarray, float | None]:
    """Drive-end acceleration (times ``unit_scale``, decimated) and the recorded rpm (None if absent).

    The same reading as ``predmaint evaluate cwru`` always did: ``*_DE_time``
    flattened to float64, :func:`scipy.signal.decimate` when ``decimate_by > 1``.
    A file holding several ``*_DE_time`` variables uses the one of its own number.
    """
    from scipy.io import loadmat
    from scipy.signal import decimate

    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"CWRU file not found: {path}")
    try:
        mat = loadmat(path)
    except (OSError, ValueError, NotImplementedError) as exc:
        raise EvaluationError(f"{path}: not a readable MATLAB file: {exc}") from None
    de = sorted(k for k in mat if k.endswith("_DE_time"))
    if len(de) > 1:
        number = re.findall(r"_(\d+)$", path.stem)
        own = [k for k in de if number and k == f"X{int(number[0]):03d}_DE_time"]
        de = own or de
    if len(de) != 1:
        raise EvaluationError(f"{path}: expected one *_DE_time variable, got {sorted(k for k in mat if k[0] != '_')}")
    x = np.asarray(mat[de[0]], dtype=np.float64).ravel() * unit_scale
    if decimate_by > 1:
        x = decimate(x, decimate_by)
    prefix = de[0][: -len("_DE_time")]
    rpm_key = f"{prefix}RPM" if f"{prefix}RPM" in mat else next((k for k in mat if k.endswith("RPM")), None)
    rpm = float(np.ravel(mat[rpm_key])[0]) if rpm_key is not None else None
    return x, (rpm if rpm and rpm > 0 else None)


def _created_ms(path: Path) -> int:
    """The MAT header's "Created on" time (UTC assumed), epoch ms; 2000-01-01 if absent."""
    with open(path, "rb") as fh:
        head = fh.read(116)
    m = _HEADER_TIME.search(head)
    when = datetime(2000, 1, 1)
    if m:
        try:
            when = datetime.strptime(" ".join(m.group(1).decode("ascii").split()), "%a %b %d %H:%M:%S %Y")
        except ValueError:
            pass
    return int(when.replace(tzinfo=UTC).timestamp() * 1000)


def cwru_files(data: Path, files: str | Sequence[str] | None = None) -> list[str]:
    """``.mat`` file names in the CWRU folder (optionally filtered by glob(s)), naturally sorted."""
    root = require_dir(Path(data), "CWRU")
    patterns = ["*.mat"] if files is None else ([files] if isinstance(files, str) else list(files))
    names = sorted({p.name for pat in patterns for p in root.glob(pat) if p.suffix.lower() == ".mat"},
                   key=natural_key)
    if not names:
        raise EvaluationError(f"CWRU: no .mat file in {root} matches {patterns}")
    return names


def load_cwru(data: Path, files: str | Sequence[str] | None = None, snapshot_samples: int = SNAPSHOT_SAMPLES,
              snapshot_spacing_s: float = 1.0, snapshot_hop: int | None = None) -> list[Recording[CwruLabels]]:
    """One :class:`Recording` per CWRU file (see the module docstring).

    Parameters
    ----------
    data : Path
        The CWRU folder.
    files : str or sequence of str, optional
        Glob(s) on the file names; default every ``.mat``.
    snapshot_samples : int, default 4096
    snapshot_spacing_s : float, default 1.0
        Event time between consecutive snapshots' ``ts_ms`` (the recordings are
        continuous; e.g. the stream's window length puts one snapshot per window).
    snapshot_hop : int, optional
        Samples between the starts of consecutive snapshots (default
        ``snapshot_samples``: no overlap). A quarter of a snapshot gives four
        times as many windows from these ~10 s recordings (a model needs
        dozens of normal windows to learn from), at the price of correlated
        neighbours.

    Raises
    ------
    EvaluationError
        Missing folder or file, a name off CWRU's convention, a sampling rate
        that is not a multiple of 12 kHz, or a recording shorter than one snapshot.
    """
    if not snapshot_spacing_s > 0:
        raise ValueError(f"snapshot_spacing_s must be > 0, got {snapshot_spacing_s}")
    step_ms = round(snapshot_spacing_s * 1000)
    out = []
    for filename in cwru_files(Path(data), files):
        path = Path(data) / filename
        facts = parse_cwru_name(filename)
        ratio = facts["rate_hz"] / SAMPLE_RATE_HZ
        if ratio < 1 or ratio != int(ratio):
            raise EvaluationError(f"{path}: {facts['rate_hz']:.0f} Hz is not a multiple of {SAMPLE_RATE_HZ:.0f} Hz")
        x, rpm = read_drive_end(path, 1.0, int(ratio))
        rpm_source = "file" if rpm is not None else "nominal"
        if rpm is None:
            if facts["load_hp"] not in NOMINAL_RPM:
                raise EvaluationError(f"{path}: no RPM variable and no nominal speed for {facts['load_hp']} hp")
            rpm = NOMINAL_RPM[facts["load_hp"]]
        hop = snapshot_hop or snapshot_samples
        if x.size < snapshot_samples:
            raise EvaluationError(f"{path}: {x.size} samples, fewer than one snapshot of {snapshot_samples}")
        starts = range(0, x.size - snapshot_samples + 1, hop)
        snaps = np.stack([x[s:s + snapshot_samples] for s in starts])
        n = snaps.shape[0]
        asset = "cwru-" + safe_id(Path(filename).stem)
        registry = {"asset": asset, "rpm": rpm, "iso_group": ISO_GROUP, "iso_foundation": ISO_FOUNDATION,
                    "bearing": dict(SKF_6205),
                    "sensors": [{"sensor": CWRU_SENSOR, "kind": "vibration", "unit": "g",
                                 "sample_rate_hz": SAMPLE_RATE_HZ}]}
        t0 = _created_ms(path)

        def readings(asset: str = asset, snaps: np.ndarray = snaps, t0: int = t0) -> Iterator[Reading]:
            for i in range(snaps.shape[0]):
                yield Reading(asset, CWRU_SENSOR, "vibration", t0 + step_ms * i, SAMPLE_RATE_HZ, "g",
                              snaps[i].copy(), 1)

        labels = CwruLabels(facts["fault"], facts["diameter_in"], facts["load_hp"], facts["number"], rpm,
                            rpm_source, facts["rate_hz"], int(ratio), n, facts["clock"])
        out.append(Recording("cwru", filename, asset, registry, readings, labels))
    return out
