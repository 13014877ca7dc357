"""Tracking poses that another estimator made, using the video only for optical flow."""

from __future__ import annotations

from typing import Callable

from posetrack_cli.errors import PosetrackError
from posetrack_cli.flow import FlowEstimator
from posetrack_cli.keypoints import COCO_KEYPOINTS
from posetrack_cli.outputs import FrameMeta, TrackWriter
from posetrack_cli.smoothing import KeypointSmoother
from posetrack_cli.tracker import PoseTracker, TrackerConfig
from posetrack_cli.types import Poses, TrackedFrame
from posetrack_cli.video import FrameSource


def track_poses(
    poses_by_frame: dict[int, Poses],
    source: FrameSource,
    flow: FlowEstimator,
    writer: TrackWriter,
    config: TrackerConfig = TrackerConfig(),
    on_frame: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Assign track ids to given poses frame by frame, with flow from the source's frames, and
    hand each frame to ``writer``. Returns (frames read, tracks).

    Every frame is read: queued poses move by the flow even through frames without poses.
    Raises PosetrackError if a pose refers to a frame the source does not have.
    """
    known = source.frame_count
    if known is not None and poses_by_frame and max(poses_by_frame) >= known:
        raise PosetrackError(f"poses refer to frame {max(poses_by_frame)} but {source.path} has {known} frames")
    tracker = PoseTracker(config)
    smoother = KeypointSmoother(config.smoothing) if config.smoothing is not None else None
    previous = None
    empty = Poses.empty(len(COCO_KEYPOINTS))
    frames = 0
    for frame in source.frames():
        current = flow.prepare(frame.image)
        field = flow.compute(previous, current) if previous is not None else None
        previous = current
        poses = poses_by_frame.get(frame.index, empty)
        ids = tracker.update(poses, field, timestamp=frame.timestamp, image=frame.image)
        meta = FrameMeta(frame.index, frame.timestamp, source.width, source.height, frame.file_name)
        tracked = TrackedFrame(frame.index, frame.timestamp, poses, ids, matches=tracker.last_matches)
        writer.add(meta, smoother.apply(tracked) if smoother is not None else tracked, frame.image)
        frames += 1
        if on_frame is not None:
            on_frame(frame.index)
    if poses_by_frame and max(poses_by_frame) >= frames:
        raise PosetrackError(f"poses refer to frame {max(poses_by_frame)} but {source.path} decoded only {frames} frames")
    return frames, len(tracker.tracks)
