"""Algorithm 1's person proposals for frame k: flow boxes, and their union with the detector's by NMS.

The previous frame's joints moved by the optical flow say where its people are now; the box around
each moved pose, enlarged 15 %, is a flow box (paper section 3.2). It recovers people the detector
missed in this frame. Detector and flow boxes are then unified by NMS, the detection winning where
both found the same person. Pure functions of arrays; shapes in each docstring.
"""

from __future__ import annotations

import numpy as np

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
    if len(poses) == 0:
        return Detections.empty()
    moved = flow.propagate(poses.keypoints)  # (N, K, 2)
    valid = poses.keypoint_scores >= joint_threshold  # (N, K)
    keep = valid.sum(1) >= min_joints
    if not keep.any():
        return Detections.empty()
    moved, valid = moved[keep], valid[keep]
    big = np.float32(1e9)
    lo = np.where(valid[..., None], moved, big).min(1)  # (P, 2)
    hi = np.where(valid[..., None], moved, -big).max(1)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * (1.0 + enlarge)
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    scores = poses.scores[keep]
    if frame_size is not None:  # clipped to the frame
        boxes = clip_boxes(boxes, *frame_size)
    # A box under a pixel wide or high (people gone from the frame, or joints the flow carried onto
    # one point) holds no person: dropped, so no pose is estimated in it.
    sized = (boxes[:, 2] - boxes[:, 0] >= MIN_BOX_SIDE) & (boxes[:, 3] - boxes[:, 1] >= MIN_BOX_SIDE)
    return Detections(boxes[sized], scores[sized])


def unify_boxes(detected: Detections, propagated: Detections,
                iou_threshold: float = NMS_IOU) -> tuple[Detections, np.ndarray]:
    """Detection and flow boxes merged by NMS (torchvision's), highest score first (paper 3.2).

    Returns the kept boxes and a bool mask ``(P,)`` telling which came from flow (recovered people).
    """
    boxes = np.concatenate([detected.boxes, propagated.boxes])
    scores = np.concatenate([detected.scores, propagated.scores])
    from_flow = np.concatenate([np.zeros(len(detected), bool), np.ones(len(propagated), bool)])
    if len(boxes) == 0:
        return Detections.empty(), from_flow
    import torch  # imported on use: the CLI stays quick to start
    from torchvision.ops import nms

    keep = nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou_threshold).numpy()
    return Detections(boxes[keep], scores[keep]), from_flow[keep]
