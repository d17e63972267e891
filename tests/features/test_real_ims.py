"""IMS test 2 raw snapshots: bearing 1's outer-race defect shows at BPFO.

Data: NASA/IMS (University of Cincinnati) bearing run-to-failure test 2 (see
../shared/data/ims_bearing_test2/SOURCE.md). 20,480 samples at 20.48 kHz,
values in g, 2000 rpm, Rexnord ZA-2115. The run ended with an outer-race
failure of bearing 1 (column 1). 2004.02.16.04.32.39 is snapshot 540 (about
3 days before the end), 2004.02.17.07.12.39 is snapshot 700 (about 2 days).
"""

import numpy as np
import pytest

from predmaint.features.bearing import BearingGeometry, defect_frequencies_hz
from predmaint.features.envelope import envelope_spectrum
from predmaint.features.spectrum import amplitude_spectrum
from predmaint.features.vibration import strongest_defect_line, vibration_features

FS = 20480.0
SHAFT_HZ = 2000.0 / 60.0
ZA_2115 = BearingGeometry(16, 0.331, 2.815, 15.17).multipliers()
BPFO_HZ = defect_frequencies_hz(ZA_2115, SHAFT_HZ)["bpfo"]
EARLY, LATE = "2004.02.16.04.32.39", "2004.02.17.07.12.39"


def features(x):
    return vibration_features(x, FS, shaft_hz=SHAFT_HZ, bearing=ZA_2115)


def envelope_peak_hz(x, feats, lo_hz=20.0, hi_hz=400.0):
    """Frequency of the largest envelope-spectrum line between lo_hz and hi_hz."""
    band = (feats["env_band_lo_hz"], feats["env_band_hi_hz"])
    env = envelope_spectrum(amplitude_spectrum(x, FS), band)
    k_lo, k_hi = int(lo_hz / env.bin_hz), int(hi_hz / env.bin_hz)
    return (k_lo + int(np.argmax(env.amplitude[k_lo : k_hi + 1]))) * env.bin_hz


@pytest.mark.parametrize("snapshot", [EARLY, LATE])
def test_bearing_1_envelope_peaks_at_bpfo(ims, snapshot):
    x = ims[snapshot][:, 0]
    feats = features(x)
    assert abs(envelope_peak_hz(x, feats) - BPFO_HZ) <= 0.03 * BPFO_HZ
    name, ratio = strongest_defect_line(feats)
    assert name == "bpfo"
    assert ratio > 8.0


@pytest.mark.parametrize("snapshot", [EARLY, LATE])
def test_bearing_1_bpfo_stands_out_against_the_healthy_bearings(ims, snapshot):
    ratios = [features(ims[snapshot][:, ch])["env_bpfo_ratio"] for ch in range(4)]
    assert ratios[0] > 2.0 * max(ratios[1:]), ratios


def test_bpfo_grows_towards_failure(ims):
    early, late = features(ims[EARLY][:, 0]), features(ims[LATE][:, 0])
    assert late["env_bpfo"] > 2.0 * early["env_bpfo"]
    assert late["env_bpfo_ratio"] > early["env_bpfo_ratio"]


def test_later_snapshot_shows_bpfo_in_every_4096_sample_window(ims):
    x = ims[LATE][:, 0]
    lines = [strongest_defect_line(features(x[i : i + 4096]))[0] for i in range(0, x.size, 4096)]
    assert lines == ["bpfo"] * 5


@pytest.mark.parametrize("snapshot", [EARLY, LATE])
def test_the_healthy_bearings_name_no_fault_in_any_window(ims, snapshot):
    # The healthy-sensor rule on a second rig: bearings 2-4 outlived the run, so no 4,096-sample
    # window (one every 1,024 samples) and no full snapshot of theirs may name a bearing fault.
    from predmaint.features.diagnosis import diagnose

    for ch in (1, 2, 3):
        x = ims[snapshot][:, ch]
        named = [diagnose(features(x[i : i + 4096])) for i in range(0, x.size - 4095, 1024)]
        assert named == [None] * 17 and diagnose(features(x)) is None, (ch, named)
