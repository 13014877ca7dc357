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

import queue
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from posetrack_cli.errors import PosetrackError
from posetrack_cli.flow import FlowEstimator, FlowField
from posetrack_cli.outputs import FrameMeta, TrackWriter
from posetrack_cli.prefetch import prefetch
from posetrack_cli.proposals import flow_boxes, unify_boxes
from posetrack_cli.smoothing import KeypointSmoother
from posetrack_cli.tracker import PoseTracker, TrackerConfig
from posetrack_cli.types import Detections, Poses, TrackedFrame
from posetrack_cli.video import Frame, FrameSource, FrameStopped


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
        detect_every: run the detector on every N-th frame only (keyframes); in between, people
            are carried by flow boxes. 1 is the paper's method.
        detect_batch: frames per detector call (batching pays on a GPU).
        overlap: run detection and flow one frame ahead, and writing behind, in their own threads.
            Pays where the stages use different hardware (GPU models, CPU flow and encoding), and
            on a multi-core CPU with the presets' models (1.04-1.22x in benchmarks/pipeline.py);
            with very light models the thread hand-offs cost more than they save.
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
    detect_every: int = 1  # paper: every frame
    detect_batch: int = 1
    overlap: bool = False

    def __post_init__(self) -> None:
        if self.detect_every < 1 or self.detect_batch < 1 or self.prefetch < 1:
            raise ValueError("detect_every, detect_batch and prefetch must be >= 1")


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

        With ``overlap``, three threads besides this one work on different frames: decoding runs
        ahead; detection and flow of frame k+1 (which need nothing from frame k's poses) run while
        the pose network works on frame k; writing and rendering run behind.
        """
        if boxes is None and self.detector is None:
            raise PosetrackError("no detector and no boxes file: one of them is needed")
        cfg = self.config
        tracker = PoseTracker(cfg.tracker)
        smoother = KeypointSmoother(cfg.tracker.smoothing) if cfg.tracker.smoothing is not None else None
        times = StageTimes()
        stopped: list[str] = []
        start = time.perf_counter()
        previous_poses = Poses.empty(self.estimator.num_keypoints)
        frames = 0
        size = (source.width, source.height)
        decoded = prefetch(source.frames(), cfg.prefetch)
        ahead = self._detect_and_flow(decoded, boxes, times, stopped)
        if cfg.overlap:
            ahead = prefetch(ahead, 2)
        sink = _BackgroundAdds(writer, cfg.prefetch) if cfg.overlap else writer
        try:
            for frame, detected, field in ahead:
                t0 = time.perf_counter()
                propagated = (flow_boxes(previous_poses, field, joint_threshold=cfg.joint_threshold,
                                         enlarge=cfg.flow_box_enlarge, min_joints=cfg.min_joints, frame_size=size)
                              if field is not None else Detections.empty())
                unified, _ = unify_boxes(detected, propagated, cfg.nms_iou)
                poses = rescore(self.estimator.estimate(frame.image, unified), cfg.joint_threshold)
                poses = poses[(poses.keypoint_scores >= cfg.joint_threshold).sum(1) >= cfg.min_joints]
                t1 = time.perf_counter()
                ids = tracker.update(poses, field, timestamp=frame.timestamp, image=frame.image)
                tracked = TrackedFrame(frame.index, frame.timestamp, poses, ids, matches=tracker.last_matches)
                if smoother is not None:
                    tracked = smoother.apply(tracked)
                t2 = time.perf_counter()
                meta = FrameMeta(frame.index, frame.timestamp, size[0], size[1], frame.file_name)
                sink.add(meta, tracked, frame.image)
                times.pose += t1 - t0
                times.track += t2 - t1
                times.write += time.perf_counter() - t2
                previous_poses = poses
                frames += 1
                if on_frame is not None:
                    on_frame(frame.index, len(poses))
            if isinstance(sink, _BackgroundAdds):
                t3 = time.perf_counter()
                sink.flush()
                times.write += time.perf_counter() - t3
        finally:
            ahead.close()
            decoded.close()
            if isinstance(sink, _BackgroundAdds):
                sink.stop()
        partial = stopped[0] if stopped else None
        if partial is None and source.frame_count is not None and frames < source.frame_count:
            partial = f"decoded {frames} of {source.frame_count} frames (truncated or damaged file)"
        if frames == 0:
            raise PosetrackError(f"{source.path}: no frame could be decoded" + (f" ({partial})" if partial else ""))
        return VideoResult(frames, writer.annotations, len(tracker.tracks), partial, time.perf_counter() - start, times)

    def _detect_and_flow(self, decoded: Iterator[Frame], boxes: BoxSource | None, times: StageTimes,
                         stopped: list[str]) -> Iterator[tuple[Frame, Detections, FlowField | None]]:
        """Frames with their detections (keyframes only when ``detect_every`` > 1) and the flow
        from the previous frame: the work that needs nothing from earlier poses."""
        cfg = self.config
        previous: Any = None
        while True:
            batch: list[Frame] = []
            tick = time.perf_counter()
            try:
                while len(batch) < cfg.detect_batch:
                    batch.append(next(decoded))
            except StopIteration:
                pass
            except FrameStopped as exc:
                stopped.append(str(exc))
            times.decode += time.perf_counter() - tick
            if not batch:
                return
            t0 = time.perf_counter()
            keyframes = [f for f in batch if f.index % cfg.detect_every == 0]
            if boxes is not None:
                found = {f.index: boxes.get(f.index) for f in keyframes}
            else:
                found = dict(zip((f.index for f in keyframes), self.detector.detect([f.image for f in keyframes])))
            times.detect += time.perf_counter() - t0
            for frame in batch:
                t1 = time.perf_counter()
                current = self.flow.prepare(frame.image)
                field = self.flow.compute(previous, current) if previous is not None else None
                previous = current
                times.flow += time.perf_counter() - t1
                yield frame, found.get(frame.index, Detections.empty()), field
            if stopped:
                return


class _BackgroundAdds:
    """Hands ``writer.add`` calls to a thread through a bounded queue, so encoding the overlay
    and writing rows happen behind the models. ``flush`` waits for the queue to drain and raises
    the thread's error, if any."""

    def __init__(self, writer: TrackWriter, depth: int) -> None:
        self._writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="posetrack-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._writer.add(*item)
                except BaseException as exc:  # re-raised in the pipeline thread by flush()
                    self._error = exc

    def add(self, *item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def flush(self) -> None:
        self.stop()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
