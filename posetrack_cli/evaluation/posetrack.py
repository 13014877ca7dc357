"""The PoseTrack metrics: per-joint AP with PCKh@0.5, and CLEAR-MOT per joint (MOTA, MOTP, precision, recall).

Defined as the PoseTrack evaluation defines them (poseval, leonid-pishchulin/poseval:
``eval_helpers.assignGTmulti``, ``evaluateAP.py``, ``evaluateTracking.py``):

1. Frames: only frames whose ground truth has people are evaluated. Joints inside a ground-truth
   ignore region are removed from ground truth and predictions; people left without joints drop out.
2. Distance: a predicted joint's distance to a ground-truth joint divided by that person's head
   size, 0.6 x the head box diagonal; the joints match when it is at most 0.5 (PCKh@0.5).
3. People, per frame: the PCKh of a (prediction, ground truth) pair is the fraction of the ground
   truth's annotated joints matched. Each prediction keeps only its best ground truth, then each
   ground truth takes the prediction that kept it with the highest PCKh; so a person gets at most
   one prediction, and a prediction at most one person.
4. AP per joint: every predicted joint is a detection ranked by its score, true when its person was
   assigned and the joint matches; AP is the area under the interpolated precision/recall curve
   (all points, as VOC). The ground-truth count is the number of annotated joints.
5. MOT per joint: one motmetrics accumulator per sequence and joint; objects are the ground-truth
   people with the joint (by track id), hypotheses the predicted people with it, and only pairs
   within PCKh@0.5 may match, at their normalised distance. Counts are summed over sequences:
   MOTA = 1 - (misses + false positives + id switches) / objects, MOTP = 1 - mean matched
   distance, precision = matched / (matched + false positives), recall = matched / objects.
   Totals are means over joints.

All metrics are percentages, as poseval prints them and as papers report them. Four poseval bugs are
not reproduced:

* a frame with ground truth but no predictions counts every ground-truth joint as missed (poseval
  books one miss and one false positive per joint, however many people there are);
* the last frame of every sequence counts for MOT too (poseval drops it);
* MOTP: poseval sums the distance column of all of motmetrics' events (``acc.events['D'].sum()``).
  Since motmetrics 1.1 the events include the ``RAW`` rows, every candidate pair's distance, so
  poseval run with a current motmetrics reports MOTP too low; here MOTP is motmetrics' own, the
  mean distance of the matches (what poseval computed with the motmetrics it was written for);
* ties: poseval ranks detections with numpy's default sort, which is not stable, so joints of equal
  score (ground truth used as predictions, scores rounded in a file) come in an arbitrary order and
  AP can change with the order of the input; here ties keep the order of the files (stable sort).

Comparing two runs of posetrack, whose JSON has no head boxes, needs the box metrics of
``posetrack_cli.evaluation.mot`` instead (MOTA, IDF1 of person boxes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.io.formats import PoseFrame, PoseSequence

PCKH_THRESHOLD = 0.5  # a joint is found when within half a head size (PCKh@0.5)
HEAD_SIZE_FACTOR = 0.6  # head size = 0.6 x head box diagonal (poseval getHeadSize)

_MOT_COUNTS = ("num_misses", "num_switches", "num_false_positives", "num_objects", "num_detections", "motp")


@dataclass(frozen=True, eq=False)
class PoseTrackMetrics:
    """The PoseTrack metrics of predictions against ground truth, per joint, in percent.

    Attributes:
        joints: the J joints scored: named in both and annotated in the ground truth at least once.
        ap: ``(J,)`` average precision with PCKh@0.5.
        mota, motp, precision, recall: ``(J,)`` CLEAR-MOT metrics.
        num_gt: ``(J,)`` annotated ground-truth joints evaluated.
        misses, false_positives, switches: ``(J,)`` the MOT error counts.
        sequences: the sequences evaluated (named in both).
        num_frames: frames evaluated (frames whose ground truth has people).
        gt_only_joints, pred_only_joints: joint names only one side has (not evaluated).
        unannotated_joints: named in both but never annotated in the evaluated ground truth.
        gt_only_sequences, pred_only_sequences: sequences only one side has (not evaluated).
        notes: anything else a reader of the numbers must know.
    """

    joints: tuple[str, ...]
    ap: np.ndarray
    mota: np.ndarray
    motp: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    num_gt: np.ndarray
    misses: np.ndarray
    false_positives: np.ndarray
    switches: np.ndarray
    sequences: tuple[str, ...]
    num_frames: int
    gt_only_joints: tuple[str, ...] = ()
    pred_only_joints: tuple[str, ...] = ()
    unannotated_joints: tuple[str, ...] = ()
    gt_only_sequences: tuple[str, ...] = ()
    pred_only_sequences: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def totals(self) -> dict[str, float]:
        """Each metric's mean over joints (``AP`` is the mAP), ignoring undefined (NaN) joints."""
        return {name: nanmean(getattr(self, attr)) for name, attr in
                (("AP", "ap"), ("MOTA", "mota"), ("MOTP", "motp"), ("Prec", "precision"), ("Rec", "recall"))}


def nanmean(values: np.ndarray) -> float:
    """Mean of the finite-or-infinite values, NaN when all are NaN (no warning)."""
    values = np.asarray(values, np.float64)
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


def head_sizes(head_boxes: np.ndarray) -> np.ndarray:
    """``(G,)`` PCKh reference lengths from head boxes ``(G, 4)`` x1, y1, x2, y2: 0.6 x diagonal."""
    diagonal = np.hypot(head_boxes[:, 2] - head_boxes[:, 0], head_boxes[:, 3] - head_boxes[:, 1])
    return np.asarray(HEAD_SIZE_FACTOR * diagonal)


def normalised_distances(pred: PoseFrame, gt: PoseFrame) -> np.ndarray:
    """``(P, G, K)`` joint distances in ground-truth head sizes; inf where either joint is absent."""
    d = np.linalg.norm(pred.keypoints[:, None] - gt.keypoints[None], axis=-1)  # (P, G, K)
    d = d / head_sizes(gt.head_boxes)[None, :, None]
    return np.where(pred.labelled[:, None] & gt.labelled[None], d, np.inf)


def assign_people(match: np.ndarray, gt_labelled: np.ndarray) -> np.ndarray:
    """The ground-truth person ``(P,)`` each prediction is assigned to, -1 for none (poseval's rule).

    Args:
        match: ``(P, G, K)`` bool, joint k of prediction p within PCKh of ground truth g.
        gt_labelled: ``(G, K)`` bool, annotated ground-truth joints.

    PCKh(p, g) = matched joints / annotated joints of g. Each prediction keeps only its best g
    (first on ties); each g then takes, among the predictions that kept it, the one with the highest
    PCKh, if above 0. A prediction whose best person went to another prediction stays unassigned
    even if it matches someone else: that is how the PoseTrack evaluation counts it.
    """
    p, g = match.shape[:2]
    assigned = np.full(p, -1, np.int64)
    if p == 0 or g == 0:
        return assigned
    pck = match.sum(axis=2) / np.maximum(gt_labelled.sum(axis=1), 1)[None]  # (P, G)
    best_gt = pck.argmax(axis=1)  # (P,)
    kept = np.zeros_like(pck)
    rows = np.arange(p)
    kept[rows, best_gt] = pck[rows, best_gt]
    best_pred = kept.argmax(axis=0)  # (G,)
    taken = kept.max(axis=0) > 0  # (G,)
    assigned[best_pred[taken]] = np.flatnonzero(taken)
    return assigned


def inside_polygons(points: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """``(M,)`` bool: which points ``(M, 2)`` lie inside any polygon ``(V, 2)`` (even-odd rule)."""
    inside = np.zeros(len(points), bool)
    x, y = points[:, :1], points[:, 1:]  # (M, 1)
    for poly in polygons:
        if len(poly) < 3:
            continue
        x1, y1 = poly[None, :, 0], poly[None, :, 1]  # (1, V)
        x2, y2 = np.roll(x1, -1, axis=1), np.roll(y1, -1, axis=1)
        straddles = (y1 > y) != (y2 > y)  # the edge crosses the horizontal line through the point
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside |= (straddles & (x < x_cross)).sum(axis=1) % 2 == 1
    return inside


def without_ignored(frame: PoseFrame, regions: Sequence[np.ndarray]) -> PoseFrame:
    """``frame`` without the joints inside ``regions``, and without people left with no joint."""
    if not regions or not len(frame):
        return frame
    n, k = frame.labelled.shape
    labelled = frame.labelled & ~inside_polygons(frame.keypoints.reshape(-1, 2), regions).reshape(n, k)
    frame = dataclasses.replace(frame, labelled=labelled)
    return frame.select(labelled.any(axis=1))


def average_precision(scores: np.ndarray, correct: np.ndarray, num_gt: int) -> float:
    """Area under the interpolated precision/recall curve, 0..1 (all points, as VOC and poseval).

    Args:
        scores: ``(D,)`` detection scores; higher ranks first.
        correct: ``(D,)`` bool, whether each detection is a true positive.
        num_gt: the number of ground-truth instances; NaN is returned when it is 0.
    """
    if num_gt == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(correct[order])
    recall = np.concatenate([[0.0], tp / num_gt, [1.0]])
    precision = np.concatenate([[0.0], tp / np.arange(1, len(tp) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the best precision at any higher recall
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def pair_by_name(gt: Sequence[PoseSequence], pred: Sequence[PoseSequence]) -> list[tuple[PoseSequence, PoseSequence]]:
    """(ground truth, prediction) for each sequence name both have, in ground-truth order."""
    if not gt or not pred:
        missing = "no ground-truth sequences" if not gt else "no predicted sequences"
        raise PosetrackError(f"nothing to evaluate: {missing}")
    pred_by_name = {s.name: s for s in pred}
    pairs = [(g, pred_by_name[g.name]) for g in gt if g.name in pred_by_name]
    if not pairs:
        listed = [sorted({s.name for s in side}) for side in (gt, pred)]
        gt_list, pred_list = (", ".join(names[:5]) + (", ..." if len(names) > 5 else "") for names in listed)
        raise PosetrackError(f"ground truth and predictions have no sequence in common (ground truth: {gt_list}; "
                             f"predictions: {pred_list})")
    return pairs


def check_frame_counts(gt: PoseSequence, pred: PoseSequence) -> None:
    """Refuse a pair whose frame counts differ: frames pair by position."""
    if len(gt.frames) != len(pred.frames):
        raise PosetrackError(f"sequence {gt.name}: {pred.source} has {len(pred.frames)} frames but "
                             f"{gt.source} has {len(gt.frames)}; frames pair by position, so "
                             "predictions must list every frame")


def _same_names(sequences: Sequence[PoseSequence], side: str) -> tuple[str, ...]:
    names = sequences[0].keypoint_names
    for seq in sequences[1:]:
        if seq.keypoint_names != names:
            raise PosetrackError(f"{side} files disagree on keypoint names: {sequences[0].source} has "
                                 f"{', '.join(names)}; {seq.source} has {', '.join(seq.keypoint_names)}")
    return names


def _check_heads(gt: PoseFrame, where: str) -> None:
    sizes = head_sizes(gt.head_boxes)
    if not np.all(np.isfinite(sizes) & (sizes > 0)):
        raise PosetrackError(f"{where}: a ground-truth person has no usable head box; PCKh needs one "
                             "('bbox_head' in PoseTrack 2018, 'x1', 'y1', 'x2', 'y2' in 2017); to compare "
                             "person boxes and track ids (MOTA, IDF1) without head boxes, use --metric mot")


def evaluate_posetrack(
    gt: Sequence[PoseSequence], pred: Sequence[PoseSequence], *, threshold: float = PCKH_THRESHOLD
) -> PoseTrackMetrics:
    """PoseTrack per-joint AP and CLEAR-MOT of ``pred`` against ``gt`` (see the module docstring).

    Sequences pair by name; joints pair by name, and only joints both sides name are scored. Within
    a pair, frames pair by position, so both must list the same number of frames.

    Raises:
        PosetrackError: no sequence or no joint name in common, frame counts that differ, or a
            ground-truth person without a head box.
    """
    import motmetrics as mm  # pandas behind it takes a second to import; only evaluation needs it

    pairs = pair_by_name(gt, pred)
    gt_joints, pred_joints = _same_names(gt, "ground-truth"), _same_names(pred, "prediction")
    joints = tuple(n for n in gt_joints if n in pred_joints)
    if not joints:
        raise PosetrackError(f"ground truth and predictions have no keypoint name in common (ground truth: "
                             f"{', '.join(gt_joints)}; predictions: {', '.join(pred_joints)})")
    gt_idx = np.array([gt_joints.index(n) for n in joints])
    pred_idx = np.array([pred_joints.index(n) for n in joints])
    k = len(joints)

    scores, correct, predicted = [], [], []  # per evaluated frame: (P, K) each
    num_gt = np.zeros(k, np.int64)
    # One accumulator per joint for all sequences: with each sequence's track ids moved into a range
    # of their own, the counts are those of per-sequence accumulators summed (poseval's way), and
    # motmetrics summarises k accumulators instead of k per sequence, the slow part.
    accumulators = [mm.MOTAccumulator(auto_id=True) for _ in range(k)]
    num_frames = 0
    for s_idx, (g_seq, p_seq) in enumerate(pairs):
        id_offset = s_idx << 32
        check_frame_counts(g_seq, p_seq)
        for f_idx, (g_frame, p_frame) in enumerate(zip(g_seq.frames, p_seq.frames)):
            g_frame = g_frame.select(joints=gt_idx)
            g_frame = g_frame.select(np.asarray(g_frame.labelled.any(axis=1)))
            if not len(g_frame):
                continue  # no people annotated here: not an evaluated frame
            num_frames += 1
            g_frame = without_ignored(g_frame, g_frame.ignore_regions)
            p_frame = without_ignored(p_frame.select(joints=pred_idx), g_frame.ignore_regions)
            _check_heads(g_frame, f"{g_seq.source}, frame {f_idx}")

            dist = normalised_distances(p_frame, g_frame)  # (P, G, K)
            match = dist <= threshold
            assigned = assign_people(match, g_frame.labelled)  # (P,)
            hit = np.zeros(p_frame.labelled.shape, bool)  # (P, K)
            rows = np.flatnonzero(assigned >= 0)
            hit[rows] = match[rows, assigned[rows]]
            scores.append(p_frame.scores)
            correct.append(hit & p_frame.labelled)
            predicted.append(p_frame.labelled)
            num_gt += g_frame.labelled.sum(axis=0)

            for j in range(k):
                gi, pi = np.flatnonzero(g_frame.labelled[:, j]), np.flatnonzero(p_frame.labelled[:, j])
                d = np.where(match[pi][:, gi, j], dist[pi][:, gi, j], np.nan).T  # (objects, hypotheses)
                accumulators[j].update((g_frame.track_ids[gi] + id_offset).tolist(),
                                       (p_frame.track_ids[pi] + id_offset).tolist(), d)

    if num_frames == 0:
        raise PosetrackError(f"the ground truth of {', '.join(g.name for g, _ in pairs)} annotates no people "
                             f"with the joints both sides name ({', '.join(joints)}): nothing to evaluate")

    notes = []
    all_scores, all_correct, all_predicted = np.concatenate(scores), np.concatenate(correct), np.concatenate(predicted)
    unscored = int(np.isnan(all_scores[all_predicted]).sum())
    if unscored:  # poseval ranks a joint without a score below all others (MIN_SCORE), in file order
        notes.append(f"{unscored} predicted joints have no score: AP ranks them last, in file order")
        all_scores = np.where(np.isnan(all_scores), -np.inf, all_scores)
    ap = 100 * np.array([average_precision(all_scores[all_predicted[:, j], j], all_correct[all_predicted[:, j], j],
                                           int(num_gt[j])) for j in range(k)])

    counts = {name: np.zeros(k) for name in _MOT_COUNTS}
    metrics = mm.metrics.create()
    for j, acc in enumerate(accumulators):
        summary = metrics.compute(acc, metrics=list(_MOT_COUNTS), return_dataframe=False, name="acc")
        for name in _MOT_COUNTS:
            counts[name][j] = summary[name]
    objects, detections, fp = counts["num_objects"], counts["num_detections"], counts["num_false_positives"]
    misses, switches = counts["num_misses"], counts["num_switches"]
    with np.errstate(divide="ignore", invalid="ignore"):
        mota = 100 * (1 - (misses + switches + fp) / np.where(objects > 0, objects, np.nan))
        # motmetrics' MOTP is the mean matched distance; poseval reports 0 for a joint never matched
        motp = np.where(detections > 0, 100 * (1 - counts["motp"]), 0.0)
        precision = 100 * detections / np.where(detections + fp > 0, detections + fp, np.nan)
        recall = 100 * detections / np.where(objects > 0, objects, np.nan)

    scored = num_gt > 0
    keep = np.flatnonzero(scored)
    gt_names, pred_names = {s.name for s in gt}, {s.name for s in pred}
    return PoseTrackMetrics(
        joints=tuple(joints[j] for j in keep),
        ap=ap[keep], mota=mota[keep], motp=motp[keep], precision=precision[keep], recall=recall[keep],
        num_gt=num_gt[keep], misses=misses[keep].astype(np.int64), false_positives=fp[keep].astype(np.int64),
        switches=switches[keep].astype(np.int64),
        sequences=tuple(g.name for g, _ in pairs), num_frames=num_frames,
        gt_only_joints=tuple(n for n in gt_joints if n not in joints),
        pred_only_joints=tuple(n for n in pred_joints if n not in joints),
        unannotated_joints=tuple(joints[j] for j in np.flatnonzero(~scored)),
        gt_only_sequences=tuple(s.name for s in gt if s.name not in pred_names),
        pred_only_sequences=tuple(s.name for s in pred if s.name not in gt_names),
        notes=tuple(notes),
    )
