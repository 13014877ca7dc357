"""One input into its outputs: the one per-input job of every mode.

A :class:`RunSpec` says, in plain picklable values, which models and settings a run uses;
:func:`load_run` turns it into a :class:`LoadedRun`, whose :meth:`LoadedRun.process` takes one
input to its files. Every mode goes through it, the local executor, Ray workers and the library
alike; the modes differ only in where frames and people come from:

* a video file or a frame folder: frames decoded from it, people from the detector, or from a
  boxes file (``--detections``) through the pose network;
* ``posetrack track``: the same frames, and poses given by another estimator (``models.poses``),
  only tracked; its files are ``<name>.tracks.json`` / ``.csv``;
* a live source: frames as they come, the outputs flushed meanwhile (:mod:`.streaming`);
* ``--images``: each image of a folder on its own, no flow and no tracking, into COCO results.

One place builds each input's ``info`` (the run's, plus what this input adds), reports progress,
commits the outputs (or removes every temporary file when anything fails) and makes the summary
row. The batch executors (:mod:`.batch`, :mod:`.ray_executor`) hold each input's lock, apply the
resume rule and refuse files posetrack did not write before calling it.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from posetrack_cli.core.clock import first_frame_timings
from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import OutputWriteError, atomic_write, dump_json
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import Poses
from posetrack_cli.io.coco_results import FileDetections, FrameSpace, ImageBoxes, coco_image_id, load_poses
from posetrack_cli.io.coco_results import check_decoded as check_given
from posetrack_cli.io.live import LiveSource, LiveWindow
from posetrack_cli.io.outputs import OutputSet, TrackOutputs
from posetrack_cli.io.video import (
    ImageFolderSource,
    ImageSetSource,
    VideoSource,
    Warn,
    list_images,
    open_source,
    warn_on_stderr,
)
from posetrack_cli.run.batch import InputItem, ItemResult, fingerprint
from posetrack_cli.run.checkpoints import Every, discard, load_checkpoint, save_checkpoint, work_folder
from posetrack_cli.run.pipeline import GivenPoses, LoopState, Pipeline, Source, VideoResult
from posetrack_cli.run.presets import PRESETS
from posetrack_cli.run.settings import ModelChoice, RunSpec, result_settings, settings_key, speed_settings
from posetrack_cli.run.streaming import STILL_READING, LiveSink, stop_on_signals

if TYPE_CHECKING:
    from posetrack_cli.inference.config import EstimatorConfig
    from posetrack_cli.inference.detector import PersonDetector
    from posetrack_cli.inference.estimator import PoseEstimator

TRACK_SUFFIX = ".tracks"  # posetrack track's clip.tracks.json: never the name of posetrack run's clip.json

# progress(name, total) -> a per-input bar with update(), set_postfix() and close()
Progress = Callable[[str, "int | None"], Any]


def poses_file(spec: RunSpec, video: Path) -> Path:
    """The given poses of ``video`` (``posetrack track``): the poses file itself, or
    ``<video's name>.json`` in a folder of poses files."""
    given = spec.models.poses
    if given is None:
        raise ValueError("this run has no given poses")
    if not given.is_dir():
        return given
    stem = video.stem if video.is_file() else video.name
    found = given / f"{stem}.json"
    if not found.is_file():
        raise PosetrackError(f"no poses for {video.name}: {found} does not exist")
    return found


def side_file(spec: RunSpec, item: InputItem) -> Path | None:
    """The file besides the video an input's result depends on: its given poses or its boxes."""
    if spec.models.poses is not None:
        return poses_file(spec, item.path)
    return spec.models.detections


def input_fingerprint(spec: RunSpec, item: InputItem) -> str:
    """What tells this input's outputs from stale ones: the video's (or frame folder's) size and
    times, and those of its poses or boxes file, which change the result as much."""
    side = side_file(spec, item)
    if side is None:
        return fingerprint(item.path)
    return hashlib.sha256(f"{fingerprint(item.path)}:{fingerprint(side)}".encode()).hexdigest()[:16]


def check_inputs_before_loading(spec: RunSpec, item: InputItem) -> None:
    """The checks of one input that can run before any model loads: its source opens, and its poses
    or boxes file parses and refers only to frames the source can have (for ``--images``, names
    some of the folder's images). Raises PosetrackError."""
    side = side_file(spec, item)
    if side is None:
        return
    if spec.images:
        ImageBoxes(side, item.path, [p.name for p in list_images(item.path)], spec.pipeline.detection_threshold)
        return
    space = FrameSpace.probe(item.path, image_fps=spec.image_fps)
    if spec.models.poses is not None:
        load_poses(side, space)
    else:
        FileDetections(side, space, spec.pipeline.detection_threshold)


@dataclass
class _Produced:
    """What one input's frame loop produced, for its summary row."""

    frames: int
    tracks: int = 0
    partial: str | None = None
    reidentified: int = 0
    reason: str = ""
    new_frames: int = -1  # frames this run processed (a resumed run did the others earlier); -1: all

    def __post_init__(self) -> None:
        if not self.reason and self.partial:
            self.reason = self.partial
        if self.new_frames < 0:
            self.new_frames = self.frames


@dataclass
class LoadedRun:
    """A run's models, loaded once, and what its outputs record.

    Attributes:
        spec: what was loaded.
        pipeline: detector, pose estimator, flow and tracker settings.
        keypoint_names: the K keypoint names of the poses.
        info: ``command``, ``models``, ``settings``, ``speed`` and ``settings_key`` for every JSON.
        out_dir: where ``process`` writes (set by :meth:`into`).
        progress: per-input progress bars, or None.
        warn: where an input's one-line warnings go (a damaged frame, a dropped box).
        window: the ``--show`` window of a live source, or None.
        overwrite: redo inputs from their first frame (a checkpoint of an earlier run is thrown away).
    """

    spec: RunSpec
    pipeline: Pipeline
    keypoint_names: list[str]
    info: dict[str, Any]
    out_dir: Path = Path("posetrack-out")
    progress: Progress | None = None
    warn: Warn = warn_on_stderr
    window: LiveWindow | None = None
    overwrite: bool = False

    @property
    def key(self) -> str:
        """The digest that tells a finished output of this run from a stale one."""
        return str(self.info["settings_key"])

    @property
    def needs_detector(self) -> bool:
        """Whether a video without given boxes would need the person detector, not loaded yet."""
        return self.pipeline.detector is None and not self.spec.tracks_given_poses \
            and self.spec.models.detections is None

    def with_detector(self) -> LoadedRun:
        """This run with its person detector loaded (:func:`load_run` with ``detector=False`` leaves
        it out), and its ``info`` saying which; itself when there is nothing to load. Raises
        PosetrackError for a missing detector file."""
        if not self.needs_detector:
            return self
        from posetrack_cli.inference.estimator import PoseEstimator
        from posetrack_cli.runtime.notes import library_notes

        estimator = self.pipeline.estimator
        assert isinstance(estimator, PoseEstimator)
        pipeline = copy.copy(self.pipeline)
        with library_notes(self.spec.verbose):  # its backbone converts as load_run's does
            detector = pipeline.detector = _load_detector(self.spec, estimator)
        return replace(_described(self.spec, pipeline, estimator, detector), out_dir=self.out_dir,
                       progress=self.progress, warn=self.warn, window=self.window, overwrite=self.overwrite)

    def into(self, out_dir: Path, progress: Progress | None = None, *, warn: Warn | None = None,
             window: LiveWindow | None = None, overwrite: bool = False) -> LoadedRun:
        """This run writing into ``out_dir``."""
        return replace(self, out_dir=out_dir, progress=progress, warn=warn or self.warn, window=window,
                       overwrite=overwrite)

    def outputs(self, item: InputItem) -> OutputSet:
        """The files ``item`` gets."""
        return OutputSet(self.out_dir, item.name, render=self.spec.render, images=self.spec.images,
                         derived=derived_paths(self.spec, self.out_dir, item.name))

    def fingerprint(self, item: InputItem) -> str:
        """What tells ``item``'s outputs from stale ones (:func:`input_fingerprint`)."""
        return input_fingerprint(self.spec, item)

    def item_key(self, item: InputItem) -> str:
        """The resume key of ``item``'s outputs: the run's, except that ``posetrack track`` records a
        frame folder's frame rate only for frame folders (a video's frames carry their own times)."""
        return str(self._item_settings(item)[1])

    def _item_settings(self, item: InputItem) -> tuple[dict[str, Any], str]:
        if not self.spec.tracks_given_poses or not item.path.is_dir():
            return self.info["settings"], self.key
        settings = {**self.info["settings"], "image_fps": self.spec.image_fps}
        return settings, settings_key(self.info["models"], settings)

    def process(self, item: InputItem, source: Source | None = None) -> ItemResult:
        """One input into its outputs; a bad input raises PosetrackError (a failed row).

        ``source`` is the input already opened (a live source is opened before models load);
        otherwise it is opened here. A video file or frame folder with a checkpoint of this run
        (:mod:`posetrack_cli.run.checkpoints`) goes on from there. Ctrl-C or SIGTERM inside a file
        puts its frames so far in place as an interrupted output, then raises KeyboardInterrupt.
        """
        from posetrack_cli.runtime.notes import library_notes

        with library_notes(self.spec.verbose):  # int8 calibration, a box head timed at its first frame
            return self._process(item, source)

    def _process(self, item: InputItem, source: Source | None) -> ItemResult:
        started = time.perf_counter()
        spec = self.spec
        if source is None:
            source = ImageSetSource(item.path) if spec.images else self._open(item)
        opened = [source]  # closed at the end, with the reopened one of a resume that failed
        label = item.name if isinstance(source, LiveSource) else item.path.name
        bar = self.progress(label, source.frame_count) if self.progress is not None else None
        timings: dict[str, float | None] = {}  # the wait for this input's first frame (info.timings)

        def on_frame(_: int, people: int) -> None:
            if not timings:
                timings.update(first_frame_timings())
            if bar is not None:
                bar.update()
                bar.set_postfix(people=people, refresh=False)

        try:
            if isinstance(source, ImageSetSource):
                produced = self._images(item, source, on_frame)
            else:
                produced = self._video(item, opened, on_frame, bar, timings)
        finally:
            for each in opened:
                each.close()
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - started
        return ItemResult(str(item.path) if not isinstance(source, LiveSource) else source.path, item.name,
                          "partial" if produced.partial else "ok", produced.reason, produced.frames, seconds,
                          produced.new_frames / seconds if seconds > 0 else 0.0, produced.tracks,
                          produced.reidentified)

    def _open(self, item: InputItem) -> Source:
        return open_source(item.path, image_fps=self.spec.image_fps, warn=self.warn)

    def _video(self, item: InputItem, opened: list[Source], on_frame: Callable[[int, int], None],
               bar: Any, timings: dict[str, float | None]) -> _Produced:
        """Frames of a video, frame folder or live source, tracked into the track files; ``timings``
        (:func:`~posetrack_cli.core.clock.first_frame_timings`, filled at the first frame) go in ``info``."""
        from posetrack_cli.io.render import OverlayRenderer

        spec, pipeline, outputs = self.spec, self.pipeline, self.outputs(item)
        source = opened[0]
        live = isinstance(source, LiveSource)
        threshold = pipeline.config.joint_threshold
        boxes: FileDetections | None = None
        poses: GivenPoses | None = None
        side = None if live else side_file(spec, item)
        if side is not None:  # checked (and clipped) against the frames before any work
            assert isinstance(source, (VideoSource, ImageFolderSource))
            space = FrameSpace.of(source)
            if spec.tracks_given_poses:
                poses = GivenPoses(load_poses(side, space, warn=self.warn), len(self.keypoint_names))
            else:
                boxes = FileDetections(side, space, pipeline.config.detection_threshold, warn=self.warn)
        settings, key = self._item_settings(item)
        info: dict[str, Any] = {**self.info, "settings": settings, "settings_key": key, "source": str(source.path)}
        if spec.tracks_given_poses:
            info["poses"] = str(side)
        info["input_fingerprint"] = None if live else input_fingerprint(spec, item)
        if live:
            assert isinstance(source, LiveSource)
            info["live"] = {"kind": source.kind, "timestamps": source.timing, "reconnect": spec.live.reconnect}
        fps = source.fps if source.fps > 0 else spec.image_fps
        overlay = replace(spec.overlay, keypoint_threshold=threshold)
        renderer = OverlayRenderer(overlay)  # per input: trails

        # A file picks up where a checkpoint of this very run left it (else it starts from frame 0).
        work = None if live or spec.checkpoint_every <= 0 else work_folder(self.out_dir, item.name)
        identity = {"key": key, "fingerprint": info["input_fingerprint"]}
        loop, prime, saved = pipeline.new_state(), None, None
        if work is not None:
            if self.overwrite:
                discard(work)
            saved, why = load_checkpoint(work, identity)
            if why is not None:
                self.warn(f"{item.path}: the checkpoint of an earlier run is not used ({why}); starting from frame 0")
            if saved is not None:
                assert isinstance(source, (VideoSource, ImageFolderSource))
                try:
                    prime = source.resume_after(saved["source"])
                    loop = pipeline.restore_state(saved["loop"])
                    self._restore_runtime(saved["runtime"])
                    renderer.load_state(saved["renderer"])
                    if bar is not None:
                        bar.update(loop.frames)
                except PosetrackError as exc:  # the input or the models changed under the checkpoint
                    self.warn(f"{item.path}: cannot resume ({exc}); starting from frame 0")
                    discard(work)
                    saved, prime, loop = None, None, pipeline.new_state()
                    renderer = OverlayRenderer(overlay)
                    source.close()
                    source = self._open(item)
                    opened.append(source)
        resumed_after = loop.last_index
        if work is not None:
            try:
                work.mkdir(exist_ok=True)
            except OSError as exc:
                raise OutputWriteError(work, exc) from None

        def finished(result: VideoResult, **more: Any) -> dict[str, Any]:
            runtime = getattr(pipeline.estimator, "runtime_info", None)  # None: no pose network (given poses)
            return {**info, "frames": result.frames, "partial": result.partial is not None,
                    "partial_reason": result.partial, "missing_frames": [list(m) for m in result.missing],
                    "interrupted": False, **more,
                    # runtime, version, precision; for int8 its calibration (as it stands after this input)
                    **({"runtime": runtime()} if runtime is not None else {}),
                    "stage_seconds": {k: round(v, 3) for k, v in result.times.as_dict().items()},
                    # from the process's start to this input's first frame (in a batch, after the inputs before it)
                    "timings": timings or {"first_frame_s": None, "first_frame_cpu_s": None},
                    "reidentified": result.reidentified, "stitched": len(result.id_map),
                    "duplicates_suppressed": loop.tracker.suppressed, "poses_carried": loop.poses_carried,
                    "unconfirmed_poses": loop.confirm.dropped}

        def check_decoded(decoded: int) -> None:  # a boxes or poses file may not refer past a video read to its end
            if boxes is not None:
                boxes.check_decoded(decoded)
            if poses is not None and side is not None:
                check_given(side, poses.last_frame, decoded, space)

        def first_tracked(_: int) -> None:  # the first frame through every stage, before it waits for confirmation
            if not timings:
                timings.update(first_frame_timings())

        try:
            with outputs.open(self.keypoint_names, keypoint_threshold=threshold, fps=fps, draw=renderer.draw,
                              work=work, resume=saved["writers"] if saved is not None else None) as writers:
                checkpoints: Every | None = None
                sink: Any = writers
                if isinstance(source, LiveSource):
                    live_source = source

                    def flushed(state: LoopState) -> None:
                        writers.snapshot({**info, "frames": state.frames, "partial": True,
                                          "partial_reason": STILL_READING})

                    checkpoints = Every(spec.live.flush_every, flushed)
                    shown = OverlayRenderer(overlay)  # the window's own trails
                    sink = LiveSink(writers, draw=shown.draw, window=self.window,
                                    on_close=lambda: live_source.request_stop("stopped: the window was closed"))
                elif work is not None:
                    assert isinstance(source, (VideoSource, ImageFolderSource))
                    at, file_source = work, source

                    def save(state: LoopState) -> None:
                        save_checkpoint(at, identity, {
                            "source": file_source.position(state.tracked_index), "loop": state.state(),
                            "writers": writers.position(), "renderer": renderer.state(),
                            "runtime": self._runtime_state()})

                    checkpoints = Every(spec.checkpoint_every, save)
                with stop_on_signals(source, self.warn) as caught:
                    try:
                        result = pipeline.run(source, sink, boxes=boxes, poses=poses, on_frame=on_frame,
                                              on_tracked=first_tracked, state=loop,
                                              prime=prime, checkpoints=checkpoints,
                                              stop=lambda: f"stopped by {caught[0]}" if caught else None)
                    except PosetrackError:
                        raise
                    except Exception as exc:  # a bug: what was done stays, as an interrupted output
                        if loop.frames and not live:
                            self._keep_after_error(writers, info, loop, exc, work is not None)
                        raise
                if result.partial is None:
                    check_decoded(result.last_index + 1)
                if caught and not live:  # Ctrl-C or SIGTERM inside a file: keep it all, then stop the batch
                    if checkpoints is not None:
                        checkpoints.save(loop)
                    reason = f"stopped by {caught[0]} after frame {loop.last_index}"
                    writers.snapshot(finished(replace(result, partial=reason), interrupted=True))
                    raise KeyboardInterrupt
                writers.commit(finished(result), id_map=result.id_map)
        except PosetrackError:  # a bad input or a write that failed: nothing of this input stays
            if work is not None:
                discard(work)
            raise
        if work is not None:
            discard(work)
        if outputs.derived:
            from posetrack_cli.core.files import read_json

            self.complete(item, read_json(outputs.paths()["json"]), outputs.derived)
        reason = result.partial or ""
        if resumed_after >= 0:
            reason = "; ".join(filter(None, [f"resumed after frame {resumed_after}", reason]))
        return _Produced(result.frames, result.tracks, result.partial, result.reidentified, reason,
                         result.frames - (int(saved["loop"]["frames"]) if saved is not None else 0))

    def _keep_after_error(self, writers: TrackOutputs, info: dict[str, Any], loop: LoopState, exc: Exception,
                          resumable: bool) -> None:
        """Put the frames done before an internal error in place as an interrupted output, and say
        so on the exception (its summary row names what is on disk)."""
        reason = f"stopped by an internal error after frame {loop.last_index}: {type(exc).__name__}"
        try:
            writers.snapshot({**info, "frames": loop.frames, "partial": True, "partial_reason": reason,
                              "interrupted": True})
        except PosetrackError:
            return
        resume = "rerun to resume from the last checkpoint" if resumable else "rerun to redo it"
        kept = f"the {loop.frames} frames before it are in {writers.paths['json'].name} (partial; {resume})"
        exc.posetrack_kept = kept  # type: ignore[attr-defined]

    def _runtime_state(self) -> Any:
        """The pose network runtime's state a resumed run must restore (int8 calibration), or None."""
        state = getattr(self.pipeline.estimator, "runtime_state", None)
        return state() if state is not None else None

    def _restore_runtime(self, state: Any) -> None:
        restore = getattr(self.pipeline.estimator, "restore_runtime_state", None)
        if restore is not None:
            restore(state)
        elif state is not None:
            raise PosetrackError("the checkpoint holds a runtime state this run's pose network has no use for")

    def _images(self, item: InputItem, source: ImageSetSource, on_frame: Callable[[int, int], None]) -> _Produced:
        """Each image on its own (steps 1 and 4 of Algorithm 1), into ``OUT/<name>.coco.json``.

        An image that cannot be read is skipped, counted, and makes the row ``partial``; a folder
        without any readable image fails.
        """
        results: list[dict[str, Any]] = []
        given = self.spec.models.detections
        boxes = None if given is None else ImageBoxes(given, item.path, [p.name for p in source.files],
                                                      self.pipeline.config.detection_threshold, warn=self.warn)
        for frame in source.frames():
            assert frame.file_name is not None
            height, width = frame.image.shape[:2]
            people = self.pipeline.poses_in_image(
                frame.image, None if boxes is None else boxes.get(frame.file_name, width, height))
            results += _coco_results(people, frame.file_name)
            on_frame(frame.index, len(people))
        files, unreadable = source.files, source.unreadable
        if len(unreadable) == len(files):
            raise PosetrackError(f"{item.path}: none of its {len(files)} images could be read")
        with atomic_write(self.outputs(item).paths()["coco"]) as f:
            dump_json(results, f)
        reason = None
        if unreadable:
            reason = f"{len(unreadable)} of {len(files)} images could not be read ({', '.join(unreadable[:3])}" + (
                ", ...)" if len(unreadable) > 3 else ")")
        return _Produced(len(files) - len(unreadable), 0, reason)

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


def _coco_results(poses: Poses, file_name: str) -> list[dict[str, Any]]:
    """COCO keypoint results of one image's poses, in COCO's own results format: ``image_id``,
    ``category_id``, ``keypoints`` ``[x, y, score] * K`` (COCO's results carry scores in the third
    place) and ``score`` the person score, with ``file_name`` kept in every entry.

    No ``bbox``, as in the results of COCO's keypoint challenge and the paper's authors: given one,
    pycocotools takes a result's area from it instead of from the keypoints, which moves the
    medium/large statistics (APm, APl), and ``posetrack evaluate --metric coco`` would then differ
    from COCOeval run directly on this file.
    """
    entries = []
    for i in range(len(poses)):
        kps = np.concatenate([poses.keypoints[i], poses.keypoint_scores[i][:, None]], axis=1)
        entries.append({"image_id": coco_image_id(file_name), "file_name": file_name, "category_id": 1,
                        "keypoints": [round(float(v), 3) for v in kps.ravel()],
                        "score": round(float(poses.scores[i]), 5)})
    return entries


def derived_paths(spec: RunSpec, out_dir: Path, name: str) -> tuple[Path, ...]:
    """The files ``spec`` makes from input ``name``'s finished track file: its exports and report page."""
    from posetrack_cli.io.exports import export_paths
    from posetrack_cli.io.report import report_paths

    paths = list(export_paths(out_dir, name, spec.formats).values())
    if spec.report:
        paths.append(report_paths(out_dir, name)["html"])  # its pictures are written with it
    return tuple(paths)


def _note_on_stderr(line: str) -> None:
    """The default receiver of a run's one-line notes: ``posetrack: <line>`` on stderr."""
    import sys

    print(f"posetrack: {line}", file=sys.stderr, flush=True)


def load_estimator(models: ModelChoice, config: EstimatorConfig, *, allow_download: bool,
                   note: Callable[[str], None] = _note_on_stderr) -> PoseEstimator:
    """The pose estimator of ``models`` with ``config``'s settings.

    A manifest file brings its input size and normalisation; a local file brings what it records
    (posetrack-trained files record both; released files are read by layout and file name). The
    input size is ``models.input_size`` when given, else the file's; a local file that records
    none (``model.pth``) takes its architecture's standard size
    (:func:`~posetrack_cli.models.checkpoints.standard_input_size`, 192x256 for COCO's keypoints),
    and ``note`` gets one line saying which and how to choose another. ``config.input_size`` is
    replaced by it.
    """
    from dataclasses import asdict

    from posetrack_cli.inference.estimator import PoseEstimator
    from posetrack_cli.models.checkpoints import InputNorm, load_pose_checkpoint, standard_input_size
    from posetrack_cli.models.weights import resolve

    settings = {k: v for k, v in asdict(config).items() if k != "input_size"}
    if models.pose_weights is not None:
        model, info = load_pose_checkpoint(models.pose_weights)
        size = models.input_size or info.input_size
        if size is None:
            size = standard_input_size(info.spec)
            if size is not None:
                note(f"{info.path.name} does not record its input size: using {size[0]}x{size[1]} (width x height), "
                     f"the standard size of a {info.spec.backbone_name} with {info.spec.num_keypoints} keypoints; "
                     "--input-size WIDTHxHEIGHT (input_size=(width, height) in Python) chooses another")
        return PoseEstimator.from_loaded(model, info, input_size=size, **settings)
    entry, path = resolve(models.pose_name, allow_download=allow_download)
    if entry.kind != "pose":
        raise PosetrackError(f"{models.pose_name} is a {entry.kind} file, not a pose model")
    norm = InputNorm(entry.norm["channel_order"], tuple(entry.norm["mean"]), tuple(entry.norm["std"]))
    return PoseEstimator.from_checkpoint(path, input_size=models.input_size or entry.input_size, norm=norm, **settings)


def load_run(spec: RunSpec, *, detector: bool = True) -> LoadedRun:
    """Load the models of ``spec`` and describe the run; raises PosetrackError for a missing or bad file.

    ``detector=False`` leaves the person detector out (the library's, whose caller may give every
    frame's boxes itself): no detector file is needed, and :meth:`LoadedRun.with_detector` loads
    it when a video without boxes comes. A run with a boxes file (``models.detections``) or given
    poses never loads one.
    """
    from posetrack_cli.runtime.notes import library_notes

    with library_notes(spec.verbose):  # the libraries' notes while the models load (conversions), under --verbose
        return _load_run(spec, detector=detector)


def _load_run(spec: RunSpec, *, detector: bool) -> LoadedRun:
    """:func:`load_run`'s work, within its ``library_notes``."""
    from posetrack_cli.models.flow import make_flow

    models, config = spec.models, spec.pipeline
    flow = make_flow(models.flow_name, device=spec.estimator.device, allow_download=spec.allow_download)
    if spec.tracks_given_poses:  # posetrack track: the flow is the only model; the poses come with each input
        pipeline = Pipeline(None, flow, config)
        settings = result_settings(config.tracker, config.output)
        described = models.describe()
        info = {"command": "track", "models": described, "settings": settings,
                "settings_key": settings_key(described, settings)}
        return LoadedRun(spec, pipeline, list(COCO_KEYPOINTS), info)

    from posetrack_cli.models.device import resolve_device
    from posetrack_cli.runtime.choice import choose_precision

    preset = PRESETS[models.preset]
    torch_device = resolve_device(spec.estimator.device)
    est = spec.estimator
    est = replace(est, precision=choose_precision(est.runtime, est.precision, preset.precision, torch_device,
                                                  half=est.half, compile=est.compile))
    estimator = load_estimator(models, est, allow_download=spec.allow_download)
    person_detector = _load_detector(spec, estimator) if detector and models.detections is None else None
    return _described(spec, Pipeline(estimator, flow, config, person_detector), estimator, person_detector)


def _load_detector(spec: RunSpec, estimator: PoseEstimator) -> PersonDetector:
    """The person detector of ``spec``, beside the pose network ``estimator`` (on its device, and
    where that runs on OpenVINO, the detector's backbone too)."""
    from posetrack_cli.inference.detector import load_detector
    from posetrack_cli.models.device import resolve_device
    from posetrack_cli.runtime.choice import detector_precision

    models = spec.models
    openvino = estimator.runtime_name == "openvino"
    return load_detector(models.detector_name, weights=models.detector_weights,
                         device=resolve_device(spec.estimator.device),
                         score_threshold=spec.pipeline.detection_threshold, allow_download=spec.allow_download,
                         min_size=models.detector_size,
                         proposals=PRESETS[models.preset].detector_proposals if models.detector is None else None,
                         runtime="openvino" if openvino else "torch",
                         precision=detector_precision(estimator.precision) if openvino else "fp32")


def _described(spec: RunSpec, pipeline: Pipeline, estimator: PoseEstimator,
               person_detector: PersonDetector | None) -> LoadedRun:
    """The run of ``pipeline`` (whose pose network is ``estimator``, its detector ``person_detector``),
    with the ``info`` its files record."""
    models, config = spec.models, pipeline.config  # overlap decided
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
