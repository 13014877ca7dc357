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

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_PERSON  # torchvision's detectors use COCO's category ids
from posetrack_cli.core.paper import DETECTION_THRESHOLD
from posetrack_cli.core.types import Detections
from posetrack_cli.models.checkpoints import load_weights_file
from posetrack_cli.models.detectors import build_detector, check_options, is_ssd
from posetrack_cli.models.rcnn_person import PersonRCNN
from posetrack_cli.models.ssd_person import PersonSSD, SSDDecoding, SSDNetwork
from posetrack_cli.runtime.cache import tensors_sha256


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
        runtime: ``torch`` (torchvision's model as it is), or ``openvino``: posetrack's fastest CPU
            path, the backbone run there (:class:`~posetrack_cli.runtime.backbone.OpenVINOBackbone`)
            with SSDlite's heads (:class:`~posetrack_cli.models.ssd_person.PersonSSD`) or a Faster
            R-CNN's RPN head, and the rest of a Faster R-CNN decoded for persons by
            :class:`~posetrack_cli.models.rcnn_person.PersonRCNN`, its box head in its fastest form.
        precision: ``fp32``, or ``bf16`` with OpenVINO where the CPU has it.
        box_head: a Faster R-CNN's box head form (:mod:`posetrack_cli.runtime.box_head`): ``auto``
            (with OpenVINO: the fastest this CPU is offered, timed once; with torch: ``fp32``) or one
            of ``fp32``, ``int8``, ``bf16``, ``bf16-openvino`` (bf16 only where the CPU has it natively).
    """

    def __init__(self, architecture: str, weights: str | Path, *, score_threshold: float = DETECTION_THRESHOLD,
                 device: torch.device = torch.device("cpu"), min_size: int | None = None,
                 proposals: int | None = None, runtime: str = "torch", precision: str = "fp32",
                 box_head: str = "auto") -> None:
        self.name = architecture
        self.score_threshold = score_threshold
        self.device = device
        self._upscale = min_size is not None  # asked for: resize to min_size even when that enlarges
        check_options(architecture, min_size, proposals)
        if (runtime, precision) != ("torch", "fp32") and runtime != "openvino":
            raise PosetrackError(f"the detector runs torch fp32 or OpenVINO fp32/bf16, not {runtime} {precision}")
        if is_ssd(architecture) and box_head != "auto":
            raise PosetrackError(f"{architecture} has no box head to run {box_head}")
        try:
            state = load_weights_file(weights)
        except Exception as exc:  # torch raises several types for unreadable files
            raise PosetrackError(f"cannot read detector weights {weights}: {str(exc).splitlines()[0][:160]}") from None
        self.runtime, self.precision = runtime, precision
        self.model: Any = None  # torchvision's model; not built where the converted network is cached
        self._ssd: PersonSSD | None = None
        self._rcnn: PersonRCNN | None = None
        self.box_head: str | None = None  # a Faster R-CNN's box head form
        self._sha256: str | None = None  # the file's tensors' digest, where it keys the model cache
        if runtime == "openvino":
            # backbone and heads in one network, only the person class decoded; the model cache keeps
            # the network and its decoding, so a warm start builds no torchvision model
            self._sha256 = digest = tensors_sha256(state)
            if is_ssd(architecture):
                self._ssd = self._person_ssd(state, weights, precision, digest)
            else:
                self._rcnn = self._person_rcnn(state, weights, min_size, proposals, precision, box_head, digest)
            return
        if box_head == "bf16-openvino":  # its conversion is cached under the digest
            self._sha256 = tensors_sha256(state)
        self.model = model = self._build(state, weights, min_size, proposals)
        if is_ssd(architecture):
            self._ssd = PersonSSD(SSDDecoding.of(model), SSDNetwork(model), score_threshold, device)
            return
        heads: Any = model.roi_heads
        proposals_kept = int(model.rpn._post_nms_top_n["testing"])
        heads.box_head, self.box_head = self._box_head(heads.box_head, box_head if box_head != "auto" else "fp32",
                                                       proposals_kept)

    def _person_ssd(self, state: dict[str, torch.Tensor], weights: str | Path, precision: str,
                    digest: str) -> PersonSSD:
        """SSDlite's network converted to OpenVINO (from the cache where it is there), and its decoding."""
        from posetrack_cli.runtime.backbone import OpenVINOBackbone

        made: dict[str, SSDDecoding] = {}

        def network() -> torch.nn.Module:
            model = self._build(state, weights, None, None)
            made["decoding"] = SSDDecoding.of(model)
            return SSDNetwork(model)

        converted = OpenVINOBackbone(network, name=self.name, precision=precision, weights_sha256=digest,
                                     part="network", remember=lambda: {"ssd": made["decoding"].about()})
        return PersonSSD(SSDDecoding.from_about(converted.about["ssd"]), converted, self.score_threshold)

    def _person_rcnn(self, state: dict[str, torch.Tensor], weights: str | Path, min_size: int | None,
                     proposals: int | None, precision: str, box_head: str, digest: str) -> PersonRCNN:
        """A Faster R-CNN's backbone, FPN and RPN head converted to OpenVINO (from the cache where it
        is there) and its decoding; the box head in its fastest form and the predictor, from the
        file's tensors (torchvision's model is built for a box head that is not two Linear layers)."""
        from posetrack_cli.models.detectors import rcnn_run
        from posetrack_cli.models.rcnn_person import PersonPredictor, RCNNDecoding, RPNNetwork, TwoLayerHead
        from posetrack_cli.runtime.backbone import OpenVINOBackbone

        made: dict[str, Any] = {}

        def model() -> Any:  # torchvision's, built once, where something needs it
            if "model" not in made:
                made["model"] = self._build(state, weights, min_size, proposals)
            return made["model"]

        def network() -> torch.nn.Module:
            made["decoding"] = RCNNDecoding.of(model())
            return RPNNetwork(model())

        converted = OpenVINOBackbone(network, name=self.name, precision=precision, weights_sha256=digest,
                                     part="network", remember=lambda: {"rcnn": made["decoding"].about()})
        run = rcnn_run(self.name, self.score_threshold, min_size, proposals)
        head = TwoLayerHead.from_state(state) or model().roi_heads.box_head
        head, self.box_head = self._box_head(head, box_head, run.proposals)
        return PersonRCNN(RCNNDecoding.from_about(converted.about["rcnn"]), converted, head, PersonPredictor(state),
                          run)

    def _build(self, state: dict[str, torch.Tensor], weights: str | Path, min_size: int | None,
               proposals: int | None) -> Any:
        """torchvision's model with ``state`` loaded strictly, its transform posetrack's, on the device."""
        from posetrack_cli.inference.frame_transform import FrameTransform

        model = build_detector(self.name, self.score_threshold, min_size, proposals)
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = str(exc).replace("\n", " ")[:240]
            raise PosetrackError(f"{weights} is not a {self.name} checkpoint: {first}") from None
        # Both families build a GeneralizedRCNNTransform; torchvision declares the attribute as any Module.
        model.transform = FrameTransform.replacing(cast(Any, model.transform))
        return model.to(self.device)

    def _box_head(self, head: torch.nn.Module, form: str, proposals: int) -> tuple[torch.nn.Module, str]:
        """A Faster R-CNN's box head in ``form`` (``auto``: the fastest here, timed at ``proposals``
        RoIs and remembered) and the form's name."""
        from posetrack_cli.runtime.box_head import choose_box_head
        from posetrack_cli.runtime.cpu import cpu_info

        if self.device.type != "cpu" and form != "fp32":
            raise PosetrackError(f"the box head runs fp32 on {self.device}; its {form} form is for CPUs")
        source = (self.name, self._sha256) if self._sha256 is not None else None
        task = f"{self.name} box head, weights {source[1][:16]}, {proposals} proposals" \
            if form == "auto" and source is not None else ""  # only a measured choice is remembered
        made, choice = choose_box_head(head, form, task=task, proposals=proposals, native_bf16=cpu_info().native_bf16,
                                       source=source)
        return made, choice.name

    def describe(self) -> dict[str, str]:
        """Which runtime and precision ran the detector (the JSON records it beside the pose network's)."""
        described = {"runtime": self.runtime, "precision": self.precision}
        # torch's own fp32 box head goes unsaid (torchvision's model as loaded); any other form is recorded
        if self.box_head is not None and (self.runtime == "openvino" or self.box_head != "fp32"):
            described["box_head"] = self.box_head
        return described

    @torch.inference_mode()
    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Person boxes for each ``(H, W, 3)`` uint8 BGR frame, batched in one forward."""
        if not frames:
            return []
        if self._ssd is not None:
            return [Detections(boxes, scores) for boxes, scores in self._ssd(list(frames))]
        if self._rcnn is not None:
            return [Detections(boxes, scores) for boxes, scores in self._rcnn(list(frames))]
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
