"""One pose per person: OKS-based non-maximum suppression of a frame's poses, before matching.

An estimator can give one person two poses (two overlapping boxes, a flow box that slid half off
the person it followed, a bottom-up model's second guess). Given an id each, the second is a false
person and, if it outlives the first, an id switch. The authors' released code keeps a pose only if
no better-scored pose of the image overlaps it by OKS (their ``oks_nms`` for COCO); here the same
rule runs on every frame before the tracker sees it, so a duplicate never takes an id.
"""

from __future__ import annotations

import numpy as np

from posetrack_cli.core.types import Poses
from posetrack_cli.tracking.similarity import box_areas, oks_matrix


def distinct_poses(poses: Poses, sigmas: np.ndarray, *, max_oks: float, joint_threshold: float,
                   preferred: np.ndarray | None = None) -> np.ndarray:
    """Mask ``(N,)`` of the poses to keep: greedily, best first, each pose whose OKS with a pose
    already kept is above ``max_oks`` is dropped.

    "Best" is ``preferred`` first (a pose the detector found over one a flow box carried, where
    given), then the person score. OKS is taken over the joints scoring ``joint_threshold`` or more
    in both poses, at the scale of the kept pose's box; poses sharing no such joint are distinct.
    ``max_oks`` of 1 or more keeps every pose (the paper, which has no such step).

    Args:
        poses: the frame's ``N`` poses.
        sigmas: ``(K,)`` OKS falloff per joint.
        preferred: ``(N,)`` bool, poses that win over the others whatever their scores, or None.

    Example:
        Two poses on one person (the second a few pixels off) and one on another person:

        >>> import numpy as np
        >>> from posetrack_cli.core.keypoints import COCO_SIGMAS
        >>> body = np.array([[40.0 * (k % 2), 10.0 * k] for k in range(17)])
        >>> poses = Poses.from_keypoints([body, body + 3, body + 200], np.full((3, 17), 0.9), scores=[0.9, 0.6, 0.8])
        >>> distinct_poses(poses, COCO_SIGMAS, max_oks=0.7, joint_threshold=0.4).tolist()
        [True, False, True]
    """
    n = len(poses)
    keep = np.ones(n, bool)
    if n < 2 or max_oks >= 1.0:
        return keep
    valid = poses.keypoint_scores >= joint_threshold  # (N, K)
    # sim[j, i]: OKS of pose j to pose i at pose i's scale
    sim = oks_matrix(poses.keypoints, valid, poses.keypoints, valid, box_areas(poses.boxes), sigmas)
    over = sim > max_oks
    np.fill_diagonal(over, False)
    if not over.any():  # the usual frame: no two poses alike
        return keep
    rank = poses.scores.astype(np.float64)
    if preferred is not None:
        rank = rank + 2.0 * np.asarray(preferred, bool)  # scores are in [0, 1]: preferred poses come first
    seen = np.zeros(n, bool)  # poses ranked above the one looked at: kept or dropped already
    for i in np.argsort(-rank, kind="stable"):
        seen[i] = True
        if keep[i]:  # it drops the poses ranked below it that overlap it
            keep &= ~(over[:, i] & ~seen)
    return keep
