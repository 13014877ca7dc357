"""Non-maximum suppression of boxes in numpy, as torchvision's CPU kernel does it.

torchvision's ``ops.nms`` is the reference, but ``import torchvision`` imports ``torch._dynamo``
(its ``ops/roi_align.py`` does at module level), which is half of a warm start's imports on a
2-core CPU, and the frame loop's box unification (the tracking layer, which needs no torch) needs
only NMS, so it is here; the detectors' decodings call torchvision's compiled kernel
(:mod:`posetrack_cli.models.vision_ops`). The same float32 arithmetic in the same order (scores
sorted stably, best first; a box is suppressed by a kept one when their IoU is above the
threshold), so the kept boxes are the same.
``tests/test_boxes.py`` checks it against torchvision on random boxes, ties included.
"""

from __future__ import annotations

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices ``(K,)`` int64 of the boxes kept, best score first.

    Args:
        boxes: ``(N, 4)`` x1, y1, x2, y2.
        scores: ``(N,)``.
        iou_threshold: a box whose IoU with a better kept box is above this is dropped.

    Example:
        The second box overlaps the first by IoU 0.81 and goes; the third is apart.

        >>> import numpy as np
        >>> boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10]], np.float32)
        >>> nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.5).tolist()
        [0, 2]
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    threshold = np.float32(iou_threshold)
    suppressed = np.zeros(len(boxes), bool)
    kept = []
    for position, i in enumerate(order.tolist()):
        if suppressed[i]:
            continue
        kept.append(i)
        rest = order[position + 1:]
        rest = rest[~suppressed[rest]]
        if not len(rest):
            continue
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        suppressed[rest[inter / (areas[i] + areas[rest] - inter) > threshold]] = True
    return np.asarray(kept, np.int64)
