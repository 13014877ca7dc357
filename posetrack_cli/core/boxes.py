"""Box overlap (IoU) and non-maximum suppression in numpy, as torchvision's CPU kernels compute them.

torchvision's ``ops.box_iou`` and ``ops.nms`` are the references, but ``import torchvision``
imports ``torch._dynamo`` (its ``ops/roi_align.py`` does at module level), which is half of a warm
start's imports on a 2-core CPU, and the tracking layer (box unification, the tracker's and the
carrying's IoU), which needs no torch, would pay it in the middle of a run. So they are here; the
detectors' decodings call torchvision's compiled kernels (:mod:`posetrack_cli.models.vision_ops`).
The same float32 arithmetic in the same order (for NMS: scores sorted stably, best first; a box is
suppressed by a kept one when their IoU is above the threshold), so the values and the kept boxes
are the same. ``tests/test_boxes.py`` checks both against torchvision on random boxes, ties and
empty boxes included.
"""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``(M, N)`` float32 of xyxy boxes ``a (M, 4)`` and ``b (N, 4)``; NaN where both boxes are
    empty (0 / 0), as torchvision's.

    Example:
        >>> import numpy as np
        >>> box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 0, 30, 10]])).tolist()
        [[0.3333333432674408, 0.0]]
    """
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    wh = np.maximum(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]),
                    np.float32(0))
    inter = wh[..., 0] * wh[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        iou: np.ndarray = inter / (area_a[:, None] + area_b[None, :] - inter)
    return iou


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
        # box_iou's arithmetic, inlined: calling it per kept box doubles NMS's time on a frame's boxes
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        suppressed[rest[inter / (areas[i] + areas[rest] - inter) > threshold]] = True
    return np.asarray(kept, np.int64)
