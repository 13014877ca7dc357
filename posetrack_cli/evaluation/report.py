"""The evaluation's printed table and JSON document.

PoseTrack and box tracking numbers are percentages with one decimal, as poseval prints them; COCO numbers are on the
0..1 scale with three decimals, as pycocotools prints them. An undefined number is ``-`` in the
table and ``null`` in JSON.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from posetrack_cli.evaluation.mot import BoxTrackingMetrics
from posetrack_cli.evaluation.posetrack import PCKH_THRESHOLD, PoseTrackMetrics, nanmean

# The body-part columns of the PoseTrack papers' tables (poseval getCum): each is the mean of its joints.
PAPER_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Head", ("head_top", "head_bottom", "neck", "nose")),
    ("Shou", ("left_shoulder", "right_shoulder")),
    ("Elb", ("left_elbow", "right_elbow")),
    ("Wri", ("left_wrist", "right_wrist")),
    ("Hip", ("left_hip", "right_hip")),
    ("Knee", ("left_knee", "right_knee")),
    ("Ankl", ("left_ankle", "right_ankle")),
)
_COLUMNS = (("AP", "ap"), ("MOTA", "mota"), ("MOTP", "motp"), ("Prec", "precision"), ("Rec", "recall"))


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def _cell(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def paper_parts(metrics: PoseTrackMetrics, values: np.ndarray) -> dict[str, float]:
    """``values`` (J,) averaged into the papers' body-part columns plus ``Total`` (mean of all joints)."""
    index = {name: i for i, name in enumerate(metrics.joints)}
    parts = {}
    for part, names in PAPER_PARTS:
        chosen = [values[index[n]] for n in names if n in index]
        parts[part] = nanmean(np.array(chosen)) if chosen else float("nan")
    parts["Total"] = nanmean(values)
    return parts


def _table(rows: Sequence[Sequence[str]], *, label_column: bool = True) -> list[str]:
    """Rows of cells, right-aligned, except the first column when it holds labels."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i == 0 and label_column else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]


def posetrack_table(metrics: PoseTrackMetrics) -> str:
    """The per-joint table, its total, the papers' body-part layout, and what was left out."""
    m = metrics
    n = len(m.sequences)
    lines = [f"PoseTrack evaluation: {n} sequence{'s' * (n != 1)}, {m.num_frames} frames with people; "
             f"PCKh@{PCKH_THRESHOLD:g}, percent"]
    rows = [["joint", *(name for name, _ in _COLUMNS), "IDsw", "GT joints"]]
    for j, joint in enumerate(m.joints):
        cells = [_cell(getattr(m, attr)[j]) for _, attr in _COLUMNS]
        rows.append([joint, *cells, str(m.switches[j]), str(m.num_gt[j])])
    totals = m.totals
    rows.append(["total", *(_cell(totals[name]) for name, _ in _COLUMNS), str(m.switches.sum()), str(m.num_gt.sum())])
    lines += _table(rows)
    lines.append("")
    ap_parts, mota_parts = paper_parts(m, m.ap), paper_parts(m, m.mota)
    lines += _table([["", *ap_parts], ["mAP", *map(_cell, ap_parts.values())],
                     ["MOTA", *map(_cell, mota_parts.values())]])
    lines.append("")
    lines.append(f"joints scored ({len(m.joints)}): named by both and annotated in the ground truth")
    for label, names in (("named by both, never annotated", m.unannotated_joints),
                         ("only in the ground truth", m.gt_only_joints),
                         ("only in the predictions", m.pred_only_joints),
                         ("ground-truth sequences without predictions (not evaluated)", m.gt_only_sequences),
                         ("predicted sequences without ground truth (not evaluated)", m.pred_only_sequences)):
        if names:
            lines.append(f"{label}: {', '.join(names)}")
    lines += [f"note: {note}" for note in m.notes]
    return "\n".join(lines)


def posetrack_json(metrics: PoseTrackMetrics) -> dict[str, Any]:
    """The numbers of ``posetrack_table`` as a JSON-ready document (percentages, NaN as null)."""
    m = metrics
    joints = {}
    for j, joint in enumerate(m.joints):
        joints[joint] = {name: _number(getattr(m, attr)[j]) for name, attr in _COLUMNS}
        joints[joint].update(num_gt=int(m.num_gt[j]), misses=int(m.misses[j]),
                             false_positives=int(m.false_positives[j]), switches=int(m.switches[j]))
    return {
        "metric": "posetrack", "units": "percent", "pckh_threshold": PCKH_THRESHOLD,
        "sequences": list(m.sequences), "num_frames": m.num_frames,
        "total": {name: _number(v) for name, v in m.totals.items()},
        "joints": joints,
        "parts": {name: {p: _number(v) for p, v in paper_parts(m, getattr(m, attr)).items()}
                  for name, attr in (("AP", "ap"), ("MOTA", "mota"))},
        "not_scored": {"unannotated": list(m.unannotated_joints), "gt_only": list(m.gt_only_joints),
                       "pred_only": list(m.pred_only_joints)},
        "gt_only_sequences": list(m.gt_only_sequences), "pred_only_sequences": list(m.pred_only_sequences),
        "notes": list(m.notes),
    }


def coco_table(stats: dict[str, float], *, num_images: int, num_people: int, num_results: int) -> str:
    """The ten COCO keypoint statistics in one row, with what they were computed over."""
    lines = [f"COCO keypoint evaluation (pycocotools, OKS): {num_images} images, {num_people} people with "
             f"keypoints, {num_results} predictions"]
    lines += _table([list(stats), [_cell(v, 3) for v in stats.values()]], label_column=False)
    return "\n".join(lines)


def coco_json(stats: dict[str, float]) -> dict[str, Any]:
    """``coco_keypoint_ap``'s statistics as a JSON-ready document (0..1, NaN as null)."""
    return {"metric": "coco", "units": "fraction", "stats": {k: _number(v) for k, v in stats.items()}}


def mot_table(metrics: BoxTrackingMetrics) -> str:
    """The box tracking metrics in one row, with the counts behind them."""
    m, c = metrics, metrics.counts
    n = len(m.sequences)
    lines = [f"Box tracking evaluation (motmetrics, IoU >= {m.iou:g}): {n} sequence{'s' * (n != 1)}, "
             f"{c['num_frames']} frames, {c['num_objects']} ground-truth boxes of {c['num_unique_objects']} tracks, "
             f"{c['num_predictions']} predicted boxes; percent"]
    rows = [["MOTA", "MOTP", "IDF1", "IDP", "IDR", "Prec", "Rec", "IDsw", "FP", "FN", "MT", "ML"],
            [*(_cell(v) for v in (m.mota, m.motp, m.idf1, m.idp, m.idr, m.precision, m.recall)),
             *(str(c[k]) for k in ("num_switches", "num_false_positives", "num_misses", "mostly_tracked",
                                   "mostly_lost"))]]
    lines += _table(rows, label_column=False)
    for label, names in (("ground-truth sequences without predictions (not evaluated)", m.gt_only_sequences),
                         ("predicted sequences without ground truth (not evaluated)", m.pred_only_sequences)):
        if names:
            lines.append(f"{label}: {', '.join(names)}")
    return "\n".join(lines)


def mot_json(metrics: BoxTrackingMetrics) -> dict[str, Any]:
    """The numbers of ``mot_table`` as a JSON-ready document (percentages, NaN as null)."""
    m = metrics
    return {
        "metric": "mot", "units": "percent", "iou_threshold": m.iou, "sequences": list(m.sequences),
        "total": {name: _number(getattr(m, attr)) for name, attr in
                  (("MOTA", "mota"), ("MOTP", "motp"), ("IDF1", "idf1"), ("IDP", "idp"), ("IDR", "idr"),
                   ("Prec", "precision"), ("Rec", "recall"))},
        "counts": dict(m.counts),
        "gt_only_sequences": list(m.gt_only_sequences), "pred_only_sequences": list(m.pred_only_sequences),
    }
