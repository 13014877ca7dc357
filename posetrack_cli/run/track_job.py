"""``posetrack track``: ids for poses that another estimator made, through the same frame loop as
``posetrack run`` (given poses take the place of the detector and the pose network; the video's
frames serve the optical flow), into outputs named ``<name>.tracks.json`` / ``.tracks.csv``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import OutputLock, refuse_overwriting_inputs
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import DEFAULT_IMAGE_FPS, Poses
from posetrack_cli.io.outputs import OutputSet
from posetrack_cli.io.video import open_source, warn_on_stderr
from posetrack_cli.models.flow import DEFAULT_FLOW
from posetrack_cli.run.batch import fingerprint
from posetrack_cli.run.pipeline import Pipeline
from posetrack_cli.run.settings import PipelineConfig, TrackOutputConfig, result_settings, settings_key
from posetrack_cli.tracking.tracker import TrackerConfig

TRACK_SUFFIX = ".tracks"  # clip.tracks.json: never the name of posetrack run's clip.json


@dataclass(frozen=True)
class TrackSpec:
    """What ``posetrack track`` runs.

    Attributes:
        tracker: the tracker's settings.
        output: smoothing and stitching of the tracks before they are written.
        flow: flow estimator name.
        device: where RAFT runs (DIS runs on the CPU).
        image_fps: frame rate given to frame folders.
        allow_download: fetch missing manifest files (RAFT weights).
    """

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    output: TrackOutputConfig = field(default_factory=TrackOutputConfig)
    flow: str = DEFAULT_FLOW
    device: str = "auto"
    image_fps: float = DEFAULT_IMAGE_FPS
    allow_download: bool = True


@dataclass(frozen=True)
class TrackResult:
    """What tracking one file produced, and where it went."""

    frames: int
    poses: int
    tracks: int
    partial: str | None
    paths: dict[str, Path]


class GivenPoses:
    """Poses by frame index, ``(N, K, ...)`` per frame, empty for frames without any."""

    def __init__(self, by_frame: dict[int, Poses], num_keypoints: int = len(COCO_KEYPOINTS)) -> None:
        self._by_frame = by_frame
        self._empty = Poses.empty(num_keypoints)
        self.last_frame = max(by_frame, default=-1)

    def get(self, index: int) -> Poses:
        return self._by_frame.get(index, self._empty)


def track_file(poses_path: Path, video: Path, out_dir: Path, spec: TrackSpec = TrackSpec(),
               progress: Any = None) -> TrackResult:
    """Track the poses of ``poses_path`` over ``video`` into ``out_dir``.

    Raises PosetrackError (one line) for unreadable or inconsistent input, before any output is
    started where it can be known then.
    """
    from posetrack_cli.io.coco_results import FrameSpace, check_decoded, load_poses
    from posetrack_cli.models.flow import make_flow

    name = video.stem if video.is_file() else video.name
    outputs = OutputSet(out_dir, name, suffix=TRACK_SUFFIX)
    refuse_overwriting_inputs(outputs.paths().values(), [poses_path, video])
    source = open_source(video, image_fps=spec.image_fps)
    try:
        space = FrameSpace.of(source)  # numbers, scores and frame references checked on reading
        given = GivenPoses(load_poses(poses_path, space, warn=warn_on_stderr))
        flow = make_flow(spec.flow, device=spec.device, allow_download=spec.allow_download)
        config = PipelineConfig(tracker=spec.tracker, output=spec.output)
        frame_folder = space.file_names is not None
        settings = {**result_settings(config.tracker, config.output),
                    **({"image_fps": spec.image_fps} if frame_folder else {})}
        models = {"flow": flow.name}
        lock = OutputLock(out_dir, name + TRACK_SUFFIX)
        with lock.held():
            outputs.remove_stale_temps()
            foreign = outputs.foreign()
            if foreign:
                raise PosetrackError(f"{foreign[0]} exists and was not written by posetrack; move it away or choose "
                                     "another output folder (-o)")
            bar = progress(video.name, source.frame_count) if progress is not None else None
            try:
                with outputs.open(COCO_KEYPOINTS, keypoint_threshold=spec.tracker.joint_threshold) as writers:
                    result = Pipeline(None, flow, config).run(
                        source, writers, poses=given, on_frame=(lambda *_: bar.update()) if bar is not None else None)
                    if result.partial is None:
                        check_decoded(poses_path, given.last_frame, result.frames, space)
                    paths = writers.commit({
                        "command": "track", "source": str(video), "poses": str(poses_path),
                        "input_fingerprint": fingerprint(video), "models": models, "settings": settings,
                        "settings_key": settings_key(models, settings), "frames": result.frames,
                        "partial": result.partial is not None, "partial_reason": result.partial,
                        "stage_seconds": {k: round(v, 3) for k, v in result.times.as_dict().items()},
                        "reidentified": result.reidentified, "stitched": len(result.id_map),
                    }, id_map=result.id_map)
            finally:
                if bar is not None:
                    bar.close()
    finally:
        source.close()
    return TrackResult(result.frames, result.poses, result.tracks, result.partial, paths)

