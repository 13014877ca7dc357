"""The typed settings a run is made of, carried from the command line to the models.

Three frozen configs say what is computed -- the per-frame method (:class:`PipelineConfig`, which
holds the tracker's :class:`~posetrack_cli.tracking.tracker.TrackerConfig`), the pose estimator
(:class:`EstimatorConfig`) and the models (:class:`ModelChoice`) -- and their fields marked
:data:`SPEED` say only how fast it is computed (device, batch size, threads, compilation).

The rule that keeps resuming honest lives here, not in a hand-kept list: :func:`result_settings`
is every field of a config that is not marked :data:`SPEED`, so a new option changes the resume key
and ``info.settings`` of the JSON by being a field, and cannot be forgotten. A field that only
changes speed must say so with ``metadata=SPEED``.

Kept free of heavy imports (torch) so that ``posetrack --help`` starts instantly.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from posetrack_cli.core.config import SPEED, check_unit
from posetrack_cli.core.paper import (
    DETECTION_THRESHOLD,
    FLOW_BOX_ENLARGE,
    MIN_JOINTS,
    NMS_IOU,
    RESCORE_JOINT_THRESHOLD,
)
from posetrack_cli.run.presets import PRESETS
from posetrack_cli.tracking.smoothing import SmoothingConfig
from posetrack_cli.tracking.tracker import TrackerConfig

T = TypeVar("T")

# Where the pose network runs (posetrack_cli/runtime/engines.py) and in which number format.
RUNTIMES = ("auto", "torch", "openvino")
PRECISIONS = ("auto", "fp32", "bf16", "int8")


@dataclass(frozen=True)
class TrackOutputConfig:
    """What happens to the tracker's output before it is written; the tracker itself never reads it.

    Attributes:
        smoothing: smoothing of the written keypoints (raw by default). The tracker always uses the
            raw keypoints; the frame loop applies it on output.
        stitch: after a video, join tracklets whose end and start fit (gap at most ``max_lost``,
            motion, size and colours: :func:`posetrack_cli.tracking.stitching.stitch`), rewriting ids in
            the files before they are committed. For files, not live streams or the library's
            frame-by-frame iteration, which hand each frame on as it comes.
    """

    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    # Off: it changes ids after the fact, which an overlay drawn during the video cannot follow.
    stitch: bool = False


@dataclass(frozen=True)
class PipelineConfig:
    """What the per-frame method computes (paper Algorithm 1); paper values where it gives them.

    Attributes:
        detection_threshold: boxes (from the detector or a boxes file) scoring below are dropped.
        flow_box_enlarge: growth of a flow box around its moved joints.
        nms_iou: IoU above which a detection and a flow box are the same person.
        min_joints: joints at or above the tracker's joint threshold a pose needs to be kept.
        rescore_threshold: joints above this count in the person score (the released code's 0.2).
        tracker: the tracker's settings, whose ``joint_threshold`` is the one joint threshold.
        output: smoothing and stitching of the tracks before they are written.
        detect_every: the detector runs on every N-th frame (keyframes); flow boxes carry people
            in between. 1 is the paper's method.
        prefetch: frames decoded ahead of the models.
        detect_batch: frames per detector call (batching pays on a GPU).
        overlap: detection and flow run a frame ahead, and writing behind, in their own threads;
            None: decided where the models are (:func:`posetrack_cli.run.pipeline.default_overlap`).
    """

    detection_threshold: float = DETECTION_THRESHOLD
    flow_box_enlarge: float = FLOW_BOX_ENLARGE
    nms_iou: float = NMS_IOU
    min_joints: int = MIN_JOINTS
    rescore_threshold: float = RESCORE_JOINT_THRESHOLD
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    output: TrackOutputConfig = field(default_factory=TrackOutputConfig)
    detect_every: int = 1  # paper: every frame
    prefetch: int = field(default=8, metadata=SPEED)  # hides decode jitter; memory stays a few frames
    detect_batch: int = field(default=1, metadata=SPEED)
    overlap: bool | None = field(default=None, metadata=SPEED)

    def __post_init__(self) -> None:
        for name in ("detection_threshold", "nms_iou", "rescore_threshold"):
            check_unit(name, getattr(self, name))
        if not (math.isfinite(self.flow_box_enlarge) and self.flow_box_enlarge >= 0):
            raise ValueError(f"flow_box_enlarge must be >= 0, got {self.flow_box_enlarge}")
        if self.min_joints < 1:
            raise ValueError(f"min_joints must be >= 1, got {self.min_joints}")
        if self.detect_every < 1 or self.detect_batch < 1 or self.prefetch < 1:
            raise ValueError("detect_every, detect_batch and prefetch must be >= 1")

    @property
    def joint_threshold(self) -> float:
        """Joints scoring below this are not trusted (flow boxes, the joint minimum, tracking, ``v``)."""
        return self.tracker.joint_threshold


@dataclass(frozen=True)
class ModelChoice:
    """Which models a run uses: a preset, any part of it overridden by name or by a local file.

    Attributes:
        preset: name in ``PRESETS``; ``detector``, ``pose`` and ``flow`` override its parts.
        detector, detector_weights: detector by manifest name, or a local file of that architecture.
        detector_size: shorter side frames are resized to for the detector (None: the model's own).
        detections: a COCO-results JSON of boxes used instead of a detector, or None.
        pose, pose_weights: pose model by manifest name, or a local checkpoint in any layout.
        input_size: ``(width, height)`` for a checkpoint that does not record it, or None.
        flow: flow estimator name.
    """

    preset: str = "fast"
    detector: str | None = None
    detector_weights: Path | None = None
    detector_size: int | None = None
    detections: Path | None = None
    pose: str | None = None
    pose_weights: Path | None = None
    input_size: tuple[int, int] | None = None
    flow: str | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")

    @property
    def detector_name(self) -> str:
        return self.detector or PRESETS[self.preset].detector

    @property
    def pose_name(self) -> str:
        return self.pose or PRESETS[self.preset].pose

    @property
    def flow_name(self) -> str:
        return self.flow or PRESETS[self.preset].flow

    def model_files(self) -> list[str]:
        """Manifest names of the files this choice reads (local files and a boxes file excluded)."""
        names = []
        if self.detections is None and self.detector_weights is None:
            names.append(self.detector_name)
        if self.pose_weights is None:
            names.append(self.pose_name)
        if self.flow_name.startswith("raft-"):
            names.append(self.flow_name.replace("-", "_"))
        return names

    def describe(self) -> dict[str, Any]:
        """``info.models`` of the JSON: what produced the boxes, the poses and the flow."""
        if self.detections is not None:
            detector = f"file:{self.detections}"
        else:
            detector = str(self.detector_weights) if self.detector_weights else self.detector_name
        return {"detector": detector, "pose": str(self.pose_weights) if self.pose_weights else self.pose_name,
                "flow": self.flow_name}


def take(cls: type[T], options: dict[str, Any], **given: Any) -> T:
    """``cls`` built from the options named like its fields, which are removed from ``options``,
    and from ``given`` values. The command line's flags and the library's keyword options are named
    after the config fields they set, so a new option is one field (and one flag)."""
    values = {f.name: options.pop(f.name) for f in fields(cls)  # type: ignore[arg-type]
              if f.name in options and f.name not in given}
    return cls(**values, **given)


def _flatten(config: Any, speed: bool) -> dict[str, Any]:
    """Fields of a (nested) config dataclass whose SPEED mark equals ``speed``, as plain JSON values."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value) and not isinstance(value, type):
            out.update(_flatten(value, speed))
        elif bool(f.metadata.get("speed")) == speed:
            if isinstance(value, (tuple, Path)):
                value = list(value) if isinstance(value, tuple) else str(value)
            out[f.name] = value
    return out


def result_settings(*configs: Any) -> dict[str, Any]:
    """Every field that changes results, of each config (nested configs flattened into it)."""
    out: dict[str, Any] = {}
    for config in configs:
        out.update(_flatten(config, speed=False))
    return out


def speed_settings(*configs: Any) -> dict[str, Any]:
    """Every field marked :data:`SPEED`, of each config."""
    out: dict[str, Any] = {}
    for config in configs:
        out.update(_flatten(config, speed=True))
    return out


def settings_key(*records: dict[str, Any]) -> str:
    """A digest of what determines an output (models, result settings), to tell a finished output
    made this way from a stale one."""
    text = json.dumps(records, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
