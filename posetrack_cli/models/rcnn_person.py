"""A Faster R-CNN's person boxes, computed without torchvision's Python package.

torchvision's Faster R-CNN runs its input transform (resize, normalise, pad), the backbone with FPN,
the RPN head, the RPN's proposal selection (top-n per level, decoding on anchors, clipping, NMS per
level), MultiScaleRoIAlign, the box head and predictor, and a postprocessing of all 90 classes.
posetrack runs the backbone, FPN and RPN head as one network (:class:`RPNNetwork`, converted to
OpenVINO); :class:`PersonRCNN` does the rest, the person class only, with torchvision's arithmetic
step for step and torchvision's own compiled RoIAlign and NMS (:mod:`posetrack_cli.models.vision_ops`).

What this needs of torchvision's model (input statistics, anchors, box coders, the RPN's and the
RoI pooler's settings) is read once into an :class:`RCNNDecoding`, which the model cache keeps beside
the converted network. A warm start then builds no torchvision model and never imports torchvision,
whose import takes ``torch._dynamo`` with it: seconds at every start on a small CPU.

The person boxes are torchvision's person boxes, with the one difference
:mod:`~posetrack_cli.models.ssd_person` has too: torchvision keeps the ``detections`` (100) best boxes
of all classes together, this the 100 best persons; they differ only when more than 100 boxes of
all classes pass the score threshold (0.5 in the paper's setting). The person-only NMS is the
per-class NMS torchvision runs, without the coordinate shift its batching adds, so a box whose IoU
sits on the threshold to the last bit may fall the other way.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posetrack_cli.core.keypoints import COCO_PERSON
from posetrack_cli.models.box_coding import clip_to_image, decode_boxes, large_enough
from posetrack_cli.models.vision_ops import batched_nms, nms, roi_align

if TYPE_CHECKING:
    from torchvision.models.detection.faster_rcnn import FasterRCNN

RPN = "rpn."  # the prefix of the RPN head's outputs among the network's named outputs
# torchvision's RoIHeads.postprocess_detections drops final boxes narrower or lower than this.
BOX_MIN_SIZE = 1e-2
# The prefix of the box head's and predictor's tensors in a torchvision Faster R-CNN state dict.
BOX_HEAD, PREDICTOR = "roi_heads.box_head.", "roi_heads.box_predictor."


class RPNNetwork(nn.Module):
    """A Faster R-CNN's backbone with FPN and its RPN head as one network: ``(N, 3, H, W)`` ->
    the backbone's named feature maps ``(N, C, h, w)``, then ``rpn.objectness.<i>`` ``(N, A, h, w)``
    and ``rpn.deltas.<i>`` ``(N, 4A, h, w)`` for each map ``i`` in the backbone's order (named outputs:
    the converted network keeps the names)."""

    def __init__(self, rcnn: FasterRCNN) -> None:
        super().__init__()
        rpn: Any = rcnn.rpn  # torchvision declares it a plain Module
        self.backbone, self.head = rcnn.backbone, rpn.head

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = self.backbone(images)
        objectness, deltas = self.head(list(features.values()))
        return OrderedDict([*features.items(), *((f"{RPN}objectness.{i}", o) for i, o in enumerate(objectness)),
                            *((f"{RPN}deltas.{i}", d) for i, d in enumerate(deltas))])


@dataclass(frozen=True)
class RCNNDecoding:
    """What turns a Faster R-CNN's feature maps and RPN outputs into boxes, read from torchvision's
    model once. Run settings (frame size, proposal counts, score threshold) are not part of it.

    Attributes:
        mean, std: ``(3,)`` RGB statistics the ``[0, 1]`` input is normalised with.
        size_divisible: the padded batch's height and width are multiples of it.
        maps: the backbone's feature map names, in its order.
        cell_anchors: per map, ``(A, 4)`` float32 anchors (x1, y1, x2, y2) around a cell's corner.
        rpn_nms_iou, rpn_score_threshold, rpn_min_size: the RPN's NMS threshold, the objectness
            probability proposals need, the smallest proposal width and height.
        rpn_box_weights, box_weights: the RPN's and the box predictor's box coder ``(wx, wy, ww, wh)``.
        box_clip: the largest log-scale change of a box's size (both coders).
        roi_maps: the feature maps RoIAlign samples, in the backbone's order.
        roi_size, sampling_ratio: RoIAlign's output side and samples per bin side.
        canonical_scale, canonical_level, level_eps: the FPN level rule (FPN paper, eq. 1).
        nms_iou: the final boxes' NMS threshold.
        detections: the most boxes kept per image.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    size_divisible: int
    maps: tuple[str, ...]
    cell_anchors: tuple[np.ndarray, ...]
    rpn_nms_iou: float
    rpn_score_threshold: float
    rpn_min_size: float
    rpn_box_weights: tuple[float, float, float, float]
    box_weights: tuple[float, float, float, float]
    box_clip: float
    roi_maps: tuple[str, ...]
    roi_size: int
    sampling_ratio: int
    canonical_scale: int
    canonical_level: int
    level_eps: float
    nms_iou: float
    detections: int

    @classmethod
    def of(cls, rcnn: FasterRCNN) -> RCNNDecoding:
        """The decoding of a torchvision Faster R-CNN."""
        from torchvision.ops.poolers import initLevelMapper

        rpn: Any = rcnn.rpn  # torchvision declares these parts as plain Modules
        heads: Any = rcnn.roi_heads
        transform: Any = rcnn.transform
        pooler: Any = heads.box_roi_pool
        with torch.no_grad():  # the backbone's map names, in its order
            maps = tuple(rcnn.backbone(torch.zeros(1, 3, 64, 64, device=next(rcnn.parameters()).device)))
        size = pooler.output_size
        if len(set(size)) != 1 or rpn.box_coder.bbox_xform_clip != heads.box_coder.bbox_xform_clip:
            raise ValueError("a square RoIAlign output and one box-size limit for both coders are expected")
        mean, std = transform.image_mean, transform.image_std
        eps = initLevelMapper(2, 5, pooler.canonical_scale, pooler.canonical_level).eps  # its default
        return cls((mean[0], mean[1], mean[2]), (std[0], std[1], std[2]), int(transform.size_divisible), maps,
                   tuple(a.cpu().numpy().astype(np.float32) for a in rpn.anchor_generator.cell_anchors),
                   float(rpn.nms_thresh), float(rpn.score_thresh), float(rpn.min_size),
                   _weights(rpn.box_coder.weights), _weights(heads.box_coder.weights),
                   float(heads.box_coder.bbox_xform_clip), tuple(m for m in maps if m in pooler.featmap_names),
                   int(size[0]), int(pooler.sampling_ratio), int(pooler.canonical_scale),
                   int(pooler.canonical_level), float(eps), float(heads.nms_thresh), int(heads.detections_per_img))

    def about(self) -> dict[str, Any]:
        """As JSON (the model cache keeps it in the network's ``about.json``); floats round-trip exactly."""
        about = {name: getattr(self, name) for name in self.__dataclass_fields__}
        about["cell_anchors"] = [a.tolist() for a in self.cell_anchors]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in about.items()}

    @classmethod
    def from_about(cls, about: Mapping[str, Any]) -> RCNNDecoding:
        """The decoding :meth:`about` wrote."""
        values = dict(about)
        values["cell_anchors"] = tuple(np.asarray(a, np.float32).reshape(-1, 4) for a in about["cell_anchors"])
        for name in ("mean", "std", "maps", "rpn_box_weights", "box_weights", "roi_maps"):
            values[name] = tuple(about[name])
        return cls(**values)


def _weights(weights: Sequence[float]) -> tuple[float, float, float, float]:
    return float(weights[0]), float(weights[1]), float(weights[2]), float(weights[3])


@dataclass(frozen=True)
class RCNNRun:
    """How a Faster R-CNN is run (torchvision's own values are each model's builder defaults).

    Attributes:
        min_size, max_size: a frame is resized so its shorter side is ``min_size``, unless its longer
            side would pass ``max_size``.
        upscale: resize frames whose shorter side is below ``min_size`` up (torchvision does; posetrack
            runs them at their own size unless asked).
        proposals_before_nms, proposals: RPN proposals per map before NMS, and per image after it.
        score_threshold: person scores at or below are dropped.
    """

    min_size: int
    max_size: int
    upscale: bool
    proposals_before_nms: int
    proposals: int
    score_threshold: float


class TwoLayerHead(nn.Module):
    """torchvision's ``TwoMLPHead`` in its layout (``fc6``, ``fc7``): ``(K, C, s, s)`` RoI features
    -> ``(K, R)``, each layer followed by a ReLU."""

    def __init__(self, fc6: nn.Linear, fc7: nn.Linear) -> None:
        super().__init__()
        self.fc6, self.fc7 = fc6, fc7

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(start_dim=1)))))

    @classmethod
    def from_state(cls, state: Mapping[str, torch.Tensor]) -> TwoLayerHead | None:
        """The head held under ``roi_heads.box_head.`` in a Faster R-CNN state dict, or None where
        that head is not two fully connected layers (the ResNet-50-FPN v2 model's has convolutions)."""
        names = {k[len(BOX_HEAD):] for k in state if k.startswith(BOX_HEAD)}
        if names != {"fc6.weight", "fc6.bias", "fc7.weight", "fc7.bias"}:
            return None
        return cls(*(_linear(state, f"{BOX_HEAD}{layer}.") for layer in ("fc6", "fc7"))).eval()


def _linear(state: Mapping[str, torch.Tensor], prefix: str) -> nn.Linear:
    """The Linear layer whose weight and bias are ``state``'s under ``prefix``."""
    weight, bias = state[f"{prefix}weight"], state[f"{prefix}bias"]
    with torch.device("meta"):
        layer = nn.Linear(weight.shape[1], weight.shape[0])
    layer.load_state_dict({"weight": weight.float(), "bias": bias.float()}, strict=True, assign=True)
    return layer


class PersonPredictor:
    """The box predictor's person share: class probabilities over all classes (softmax), box deltas
    of the person class only. ``(K, R)`` box-head features -> ``(K,)`` scores, ``(K, 4)`` deltas."""

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        self.scores = _linear(state, f"{PREDICTOR}cls_score.")
        rows = slice(4 * COCO_PERSON, 4 * COCO_PERSON + 4)
        self.deltas = (state[f"{PREDICTOR}bbox_pred.weight"][rows].float().contiguous(),
                       state[f"{PREDICTOR}bbox_pred.bias"][rows].float().contiguous())

    def __call__(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = F.softmax(self.scores(features), -1)[:, COCO_PERSON]
        return scores, F.linear(features, *self.deltas)


class PersonRCNN:
    """A Faster R-CNN run for person boxes, step by step as torchvision runs it (see the module
    docstring): :meth:`inputs`, ``network``, :meth:`proposals`, :meth:`roi_features`, ``box_head``,
    :meth:`person_boxes`, and the boxes scaled back to each frame.

    Args:
        decoding: the model's :class:`RCNNDecoding`.
        network: ``(N, 3, H, W)`` -> the named outputs of an :class:`RPNNetwork` (in torch or converted).
        box_head: ``(K, C, s, s)`` RoI features -> ``(K, R)`` (any of the forms of
            :mod:`posetrack_cli.runtime.box_head`; replaceable between calls).
        predictor: the box predictor's person share.
        run: frame sizes, proposal counts and the score threshold.
    """

    def __init__(self, decoding: RCNNDecoding, network: Callable[[torch.Tensor], Mapping[str, torch.Tensor]],
                 box_head: Callable[[torch.Tensor], torch.Tensor], predictor: PersonPredictor, run: RCNNRun) -> None:
        self.decoding, self.network, self.box_head, self.predictor, self.run = (decoding, network, box_head,
                                                                                predictor, run)
        std = torch.tensor(decoding.std, dtype=torch.float32)[:, None, None]
        self._scale = 1.0 / (255.0 * std)  # as FrameTransform normalises: x * scale - shift
        self._shift = torch.tensor(decoding.mean, dtype=torch.float32)[:, None, None] / std

    def _sizes(self, h: int, w: int) -> tuple[float, float]:
        """The (min, max) sizes a ``h x w`` frame is resized by: a frame smaller than ``min_size`` is
        left at its own size (factor 1) unless ``upscale``."""
        run = self.run
        if not run.upscale and min(h, w) < run.min_size:
            return float(min(h, w)), float(max(run.max_size, h, w))
        return float(run.min_size), float(run.max_size)

    def inputs(self, frames: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """The padded ``(N, 3, H, W)`` float32 batch of ``(h, w, 3)`` uint8 BGR frames and each
        resized frame's ``(h, w)``: torchvision's bilinear resize (skipped where its factor is 1), RGB,
        ``(x / 255 - mean) / std``, zero padding to multiples of ``size_divisible``."""
        images = []
        for frame in frames:
            image = torch.from_numpy(frame).permute(2, 0, 1).float()
            h, w = image.shape[-2:]
            low, high = self._sizes(h, w)
            if min(low / min(h, w), high / max(h, w)) != 1.0:  # torchvision's scale, in its float32 arithmetic
                shape = torch.tensor(image.shape[-2:])
                scale = torch.min(low / torch.min(shape).to(torch.float32), high / torch.max(shape).to(torch.float32))
                image = F.interpolate(image[None], scale_factor=scale.item(), mode="bilinear",
                                      recompute_scale_factor=True, align_corners=False)[0]
            images.append(image.flip(0).mul_(self._scale).sub_(self._shift))
        step = float(self.decoding.size_divisible)
        height = int(math.ceil(max(i.shape[1] for i in images) / step) * step)
        width = int(math.ceil(max(i.shape[2] for i in images) / step) * step)
        batch = images[0].new_zeros((len(images), 3, height, width))
        for slot, image in zip(batch, images):
            slot[:, :image.shape[1], :image.shape[2]].copy_(image)
        return batch, [(int(i.shape[1]), int(i.shape[2])) for i in images]

    def proposals(self, outputs: Mapping[str, torch.Tensor], batch_hw: tuple[int, int],
                  image_sizes: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
        """Each image's RPN proposals ``(P, 4)`` in resized-image pixels from the network's outputs:
        per map the top ``proposals_before_nms`` objectness logits, their anchors' boxes decoded,
        clipped, small ones and low scores dropped, NMS within each map, the best ``proposals`` kept."""
        d, run = self.decoding, self.run
        logits, deltas, anchors, per_map = [], [], [], []
        for i, cells in enumerate(d.cell_anchors):
            ob, de = outputs[f"{RPN}objectness.{i}"], outputs[f"{RPN}deltas.{i}"]
            n, a, h, w = ob.shape
            logits.append(ob.permute(0, 2, 3, 1).reshape(n, -1))  # (N, h*w*A): cells row by row, anchors last
            deltas.append(de.view(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
            stride_y, stride_x = batch_hw[0] // h, batch_hw[1] // w  # torchvision's integer strides
            ys, xs = torch.meshgrid(torch.arange(h) * stride_y, torch.arange(w) * stride_x, indexing="ij")
            shifts = torch.stack((xs.reshape(-1), ys.reshape(-1), xs.reshape(-1), ys.reshape(-1)), dim=1)
            anchors.append((shifts.view(-1, 1, 4) + torch.from_numpy(cells).view(1, -1, 4)).reshape(-1, 4))
            per_map.append(h * w * a)
        logits_all, deltas_all, anchors_all = torch.cat(logits, 1), torch.cat(deltas, 1), torch.cat(anchors)
        levels = torch.cat([torch.full((count,), i, dtype=torch.int64) for i, count in enumerate(per_map)])
        top, offset = [], 0
        for ob in torch.split(logits_all, per_map, 1):
            top.append(ob.topk(min(run.proposals_before_nms, ob.shape[1]), dim=1)[1] + offset)
            offset += ob.shape[1]
        top_index = torch.cat(top, 1)  # (N, n)
        found = []
        for image, size in enumerate(image_sizes):
            index = top_index[image]
            boxes = decode_boxes(deltas_all[image, index], anchors_all[index], d.rpn_box_weights, d.box_clip)
            boxes = clip_to_image(boxes, size)
            scores, level = torch.sigmoid(logits_all[image, index]), levels[index]
            keep = large_enough(boxes, d.rpn_min_size)
            boxes, scores, level = boxes[keep], scores[keep], level[keep]
            keep = torch.where(scores >= d.rpn_score_threshold)[0]
            boxes, scores, level = boxes[keep], scores[keep], level[keep]
            keep = batched_nms(boxes, scores, level, d.rpn_nms_iou)[: run.proposals]
            found.append(boxes[keep])
        return found

    def roi_features(self, outputs: Mapping[str, torch.Tensor], proposals: Sequence[torch.Tensor],
                     image_sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
        """RoIAlign's ``(K, C, s, s)`` features of all images' proposals, each from its FPN level:
        torchvision's MultiScaleRoIAlign (levels by the FPN paper's rule, scales from the maps' sizes)."""
        d = self.decoding
        maps = [outputs[name] for name in d.roi_maps]
        largest = (max(s[0] for s in image_sizes), max(s[1] for s in image_sizes))
        # torchvision's _infer_scale: the power of two nearest each map's size over the image's (by height)
        scales = [2 ** float(torch.tensor(float(m.shape[-2]) / float(largest[0])).log2().round()) for m in maps]
        rois = torch.cat([torch.cat([torch.full_like(p[:, :1], i), p], dim=1) for i, p in enumerate(proposals)])
        if len(maps) == 1:
            return roi_align(maps[0], rois, scales[0], d.roi_size, d.sampling_ratio)
        k_min = int(-torch.log2(torch.tensor(scales[0], dtype=torch.float32)).item())
        k_max = int(-torch.log2(torch.tensor(scales[-1], dtype=torch.float32)).item())
        boxes = torch.cat(list(proposals))
        size = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        target = torch.floor(d.canonical_level + torch.log2(size / d.canonical_scale)
                             + torch.tensor(d.level_eps, dtype=size.dtype))
        levels = torch.clamp(target, min=k_min, max=k_max).to(torch.int64) - k_min
        result = maps[0].new_zeros((len(rois), maps[0].shape[1], d.roi_size, d.roi_size))
        for level, (features, scale) in enumerate(zip(maps, scales)):
            index = torch.where(levels == level)[0]
            result[index] = roi_align(features, rois[index], scale, d.roi_size, d.sampling_ratio)
        return result

    def person_boxes(self, features: torch.Tensor, proposals: Sequence[torch.Tensor],
                     image_sizes: Sequence[tuple[int, int]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each image's person ``(boxes (n, 4), scores (n,))`` in resized-image pixels, best first, from
        the box head's ``(K, R)`` features: the predictor, boxes decoded on their proposals and clipped,
        scores above the threshold, small boxes dropped, NMS, the decoding's box limit."""
        d = self.decoding
        scores, deltas = self.predictor(features)
        found = []
        counts = [len(p) for p in proposals]
        for score, delta, boxes, size in zip(torch.split(scores, counts), torch.split(deltas, counts), proposals,
                                             image_sizes):
            boxes = clip_to_image(decode_boxes(delta, boxes, d.box_weights, d.box_clip), size)
            keep = torch.where(score > self.run.score_threshold)[0]
            boxes, score = boxes[keep], score[keep]
            keep = large_enough(boxes, BOX_MIN_SIZE)
            boxes, score = boxes[keep], score[keep]
            keep = nms(boxes, score, d.nms_iou)[: d.detections]
            found.append((boxes[keep], score[keep]))
        return found

    @torch.inference_mode()
    def __call__(self, frames: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Person ``(boxes (n, 4), scores (n,))`` in frame pixels for each ``(H, W, 3)`` BGR frame."""
        batch, sizes = self.inputs(frames)
        outputs = self.network(batch)
        proposals = self.proposals(outputs, (batch.shape[2], batch.shape[3]), sizes)
        features = self.box_head(self.roi_features(outputs, proposals, sizes))
        found = []
        for (boxes, scores), (h, w), frame in zip(self.person_boxes(features, proposals, sizes), sizes, frames):
            # torchvision's resize_boxes: (frame / resized) per axis, in float32
            ratio = torch.tensor([frame.shape[1], frame.shape[0]], dtype=torch.float32) / torch.tensor(
                [w, h], dtype=torch.float32)
            found.append(((boxes * ratio.repeat(2)).numpy(), scores.numpy()))
        return found
