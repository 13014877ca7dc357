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
from posetrack_cli.core.errors import OptionsError
from posetrack_cli.core.paper import (
    DETECTION_THRESHOLD,
    FLOW_BOX_ENLARGE,
    MIN_JOINTS,
    NMS_IOU,
    RESCORE_JOINT_THRESHOLD,
)
from posetrack_cli.core.types import DEFAULT_IMAGE_FPS
from posetrack_cli.inference.config import EstimatorConfig
from posetrack_cli.io.live import LiveConfig, live_kind
from posetrack_cli.io.render import OverlayConfig
from posetrack_cli.run.presets import PRESETS
from posetrack_cli.tracking.smoothing import SmoothingConfig
from posetrack_cli.tracking.tracker import TrackerConfig

T = TypeVar("T")

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

    Example:
        Smoothed keypoints and stitched tracklets in the files; stitching cannot go with an
        overlay drawn during the video:

        >>> from posetrack_cli import PipelineConfig, RunSpec, SmoothingConfig, TrackOutputConfig
        >>> output = TrackOutputConfig(smoothing=SmoothingConfig(smooth="one-euro"), stitch=True)
        >>> output.smoothing.smooth, output.stitch
        ('one-euro', True)
        >>> RunSpec(pipeline=PipelineConfig(output=output), render=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        posetrack_cli.core.errors.OptionsError: --stitch rewrites ids after the video, ... run without --render
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
        pose_every: the pose network runs on each person at least every N-th frame; in between, a
            person keeps the joints the flow moved (sooner where that is unsafe:
            :mod:`posetrack_cli.tracking.carry`). 1 is the paper's method.
        prefetch: frames decoded ahead of the models.
        detect_batch: frames per detector call (batching pays on a GPU).
        overlap: detection and flow run a frame ahead, and writing behind, in their own threads;
            None: decided where the models are (:func:`posetrack_cli.run.pipeline.default_overlap`).

    Example:
        The detector on every third frame, flow boxes between, and a lower joint threshold:

        >>> from posetrack_cli import PipelineConfig, TrackerConfig
        >>> config = PipelineConfig(detect_every=3, tracker=TrackerConfig(joint_threshold=0.3))
        >>> config.detect_every, config.joint_threshold, config.nms_iou
        (3, 0.3, 0.5)
        >>> PipelineConfig(nms_iou=1.5)
        Traceback (most recent call last):
        ...
        ValueError: nms_iou must be a number in [0, 1], got 1.5
    """

    detection_threshold: float = DETECTION_THRESHOLD
    flow_box_enlarge: float = FLOW_BOX_ENLARGE
    nms_iou: float = NMS_IOU
    min_joints: int = MIN_JOINTS
    rescore_threshold: float = RESCORE_JOINT_THRESHOLD
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    output: TrackOutputConfig = field(default_factory=TrackOutputConfig)
    detect_every: int = 1  # paper: every frame
    pose_every: int = 1  # paper: every frame
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
        if self.detect_every < 1 or self.pose_every < 1 or self.detect_batch < 1 or self.prefetch < 1:
            raise ValueError("detect_every, pose_every, detect_batch and prefetch must be >= 1")

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
        poses: poses made by another estimator, tracked as they are instead of detecting and
            estimating (``posetrack track``): a COCO-results or posetrack JSON for one video, or a
            folder holding ``<name>.json`` for each video of a batch.

    Example:
        The ``realtime`` preset with a slower, finer flow; the files it needs by manifest name:

        >>> from pathlib import Path
        >>> from posetrack_cli import ModelChoice
        >>> choice = ModelChoice(preset="realtime", flow="dis-medium")
        >>> choice.detector_name, choice.pose_name, choice.flow_name
        ('ssdlite320_mobilenet_v3_large', 'pose_mobilenetv2_256x192', 'dis-medium')
        >>> choice.model_files()
        ['ssdlite320_mobilenet_v3_large', 'pose_mobilenetv2_256x192']
        >>> ModelChoice(poses=Path("poses.json"), detections=Path("boxes.json"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        posetrack_cli.core.errors.OptionsError: given poses are tracked as they are: ... do not apply to them
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
    poses: Path | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.poses is not None and self.detections is not None:
            raise OptionsError("given poses are tracked as they are: boxes (--detections) do not apply to them")

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
        if self.poses is None and self.detections is None and self.detector_weights is None:
            names.append(self.detector_name)
        if self.poses is None and self.pose_weights is None:
            names.append(self.pose_name)
        if self.flow_name.startswith("raft-"):
            names.append(self.flow_name.replace("-", "_"))
        return names

    def describe(self) -> dict[str, Any]:
        """``info.models`` of the JSON: what produced the boxes, the poses and the flow."""
        if self.poses is not None:  # the poses came with the input; posetrack only ran the flow
            return {"flow": self.flow_name}
        if self.detections is not None:
            detector = f"file:{self.detections}"
        else:
            detector = str(self.detector_weights) if self.detector_weights else self.detector_name
        return {"detector": detector, "pose": str(self.pose_weights) if self.pose_weights else self.pose_name,
                "flow": self.flow_name}


# Frame rates a frame folder may be given: a frame every 1000 s at the slowest (time-lapse), and at
# most a million a second (a high-speed camera): the timestamps of any number of frames stay finite.
MIN_IMAGE_FPS, MAX_IMAGE_FPS = 1e-3, 1e6
# Seconds between checkpoints of a file unless told: a crash loses at most this much work, and
# saving the state and flushing the outputs takes milliseconds (benchmarks/checkpoint.py).
DEFAULT_CHECKPOINT_EVERY = 60.0


@dataclass(frozen=True)
class RunSpec:
    """What a run loads and how it runs: ``posetrack run`` (and ``posetrack track``, whose poses
    are given), as the command line or the library gave it.

    Built, it has been checked: a combination of options that cannot run together raises
    :class:`~posetrack_cli.core.errors.OptionsError` here, for the library as for the command line.

    Attributes:
        models: which detector, pose network and flow (or given poses, for ``posetrack track``).
        pipeline: the per-frame method and the tracker (an ``overlap`` of None is decided where
            the models load: a Ray worker may have a GPU or a core count its driver lacks).
        estimator: pose inference settings (its ``input_size`` is replaced by the model's).
        render: also write an overlay video, drawn as ``overlay`` says.
        images: take each image of a folder on its own (no flow, no tracking) and write COCO results.
        live: how a live source (webcam, stream URL, stdin) is read and flushed.
        formats: other formats each finished video is also written in (``posetrack18``, ``coco``, ``mot``).
        report: also write each finished video's HTML report (needs the ``report`` extra).
        image_fps: frame rate given to frame folders.
        allow_download: fetch missing manifest files (False for ``--offline``).
        checkpoint_every: seconds between checkpoints of a video file or frame folder (a rerun
            resumes from the last one); 0: none.
        verbose: show the libraries' own warnings and notes that a run hides by default (torch's
            tracer deprecation as a network converts to OpenVINO, its quantization API's, ...).

    Example:
        The ``accurate`` models, an overlay video with trails, and MOTChallenge files too; what the
        overlay shows is refused without an overlay to show it:

        >>> from posetrack_cli import ModelChoice, OverlayConfig, RunSpec
        >>> spec = RunSpec(models=ModelChoice(preset="accurate"), render=True, overlay=OverlayConfig(trail=15),
        ...                formats=("mot",))
        >>> spec.models.pose_name, spec.overlay.trail, spec.tracks_given_poses
        ('pose_resnet152_384x288', 15, False)
        >>> RunSpec(overlay=OverlayConfig(trail=15))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        posetrack_cli.core.errors.OptionsError: --boxes, --ids, --skeleton, --trail, --dim and ... add --render
    """

    models: ModelChoice = field(default_factory=ModelChoice)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    render: bool = False
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    images: bool = False
    live: LiveConfig = field(default_factory=LiveConfig)
    formats: tuple[str, ...] = ()
    report: bool = False
    image_fps: float = DEFAULT_IMAGE_FPS
    allow_download: bool = True
    checkpoint_every: float = field(default=DEFAULT_CHECKPOINT_EVERY, metadata=SPEED)
    verbose: bool = False  # what the console says, never what is computed

    def __post_init__(self) -> None:
        if not (math.isfinite(self.image_fps) and MIN_IMAGE_FPS <= self.image_fps <= MAX_IMAGE_FPS):
            raise ValueError(f"image_fps must be a frame rate from {MIN_IMAGE_FPS:g} to {MAX_IMAGE_FPS:g}, "
                             f"got {self.image_fps:g}")
        if not (math.isfinite(self.checkpoint_every) and self.checkpoint_every >= 0):
            raise ValueError(f"checkpoint_every must be >= 0 seconds, got {self.checkpoint_every}")
        if not (self.render or self.live.show) and self.overlay != OverlayConfig():
            raise OptionsError("--boxes, --ids, --skeleton, --trail, --dim and --frame-stamp choose what --render "
                               "(or --show) draws; add --render")
        if self.images and self.render:
            raise OptionsError("--images writes COCO results and draws nothing; drop --render")
        if self.pipeline.output.stitch and self.render:
            raise OptionsError("--stitch rewrites ids after the video, which an overlay drawn during it cannot "
                               "follow; run without --render")
        if self.models.poses is not None and self.images:
            raise OptionsError("given poses are tracked over a video's frames; --images takes images on their own")

    @property
    def tracks_given_poses(self) -> bool:
        """Whether this is ``posetrack track``: poses come with each input, posetrack adds the ids."""
        return self.models.poses is not None


@dataclass(frozen=True)
class RayOptions:
    """How a batch runs on Ray (``--executor ray``).

    Attributes:
        address: cluster to join (``HOST:PORT`` of ``ray start --head``, or ``auto``); None joins
            ``$RAY_ADDRESS`` if set, else starts a Ray instance on this machine for the run.
        workers: number of workers; None: one per CPU of the cluster, or as many as its GPUs
            allow when workers reserve GPUs.
        gpus_per_worker: GPUs each worker reserves (fractions share a GPU); None: 1 if the cluster
            has GPUs and the device is not ``cpu``, else 0.
        retries: times a video is tried again after its worker died while processing it.
    """

    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    # A video that killed its worker twice more is likely the cause (a decoder crash, a frame size
    # that exhausts memory), not bad luck; two retries ride out a lost machine or a preemption.
    retries: int = 2

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.gpus_per_worker is not None and not (math.isfinite(self.gpus_per_worker) and self.gpus_per_worker >= 0):
            raise ValueError(f"gpus_per_worker must be >= 0, got {self.gpus_per_worker}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")


EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorConfig:
    """Where a batch's inputs run: ``local`` (this process, one after another) or ``ray`` (a pool of
    Ray workers, as ``ray`` says)."""

    kind: str = "local"
    ray: RayOptions = field(default_factory=RayOptions)

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.kind!r}")
        if self.kind != "ray":
            given = [f"--{f.name.replace('_', '-')}" for f in fields(RayOptions)
                     if getattr(self.ray, f.name) != f.default]
            if given:
                raise OptionsError(f"{', '.join(given)} apply to --executor ray only")


@dataclass(frozen=True)
class RunRequest:
    """One whole run: its SOURCE arguments, its spec and its executor, checked together on
    construction (a live source runs alone, in this process, into files of its own), before any
    file opens or model loads. The command line and the library's ``run`` build one each.

    Attributes:
        sources: video files, folders, frame folders, or one live source (a webcam index, a
            stream URL, ``-`` for stdin), as given.
        spec: what runs.
        executor: where the inputs run.
    """

    sources: tuple[str, ...]
    spec: RunSpec = field(default_factory=RunSpec)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    def __post_init__(self) -> None:
        spec = self.spec
        if not self.sources:
            raise OptionsError("give at least one SOURCE")
        live = [s for s in self.sources if live_kind(s) is not None]
        if live:
            if len(self.sources) > 1:
                raise OptionsError(f"a live source ({live[0]}) runs until it stops: give it as the only SOURCE")
            if self.executor.kind != "local":
                raise OptionsError("a live source runs in this process: drop --executor ray")
            if spec.models.detections is not None or spec.images or spec.tracks_given_poses:
                raise OptionsError("--detections and --images take files; a live source gets its boxes from the "
                                   "detector")
            if spec.formats or spec.report:
                raise OptionsError("--format and --report take files; for a live source, run `posetrack export` or "
                                   "`posetrack report` on OUT/<name>.json afterwards")
            if spec.pipeline.output.stitch:
                raise OptionsError("--stitch rewrites ids after the video; a live source hands each frame on as it "
                                   "comes: drop --stitch")
            return
        if spec.live != LiveConfig():
            raise OptionsError("--reconnect, --pipe-size, --show and --flush-every apply to live sources "
                               "(a webcam index, a stream URL, or - for stdin)")
        if spec.models.detections is not None and len(self.sources) > 1:
            raise OptionsError("--detections gives boxes for one video; pass exactly one SOURCE with it")

    @property
    def live(self) -> str | None:
        """The live source this run reads, or None for files."""
        return self.sources[0] if live_kind(self.sources[0]) is not None else None


def spec_from_options(**options: Any) -> RunSpec:
    """A :class:`RunSpec` from keyword options named after the fields of its configs, as the
    command line's flags are: ``spec_from_options(preset="accurate", joint_threshold=0.3,
    detect_every=5, render=True)``. Raises TypeError for an option no config has, ValueError for a
    value a config refuses, and OptionsError (also a PosetrackError) for options that cannot go together.

    Example:
        >>> spec = spec_from_options(preset="realtime", joint_threshold=0.3)
        >>> spec.models.preset, spec.pipeline.detect_every, spec.pipeline.tracker.joint_threshold
        ('realtime', 5, 0.3)
        >>> spec_from_options(stitch=True, render=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        posetrack_cli.core.errors.OptionsError: --stitch rewrites ids after the video, ... run without --render
    """
    left = dict(options)
    preset = PRESETS[str(left.get("preset", ModelChoice.preset))]
    for name, value in (("detect_every", preset.detect_every), ("pose_every", preset.pose_every),
                        ("flip_test", preset.flip_test)):
        if left.get(name) is None:  # not given: the preset's
            left[name] = value
    spec = take(RunSpec, left, models=take(ModelChoice, left),
                pipeline=take(PipelineConfig, left, tracker=take(TrackerConfig, left),
                              output=take(TrackOutputConfig, left, smoothing=take(SmoothingConfig, left))),
                estimator=take(EstimatorConfig, left), overlay=take(OverlayConfig, left),
                live=take(LiveConfig, left))
    if left:
        raise TypeError(f"unknown options: {', '.join(sorted(left))}")
    return spec


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
