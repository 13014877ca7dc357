"""posetrack's NMS keeps the boxes torchvision's keeps, in the same order, ties included; its IoU is
torchvision's, computed without torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou as torchvision_box_iou
from torchvision.ops import nms as torchvision_nms

from posetrack_cli.core.boxes import box_iou, nms


@pytest.mark.parametrize("seed", range(4))
def test_nms_keeps_what_torchvision_keeps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(300):
        n = int(rng.integers(0, 60))
        corner = rng.uniform(0, 300, (n, 2))
        boxes = np.concatenate([corner, corner + rng.uniform(0, 150, (n, 2))], 1).astype(np.float32)
        if trial % 3 == 0:  # many equal scores: the order among them must be torchvision's too
            scores = rng.choice(np.array([0.1, 0.5, 0.9], np.float32), n)
        else:
            scores = rng.random(n).astype(np.float32)
        threshold = float(rng.choice([0.0, 0.3, 0.5, 0.55, 0.7, 1.0]))
        expected = torchvision_nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
        np.testing.assert_array_equal(nms(boxes, scores, threshold), expected)


def test_nms_refuses_boxes_and_scores_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="2 boxes but 1 scores"):
        nms(np.zeros((2, 4)), np.zeros(1), 0.5)


@pytest.mark.parametrize("seed", range(3))
def test_box_iou_is_torchvisions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(100):
        m, n = (int(k) for k in rng.integers(0, 12, 2))
        corners = rng.uniform(0, 300, (m + n, 2))
        sizes = rng.uniform(0, 150, (m + n, 2))
        if trial % 4 == 0:  # empty boxes (zero width or height), alone and together
            sizes[rng.random(m + n) < 0.4] = 0
        boxes = np.concatenate([corners, corners + sizes], 1).astype(np.float32)
        a, b = boxes[:m], boxes[m:]
        expected = torchvision_box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        np.testing.assert_array_equal(box_iou(a, b), expected)  # NaN where torchvision's is NaN

