"""``posetrack run`` for one input, and the run it belongs to.

A :class:`RunSpec` says, in plain picklable values, which models and settings a run uses;
:func:`load_run` turns it into a loaded :class:`LoadedRun`: the pipeline, and the ``info`` every
JSON of the run records, written from the same configs as the resume key. The local executor
loads it once per batch and each Ray worker once per worker, so both build the same pipeline from
the same description; ``LoadedRun.process`` then opens one input, runs the pipeline into its
writers, commits, and reports the summary row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.types import DEFAULT_IMAGE_FPS
from posetrack_cli.inference.config import EstimatorConfig
from posetrack_cli.io.live import LiveConfig
from posetrack_cli.io.outputs import OutputSet
from posetrack_cli.io.render import OverlayConfig
from posetrack_cli.io.video import open_source, warn_on_stderr
from posetrack_cli.run.batch import InputItem, ItemResult, fingerprint
from posetrack_cli.run.pipeline import Pipeline
from posetrack_cli.run.presets import PRESETS
from posetrack_cli.run.settings import (
    ModelChoice,
    PipelineConfig,
    TrackOutputConfig,
    result_settings,
    settings_key,
    speed_settings,
    take,
)
from posetrack_cli.tracking.smoothing import SmoothingConfig
from posetrack_cli.tracking.tracker import TrackerConfig

if TYPE_CHECKING:
    from posetrack_cli.inference.estimator import PoseEstimator

# progress(name, total) -> a per-video bar with update(), set_postfix() and close()
Progress = Callable[[str, "int | None"], Any]


@dataclass(frozen=True)
class RunSpec:
    """What a ``posetrack run`` loads and how it runs, as the command line gave it.

    Attributes:
        models: which detector, pose network and flow.
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


@dataclass
class LoadedRun:
    """A run's models, loaded once, and what its outputs record.

    Attributes:
        spec: what was loaded.
        pipeline: detector, pose estimator, flow and tracker settings.
        keypoint_names: the pose model's K keypoint names.
        info: ``command``, ``models``, ``settings``, ``speed`` and ``settings_key`` for every JSON.
        out_dir: where ``process`` writes (set by :meth:`into`).
        progress: per-video progress bars, or None.
    """

    spec: RunSpec
    pipeline: Pipeline
    keypoint_names: list[str]
    info: dict[str, Any]
    out_dir: Path = Path("posetrack-out")
    progress: Progress | None = None

    @property
    def key(self) -> str:
        """The digest that tells a finished output of this run from a stale one."""
        return str(self.info["settings_key"])

    def into(self, out_dir: Path, progress: Progress | None = None) -> LoadedRun:
        """This run writing into ``out_dir``."""
        return replace(self, out_dir=out_dir, progress=progress)

    def outputs(self, item: InputItem) -> OutputSet:
        return OutputSet(self.out_dir, item.name, render=self.spec.render, images=self.spec.images,
                         derived=derived_paths(self.spec, self.out_dir, item.name))

    def process(self, item: InputItem) -> ItemResult:
        """One input into its outputs; a bad input raises PosetrackError (a failed row)."""
        from posetrack_cli.io.coco_results import FileDetections, FrameSpace
        from posetrack_cli.io.render import OverlayRenderer

        spec, pipeline, outputs = self.spec, self.pipeline, self.outputs(item)
        if spec.images:
            from posetrack_cli.run.images_job import process_images

            return process_images(pipeline, item, outputs.paths()["coco"], progress=self.progress)
        threshold = pipeline.config.joint_threshold
        started = time.perf_counter()
        source = open_source(item.path, image_fps=spec.image_fps)
        bar = self.progress(item.path.name, source.frame_count) if self.progress is not None else None
        try:
            boxes = None
            if spec.models.detections is not None:  # checked (and clipped) against the frames before any work
                boxes = FileDetections(spec.models.detections, FrameSpace.of(source),
                                       pipeline.config.detection_threshold, warn=warn_on_stderr)
            fps = source.fps if source.fps > 0 else spec.image_fps

            renderer = OverlayRenderer(replace(spec.overlay, keypoint_threshold=threshold))  # per video: trails

            def on_frame(_: int, people: int) -> None:
                if bar is not None:
                    bar.update()
                    bar.set_postfix(people=people, refresh=False)

            with outputs.open(self.keypoint_names, keypoint_threshold=threshold, fps=fps,
                                         draw=renderer.draw) as writers:
                result = pipeline.run(source, writers, boxes=boxes, on_frame=on_frame)
                if boxes is not None:
                    boxes.check_decoded(result.frames)
                writers.commit({
                    **self.info, "source": str(item.path), "input_fingerprint": fingerprint(item.path),
                    "frames": result.frames, "partial": result.partial is not None, "partial_reason": result.partial,
                    # runtime, version, precision; for int8 its calibration (as it stands after this input)
                    "runtime": getattr(pipeline.estimator, "runtime_info", lambda: None)(),
                    "stage_seconds": {k: round(v, 3) for k, v in result.times.as_dict().items()},
                    "reidentified": result.reidentified, "stitched": len(result.id_map),
                }, id_map=result.id_map)
            if outputs.derived:
                from posetrack_cli.core.files import read_json

                self.complete(item, read_json(outputs.paths()["json"]), outputs.derived)
        finally:
            source.close()
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - started
        status = "partial" if result.partial else "ok"
        return ItemResult(str(item.path), item.name, status, result.partial or "", result.frames, seconds,
                          result.frames / seconds if seconds > 0 else 0.0, result.tracks, result.reidentified)


    def complete(self, item: InputItem, document: dict[str, Any], wanted: Sequence[Path]) -> None:
        """Make the ``wanted`` files among :func:`derived_paths` (exports, report page) of a finished
        video from its track ``document``; the others are left as they are."""
        from posetrack_cli.io.exports import export_paths
        from posetrack_cli.io.report import report_paths

        asked = set(wanted)
        formats = [f for f, path in export_paths(self.out_dir, item.name, self.spec.formats).items() if path in asked]
        if formats:
            from posetrack_cli.io.exports import write_exports

            write_exports(document, self.out_dir, item.name, formats)
        if report_paths(self.out_dir, item.name)["html"] in asked:
            from posetrack_cli.io.report import write_report

            write_report(document, self.out_dir, name=item.name, video=item.path)


def derived_paths(spec: RunSpec, out_dir: Path, name: str) -> tuple[Path, ...]:
    """The files ``spec`` makes from input ``name``'s finished track file: its exports and report page."""
    from posetrack_cli.io.exports import export_paths
    from posetrack_cli.io.report import report_paths

    paths = list(export_paths(out_dir, name, spec.formats).values())
    if spec.report:
        paths.append(report_paths(out_dir, name)["html"])  # its pictures are written with it
    return tuple(paths)


def spec_from_options(**options: Any) -> RunSpec:
    """A :class:`RunSpec` from keyword options named after the fields of its configs, as the
    command line's flags are: ``spec_from_options(preset="accurate", joint_threshold=0.3,
    detect_every=5, render=True)``. Raises TypeError for an option no config has, ValueError for a
    value a config refuses."""
    left = dict(options)
    preset = PRESETS[str(left.get("preset", ModelChoice.preset))]
    for name, value in (("detect_every", preset.detect_every), ("flip_test", preset.flip_test)):
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


def load_estimator(models: ModelChoice, config: EstimatorConfig, *, allow_download: bool) -> PoseEstimator:
    """The pose estimator of ``models`` with ``config``'s settings.

    A manifest file brings its input size and normalisation; a local file brings what it records
    (posetrack-trained files record both; released files are read by layout and file name). The
    input size is ``models.input_size`` when given, else the file's: ``config.input_size`` is
    replaced by it.
    """
    from dataclasses import asdict

    from posetrack_cli.inference.estimator import PoseEstimator
    from posetrack_cli.models.checkpoints import InputNorm
    from posetrack_cli.models.weights import resolve

    settings = {k: v for k, v in asdict(config).items() if k != "input_size"}
    if models.pose_weights is not None:
        return PoseEstimator.from_checkpoint(models.pose_weights, input_size=models.input_size, **settings)
    entry, path = resolve(models.pose_name, allow_download=allow_download)
    if entry.kind != "pose":
        raise PosetrackError(f"{models.pose_name} is a {entry.kind} file, not a pose model")
    norm = InputNorm(entry.norm["channel_order"], tuple(entry.norm["mean"]), tuple(entry.norm["std"]))
    return PoseEstimator.from_checkpoint(path, input_size=models.input_size or entry.input_size, norm=norm, **settings)


def load_run(spec: RunSpec) -> LoadedRun:
    """Load the models of ``spec`` and describe the run; raises PosetrackError for a missing or bad file."""
    from posetrack_cli.inference.detector import load_detector
    from posetrack_cli.models.device import resolve_device
    from posetrack_cli.models.flow import make_flow
    from posetrack_cli.runtime.choice import choose_precision, detector_precision

    models, config = spec.models, spec.pipeline
    preset = PRESETS[models.preset]
    torch_device = resolve_device(spec.estimator.device)
    est = spec.estimator
    est = replace(est, precision=choose_precision(est.runtime, est.precision, preset.precision, torch_device,
                                                  half=est.half, compile=est.compile))
    estimator = load_estimator(models, est, allow_download=spec.allow_download)
    flow = make_flow(models.flow_name, device=spec.estimator.device, allow_download=spec.allow_download)
    person_detector = None
    if models.detections is None:
        person_detector = load_detector(models.detector_name, weights=models.detector_weights, device=torch_device,
                                        score_threshold=config.detection_threshold,
                                        allow_download=spec.allow_download, min_size=models.detector_size,
                                        proposals=preset.detector_proposals if models.detector is None else None,
                                        # beside an OpenVINO pose network the detector's backbone runs there too
                                        runtime="openvino" if estimator.runtime_name == "openvino" else "torch",
                                        precision=detector_precision(estimator.precision)
                                        if estimator.runtime_name == "openvino" else "fp32")
    pipeline = Pipeline(estimator, flow, config, person_detector)
    config = pipeline.config  # overlap decided
    described = models.describe()
    # What ran, not what was asked ("auto"): another runtime or precision moves the keypoints.
    ran = replace(estimator.config, runtime=estimator.runtime_name, precision=estimator.precision)
    settings = {**result_settings(config, ran), "detector_size": models.detector_size,
                "detector_runtime": None if person_detector is None else person_detector.describe(),
                "image_fps": spec.image_fps, "images": spec.images}
    info = {"command": "run", "models": described, "settings": settings,
            "speed": speed_settings(config, estimator.config),
            "settings_key": settings_key(described, settings)}
    return LoadedRun(spec, pipeline, list(estimator.keypoint_names), info)
