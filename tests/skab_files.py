"""SKAB files read in place, independently of the adapter (SKAB is GPL-3.0: nothing of it is in the repository)."""

from __future__ import annotations

from pathlib import Path


def skab_columns(path: Path) -> dict[str, list[str]]:
    """A SKAB file's columns as text, read with the csv module (not the adapter).

    SKAB is GPL-3.0: the tests take every expected count, index and time from
    the shared files through this independent reading, never from the repository.
    """
    import csv

    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    return {name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])}


def skab_labels(path: Path) -> tuple[list[int], list[int]]:
    """The anomaly and changepoint columns of a SKAB file as 0/1 lists."""
    cols = skab_columns(path)
    return [int(float(v)) for v in cols["anomaly"]], [int(float(v)) for v in cols["changepoint"]]
