import math
import pickle

import pytest

from predmaint.features.aggregate import FeatureAccumulator, is_max_key

KEYS = ("accel_rms", "accel_peak", "accel_peak_to_peak", "iso_zone", "kurtosis")
SNAPSHOTS = [
    dict(zip(KEYS, (1.0, 4.0, 7.0, 1.0, 3.0))),
    dict(zip(KEYS, (2.0, 6.0, 9.0, 3.0, 5.0))),
    dict(zip(KEYS, (6.0, 5.0, 8.0, 2.0, 4.0))),
]
EXPECTED = {
    "accel_rms": 3.0,
    "accel_peak": 6.0,
    "accel_peak_to_peak": 9.0,
    "iso_zone": 3.0,
    "kurtosis": 4.0,
    "snapshots": 3,
}


def filled(snaps):
    acc = FeatureAccumulator()
    for s in snaps:
        acc.add(s)
    return acc


def test_mean_and_max():
    assert filled(SNAPSHOTS).result() == EXPECTED


def test_merge_equals_adding_everything_to_one():
    a, b = filled(SNAPSHOTS[:1]), filled(SNAPSHOTS[1:])
    b_before = b.result()
    assert a.merge(b) is a
    assert a.result() == EXPECTED
    assert b.result() == b_before  # the merged-in accumulator is not changed


def test_merge_in_any_order_and_with_empty():
    a = filled(SNAPSHOTS[2:]).merge(FeatureAccumulator()).merge(filled(SNAPSHOTS[:2]))
    assert a.result() == EXPECTED
    assert FeatureAccumulator().merge(filled(SNAPSHOTS)).result() == EXPECTED


def test_empty_accumulator():
    assert FeatureAccumulator().result() == {"snapshots": 0}


def test_nan_is_skipped_per_key_and_all_nan_reads_nan():
    acc = filled([{"kurtosis": math.nan, "crest_factor": math.nan, "accel_rms": 1.0},
                  {"kurtosis": 5.0, "crest_factor": math.nan, "accel_rms": 3.0}])
    r = acc.result()
    assert r["kurtosis"] == 5.0 and r["accel_rms"] == 2.0 and r["snapshots"] == 2
    assert math.isnan(r["crest_factor"])


def test_snapshots_with_different_keys_average_over_their_own_count():
    r = filled([{"a": 1.0}, {"a": 3.0, "b": 10.0}]).result()
    assert r == {"a": 2.0, "b": 10.0, "snapshots": 2}


def test_pickles_small_and_round_trips():
    acc = filled(SNAPSHOTS * 100)
    blob = pickle.dumps(acc)
    assert len(blob) < 1000
    again = pickle.loads(blob)
    assert again.result() == acc.result()
    again.add(SNAPSHOTS[0])
    assert again.result()["snapshots"] == 301


def test_which_keys_take_the_max():
    assert is_max_key("accel_peak") and is_max_key("accel_peak_to_peak") and is_max_key("iso_zone")
    assert not any(is_max_key(k) for k in ("accel_rms", "peak_count", "env_bpfo", "kurtosis"))


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"snapshots": 1.0}, "reserved"),
        ({"accel_rms": "1.0"}, "must be a number"),
        ({"accel_rms": None}, "must be a number"),
        ({"flag": True}, "must be a number"),
        ({1: 1.0}, "names must be str"),
        ([("accel_rms", 1.0)], "mapping"),
    ],
)
def test_bad_input_leaves_the_accumulator_unchanged(bad, match):
    acc = filled(SNAPSHOTS)
    with pytest.raises(ValueError, match=match):
        acc.add(bad)
    assert acc.result() == EXPECTED


def test_merge_rejects_other_types():
    with pytest.raises(ValueError, match="FeatureAccumulator"):
        FeatureAccumulator().merge({"accel_rms": 1.0})
