"""Person boxes of frames: a torchvision COCO detector (:mod:`posetrack_cli.models.detectors`)
loaded strictly from the manifest or a local file, its backbone on the chosen runtime (boxes read
from a COCO-results file are ``posetrack_cli.io.coco_results.FileDetections`` instead).

A frame is never enlarged for detection unless asked (``min_size``): torchvision's Faster R-CNN
resizes the shorter side to 800 (320 for the ``_320_`` model), which for a 360p video would mean
detecting on a 2.2x upscale, the most expensive stage made 5x dearer for no detail it did not have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, cast

import numpy as np
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_PERSON  # torchvision's detectors use COCO's category ids
from posetrack_cli.core.paper import DETECTION_THRESHOLD
from posetrack_cli.core.types import Detections
from posetrack_cli.models.detectors import build_detector


class FrameTransform(GeneralizedRCNNTransform):
    """torchvision's detector input transform, for BGR frames on the 0..255 scale, resizing first.

    torchvision normalises the whole ``[0, 1]`` RGB frame, then resizes it. Both steps are linear in
    each plane (bilinear weights sum to one), so resizing the raw frame and then swapping the planes
    and normalising the smaller image gives the same input up to float rounding, with the per-pixel
    passes made on the resized image (for SSDlite's 320x320 from a 1280x720 frame: 9x fewer pixels).
    The padding into a batch, and everything after, is torchvision's.
    """

    @classmethod
    def replacing(cls, transform: GeneralizedRCNNTransform) -> FrameTransform:
        """The same sizes, statistics and padding as ``transform``."""
        return cls(transform.min_size, transform.max_size, transform.image_mean, transform.image_std,
                   size_divisible=transform.size_divisible, fixed_size=transform.fixed_size)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return image  # normalised in resize(), after the resize

    def resize(self, image: torch.Tensor,
               target: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        """``(3, H, W)`` BGR 0..255 -> resized ``(3, h, w)`` RGB planes ``(x / 255 - mean) / std``."""
        image, target = super().resize(image, target)
        mean = torch.as_tensor(self.image_mean, dtype=image.dtype, device=image.device)[:, None, None]
        std = torch.as_tensor(self.image_std, dtype=image.dtype, device=image.device)[:, None, None]
        return image.flip(0).mul_(1.0 / (255.0 * std)).sub_(mean / std), target


class PersonDetector:
    """Person boxes of frames from a torchvision detector.

    Args:
        architecture: one of ``DETECTORS``.
        weights: a state-dict file in torchvision's layout.
        score_threshold: boxes scoring below are dropped (paper: 0.5).
        device: a torch device.
        min_size: shorter side frames are resized to for detection, up or down (None: the model's
            own, 800 or 320, and never more than the frame's own size).
        proposals: RPN proposals per frame for a Faster R-CNN (None: the model's own).
        runtime: ``torch``, or ``openvino`` to run the backbone there (CPU; see
            :class:`~posetrack_cli.runtime.backbone.OpenVINOBackbone`).
        precision: ``fp32``, or ``bf16`` with OpenVINO where the CPU has it.
    """

    def __init__(self, architecture: str, weights: str | Path, *, score_threshold: float = DETECTION_THRESHOLD,
                 device: torch.device = torch.device("cpu"), min_size: int | None = None,
                 proposals: int | None = None, runtime: str = "torch", precision: str = "fp32") -> None:
        self.name = architecture
        self.score_threshold = score_threshold
        self.device = device
        self._upscale = min_size is not None  # asked for: resize to min_size even when that enlarges
        model = build_detector(architecture, score_threshold, min_size, proposals)
        try:
            state = torch.load(str(weights), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for unreadable files
            raise PosetrackError(f"cannot read detector weights {weights}: {str(exc).splitlines()[0][:160]}") from None
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = str(exc).replace("\n", " ")[:240]
            raise PosetrackError(f"{weights} is not a {architecture} checkpoint: {first}") from None
        if runtime == "openvino":
            from posetrack_cli.runtime.backbone import OpenVINOBackbone
            from posetrack_cli.runtime.cache import state_dict_sha256

            digest = state_dict_sha256(model)
            model.backbone = OpenVINOBackbone(model.backbone, name=architecture, precision=precision,
                                              weights_sha256=digest)
        elif (runtime, precision) != ("torch", "fp32"):
            raise PosetrackError(f"the detector runs torch fp32 or OpenVINO fp32/bf16, not {runtime} {precision}")
        self.runtime, self.precision = runtime, precision
        # Both families build a GeneralizedRCNNTransform; torchvision declares the attribute as any Module.
        model.transform = FrameTransform.replacing(cast(GeneralizedRCNNTransform, model.transform))
        self.model = model.to(device)

    def describe(self) -> dict[str, str]:
        """Which runtime and precision ran the detector (the JSON records it beside the pose network's)."""
        return {"runtime": self.runtime, "precision": self.precision}

    @torch.inference_mode()
    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Person boxes for each ``(H, W, 3)`` uint8 BGR frame, batched in one forward."""
        if not frames:
            return []
        # (3, H, W) float views of the BGR frames as they are; FrameTransform resizes, then swaps and scales.
        images = [torch.from_numpy(f).to(self.device).permute(2, 0, 1).float() for f in frames]
        self._no_upscale(frames[0].shape[:2])
        outputs = self.model(images)
        result = []
        for out in outputs:
            keep = (out["labels"] == COCO_PERSON) & (out["scores"] >= self.score_threshold)
            result.append(Detections(out["boxes"][keep].cpu().numpy(), out["scores"][keep].cpu().numpy()))
        return result

    def _no_upscale(self, frame_hw: tuple[int, int]) -> None:
        """Make a Faster R-CNN resize frames smaller than its own size by 1 (not up) unless asked.

        torchvision scales by ``min(min_size / short, max_size / long)``; with the frame's short
        side as ``min_size`` and a ``max_size`` no smaller than its long side, that factor is 1.
        SSDlite's fixed 320x320 input is what it was trained on and is left as it is.
        """
        # Any: torchvision declares min_size an int, but its transform keeps a tuple of sizes there.
        transform: Any = self.model.transform
        if self._upscale or transform.fixed_size is not None:
            return
        if not hasattr(self, "_trained_size"):
            self._trained_size = (transform.min_size, transform.max_size)
        min_size, max_size = self._trained_size
        short, long = min(frame_hw), max(frame_hw)
        if short < min_size[-1]:
            transform.min_size, transform.max_size = (short,), max(max_size, long)
        else:
            transform.min_size, transform.max_size = min_size, max_size


def load_detector(name: str, *, weights: str | Path | None = None, device: torch.device, score_threshold: float,
                  allow_download: bool, min_size: int | None = None, proposals: int | None = None,
                  runtime: str = "torch", precision: str = "fp32") -> PersonDetector:
    """A detector by manifest name, its weights from ``weights`` or the manifest (downloaded on first use)."""
    from posetrack_cli.models.weights import resolve

    path = weights or resolve(name, allow_download=allow_download)[1]
    return PersonDetector(name, path, score_threshold=score_threshold, device=device, min_size=min_size,
                          proposals=proposals, runtime=runtime, precision=precision)
