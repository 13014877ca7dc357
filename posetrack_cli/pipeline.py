"""The whole method on one video (paper Algorithm 1): detect, propagate, unify, estimate, track.

Per frame ``k``:

1. person boxes ``B_det`` from the detector (or a boxes file), scoring at least 0.5;
2. the flow from frame ``k-1`` to ``k`` moves frame ``k-1``'s joints; the box around each pose's
   moved joints, enlarged 15 %, is a flow box ``B_flow`` (recovers people the detector missed);
3. ``B_det`` and ``B_flow`` are unified by NMS;
4. the pose network estimates the joints in each unified box (top-down);
5. each pose is scored as its box score times the mean score of its confident joints (the
   released models' rescoring); poses with fewer than ``min_joints`` confident joints are dropped;
6. the tracker gives ids by greedy flow-OKS matching against the queue.

Frames are decoded ahead in a background thread; output is streamed to a ``TrackWriter``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Protocol

import numpy as np

from posetrack_cli.errors import PosetrackError
from posetrack_cli.flow import FlowEstimator
from posetrack_cli.outputs import FrameMeta, TrackWriter
from posetrack_cli.prefetch import prefetch
from posetrack_cli.tracker import PoseTracker, TrackerConfig, flow_boxes, unify_boxes
from posetrack_cli.types import Detections, Poses, TrackedFrame
from posetrack_cli.video import FrameSource, FrameStopped


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of the per-frame method; paper values where the paper gives them.

    Attributes:
        detection_threshold: detector boxes scoring below this are dropped (paper: 0.5).
        joint_threshold: joints below this are not trusted (paper: 0.4).
        flow_box_enlarge: growth of a flow box around its joints (paper: 15 %).
        nms_iou: IoU above which a detection and a flow box are the same person.
        min_joints: confident joints a pose needs to be kept and propagated.
        tracker: tracker settings.
        prefetch: frames decoded ahead of the models.
    """

    detection_threshold: float = 0.5  # paper
    joint_threshold: float = 0.4  # paper
    flow_box_enlarge: float = 0.15  # paper
    # Not given by the paper; 0.5 is the usual person-box NMS (Faster R-CNN's test setting): a flow
    # box overlapping a detection that much is the same person, and the detection (scored higher) wins.
    nms_iou: float = 0.5
    # A box around fewer than 3 joints is a point or a line; such poses are noise, not people.
    min_joints: int = 3
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    prefetch: int = 8  # enough to hide decode jitter; memory stays a few frames


class Detector(Protocol):
    name: str

    def detect(self, frames: list[np.ndarray]) -> list[Detections]: ...


class BoxSource(Protocol):
    name: str

    def get(self, index: int) -> Detections: ...


class Estimator(Protocol):
    num_keypoints: int

    def estimate(self, frame: np.ndarray, detections: Detections) -> Poses: ...


@dataclass
class StageTimes:
    """Seconds spent in each stage over a video (decode is time waiting for the next frame)."""

    decode: float = 0.0
    detect: float = 0.0
    flow: float = 0.0
    pose: float = 0.0
    track: float = 0.0
    write: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class VideoResult:
    """What running one video produced.

    Attributes:
        frames: frames read and written.
        poses: poses written.
        tracks: distinct track ids.
        partial: why decoding stopped early (truncated file, unreadable frame, size change), or None.
        seconds: wall time.
        times: per-stage seconds.
    """

    frames: int
    poses: int
    tracks: int
    partial: str | None
    seconds: float
    times: StageTimes


def rescore(poses: Poses, joint_threshold: float) -> Poses:
    """Person score = box score x mean score of the joints at or above ``joint_threshold`` (0 if none)."""
    confident = poses.keypoint_scores >= joint_threshold
    count = confident.sum(1)
    mean = np.where(count > 0, (poses.keypoint_scores * confident).sum(1) / np.maximum(count, 1), 0.0)
    return Poses(poses.keypoints, poses.keypoint_scores, poses.boxes, poses.scores * mean)


class Pipeline:
    """Models and settings for running many videos; load once, call ``run`` per video.

    Args:
        estimator: the top-down pose estimator.
        flow: optical flow estimator.
        config: method settings.
        detector: person detector, or None when every video brings a boxes file.
    """

    def __init__(self, estimator: Estimator, flow: FlowEstimator, config: PipelineConfig = PipelineConfig(),
                 detector: Detector | None = None) -> None:
        self.estimator = estimator
        self.flow = flow
        self.config = config
        self.detector = detector

    def run(self, source: FrameSource, writer: TrackWriter, *, boxes: BoxSource | None = None,
            on_frame: Callable[[int, int], None] | None = None) -> VideoResult:
        """Process every frame of ``source`` into ``writer`` (which the caller commits or aborts).

        ``on_frame(index, people)`` is called after each frame. Decoding that stops early (a
        truncated video, an unreadable image, a frame of another size) ends the video there with
        ``partial`` saying why; the frames before it are kept.
        """
        if boxes is None and self.detector is None:
            raise PosetrackError("no detector and no boxes file: one of them is needed")
        cfg = self.config
        tracker = PoseTracker(cfg.tracker)
        times = StageTimes()
        start = time.perf_counter()
        previous: Any = None
        previous_poses = Poses.empty(self.estimator.num_keypoints)
        frames, partial = 0, None
        size = (source.width, source.height)
        decoded = prefetch(source.frames(), cfg.prefetch)
        try:
            while True:
                tick = time.perf_counter()
                try:
                    frame = next(decoded)
                except StopIteration:
                    break
                except FrameStopped as exc:
                    partial = str(exc)
                    break
                t0 = time.perf_counter()
                times.decode += t0 - tick

                detected = boxes.get(frame.index) if boxes is not None else self.detector.detect([frame.image])[0]
                t1 = time.perf_counter()
                current = self.flow.prepare(frame.image)
                field = self.flow.compute(previous, current) if previous is not None else None
                propagated = (flow_boxes(previous_poses, field, joint_threshold=cfg.joint_threshold,
                                         enlarge=cfg.flow_box_enlarge, min_joints=cfg.min_joints, frame_size=size)
                              if field is not None else Detections.empty())
                t2 = time.perf_counter()
                unified, _ = unify_boxes(detected, propagated, cfg.nms_iou)
                poses = rescore(self.estimator.estimate(frame.image, unified), cfg.joint_threshold)
                poses = poses[(poses.keypoint_scores >= cfg.joint_threshold).sum(1) >= cfg.min_joints]
                t3 = time.perf_counter()
                ids = tracker.update(poses, field)
                t4 = time.perf_counter()
                meta = FrameMeta(frame.index, frame.timestamp, size[0], size[1], frame.file_name)
                writer.add(meta, TrackedFrame(frame.index, frame.timestamp, poses, ids), frame.image)
                t5 = time.perf_counter()
                times.detect += t1 - t0
                times.flow += t2 - t1
                times.pose += t3 - t2
                times.track += t4 - t3
                times.write += t5 - t4
                previous, previous_poses = current, poses
                frames += 1
                if on_frame is not None:
                    on_frame(frame.index, len(poses))
        finally:
            decoded.close()
        if partial is None and source.frame_count is not None and frames < source.frame_count:
            partial = f"decoded {frames} of {source.frame_count} frames (truncated or damaged file)"
        if frames == 0:
            raise PosetrackError(f"{source.path}: no frame could be decoded" + (f" ({partial})" if partial else ""))
        return VideoResult(frames, writer.annotations, len(tracker.tracks), partial, time.perf_counter() - start, times)
