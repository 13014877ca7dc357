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

What the decoding needs of torchvision's model (its input size and statistics, its anchors, its box
coder's weights and limits) is read once into an :class:`SSDDecoding`, which the model cache keeps
beside the converted network: a warm start decodes boxes without building the torchvision model,
or importing torchvision at all (its import takes ``torch._dynamo`` with it, seconds on a small CPU).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import cv2
import numpy as np
import torch
from torch import nn

from posetrack_cli.core.keypoints import COCO_PERSON
from posetrack_cli.models.box_coding import clip_to_image, decode_boxes
from posetrack_cli.models.vision_ops import nms

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


@dataclass(frozen=True)
class SSDDecoding:
    """What turns an SSD network's outputs into boxes, read from torchvision's model once.

    Attributes:
        size: ``(h, w)`` of the network's input (SSDlite: 320 x 320).
        mean, std: ``(3,)`` RGB statistics the ``[0, 1]`` input is normalised with.
        topk: candidates kept before NMS.
        nms_iou: NMS threshold.
        detections: boxes kept after NMS.
        box_weights: the box coder's ``(wx, wy, ww, wh)``.
        box_clip: the largest log-scale change of a box's width or height.
        anchors: ``(A, 4)`` float32 default boxes (x1, y1, x2, y2) in input pixels.
    """

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    topk: int
    nms_iou: float
    detections: int
    box_weights: tuple[float, float, float, float]
    box_clip: float
    anchors: np.ndarray

    @classmethod
    def of(cls, ssd: SSD) -> SSDDecoding:
        """The decoding of a torchvision SSD (built at a fixed input size)."""
        from torchvision.models.detection.image_list import ImageList

        fixed = ssd.transform.fixed_size
        if fixed is None:
            raise ValueError("an SSD runs at a fixed input size")
        size = (int(fixed[1]), int(fixed[0]))  # (h, w): torchvision's fixed_size is (w, h)
        with torch.no_grad():  # the feature maps' sizes, which the anchors are laid on
            example = torch.zeros(1, 3, *size, device=next(ssd.parameters()).device)
            features = ssd.backbone(example)
        maps = list(features.values()) if isinstance(features, (dict, OrderedDict)) else [features]
        anchors = ssd.anchor_generator(ImageList(example, [size]), maps)[0]
        mean, std = ssd.transform.image_mean, ssd.transform.image_std
        coder = ssd.box_coder
        return cls(size, (mean[0], mean[1], mean[2]), (std[0], std[1], std[2]), int(ssd.topk_candidates),
                   float(ssd.nms_thresh), int(ssd.detections_per_img),
                   (coder.weights[0], coder.weights[1], coder.weights[2], coder.weights[3]),
                   float(coder.bbox_xform_clip), anchors.cpu().numpy().astype(np.float32))

    def about(self) -> dict[str, Any]:
        """As JSON (the model cache keeps it in the network's ``about.json``); floats round-trip exactly."""
        return {"size": list(self.size), "mean": list(self.mean), "std": list(self.std), "topk": self.topk,
                "nms_iou": self.nms_iou, "detections": self.detections, "box_weights": list(self.box_weights),
                "box_clip": self.box_clip, "anchors": self.anchors.tolist()}

    @classmethod
    def from_about(cls, about: dict[str, Any]) -> SSDDecoding:
        """The decoding :meth:`about` wrote."""
        h, w = about["size"]
        m, s, b = about["mean"], about["std"], about["box_weights"]
        anchors = np.asarray(about["anchors"], np.float32).reshape(-1, 4)
        return cls((int(h), int(w)), (m[0], m[1], m[2]), (s[0], s[1], s[2]), int(about["topk"]),
                   float(about["nms_iou"]), int(about["detections"]), (b[0], b[1], b[2], b[3]),
                   float(about["box_clip"]), anchors)


def person_boxes(scores: torch.Tensor, offsets: torch.Tensor, decoding: SSDDecoding,
                 score_threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's person boxes ``(n, 4)`` (x1, y1, x2, y2 in the network's input pixels) and scores
    ``(n,)``, best first, from ``scores`` ``(A,)`` and ``offsets`` ``(A, 4)``: scores strictly
    above ``score_threshold``, the decoding's top-k, boxes decoded on their anchors and clipped to
    the input, NMS, and the decoding's box limit."""
    keep = torch.nonzero(scores > score_threshold).squeeze(1)
    score = scores[keep]
    score, order = score.topk(min(decoding.topk, score.numel()))
    keep = keep[order]
    boxes = decode_boxes(offsets[keep], torch.from_numpy(decoding.anchors)[keep], decoding.box_weights,
                         decoding.box_clip)
    boxes = clip_to_image(boxes, decoding.size)
    kept = nms(boxes, score, decoding.nms_iou)[: decoding.detections]
    return boxes[kept], score[kept]


class PersonSSD:
    """An SSD run for person boxes: the input made as torchvision makes it (resized to the fixed
    size first, then normalised: see :class:`~posetrack_cli.inference.frame_transform.FrameTransform`),
    ``network`` (an :class:`SSDNetwork` in torch or a converted one), :func:`person_boxes`, and the
    boxes scaled back to each frame.

    Args:
        decoding: the SSD's :class:`SSDDecoding`.
        network: ``(N, 3, S, S)`` -> ``(scores (N, A), offsets (N, A, 4))``.
        score_threshold: person scores at or below are dropped.
        device: where ``network`` takes its input (a torch network on a GPU).
    """

    def __init__(self, decoding: SSDDecoding, network: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                 score_threshold: float, device: torch.device = torch.device("cpu")) -> None:
        self.decoding, self.network, self.score_threshold, self.device = decoding, network, score_threshold, device
        self.size = decoding.size
        std = np.asarray(decoding.std, np.float32)
        self._scale = np.float32(1.0) / (np.float32(255.0) * std)  # (3,) RGB
        self._shift = np.asarray(decoding.mean, np.float32) / std

    def inputs(self, frames: list[np.ndarray]) -> torch.Tensor:
        """``(N, 3, h, w)`` float32 network input of ``(H, W, 3)`` uint8 BGR frames: resized by
        OpenCV's bilinear filter (torchvision's half-pixel weights), RGB, ``(x / 255 - mean) / std``."""
        h, w = self.size
        batch = np.empty((len(frames), 3, h, w), np.float32)
        for i, frame in enumerate(frames):
            small = cv2.resize(frame.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            rgb = small[:, :, ::-1].transpose(2, 0, 1)
            batch[i] = rgb * self._scale[:, None, None] - self._shift[:, None, None]
        return torch.from_numpy(batch)

    def __call__(self, frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Person ``(boxes (n, 4), scores (n,))`` in frame pixels for each ``(H, W, 3)`` BGR frame."""
        scores, offsets = self.network(self.inputs(frames).to(self.device))
        scores, offsets = scores.float().cpu(), offsets.float().cpu()
        h, w = self.size
        found = []
        for image_scores, image_offsets, frame in zip(scores, offsets, frames):
            boxes, score = person_boxes(image_scores, image_offsets, self.decoding, self.score_threshold)
            ratio = torch.tensor([frame.shape[1], frame.shape[0]], dtype=torch.float32) / torch.tensor(
                [w, h], dtype=torch.float32)  # torchvision's resize_boxes: (frame / input) per axis
            found.append(((boxes * ratio.repeat(2)).numpy(), score.numpy()))
        return found
