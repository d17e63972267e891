"""Which fault a vibration window points to, with the spectral line and its ratio as evidence.

A vibration analyst names a fault from the line that stands out: a bearing
defect from its envelope-spectrum line (BPFO: outer race, BPFI: inner race,
BSF or 2 x BSF: rolling element, FTF: cage), a shaft fault from the velocity
orders (1 x: imbalance, 2 x: misalignment, 3 x and higher harmonics:
looseness). The rules that keep the name honest:

* a bearing line is named only when it stands clearly above the envelope
  floor: on white noise the ratio's 95th percentile is about 3 and a seeded
  CWRU fault reads about 22 (see :mod:`predmaint.features.vibration`), so
  :data:`DEFECT_RATIO_MIN` = 6 leaves a healthy sensor's noise-level line
  unnamed;
* a ball defect is struck at 2 x BSF and carried in and out of the load zone
  by the cage, so its 2 x BSF line comes with a pair of FTF sidebands
  (``env_2bsf_sb_ratio``, the weaker of the two). The three together, each at
  least :data:`BALL_PATTERN_MIN` = 3 (the noise 95th percentile of one line;
  the weaker sideband's noise 99.9th percentile), name a ball fault even when
  no single line reaches 6: on 2,200 windows of white and coloured noise the
  pattern never appeared. The same pattern turns a leading FTF line into a
  ball fault rather than a cage fault: the load-zone modulation of a ball
  defect puts a strong line at FTF itself (a cage fault has no 2 x BSF line);
* shaft orders are present on every healthy machine, so a shaft fault is
  named only when that order is what changed: when it leads the model's
  explanation of the window (the features furthest from the sensor's own
  normal).

The result is an explanation item, so alerts carry it to the webhook
payload, the ``alerts`` measurement and the report unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["BALL_PATTERN_MIN", "DEFECT_RATIO_MIN", "LINE_FAULTS", "ORDER_FAULTS", "diagnose", "named_fault"]

#: A defect line must stand this many times above the envelope floor to be named (noise: ~3 at p95).
DEFECT_RATIO_MIN = 6.0
#: 2 x BSF and both its FTF sidebands must each stand this many times above the floor (see above).
BALL_PATTERN_MIN = 3.0
#: Envelope line -> the bearing fault it indicates.
LINE_FAULTS = {"bpfo": "outer_race", "bpfi": "inner_race", "bsf": "ball", "2bsf": "ball", "ftf": "cage"}
#: Velocity order -> the shaft fault it indicates when it is what changed.
ORDER_FAULTS = {"amp_1x": "imbalance", "amp_2x": "misalignment", "amp_3x": "looseness"}
#: How many leading explanation items may name the changed order.
_LEADING = 2


def diagnose(features: Mapping[str, float], explanation: Sequence[Mapping] = ()) -> dict | None:
    """The fault a window's spectrum points to, or ``None`` when nothing stands out.

    Parameters
    ----------
    features : mapping
        The window's vibration features (``env_<line>_ratio``, ``amp_<n>x``...).
    explanation : sequence of mapping
        The model's explanation of the window, most deviating feature first
        (items with a ``feature`` key).

    Returns
    -------
    dict or None
        ``{"feature", "value", "fault", "ratio", "evidence"}``: the feature
        that shows the fault and its value (so the item reads like the
        model's explanation items), the fault, the ratio (line over envelope
        floor, or order amplitude over its baseline mean) and a sentence for
        people.

    Examples
    --------
    >>> diagnose({"env_bpfo_ratio": 21.7, "env_bpfi_ratio": 2.1})["fault"]
    'outer_race'
    >>> diagnose({"env_bpfo_ratio": 2.8, "env_bpfi_ratio": 2.1}) is None  # noise-level lines
    True
    >>> diagnose({"env_2bsf_ratio": 4.2, "env_2bsf_sb_ratio": 3.4, "env_ftf_ratio": 7.0})["evidence"]
    'envelope line at 2xBSF is 4.2 x the envelope floor with FTF sidebands at least 3.4 x; FTF line 7.0 x: \
the cage carries the defect through the load zone'
    >>> d = diagnose({"env_bpfo_ratio": 2.0, "amp_2x": 3.0},
    ...              [{"feature": "amp_2x", "value": 3.0, "baseline_mean": 1.0, "z": 9.0}])
    >>> d["fault"], d["ratio"]
    ('misalignment', 3.0)
    """
    best: tuple[str, float] | None = None
    for line in LINE_FAULTS:
        ratio = features.get(f"env_{line}_ratio")
        if ratio is not None and math.isfinite(ratio) and (best is None or ratio > best[1]):
            best = (line, float(ratio))
    ball = _ball_pattern(features)
    strong = best if best is not None and best[1] >= DEFECT_RATIO_MIN else None
    if ball is not None and (strong is None or strong[0] == "ftf"):
        # A leading FTF line with this pattern is the cage carrying a ball defect through the load zone.
        carried = f"; FTF line {strong[1]:.1f} x: the cage carries the defect through the load zone" if strong else ""
        return _line_item("env_2bsf_ratio", "ball", float(features["env_2bsf_ratio"]), ball + carried)
    if strong is not None:
        line, ratio = strong
        return _line_item(f"env_{line}_ratio", LINE_FAULTS[line], ratio,
                          f"envelope line at {line.upper()} is {ratio:.1f} x the envelope floor")
    for item in explanation[:_LEADING]:
        feature = str(item.get("feature", ""))
        if feature in ORDER_FAULTS:
            mean = item.get("baseline_mean")
            value = item.get("value", features.get(feature))
            ratio = float(value) / float(mean) if mean and value is not None and float(mean) > 0 else float("nan")
            return {"feature": feature, "value": value, "fault": ORDER_FAULTS[feature],
                    "ratio": round(ratio, 2) if math.isfinite(ratio) else None,
                    "evidence": f"{feature.replace('amp_', '')} shaft order rose"
                                + (f" to {ratio:.1f} x its normal amplitude" if math.isfinite(ratio) else "")}
    return None


def _line_item(feature: str, fault: str, ratio: float, evidence: str) -> dict:
    return {"feature": feature, "value": ratio, "fault": fault, "ratio": round(ratio, 2), "evidence": evidence}


def _ball_pattern(features: Mapping[str, float]) -> str | None:
    """The evidence sentence when 2 x BSF and both its FTF sidebands stand out, else None."""
    line, sidebands = features.get("env_2bsf_ratio"), features.get("env_2bsf_sb_ratio")
    if line is None or sidebands is None or not (line >= BALL_PATTERN_MIN and sidebands >= BALL_PATTERN_MIN):
        return None  # NaN compares false: no pattern
    return (f"envelope line at 2xBSF is {line:.1f} x the envelope floor with FTF sidebands "
            f"at least {sidebands:.1f} x")


def named_fault(explanation: Sequence[Mapping]) -> str:
    """The fault an explanation names (its :func:`diagnose` item), or ``""``.

    Examples
    --------
    >>> named_fault([{"feature": "env_bpfi_ratio", "fault": "inner_race", "ratio": 9.1}, {"feature": "kurtosis"}])
    'inner_race'
    >>> named_fault([{"feature": "kurtosis"}])
    ''
    """
    return next((str(item["fault"]) for item in explanation if item.get("fault")), "")
