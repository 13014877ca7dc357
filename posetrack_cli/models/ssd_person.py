"""SSDlite's person boxes without the work for the other 89 classes.

torchvision's ``SSD.postprocess_detections`` decodes every anchor's box, then for each of the 90
foreground classes thresholds, takes its top 300 and NMSes them all together; posetrack keeps only
the person class (:data:`~posetrack_cli.core.keypoints.COCO_PERSON`). :func:`person_boxes` does that
class's share alone (threshold, top-k, decode only those anchors, clip, NMS), and :class:`SSDNetwork`
returns only the person column of the softmax, so the network's output (and what OpenVINO hands
back) is ``(N, A)`` scores and ``(N, A, 4)`` box offsets, ``A`` = 3234 anchors at 320x320.

The boxes and scores are torchvision's person boxes and scores: the per-class NMS of
``batched_nms`` never lets one class suppress another, so the person class's survivors do not
depend on the other classes. The one difference: torchvision keeps the ``detections_per_img``
(300) best boxes of all classes together, where this keeps the 300 best persons; the two differ only
when more than 300 boxes of all classes pass the score threshold (0.5 in the paper's setting).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from posetrack_cli.core.keypoints import COCO_PERSON

if TYPE_CHECKING:
    from torchvision.models.detection.ssd import SSD


class SSDNetwork(nn.Module):
    """An SSD's backbone and heads: ``(N, 3, S, S)`` normalised images -> person probabilities
    ``(N, A)`` (the softmax over all 91 classes, person column) and box offsets ``(N, A, 4)``."""

    def __init__(self, ssd: SSD) -> None:
        super().__init__()
        self.backbone, self.head = ssd.backbone, ssd.head

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(images)
        maps = list(features.values()) if isinstance(features, (dict, OrderedDict)) else [features]
        out = self.head(maps)
        return out["cls_logits"].softmax(-1)[..., COCO_PERSON], out["bbox_regression"]


def person_boxes(scores: torch.Tensor, offsets: torch.Tensor, anchors: torch.Tensor, ssd: SSD,
                 image_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's person boxes ``(n, 4)`` (x1, y1, x2, y2 in the network's input pixels) and scores
    ``(n,)``, best first, from ``scores`` ``(A,)``, ``offsets`` ``(A, 4)`` and ``anchors`` ``(A, 4)``,
    with ``ssd``'s threshold (strictly above), top-k, box coder, NMS IoU and box limit."""
    from torchvision.ops import boxes as box_ops

    keep = torch.nonzero(scores > ssd.score_thresh).squeeze(1)
    score = scores[keep]
    score, order = score.topk(min(ssd.topk_candidates, score.numel()))
    keep = keep[order]
    boxes = ssd.box_coder.decode_single(offsets[keep], anchors[keep])
    boxes = box_ops.clip_boxes_to_image(boxes, image_size)
    kept = box_ops.nms(boxes, score, ssd.nms_thresh)[: ssd.detections_per_img]
    return boxes[kept], score[kept]


class PersonSSD:
    """An SSD run for person boxes: torchvision's input transform, ``network`` (an :class:`SSDNetwork`
    in torch or a converted one), the anchors made once (the input is always ``S x S``),
    :func:`person_boxes`, and the boxes scaled back to each frame.

    Args:
        ssd: the strictly-loaded torchvision SSD (its transform already posetrack's).
        network: ``(N, 3, S, S)`` -> ``(scores (N, A), offsets (N, A, 4))``.
    """

    def __init__(self, ssd: SSD, network: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> None:
        from torchvision.models.detection.image_list import ImageList

        self.ssd, self.network = ssd, network
        fixed = ssd.transform.fixed_size
        if fixed is None:
            raise ValueError("an SSD runs at a fixed input size")
        self.size: tuple[int, int] = (int(fixed[1]), int(fixed[0]))  # (h, w): torchvision's fixed_size is (w, h)
        with torch.no_grad():  # the feature maps' sizes, which the anchors are laid on
            example = torch.zeros(1, 3, *self.size, device=next(ssd.parameters()).device)
            features = ssd.backbone(example)
        maps = list(features.values()) if isinstance(features, (dict, OrderedDict)) else [features]
        self.anchors = ssd.anchor_generator(ImageList(example, [self.size]), maps)[0]

    def __call__(self, images: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Person ``(boxes (n, 4), scores (n,))`` in frame pixels for each ``(3, H, W)`` frame."""
        from torchvision.models.detection.transform import resize_boxes

        sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
        batch, _ = self.ssd.transform(images)
        if tuple(batch.tensors.shape[-2:]) != self.size:
            raise ValueError(f"SSD input {tuple(batch.tensors.shape)} is not {self.size}")
        scores, offsets = self.network(batch.tensors)
        found = []
        for image_scores, image_offsets, size in zip(scores, offsets, sizes):
            boxes, score = person_boxes(image_scores, image_offsets, self.anchors, self.ssd, self.size)
            found.append((resize_boxes(boxes, list(self.size), list(size)), score))
        return found
