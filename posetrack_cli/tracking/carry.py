"""Poses carried by flow between pose-network passes: the pose network on a person every N-th frame.

The paper moves every person's joints into the next frame by optical flow to find a box for them
(step 2), then runs the pose network on that box (step 4). Where the joints moved by flow are
already good enough, the second step can wait: a person whose pose the network gave at most
``pose_every - 1`` frames ago keeps the joints flow moved, and the network runs on them again
only at the next turn. It refreshes early where carrying is least safe:

* the pose it would carry was weak (mean confidence of its trusted joints under
  :data:`CARRY_MIN_CONFIDENCE`): a pose the network was unsure of would drift unchecked;
* its joints moved far (a step over :data:`CARRY_MAX_STEP` of the person's height in one frame):
  dense flow is least accurate on large, fast motion, where a carried pose would fall behind;
* two of this frame's boxes claim it (a detection and a flow box, each overlapping the other's
  person less than NMS requires): only the better one takes it.

A detection overlapping a carried person's flow box by the NMS threshold is that person (the
same test NMS makes between the two boxes), so on a frame whose detector ran the carried pose is
still used; the detection's box and score replace the flow box's. Pure functions of arrays.
"""

from __future__ import annotations

import numpy as np

from posetrack_cli.core.paper import JOINT_THRESHOLD, NMS_IOU
from posetrack_cli.core.types import Detections, Poses
from posetrack_cli.tracking.similarity import iou_matrix

# A pose is carried only if the mean score of its trusted joints is at least this (heatmap maxima:
# a pose the network was sure of scores 0.7-0.9 on its joints).
CARRY_MIN_CONFIDENCE = 0.5
# ... and only if no trusted joint moved more than this fraction of the pose's height in one frame.
CARRY_MAX_STEP = 0.1


def carry_plan(
    carried: Poses,
    ages: np.ndarray,
    moved: np.ndarray,
    kept: np.ndarray,
    detected: Detections,
    propagated: Detections,
    origin: np.ndarray,
    *,
    pose_every: int,
    joint_threshold: float = JOINT_THRESHOLD,
    iou_threshold: float = NMS_IOU,
    min_confidence: float = CARRY_MIN_CONFIDENCE,
    max_step: float = CARRY_MAX_STEP,
) -> np.ndarray:
    """Which of this frame's boxes keep a carried pose instead of running the pose network.

    Args:
        carried: last frame's ``N`` people (step 2's input).
        ages: ``(N,)`` frames since the pose network last ran on each (0: this past frame).
        moved: ``(N, K, 2)`` their joints moved by the flow into this frame.
        kept: ``(P,)`` this frame's boxes as indices into ``detected`` followed by ``propagated``
            (:func:`posetrack_cli.tracking.proposals.unified_order`).
        detected: this frame's ``D`` detections.
        propagated: this frame's ``F`` flow boxes, ``origin`` ``(F,)`` the person of each in ``carried``.
        pose_every: the pose network runs on a person at least every this many frames (1: always).

    Returns:
        ``(P,)`` int: for each box, the index in ``carried`` of the pose it keeps, or -1 where the
        pose network must run.
    """
    plan = np.full(len(kept), -1, np.int64)
    if pose_every <= 1 or len(kept) == 0 or len(carried) == 0:
        return plan
    able = carriable(carried, ages, moved, pose_every=pose_every, joint_threshold=joint_threshold,
                     min_confidence=min_confidence, max_step=max_step)
    if not able.any():
        return plan
    n_det = len(detected)
    # Each box's candidate: a flow box's own person; a detection's, the person whose flow box it
    # overlaps most by at least the NMS threshold (the flow box NMS dropped in its favour).
    candidate = np.full(len(kept), -1, np.int64)
    overlap = np.zeros(len(kept), np.float32)
    from_flow = kept >= n_det
    candidate[from_flow] = origin[kept[from_flow] - n_det]
    overlap[from_flow] = 1.0
    if (~from_flow).any() and len(propagated):
        iou = iou_matrix(detected.boxes[kept[~from_flow]], propagated.boxes)  # (D', F)
        best = iou.argmax(1)
        ok = iou[np.arange(len(best)), best] > iou_threshold
        rows = np.flatnonzero(~from_flow)
        candidate[rows[ok]] = origin[best[ok]]
        overlap[rows[ok]] = iou[np.arange(len(best)), best][ok]
    taken = np.zeros(len(carried), bool)
    for p in np.argsort(-overlap, kind="stable"):  # the box most surely that person takes them
        c = candidate[p]
        if c >= 0 and able[c] and not taken[c]:
            plan[p], taken[c] = c, True
    return plan


def carriable(carried: Poses, ages: np.ndarray, moved: np.ndarray, *, pose_every: int,
              joint_threshold: float = JOINT_THRESHOLD, min_confidence: float = CARRY_MIN_CONFIDENCE,
              max_step: float = CARRY_MAX_STEP) -> np.ndarray:
    """Mask ``(N,)`` of the carried poses that may skip the pose network this frame: young enough
    (``ages + 1 < pose_every``), confident, and moved by less than ``max_step`` of their height."""
    valid = carried.keypoint_scores >= joint_threshold  # (N, K)
    count = valid.sum(1)
    confidence = np.where(count > 0, (carried.keypoint_scores * valid).sum(1) / np.maximum(count, 1), 0.0)
    ys = np.where(valid, carried.keypoints[..., 1], np.nan)
    with np.errstate(all="ignore"):
        height = np.nanmax(ys, 1) - np.nanmin(ys, 1)  # (N,), NaN without valid joints
        step = np.where(valid, np.linalg.norm(moved - carried.keypoints, axis=-1), 0.0).max(1)  # (N,)
        steady = step <= max_step * height
    return np.asarray((ages + 1 < pose_every) & (confidence >= min_confidence) & (count > 0) & steady)


def carried_poses(carried: Poses, moved: np.ndarray, plan: np.ndarray, boxes: Detections) -> Poses:
    """The poses of the boxes ``plan`` gives a carried pose (``plan >= 0``), in box order: the
    joints the flow moved, the scores the network gave them, the box and box score of this frame.

    Returns:
        ``(C,)`` poses for the ``C`` boxes with ``plan >= 0``.
    """
    rows = np.flatnonzero(plan >= 0)
    who = plan[rows]
    return Poses(moved[who], carried.keypoint_scores[who], boxes.boxes[rows], boxes.scores[rows])
