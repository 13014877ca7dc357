"""Pose and box similarity matrices for matching new poses to tracked ones (paper section 3.3).

Pure vectorised functions; shapes in each docstring. OKS is COCO's object keypoint similarity with
the object's area taken from its box, as the paper does for tracking.
"""

from __future__ import annotations

import numpy as np


def oks_matrix(
    tracked: np.ndarray,
    tracked_valid: np.ndarray,
    new: np.ndarray,
    new_valid: np.ndarray,
    new_areas: np.ndarray,
    sigmas: np.ndarray,
    tracked_spread: np.ndarray | None = None,
) -> np.ndarray:
    """OKS between every tracked pose and every new pose.

    ``OKS = mean over joints valid in both of exp(-d^2 / (2 * area * (2 sigma)^2))``; 0 where two
    poses share no valid joint. The new pose's box area is the scale (it is this frame's observation).
    ``tracked_spread`` widens it for tracked poses whose position is uncertain (a prediction for a
    person unseen for a while): its square is added to each joint's variance ``area * (2 sigma)^2``.

    Args:
        tracked: ``(M, K, 2)`` keypoints of tracked poses (propagated to this frame for flow-OKS).
        tracked_valid: ``(M, K)`` bool, joints confident enough to compare.
        new: ``(N, K, 2)`` keypoints of this frame's poses.
        new_valid: ``(N, K)`` bool.
        new_areas: ``(N,)`` box areas of the new poses in square pixels.
        sigmas: ``(K,)`` per-joint falloff (COCO's).
        tracked_spread: ``(M,)`` standard deviation in pixels of each tracked pose's position, or None.

    Returns:
        ``(M, N)`` float32 in ``[0, 1]``.
    """
    # x and y apart: a reduction over a length-2 axis is slow in numpy.
    dx = tracked[:, None, :, 0] - new[None, :, :, 0]  # (M, N, K)
    dy = tracked[:, None, :, 1] - new[None, :, :, 1]
    variances = (2.0 * np.asarray(sigmas, np.float32)) ** 2  # (K,)
    scale = 2.0 * np.maximum(np.asarray(new_areas, np.float32), 1.0)[None, :, None] * variances  # (1, N, K)
    if tracked_spread is not None:
        scale = scale + 2.0 * np.square(np.asarray(tracked_spread, np.float32))[:, None, None]  # (M, N, K)
    valid = tracked_valid[:, None] & new_valid[None]  # (M, N, K)
    total = (np.exp(-(dx * dx + dy * dy) / scale) * valid).sum(-1)
    count = valid.sum(-1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``(M, N)`` of xyxy boxes ``a (M, 4)`` and ``b (N, 4)`` (torchvision's ``box_iou``)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    import torch  # imported on use: the CLI stays quick to start
    from torchvision.ops import box_iou

    iou: np.ndarray = box_iou(torch.from_numpy(np.asarray(a, np.float32)),
                              torch.from_numpy(np.asarray(b, np.float32))).numpy()
    return iou


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas ``(N,)`` of xyxy boxes ``(N, 4)``."""
    boxes = np.asarray(boxes, np.float32)
    areas: np.ndarray = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    return areas
