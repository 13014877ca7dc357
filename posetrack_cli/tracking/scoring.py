"""Person scores and the joint minimum, applied to the poses the estimator returns (Algorithm 1,
after step 4), as the released inference code scores people for COCO's ranking."""

from __future__ import annotations

import numpy as np

from posetrack_cli.core.types import Poses


def rescore(poses: Poses, rescore_threshold: float) -> Poses:
    """Person score = box score x mean score of the joints above ``rescore_threshold`` (0 if none).

    Keypoint scores (heatmap maxima, which can overshoot 1 a little) are clipped to ``[0, 1]`` first,
    so the person score stays in ``[0, 1]`` whenever the box score does. The released code's
    threshold is 0.2 (``paper.RESCORE_JOINT_THRESHOLD``).
    """
    kscores = np.clip(np.nan_to_num(poses.keypoint_scores, nan=0.0), 0.0, 1.0)
    confident = kscores > rescore_threshold
    count = confident.sum(1)
    mean = np.where(count > 0, (kscores * confident).sum(1) / np.maximum(count, 1), 0.0)
    return Poses(poses.keypoints, kscores, poses.boxes, np.clip(poses.scores * mean, 0.0, 1.0))


def enough_joints(poses: Poses, joint_threshold: float, min_joints: int) -> np.ndarray:
    """Mask ``(N,)`` of poses with at least ``min_joints`` joints scoring ``joint_threshold`` or more:
    a box around fewer is a point or a line, noise rather than a person."""
    return np.asarray((poses.keypoint_scores >= joint_threshold).sum(1) >= min_joints)
