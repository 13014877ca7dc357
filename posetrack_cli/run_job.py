"""``posetrack run`` for one input, and the run it belongs to.

A :class:`RunSpec` says, in plain picklable values, which models and settings a run uses;
:func:`load_run` turns it into a loaded pipeline and the ``info`` every JSON of the run records.
The local executor calls it once per batch and each Ray worker once per worker, so both build the
same pipeline from the same description. :func:`make_processor` then opens one input, runs the
pipeline into a writer, commits, and reports the summary row.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from posetrack_cli.batch import InputItem, ItemResult, fingerprint, settings_key
from posetrack_cli.detector import FileDetections
from posetrack_cli.errors import PosetrackError
from posetrack_cli.outputs import TrackWriter
from posetrack_cli.pipeline import Pipeline, PipelineConfig
from posetrack_cli.presets import PRESETS
from posetrack_cli.render import draw_tracks
from posetrack_cli.settings import EstimatorConfig
from posetrack_cli.video import DEFAULT_IMAGE_FPS, ImageFolderSource, open_source

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class RunSpec:
    """What a ``posetrack run`` loads and how it runs, as the command line gave it.

    Attributes:
        preset: name in ``PRESETS``; ``detector``, ``pose`` and ``flow`` override its parts.
        detector, detector_weights, detector_size: detector by manifest name, local file, and the
            shorter side frames are resized to for it (None: the model's own).
        detections: COCO-results JSON of boxes used instead of a detector, or None.
        pose, pose_weights, input_size: pose model by manifest name, local checkpoint, and
            ``(width, height)`` for a checkpoint that does not record it.
        flow: flow estimator name.
        config: per-frame method and tracker settings (its ``overlap`` is set from ``overlap``).
        overlap: run detection + flow ahead and writing behind in threads; None: as
            :func:`default_overlap` decides where the models load (a Ray worker may have a GPU
            or a core count its driver lacks).
        flip_test, half, compile, runtime, precision, batch_size, device: pose inference settings.
        render: also write an overlay video.
        image_fps: frame rate given to frame folders.
        allow_download: fetch missing manifest files (False for ``--offline``).
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
    config: PipelineConfig = field(default_factory=PipelineConfig)
    overlap: bool | None = None
    flip_test: bool = True
    half: bool = False
    compile: bool = False
    runtime: str = EstimatorConfig.runtime
    precision: str = EstimatorConfig.precision
    batch_size: int = EstimatorConfig.batch_size
    device: str = "auto"
    render: bool = False
    image_fps: float = DEFAULT_IMAGE_FPS
    allow_download: bool = True

    def model_files(self) -> list[str]:
        """Manifest names of the files this run reads (local files and a boxes file excluded)."""
        chosen = PRESETS[self.preset]
        names = []
        if self.detections is None and self.detector_weights is None:
            names.append(self.detector or chosen.detector)
        if self.pose_weights is None:
            names.append(self.pose or chosen.pose)
        flow = self.flow or chosen.flow
        if flow.startswith("raft-"):
            names.append(flow.replace("-", "_"))
        return names


@dataclass
class LoadedRun:
    """A run's models, loaded once, and what its outputs record.

    Attributes:
        spec: what was loaded.
        pipeline: detector, pose estimator, flow and tracker settings.
        keypoint_names: the pose model's K keypoint names.
        info: ``command``, ``models``, ``settings`` and ``settings_key`` for every JSON of the run.
    """

    spec: RunSpec
    pipeline: Pipeline
    keypoint_names: list[str]
    info: dict[str, Any]

    @property
    def key(self) -> str:
        """The digest that tells a finished output of this run from a stale one."""
        return self.info["settings_key"]

    def processor(self, out_dir: Path, progress: Callable[[str, int | None], Any] | None = None
                  ) -> Callable[[InputItem], ItemResult]:
        """``process(item) -> ItemResult`` writing into ``out_dir`` (see :func:`make_processor`)."""
        return make_processor(self.pipeline, out_dir, keypoint_names=self.keypoint_names, info=self.info,
                              render=self.spec.render, image_fps=self.spec.image_fps,
                              detections_file=self.spec.detections, progress=progress)


def default_overlap(device: torch.device) -> bool:
    """Whether stages overlap in threads unless told: with CUDA (the stages use different
    hardware), and on a CPU where torch has two or more threads (the threads fill each other's
    idle moments: 1.04-1.22x faster on 2 cores in ``benchmarks/pipeline.py``); not on a single
    core (a Ray worker's), where there is nothing to fill."""
    import torch

    return device.type == "cuda" or torch.get_num_threads() >= 2


def load_run(spec: RunSpec) -> LoadedRun:
    """Load the models of ``spec`` and describe the run; raises PosetrackError for a missing or bad file."""
    from posetrack_cli.detector import load_detector
    from posetrack_cli.device import resolve_device
    from posetrack_cli.flow import make_flow
    from posetrack_cli.presets import load_estimator
    from posetrack_cli.runtime import choose_precision

    chosen = PRESETS[spec.preset]
    torch_device = resolve_device(spec.device)
    estimator = load_estimator(pose=spec.pose or chosen.pose, pose_weights=spec.pose_weights,
                               input_size=spec.input_size, device=spec.device, batch_size=spec.batch_size,
                               flip_test=spec.flip_test, half=spec.half, compile=spec.compile,
                               runtime=spec.runtime,
                               precision=choose_precision(spec.runtime, spec.precision, chosen.precision, torch_device,
                                                          half=spec.half, compile=spec.compile),
                               allow_download=spec.allow_download)
    flow = make_flow(spec.flow or chosen.flow, device=spec.device, allow_download=spec.allow_download)
    overlap = default_overlap(torch_device) if spec.overlap is None else spec.overlap
    config = replace(spec.config, overlap=overlap)
    person_detector = None
    if spec.detections is None:
        person_detector = load_detector(spec.detector or chosen.detector, weights=spec.detector_weights,
                                        device=torch_device, score_threshold=config.detection_threshold,
                                        allow_download=spec.allow_download, min_size=spec.detector_size,
                                        proposals=chosen.detector_proposals if spec.detector is None else None)
    pipeline = Pipeline(estimator, flow, config, person_detector)

    if spec.detections:
        detector_name = f"file:{spec.detections}"
    else:
        detector_name = str(spec.detector_weights) if spec.detector_weights else (spec.detector or chosen.detector)
    models = {
        "detector": detector_name,
        "pose": str(spec.pose_weights) if spec.pose_weights else (spec.pose or chosen.pose),
        "flow": flow.name,
    }
    # What changes results (not how fast they come: overlap, batching and prefetch are left out).
    settings = {**{k: v for k, v in asdict(config).items() if k not in ("tracker", "prefetch", "detect_batch", "overlap")},
                **asdict(config.tracker), "flip_test": spec.flip_test, "detector_size": spec.detector_size,
                "half": spec.half, "compile": spec.compile,
                "input_size": list(estimator.config.input_size), "image_fps": spec.image_fps, "render": spec.render}
    info = {"command": "run", "models": models, "settings": settings, "settings_key": settings_key(models, settings)}
    return LoadedRun(spec, pipeline, list(estimator.keypoint_names), info)


def make_processor(
    pipeline: Pipeline,
    out_dir: Path,
    *,
    keypoint_names: list[str],
    info: dict[str, Any],
    render: bool,
    image_fps: float,
    detections_file: Path | None = None,
    progress: Callable[[str, int | None], Any] | None = None,
) -> Callable[[InputItem], ItemResult]:
    """A function that processes one input into ``out_dir`` and returns its summary row.

    ``info`` (models, settings, settings_key) goes into every JSON; ``progress(name, total)``
    returns a per-video bar with ``update()``, ``set_postfix()`` and ``close()``.
    """
    threshold = pipeline.config.joint_threshold

    def draw(image, frame):  # noqa: ANN001, ANN202 - the writer's callback
        return draw_tracks(image, frame, keypoint_threshold=threshold)

    def process(item: InputItem) -> ItemResult:
        started = time.perf_counter()
        source = open_source(item.path, image_fps=image_fps)
        bar = progress(item.path.name, source.frame_count) if progress is not None else None
        try:
            boxes = None
            if detections_file is not None:
                names = [p.name for p in source.files] if isinstance(source, ImageFolderSource) else None
                boxes = FileDetections(detections_file, names, pipeline.config.detection_threshold)
            fps = source.fps if source.fps > 0 else image_fps
            with TrackWriter(out_dir, item.name, keypoint_names, keypoint_threshold=threshold,
                             render=(fps, draw) if render else None) as writer:

                def on_frame(_: int, people: int) -> None:
                    if bar is not None:
                        bar.update()
                        bar.set_postfix(people=people, refresh=False)

                result = pipeline.run(source, writer, boxes=boxes, on_frame=on_frame)
                if boxes is not None and boxes.last_frame >= result.frames:
                    raise PosetrackError(
                        f"{detections_file.name} has boxes for frame {boxes.last_frame} but {item.path} has {result.frames} frames"
                    )
                writer.commit({
                    **info, "source": str(item.path), "input_fingerprint": fingerprint(item.path),
                    "frames": result.frames, "partial": result.partial is not None, "partial_reason": result.partial,
                    "stage_seconds": {k: round(v, 3) for k, v in result.times.as_dict().items()},
                })
        finally:
            source.close()
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - started
        status = "partial" if result.partial else "ok"
        return ItemResult(str(item.path), item.name, status, result.partial or "", result.frames, seconds,
                          result.frames / seconds if seconds > 0 else 0.0, result.tracks)

    return process
