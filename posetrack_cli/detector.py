"""Person boxes: torchvision's COCO Faster R-CNN family (boxes read from a COCO-results file are
``coco_results.FileDetections``).

The detectors are torchvision's own builders with their released COCO weights, taken from the
manifest (or a local file) and loaded strictly. BatchNorm layers are frozen (running statistics
as constants), which is how torchvision builds these models when it loads trained weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torchvision.models import detection
from torchvision.ops.misc import FrozenBatchNorm2d

from posetrack_cli.coco_results import COCO_PERSON  # torchvision's detectors use COCO's category ids
from posetrack_cli.errors import PosetrackError
from posetrack_cli.settings import DETECTORS
from posetrack_cli.types import Detections

DEFAULT_SCORE_THRESHOLD = 0.5  # paper: detection boxes scoring below 0.5 are dropped


def _freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d by a FrozenBatchNorm2d holding the same statistics."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            setattr(module, name, frozen)
        else:
            _freeze_batchnorm(child)
    return module


def build_detector(architecture: str, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                   min_size: int | None = None) -> nn.Module:
    """An untrained torchvision detector of ``architecture`` (91 COCO classes), ready for weights.

    ``min_size`` is the shorter image side the detector resizes frames to (torchvision's default
    for these models: 800, longer side at most 1333); smaller is faster and misses small people.
    """
    if architecture not in DETECTORS:
        raise PosetrackError(f"unknown detector {architecture!r}; use one of {', '.join(DETECTORS)}")
    builder = getattr(detection, architecture)
    sizes = {} if min_size is None else {"min_size": min_size, "max_size": round(min_size * 1333 / 800)}
    model = builder(weights=None, weights_backbone=None, num_classes=91, box_score_thresh=score_threshold, **sizes)
    return _freeze_batchnorm(model).eval()


class PersonDetector:
    """Person boxes of frames from a torchvision Faster R-CNN.

    Args:
        architecture: one of ``DETECTORS``.
        weights: a state-dict file in torchvision's layout.
        score_threshold: boxes scoring below are dropped (paper: 0.5).
        device: a torch device.
        min_size: shorter side frames are resized to for detection (None: the model's own, 800).
    """

    def __init__(self, architecture: str, weights: str | Path, *, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                 device: torch.device = torch.device("cpu"), min_size: int | None = None) -> None:
        self.name = architecture
        self.score_threshold = score_threshold
        self.device = device
        model = build_detector(architecture, score_threshold, min_size)
        try:
            state = torch.load(str(weights), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for unreadable files
            raise PosetrackError(f"cannot read detector weights {weights}: {str(exc).splitlines()[0][:160]}") from None
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = str(exc).replace("\n", " ")[:240]
            raise PosetrackError(f"{weights} is not a {architecture} checkpoint: {first}") from None
        self.model = model.to(device)

    @torch.inference_mode()
    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Person boxes for each ``(H, W, 3)`` uint8 BGR frame, batched in one forward."""
        if not frames:
            return []
        images = [
            torch.from_numpy(np.ascontiguousarray(f[:, :, ::-1])).to(self.device).permute(2, 0, 1).float().div_(255)
            for f in frames
        ]
        outputs = self.model(images)
        result = []
        for out in outputs:
            keep = (out["labels"] == COCO_PERSON) & (out["scores"] >= self.score_threshold)
            result.append(Detections(out["boxes"][keep].cpu().numpy(), out["scores"][keep].cpu().numpy()))
        return result


def load_detector(name: str, *, weights: str | Path | None = None, device: torch.device, score_threshold: float,
                  allow_download: bool, min_size: int | None = None) -> PersonDetector:
    """A detector by manifest name, its weights from ``weights`` or the manifest (downloaded on first use)."""
    from posetrack_cli.weights import resolve

    path = weights or resolve(name, allow_download=allow_download)[1]
    return PersonDetector(name, path, score_threshold=score_threshold, device=device, min_size=min_size)
