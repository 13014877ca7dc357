"""Algorithm 1's person proposals for frame k: flow boxes, and their union with the detector's by NMS.

The previous frame's joints moved by the optical flow say where its people are now; the box around
each moved pose, enlarged 15 %, is a flow box (paper section 3.2). It recovers people the detector
missed in this frame. Detector and flow boxes are then unified by NMS, the detection winning where
both found the same person. Pure functions of arrays; shapes in each docstring.
"""

from __future__ import annotations

import numpy as np

from posetrack_cli.core.boxes import nms
from posetrack_cli.core.flow_field import FlowField
from posetrack_cli.core.geometry import clip_boxes
from posetrack_cli.core.paper import FLOW_BOX_ENLARGE, JOINT_THRESHOLD, MIN_JOINTS, NMS_IOU
from posetrack_cli.core.types import Detections, Poses

# The least width and height, in pixels, of a flow box a person can be estimated in.
MIN_BOX_SIDE = 1.0


def flow_boxes(
    poses: Poses,
    flow: FlowField,
    *,
    joint_threshold: float = JOINT_THRESHOLD,
    enlarge: float = FLOW_BOX_ENLARGE,
    min_joints: int = MIN_JOINTS,
    frame_size: tuple[int, int] | None = None,
) -> Detections:
    """Boxes where last frame's people are now, from their joints moved by the flow (paper 3.2).

    Each pose's joints scoring at least ``joint_threshold`` are moved by the flow; the box around
    them is enlarged by ``enlarge`` (15 % in the paper) in width and height. A pose with fewer than
    ``min_joints`` confident joints gives no box, nor does a pose moved wholly out of the frame or
    one whose box is under :data:`MIN_BOX_SIDE` pixels wide or high.
    Each box carries its pose's score.

    Args:
        poses: the previous frame's ``N`` poses.
        flow: flow from the previous frame to this one.
        frame_size: ``(width, height)`` to clip boxes to, or None.

    Returns:
        up to ``N`` boxes ``(P, 4)`` with scores ``(P,)``.
    """
    return moved_poses(poses, flow, joint_threshold=joint_threshold, enlarge=enlarge, min_joints=min_joints,
                       frame_size=frame_size)[0]


def moved_poses(
    poses: Poses,
    flow: FlowField,
    *,
    joint_threshold: float = JOINT_THRESHOLD,
    enlarge: float = FLOW_BOX_ENLARGE,
    min_joints: int = MIN_JOINTS,
    frame_size: tuple[int, int] | None = None,
) -> tuple[Detections, np.ndarray, np.ndarray]:
    """:func:`flow_boxes`, with which pose each box came from and where the flow moved every joint.

    Returns:
        the flow boxes ``(P, 4)`` and scores ``(P,)``; ``origin`` ``(P,)``, the index in ``poses``
        of each box's pose; ``moved`` ``(N, K, 2)``, every pose's joints moved by the flow.
    """
    moved = flow.propagate(poses.keypoints) if len(poses) else np.zeros((0, poses.num_keypoints, 2), np.float32)
    none = (Detections.empty(), np.zeros(0, np.int64), moved)
    if len(poses) == 0:
        return none
    valid = poses.keypoint_scores >= joint_threshold  # (N, K)
    keep = np.flatnonzero(valid.sum(1) >= min_joints)
    if len(keep) == 0:
        return none
    big = np.float32(1e9)
    lo = np.where(valid[keep, :, None], moved[keep], big).min(1)  # (P, 2)
    hi = np.where(valid[keep, :, None], moved[keep], -big).max(1)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * (1.0 + enlarge)
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    scores = poses.scores[keep]
    if frame_size is not None:  # clipped to the frame
        boxes = clip_boxes(boxes, *frame_size)
    # A box under a pixel wide or high (people gone from the frame, or joints the flow carried onto
    # one point) holds no person: dropped, so no pose is estimated in it.
    sized = (boxes[:, 2] - boxes[:, 0] >= MIN_BOX_SIDE) & (boxes[:, 3] - boxes[:, 1] >= MIN_BOX_SIDE)
    return Detections(boxes[sized], scores[sized]), keep[sized], moved


def unify_boxes(detected: Detections, propagated: Detections,
                iou_threshold: float = NMS_IOU) -> tuple[Detections, np.ndarray]:
    """Detection and flow boxes merged by NMS (torchvision's), highest score first (paper 3.2).

    Returns the kept boxes and a bool mask ``(P,)`` telling which came from flow (recovered people).
    """
    kept = unified_order(detected, propagated, iou_threshold)
    boxes = np.concatenate([detected.boxes, propagated.boxes])
    scores = np.concatenate([detected.scores, propagated.scores])
    return Detections(boxes[kept], scores[kept]), kept >= len(detected)


def unified_order(detected: Detections, propagated: Detections, iou_threshold: float = NMS_IOU) -> np.ndarray:
    """The boxes :func:`unify_boxes` keeps, as indices ``(P,)`` into the detections followed by the
    flow boxes (an index ``>= len(detected)`` is flow box ``index - len(detected)``)."""
    if len(detected) + len(propagated) == 0:
        return np.zeros(0, np.int64)
    boxes = np.concatenate([detected.boxes, propagated.boxes])
    scores = np.concatenate([detected.scores, propagated.scores])
    return nms(boxes, scores, iou_threshold)
