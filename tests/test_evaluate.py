"""``predmaint evaluate`` on a slice of each real corpus, through the command line and the real dataflow.

The data live in ``$PREDMAINT_SHARED_DATA`` (tests/conftest.py points it at
``../shared/data``). Each slice runs once per module: one NAB series, one
SKAB experiment and the anomaly-free run, IMS test 2, and the four CWRU files.
The assertions are properties of the scoring that hold whatever the model
scores (published rows reproduced, counts, ranges); the scores themselves are
reported by ``make evaluate`` and quoted in the README.
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest

from predmaint.pipelines import evaluate, scoreboard
from predmaint.pipelines.cli import main as cli_main

DATA = evaluate.shared_data_dir()
NAB_SERIES = "artificialWithAnomaly/art_daily_jumpsup.csv"


def cli(*argv: str) -> tuple[int, str, str]:
    """Run ``predmaint <argv>`` through the command line's main; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main(list(argv))
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[int, dict, str]]:
    """Each corpus slice once, with --json --check: (exit code, JSON result, stderr)."""
    plots = tmp_path_factory.mktemp("plots")
    slices = {"nab": ["--series", NAB_SERIES], "skab": ["--series", "valve1/1.csv"],
              "ims": ["--series", "test2/bearing[12]"], "cwru": []}
    out = {}
    for corpus, extra in slices.items():
        data = DATA / evaluate.CORPUS_FOLDERS[corpus][0] if corpus != "ims" else DATA / "ims_bearing_test2"
        rc, stdout, stderr = cli("evaluate", corpus, "--data", str(data), "--json", "--check", "--quiet",
                                 "--plot", str(plots), *extra)
        lines = stdout.strip().splitlines()
        assert len(lines) == 1, stdout
        out[corpus] = (rc, json.loads(lines[0])[corpus], stderr)
        assert (plots / f"evaluate-{corpus}.png").stat().st_size > 1000
    return out


def test_nab_slice_scores_beside_every_published_detector_on_the_same_file(runs):
    rc, r, err = runs["nab"]
    assert r["files"] == 1 and r["windows"] == 1 and set(r["score"]) == {
        "standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    assert all(math.isfinite(v) for v in r["score"].values())
    # The published rows are normalised on this file alone: the null detector is 0 by definition.
    assert r["published"]["null"]["standard"] == 0.0 and len(r["published"]) >= 15
    assert "ARTime" in err and "predmaint" in err
    assert rc == (0 if all(r["targets_met"].values()) else 1)


def test_skab_slice_scores_outliers_and_changepoints_on_the_test_part(runs):
    rc, r, err = runs["skab"]
    assert r["experiments"] == 1 and 0.0 <= r["f1"] <= 1.0 and 0.0 <= r["far_pct"] <= 100.0
    assert set(r["changepoint"]) == {"standard", "lowFP", "lowFN"} or len(r["changepoint"]) == 3
    assert r["published"]["experiments"] == 34 and "Conv-AE" in r["published"]["outlier"]
    assert "34 experiments where ours covers 1" in err


def test_ims_reports_the_bearings_of_test_2_with_their_facts(runs):
    _, r, _ = runs["ims"]
    bearings = r["test2"]["bearings"]
    assert sorted(bearings, key=int) == ["1", "2"]
    assert bearings["1"]["failed"] and bearings["1"]["fault"] == "outer_race" and not bearings["2"]["failed"]
    for b in bearings.values():
        if b["first_alert_snapshot"] is not None:
            assert 0 <= b["first_alert_snapshot"] <= 981 and b["lead_h"] >= 0
        assert "health_curve" not in b  # plotted, not in the JSON line
    # The default on the real run: the failing bearing two days ahead, nothing in the quiet period,
    # the healthy neighbour not before it (the detection issue's targets for test 2).
    assert bearings["1"]["lead_h"] >= 48 and bearings["1"]["quiet_alerts"] == 0
    assert bearings["2"]["quiet_alerts"] == 0 and not bearings["2"]["before_failed_bearing"]


def test_cwru_reports_auc_and_fault_naming_per_fault(runs):
    _, r, _ = runs["cwru"]
    assert {"inner_race", "outer_race", "ball"} <= set(r)
    for fault in ("inner_race", "outer_race", "ball"):
        assert 0.0 <= r[fault]["auc"] <= 1.0 and r[fault]["fault_windows"] > 5 and r[fault]["normal_windows"] > 5
        assert 0.0 <= r[fault]["fault_type_share"] <= 1.0


@pytest.mark.parametrize("corpus, result, expected", [
    ("nab", {"score": {"standard": 70.0, "reward_low_FP_rate": 50.0}},
     {"standard >= 65": True, "reward_low_FP_rate >= 55": False}),
    ("skab", {"f1": 0.81, "far_pct": 16.0, "changepoint": {"standard": 33.0}},
     {"f1 >= 0.8": True, "far_pct <= 15": False, "changepoint standard >= 33": True}),
    ("ims", {"test2": {"bearings": {1: {"failed": True, "lead_h": 50.0, "quiet_alerts": 0,
                                          "before_failed_bearing": False},
                                      2: {"failed": False, "lead_h": 80.0, "quiet_alerts": 1,
                                          "before_failed_bearing": True}}}},
     {"test2 bearing 1 lead >= 48 h": True, "test2 bearing 1 no alert in the quiet period": True,
      "test2 bearing 2 no alert before the failing bearing's": False,
      "test2 bearing 2 no alert in the quiet period": False}),
    # A run without ground truth (not in IMS_RUNS) is reported, not judged.
    ("ims", {"test3": {"bearings": {1: {"failed": None, "lead_h": 3.0, "quiet_alerts": None,
                                          "before_failed_bearing": None}}}}, {}),
    ("cwru", {"ball": {"auc": 0.995, "fault_type_share": 0.5}},
     {"ball auc >= 0.99": True, "ball fault type >= 0.9": False}),
])
def test_every_target_kind_is_checked(corpus, result, expected):
    assert scoreboard.targets_met(corpus, result, evaluate.targets()[corpus]) == expected


def test_missing_data_folder_exits_2_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    rc, out, err = cli("evaluate", "cwru", "--data", str(missing))
    assert rc == 2 and out == "" and str(missing) in err


def test_no_dataset_folder_is_guessed(monkeypatch):
    monkeypatch.delenv("PREDMAINT_SHARED_DATA")
    rc, out, err = cli("evaluate", "cwru")
    assert rc == 2 and "PREDMAINT_SHARED_DATA" in err and "Traceback" not in err


def test_config_before_or_after_the_subcommand():
    parser_args = []
    for argv in (["--config", "custom.yaml", "evaluate", "nab"], ["evaluate", "nab", "--config", "custom.yaml"]):
        rc, _, err = cli(*argv)
        parser_args.append((rc, "custom.yaml" in err))
    assert parser_args == [(2, True), (2, True)]  # both read the named file (which does not exist)


def test_a_new_corpus_folder_of_the_same_format_evaluates_without_configuration(tmp_path):
    """A NAB-format folder of one new series (synthetic: a level shift), labels and NAB's profiles."""
    import shutil

    import numpy as np

    root = tmp_path / "mycorpus"
    (root / "data" / "plant").mkdir(parents=True)
    (root / "labels").mkdir()
    shutil.copytree(DATA / "nab" / "config", root / "config")
    t0 = np.datetime64("2026-01-01T00:00:00")
    times = [t0 + np.timedelta64(5 * i, "m") for i in range(1500)]
    values = np.random.default_rng(1).normal(50.0, 1.0, 1500)
    values[1200:] += 12.0
    rows = "\n".join(f"{str(t).replace('T', ' ')},{v:.4f}" for t, v in zip(times, values))
    (root / "data" / "plant" / "pressure.csv").write_text("timestamp,value\n" + rows + "\n")
    window = [str(times[1150]).replace("T", " ") + ".000000", str(times[1250]).replace("T", " ") + ".000000"]
    (root / "labels" / "combined_windows.json").write_text(json.dumps({"plant/pressure.csv": [window]}))
    rc, out, err = cli("evaluate", "nab", "--data", str(root), "--json", "--quiet", "--plot", str(tmp_path))
    assert rc == 0, err
    r = json.loads(out)["nab"]
    assert r["files"] == 1 and r["windows"] == 1 and math.isfinite(r["score"]["standard"])
    assert r["detections"] >= 1  # a 12-sigma level shift is seen


def _ims_table(folder, run: str, snapshots: int, seed: int, drift: float = 0.0) -> None:
    """A synthetic IMS feature table of two healthy bearings, one channel each, every 10 minutes (no known
    fingerprint): levels as IMS test 2's healthy bearings (std 0.08 g with AR(1) noise of 1.2 %, max 11 %,
    heavy-tailed kurtosis, skew), moving by ``drift`` (a fraction) and back over the run."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    cols = []
    for bearing in (1, 2):
        slow = 1.0 + drift * np.sin(np.linspace(0.0, 3 * np.pi, snapshots) + bearing)
        ar = np.zeros(snapshots)
        for i in range(1, snapshots):
            ar[i] = 0.6 * ar[i - 1] + rng.normal(0.0, 0.012)
        cols += [0.08 * slow * (1 + ar), 0.4 * slow * (1 + rng.normal(0.0, 0.11, snapshots)),
                 0.15 + 0.1 * rng.standard_t(3, snapshots), rng.normal(0.1, 0.024, snapshots)]
    header = ["file_index", "timestamp"] + [f"Bearing{b}_ch1_{s}" for b in (1, 2) for s in ("std", "max", "kurt", "skew")]
    start = np.datetime64("2005-01-01T00:00:00")
    rows = [",".join(header)]
    for i in range(snapshots):
        when = str(start + np.timedelta64(600 * i, "s")).replace("T", " ")
        rows.append(",".join([str(i), when] + [f"{c[i]:.5f}" for c in cols]))
    (folder / f"{run}_raw.csv").write_text("\n".join(rows) + "\n")


def test_every_ims_run_beside_the_shared_ones_is_evaluated_and_an_unknown_one_is_not_judged(tmp_path):
    """A data folder holding two runs (``ims_*`` folders) and an unrelated folder: both runs are replayed;
    their fingerprints are not in IMS_RUNS, so they are reported without ground truth and judged on nothing."""
    _ims_table(tmp_path / "ims_bearing_test9", "test9", 60, 1)
    _ims_table(tmp_path / "IMS_extra" / "features", "extra", 40, 2)
    _ims_table(tmp_path / "pumps", "pumps", 30, 3)  # not an IMS folder: not read
    rc, out, err = cli("evaluate", "ims", "--data", str(tmp_path), "--json", "--check", "--plot", str(tmp_path))
    assert rc == 0, err
    r = json.loads(out)["ims"]
    assert sorted(k for k in r if isinstance(r[k], dict) and "bearings" in r[k]) == ["extra", "test9"]
    for run in ("test9", "extra"):
        for b in r[run]["bearings"].values():
            assert b["failed"] is None and b["fault"] == "unknown"
            assert b["quiet_alerts"] is None and b["before_failed_bearing"] is None
    assert r["targets_met"] == {}
    assert "test9 bearing 1 (unknown: no ground truth)" in err and "no quiet period known" in err


def test_a_healthy_bearing_drifting_slowly_through_a_long_run_raises_no_alert(tmp_path):
    """6,000 snapshots (42 days, as long as IMS test 3) of two healthy bearings whose levels drift 5 % and
    back, with heavy-tailed kurtosis: the vibration default follows the slow change and raises nothing."""
    _ims_table(tmp_path / "ims_long", "long", 6000, 7, drift=0.05)
    rc, out, err = cli("evaluate", "ims", "--data", str(tmp_path), "--json", "--plot", str(tmp_path))
    assert rc == 0, err
    bearings = json.loads(out)["ims"]["long"]["bearings"]
    assert [b["alerts"] for b in bearings.values()] == [0, 0]


def test_recordings_replayed_in_parallel_give_what_one_process_gives():
    from predmaint.settings import load_settings

    settings = load_settings().replace(challengers=())
    recordings = evaluate.load_nab(DATA / "nab", "artificialWithAnomaly/art_daily_*j*.csv")
    assert len(recordings) == 2
    one = evaluate.replay_all(settings, recordings, "nab", lambda _: None, jobs=1)
    two = evaluate.replay_all(settings, recordings, "nab", lambda _: None, jobs=2)
    assert [r.recording.name for r in two] == [rec.name for rec in recordings]
    assert [(r.detections_ms, r.open_ms, r.windows) for r in two] == [(r.detections_ms, r.open_ms, r.windows)
                                                                       for r in one]
    assert all(r.windows for r in one)
