"""Person-box tracking metrics (CLEAR-MOT and IDF1, as MOTChallenge reports them) through motmetrics.

The PoseTrack metrics measure joints in head sizes, so they need the ground truth's head boxes;
posetrack's own JSON has none. These metrics need only person boxes and track ids, so any two
files with ``bbox`` and ``track_id`` per person (posetrack's JSON, PoseTrack 2018) can be compared:
two runs, two settings, or a run against box-annotated ground truth.

1. Frames pair by position; every frame counts (a person predicted in a frame whose ground truth
   is empty is a false positive, as in MOTChallenge).
2. A predicted person whose box centre lies in a ground-truth ignore region is left out.
3. A predicted and a ground-truth box may match when their IoU is at least ``iou`` (0.5, the
   MOTChallenge threshold); motmetrics matches them per frame (Hungarian, keeping last frame's
   matches where still valid) and counts misses, false positives and identity switches.
4. MOTA = 1 - (misses + false positives + switches) / ground-truth boxes; MOTP = mean IoU of the
   matches; IDF1 = the F1 score of boxes given the right identity under the best one-to-one
   mapping of whole tracks (Ristani et al. 2016). Percentages. Counts are summed over sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.evaluation.posetrack import check_frame_counts, inside_polygons, pair_by_name
from posetrack_cli.io.formats import PoseFrame, PoseSequence
from posetrack_cli.tracking.similarity import iou_matrix

MOT_IOU = 0.5  # MOTChallenge's: boxes overlapping less are not the same person

_COUNTS = ("num_frames", "num_objects", "num_predictions", "num_detections", "num_misses", "num_false_positives",
           "num_switches", "num_fragmentations", "num_unique_objects", "mostly_tracked", "partially_tracked",
           "mostly_lost", "idtp", "idfp", "idfn")


@dataclass(frozen=True)
class BoxTrackingMetrics:
    """Box tracking metrics of predictions against ground truth, summed over sequences.

    Attributes:
        mota, motp, idf1, idp, idr, precision, recall: percentages (NaN where undefined).
        counts: the motmetrics counts behind them (``num_objects``, ``num_misses``, ``num_switches``,
            ``idtp``, ``mostly_tracked``, ...), as ints.
        sequences: the sequences evaluated (named in both).
        iou: the IoU a match needed.
        gt_only_sequences, pred_only_sequences: sequences only one side has (not evaluated).
    """

    mota: float
    motp: float
    idf1: float
    idp: float
    idr: float
    precision: float
    recall: float
    counts: dict[str, int]
    sequences: tuple[str, ...]
    iou: float = MOT_IOU
    gt_only_sequences: tuple[str, ...] = ()
    pred_only_sequences: tuple[str, ...] = ()


def _boxes(frame: PoseFrame, where: str) -> np.ndarray:
    """``(N, 4)`` xyxy boxes; refuses people without a box."""
    assert frame.boxes is not None
    if len(frame) and not np.all(np.isfinite(frame.boxes)):
        raise PosetrackError(f"{where}: a person has no box ('bbox'); box tracking metrics need one per person")
    return frame.boxes


def iou_distances(gt_boxes: np.ndarray, pred_boxes: np.ndarray, iou: float) -> np.ndarray:
    """``(G, P)`` 1 - IoU of xyxy boxes, NaN (may not match) where the IoU is below ``iou``.

    motmetrics' own ``iou_matrix`` fails on numpy 2 (it calls the removed ``np.asfarray``).
    """
    overlap = iou_matrix(gt_boxes, pred_boxes).astype(np.float64)
    return np.where(overlap >= iou, 1 - overlap, np.nan)


def evaluate_boxes(gt: Sequence[PoseSequence], pred: Sequence[PoseSequence], *,
                   iou: float = MOT_IOU) -> BoxTrackingMetrics:
    """CLEAR-MOT and IDF1 of ``pred``'s person boxes and ids against ``gt``'s (see the module docstring).

    Raises:
        PosetrackError: no sequence in common, frame counts that differ, or a person without a box.
    """
    import motmetrics as mm  # pandas behind it takes a second to import; only evaluation needs it

    pairs = pair_by_name(gt, pred)
    # One accumulator for all sequences with each sequence's ids in a range of their own: the same
    # counts as per-sequence accumulators summed, and IDF1's track mapping never crosses sequences.
    acc = mm.MOTAccumulator(auto_id=True)
    for s_idx, (g_seq, p_seq) in enumerate(pairs):
        offset = s_idx << 32
        check_frame_counts(g_seq, p_seq)
        for f_idx, (g_frame, p_frame) in enumerate(zip(g_seq.frames, p_seq.frames)):
            g_boxes = _boxes(g_frame, f"{g_seq.source}, frame {f_idx}")
            p_boxes = _boxes(p_frame, f"{p_seq.source}, frame {f_idx}")
            keep = ~inside_polygons((p_boxes[:, :2] + p_boxes[:, 2:]) / 2, g_frame.ignore_regions)
            p_boxes, p_ids = p_boxes[keep], p_frame.track_ids[keep]
            distances = iou_distances(g_boxes, p_boxes, iou)  # (G, P)
            acc.update((g_frame.track_ids + offset).tolist(), (p_ids + offset).tolist(), distances)
    summary = mm.metrics.create().compute(acc, metrics=[*_COUNTS, "motp"], return_dataframe=False, name="acc")
    counts = {name: int(summary[name]) for name in _COUNTS}
    # num_detections: boxes matched to a ground-truth person, identity switches included
    objects, predictions, matches = counts["num_objects"], counts["num_predictions"], counts["num_detections"]
    errors = counts["num_misses"] + counts["num_false_positives"] + counts["num_switches"]

    def ratio(num: float, den: float) -> float:
        return 100.0 * num / den if den > 0 else float("nan")

    idtp, idfp, idfn = counts["idtp"], counts["idfp"], counts["idfn"]
    gt_names, pred_names = {s.name for s in gt}, {s.name for s in pred}
    return BoxTrackingMetrics(
        mota=100.0 * (1 - errors / objects) if objects else float("nan"),
        motp=100.0 * (1 - float(summary["motp"])) if matches else float("nan"),
        idf1=ratio(2 * idtp, 2 * idtp + idfp + idfn), idp=ratio(idtp, idtp + idfp), idr=ratio(idtp, idtp + idfn),
        precision=ratio(matches, predictions), recall=ratio(matches, objects),
        counts=counts, sequences=tuple(g.name for g, _ in pairs), iou=iou,
        gt_only_sequences=tuple(s.name for s in gt if s.name not in pred_names),
        pred_only_sequences=tuple(s.name for s in pred if s.name not in gt_names),
    )
