"""Tracking poses that another estimator made, using the video only for optical flow."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

from posetrack_cli.errors import PosetrackError
from posetrack_cli.flow import FlowEstimator
from posetrack_cli.keypoints import COCO_KEYPOINTS
from posetrack_cli.outputs import FrameMeta, build_document, write_csv, write_json
from posetrack_cli.tracker import PoseTracker, TrackerConfig
from posetrack_cli.types import Poses, TrackedFrame
from posetrack_cli.video import FrameSource


def track_poses(
    poses_by_frame: dict[int, Poses],
    source: FrameSource,
    flow: FlowEstimator,
    config: TrackerConfig = TrackerConfig(),
    on_frame: Callable[[int], None] | None = None,
) -> tuple[list[TrackedFrame], list[FrameMeta]]:
    """Assign track ids to given poses, frame by frame, with flow from the source's frames.

    Every frame is read (queued poses move by the flow even through frames without poses).
    Raises PosetrackError if a pose refers to a frame the source does not have.
    """
    known = source.frame_count
    if known is not None and poses_by_frame and max(poses_by_frame) >= known:
        raise PosetrackError(f"poses refer to frame {max(poses_by_frame)} but {source.path} has {known} frames")
    tracker = PoseTracker(config)
    tracked, metas = [], []
    previous = None
    empty = Poses.empty(len(COCO_KEYPOINTS))
    for frame in source.frames():
        current = flow.prepare(frame.image)
        field = flow.compute(previous, current) if previous is not None else None
        previous = current
        poses = poses_by_frame.get(frame.index, empty)
        ids = tracker.update(poses, field)
        metas.append(FrameMeta(frame.index, frame.timestamp, source.width, source.height, frame.file_name))
        if len(poses):
            tracked.append(TrackedFrame(frame.index, frame.timestamp, poses, ids))
        if on_frame is not None:
            on_frame(frame.index)
    if poses_by_frame and max(poses_by_frame) >= len(metas):
        raise PosetrackError(f"poses refer to frame {max(poses_by_frame)} but {source.path} decoded only {len(metas)} frames")
    return tracked, metas


def write_tracks(
    out_dir: Path, name: str, tracked: list[TrackedFrame], metas: list[FrameMeta], info: dict,
    config: TrackerConfig,
) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.csv`` atomically into ``out_dir``; returns their paths."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PosetrackError(f"cannot create output folder {out_dir}: {exc.strerror}") from None
    info = {**info, "settings": {**info.get("settings", {}), **asdict(config)}}
    document = build_document(tracked, metas, COCO_KEYPOINTS, info=info, keypoint_threshold=config.joint_threshold)
    json_path, csv_path = out_dir / f"{name}.json", out_dir / f"{name}.csv"
    try:
        write_json(json_path, document)
        write_csv(csv_path, tracked, COCO_KEYPOINTS)
    except OSError as exc:
        raise PosetrackError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    return json_path, csv_path
