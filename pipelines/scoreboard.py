"""What ``predmaint evaluate`` reports: targets met, the scoreboard text, a PNG per corpus, JSON-safe values.

Kept apart from :mod:`predmaint.pipelines.evaluate`, which replays and scores:
this module only reads the result dictionaries that evaluation returns.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["finite", "format_result", "json_default", "plot_result", "targets_met"]


def targets_met(corpus: str, result: dict[str, Any], goal: dict[str, Any]) -> dict[str, bool]:
    """Each target of ``corpus`` -> whether ``result`` meets it."""
    met: dict[str, bool] = {}
    if corpus == "nab":
        for profile, minimum in goal.get("score_min", {}).items():
            met[f"{profile} >= {minimum}"] = result["score"].get(profile, -1e9) >= minimum
    elif corpus == "skab":
        met[f"f1 >= {goal['f1_min']}"] = result["f1"] >= goal["f1_min"]
        met[f"far_pct <= {goal['far_pct_max']}"] = result["far_pct"] <= goal["far_pct_max"]
        met[f"changepoint standard >= {goal['changepoint_min']}"] = \
            result["changepoint"]["standard"] >= goal["changepoint_min"]
    elif corpus == "ims":
        for run_name, run in result.items():
            if not isinstance(run, dict) or "bearings" not in run:
                continue
            for number, b in run["bearings"].items():
                if b["failed"] is None:
                    continue  # a run without ground truth is reported, not judged
                if b["failed"]:
                    met[f"{run_name} bearing {number} lead >= {goal['lead_h_min']} h"] = \
                        b["lead_h"] is not None and b["lead_h"] >= goal["lead_h_min"]
                else:
                    met[f"{run_name} bearing {number} no alert before the failing bearing's"] = \
                        not b["before_failed_bearing"]
                met[f"{run_name} bearing {number} no alert in the quiet period"] = b["quiet_alerts"] == 0
    elif corpus == "cwru":
        for fault, r in result.items():
            if isinstance(r, dict) and "auc" in r:
                met[f"{fault} auc >= {goal['auc_min']}"] = r["auc"] >= goal["auc_min"]
                met[f"{fault} fault type >= {goal['fault_type_share_min']}"] = \
                    r["fault_type_share"] >= goal["fault_type_share_min"]
    return met


def format_result(result: dict[str, Any]) -> str:
    """A scoreboard a user can read."""
    corpus = result["corpus"]
    lines = [f"== {corpus.upper()} (champion {result['model']}, {result['seconds']} s)"]
    if corpus == "nab":
        lines.append(f"{result['files']} files, {result['windows']} anomaly windows, "
                     f"{result['detections']} detections")
        rows = [("predmaint", *[result["score"].get(p, float("nan"))
                                for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")])]
        rows += [(d, *[s.get(p, float("nan")) for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")])
                 for d, s in result["published"].items()]
        rows.sort(key=lambda r: -r[1])
        lines.append(f"{'detector':<22}{'standard':>10}{'low FP':>10}{'low FN':>10}")
        lines += [f"{d:<22}{a:>10.2f}{b:>10.2f}{c:>10.2f}" for d, a, b, c in rows]
    elif corpus == "skab":
        lines.append(f"{result['experiments']} experiments: F1 {result['f1']:.3f}, FAR {result['far_pct']:.2f} %, "
                     f"MAR {result['mar_pct']:.2f} %; changepoint NAB standard "
                     f"{result['changepoint'].get('standard', float('nan')):.2f}; "
                     f"{result['anomaly_free_alerts']} alerts on the anomaly-free run")
        pub = result["published"]
        lines.append(f"published, over {pub['experiments']} experiments where ours covers {result['experiments']}:")
        lines += [f"  {d:<22} F1 {v['f1']:.2f}  FAR {v['far_pct']:6.2f} %  MAR {v['mar_pct']:6.2f} %  "
                  f"changepoint {pub['changepoint'].get(d, float('nan')):.2f}"
                  for d, v in sorted(pub["outlier"].items(), key=lambda kv: -kv[1]["f1"])]
    elif corpus == "ims":
        for run_name, run in result.items():
            if isinstance(run, dict) and "bearings" in run:
                for number, b in sorted(run["bearings"].items()):
                    state = "unknown: no ground truth" if b["failed"] is None else \
                        "failed: " + b["fault"] if b["failed"] else "healthy"
                    quiet = "no quiet period known" if b["quiet_alerts"] is None else \
                        f"{b['quiet_alerts']} in the quiet period"
                    lines.append(f"{run_name} bearing {number} ({state}): first alert at snapshot "
                                 f"{b['first_alert_snapshot']}, lead {b['lead_h']} h, {b['alerts']} alerts, {quiet}")
    elif corpus == "cwru":
        for fault, r in result.items():
            if isinstance(r, dict) and "auc" in r:
                lines.append(f"{fault}: AUC {r['auc']:.3f} ({r['normal_windows']} normal vs {r['fault_windows']} "
                             f"fault windows), fault named in {r['fault_type_share']:.0%} of {r['alerts']} alerts")
    return "\n".join(lines)


def plot_result(result: dict[str, Any], path: Path) -> Path:
    """A PNG per corpus: NAB score per file, IMS first alert per bearing, SKAB and CWRU summary bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    corpus = result["corpus"]
    if corpus == "nab":
        names = sorted(result["by_file"])
        ax.bar(range(len(names)), [result["by_file"][n] for n in names])
        ax.set_xticks(range(len(names)), [n.split("/")[-1][:18] for n in names], rotation=90, fontsize=6)
        ax.set_ylabel("raw NAB score (standard)")
    elif corpus == "ims":
        plt.close(fig)
        return _plot_ims(result, path, plt)
    elif corpus == "skab":
        ax.bar(["F1 x100", "FAR %", "MAR %", "CP NAB"], [100 * result["f1"], result["far_pct"], result["mar_pct"],
                                                         result["changepoint"].get("standard", 0.0)])
    else:
        faults = [f for f, r in result.items() if isinstance(r, dict) and "auc" in r]
        ax.bar(faults, [result[f]["auc"] for f in faults])
        ax.set_ylabel("ROC AUC")
    ax.set_title(f"predmaint evaluate {corpus} ({result['model']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_ims(result: dict[str, Any], path: Path, plt) -> Path:
    """One panel per run: each bearing's worst champion health per snapshot, its alerts marked."""
    runs = {name: run for name, run in sorted(result.items()) if isinstance(run, dict) and "bearings" in run}
    fig, axes = plt.subplots(len(runs), 1, figsize=(13, 3.2 * max(len(runs), 1)), squeeze=False)
    for ax, (name, run) in zip(axes[:, 0], runs.items()):
        for number, b in sorted(run["bearings"].items()):
            curve = b.get("health_curve") or {}
            label = f"bearing {number}" + (f" (failed: {b['fault']})" if b["failed"] else "")
            line, = ax.plot(curve.get("snapshot", []), curve.get("health", []), lw=0.8, label=label)
            alerts = curve.get("alerts", [])
            ax.plot(alerts, [-4.0] * len(alerts), "v", color=line.get_color(), ms=7)
            if curve.get("last_live_snapshot") is not None:
                ax.axvline(curve["last_live_snapshot"], color="k", lw=0.6)
        quiet = next(((b.get("health_curve") or {}).get("quiet_before_snapshot") for b in run["bearings"].values()),
                     None)
        if quiet:
            ax.axvspan(0, quiet, color="0.92", zorder=0)
        ax.set_ylim(-8, 104)
        ax.set_ylabel("worst health")
        ax.set_title(f"IMS {name}: champion health per snapshot (triangles: alerts raised; grey: quiet period; "
                     f"line: last live snapshot)", fontsize=9)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))  # outside: never hides an alert
    axes[-1, 0].set_xlabel("snapshot (file_index)")
    fig.suptitle(f"predmaint evaluate ims ({result['model']})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by ``None`` (JSON has no NaN: an undefined score is null)."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
