"""Tests for ``predmaint evaluate`` (pipelines/evaluate.py) on the real datasets.

The data live in ``$PREDMAINT_SHARED_DATA`` or ``<repo>/../shared/data``; a
missing dataset fails the test with the path it was looked for at. Each
evaluation runs once per module through the command line entry points
(``add_parser``/``run``) on the full dataset (NAB: all 22,695 rows, IMS: all
982 live snapshots x 4 bearings, CWRU: every window of the four files), about
4 s for all three on this machine. The assertions are what the evaluations measured with the
committed default config and hold with margin; the NAB score itself is below
its 3.0 target, so only properties that hold are asserted for it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from predmaint.pipelines import evaluate
from predmaint.pipelines.cli import main as cli_main
from predmaint.settings import Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[1]
DATA = evaluate.shared_data_dir()
FOLDERS = {"nab": "nab", "ims": "ims_bearing_test2", "cwru": "cwru_bearing"}


def data_dir(name: str) -> Path:
    d = DATA / FOLDERS[name]
    if not d.is_dir():
        pytest.fail(f"shared dataset not found: {d} (set PREDMAINT_SHARED_DATA to the folder holding {FOLDERS[name]}/)")
    return d


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="predmaint")
    p.add_argument("--config")
    evaluate.add_parser(p.add_subparsers(dest="command", required=True))
    return p


def cli(*argv: str) -> tuple[int, str, str]:
    """Run ``predmaint <argv>`` through the command line's main; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main(list(argv))
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[int, dict, str, Path]]:
    """Each evaluation once, with --json --check: (exit code, JSON payload, table, plot path)."""
    out = {}
    for name in FOLDERS:
        plot = tmp_path_factory.mktemp(name) / f"{name}.png"
        rc, stdout, stderr = cli("evaluate", name, "--data", str(data_dir(name)), "--json", "--check",
                                 "--plot", str(plot))
        lines = stdout.strip().splitlines()
        assert len(lines) == 1, f"--json must print exactly one line, got {stdout!r} (stderr {stderr})"
        out[name] = (rc, json.loads(lines[0]), stderr, plot)
    return out


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------
# Real data
# ----------------------------------------------------------------------------


def test_nab_reports_a_finite_score_beside_the_published_table(runs):
    rc, doc, table, plot = runs["nab"]
    nab = doc["nab"]
    assert set(doc) == {"nab"} and _finite(nab["score"])
    # Four label windows: every NAB raw score lies between "all missed" (-4) and "all found at once" (< 4),
    # and a silent run would score exactly -4.0.
    assert -4.0 < nab["score"] < 4.0
    # Measured -0.22: label windows 2 and 4 found, no false alarm (learning only windows with health 100;
    # with learn_min_health 80 the baseline widened and it scored -2.17).
    assert nab["score"] > -1.0
    assert nab["counts"]["tp"] >= 2 and nab["counts"]["fp"] == 0
    assert "predmaint (this run)" in table and "ARTime" in table and "2.556" in table
    assert nab["published_best"] == pytest.approx(2.5563301921824606)
    # The file's clock steps back once (12 duplicated timestamps): the stream drops those readings as late.
    assert nab["late_rows"] == 11
    assert plot.stat().st_size > 10_000


def test_nab_check_exit_code_reports_the_missed_target(runs):
    rc, doc, _, _ = runs["nab"]
    # Measured: the default model scores about -0.2 on this file, below the 3.0 target (see the module docs).
    assert doc["nab"]["targets_met"] == {"score_min": doc["nab"]["score"] >= 3.0}
    assert rc == (0 if all(doc["nab"]["targets_met"].values()) else 1)


def test_ims_alerts_on_the_failing_bearing_two_days_ahead_and_not_before_snapshot_500(runs):
    rc, doc, table, plot = runs["ims"]
    ims = doc["ims"]
    assert _finite(ims["lead_time_h"]) and _finite(ims["false_alerts"])
    assert ims["lead_time_h"] >= 48.0  # measured 72.3 h
    assert ims["false_alerts"] == 0
    first = ims["first_alert_snapshot"]["1"]
    assert first is not None and 500 < first < 981 - 6 * 48
    # The healthy bearings alert later than the failing one, if at all.
    assert all(s is None or s > first for b, s in ims["first_alert_snapshot"].items() if b != "1")
    assert ims["targets_met"] == {"lead_time_h_min": True, "false_alerts_max": True} and rc == 0
    assert "bearing 1 (failed)" in table and plot.stat().st_size > 10_000


def test_cwru_separates_every_fault_from_held_out_normal_windows(runs):
    rc, doc, table, plot = runs["cwru"]
    auc = doc["cwru"]["auc"]
    assert set(auc) == {"inner_race", "outer_race", "ball"} and all(_finite(v) for v in auc.values())
    assert auc["inner_race"] > 0.99 and auc["outer_race"] > 0.99  # measured 1.0
    assert auc["ball"] > 0.9  # measured 1.0; ball faults are the weakest signature
    windows = doc["cwru"]["windows"]
    assert windows["baseline"] == windows["normal"] == 7  # 60,984 samples at 12 kHz after decimation
    assert rc == 0 and plot.stat().st_size > 10_000


# ----------------------------------------------------------------------------
# Stream semantics, configuration and command line
# ----------------------------------------------------------------------------


def test_event_time_windows_drop_late_rows_and_emit_when_the_watermark_passes():
    times = [0, 100, 250, 330, 50, 700, 710]
    wins, late = evaluate.event_time_windows(times, 300, 60)
    # window 0 closes when an event at >= 360 s arrives (row 5); row 4 (50 s) is older than the watermark 270 s.
    assert late == [4]
    assert [(w.window_id, w.rows, w.emitted_at) for w in wins] == [(0, (0, 1, 2), 5), (1, (3,), 5)]
    assert wins[0].end_s(300) == 300


def test_ims_columns_become_the_stream_features_of_the_same_definition():
    cols = {f"Bearing2_ch1_{s}": np.array([0.0, v]) for s, v in
            {"std": 0.1, "max": 0.5, "kurt": 0.2, "skew": -0.1, "crest_factor": 5.0, "env_kurtosis": 7.0}.items()}
    x = evaluate.ims_snapshot_features(cols, 2, ["std", "max", "kurt", "skew", "crest_factor", "env_kurtosis"], 1)
    assert x == pytest.approx({"accel_rms": 0.980665, "accel_peak": 4.903325, "kurtosis": 3.2,
                               "skewness": -0.1, "crest_factor": 5.0, "env_kurtosis": 7.0})


def test_sensor_replay_follows_the_stream_baseline_then_alerts():
    settings = load_settings()
    replay = evaluate.SensorReplay.from_settings(settings, "a", "s", baseline_windows=10)
    phases, events = [], []
    for i in range(20):
        a, ev = replay.step({"temp_level_c": 50.0 + 0.1 * (i % 3), "readings": 30.0}, i)
        phases.append(a.phase)
    for i in range(20, 30):
        a, ev = replay.step({"temp_level_c": 90.0, "readings": 30.0}, i)
        events += [e.state for e in ev]
    assert phases[:10] == ["baseline"] * 10 and phases[10:] == ["monitoring"] * 10
    assert "readings" not in replay.model.baseline.mean  # window bookkeeping is not modelled
    assert events[0] == "raised"


def test_missing_evaluation_setting_names_the_field(tmp_path):
    settings = load_settings()
    broken = settings.replace(evaluation={**settings.evaluation, "nab": {"profile": "standard"}})
    with pytest.raises(SettingsError, match=r"evaluation\.nab\.window_s: missing"):
        evaluate.evaluate_nab(broken, [], np.array([]), [], None)
    with pytest.raises(SettingsError, match=r"evaluation\.ims: missing"):
        evaluate.eval_config(Settings(), "ims")


def test_missing_data_folder_exits_2_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    rc, out, err = cli("evaluate", "cwru", "--data", str(missing))
    assert rc == 2 and out == "" and str(missing) in err


def test_config_before_the_subcommand_is_kept():
    args = parser().parse_args(["--config", "custom.yaml", "evaluate", "ims", "--bearing", "3"])
    assert args.config == "custom.yaml" and args.bearing == 3 and args.func is evaluate.run
    args = parser().parse_args(["evaluate", "nab", "--config", "other.yaml"])
    assert args.config == "other.yaml" and args.series == evaluate.NAB_DEFAULT_SERIES
