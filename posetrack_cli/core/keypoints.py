"""The COCO-17 keypoint convention: names, skeleton, left/right pairs, OKS sigmas, the person category.

Everything in posetrack speaks this order unless a checkpoint says otherwise (an MPII model has
16 joints); `flip_pairs` derives the mirror pairs from names so any named set works.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

COCO_PERSON = 1  # COCO's category id for "person" (torchvision's detectors use COCO's ids)

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

# 0-indexed limbs (COCO's own list is 1-indexed).
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)

# Per-keypoint standard deviations of human annotation, from the COCO keypoint evaluation.
COCO_SIGMAS: np.ndarray = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87,
     0.89, 0.89],
    dtype=np.float32,
) / 10.0


def flip_pairs(names: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs ``(left, right)`` whose names differ only by a ``left``/``right`` prefix.

    A horizontal mirror turns a person's left wrist into the image position of a right wrist, so
    flipped heatmaps must swap these channels.
    """
    index = {name: i for i, name in enumerate(names)}
    pairs = []
    for name, i in index.items():
        for left, right in (("left_", "right_"), ("l_", "r_")):
            if name.startswith(left) and right + name[len(left):] in index:
                pairs.append((i, index[right + name[len(left):]]))
    return pairs


def flip_permutation(names: Sequence[str]) -> np.ndarray:
    """Permutation ``(K,)`` mapping each keypoint to its mirror partner (itself if unpaired)."""
    perm = np.arange(len(names))
    for a, b in flip_pairs(names):
        perm[a], perm[b] = b, a
    return perm

# MPII's 16 joints, in the order of MPII-trained checkpoints' heatmap channels.
MPII_KEYPOINTS: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis",
    "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder",
    "left_shoulder", "left_elbow", "left_wrist",
)


def default_keypoint_names(num_keypoints: int) -> tuple[str, ...] | None:
    """The standard names for a heatmap count (17: COCO, 16: MPII), or None when unknown."""
    return {17: COCO_KEYPOINTS, 16: MPII_KEYPOINTS}.get(num_keypoints)
