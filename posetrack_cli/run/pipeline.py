"""The whole method on one video (paper Algorithm 1), in one frame loop that serves both
``posetrack run`` (detector + pose network) and ``posetrack track`` (poses given by the user).

Per frame ``k``, each step one call into its own module:

1. person boxes ``B_det`` from the detector or a boxes file (:mod:`posetrack_cli.inference.detector`);
2. frame ``k-1``'s joints moved by the optical flow give flow boxes ``B_flow``
   (:func:`posetrack_cli.tracking.proposals.flow_boxes`), which recover people the detector missed;
3. ``B_det`` and ``B_flow`` are unified by NMS (:func:`posetrack_cli.tracking.proposals.unify_boxes`);
4. the pose network estimates the joints in each unified box, top-down
   (:class:`posetrack_cli.inference.estimator.PoseEstimator`); people are scored as the released code does
   and poses with too few confident joints are dropped (:mod:`posetrack_cli.tracking.scoring`);
   with ``pose_every`` > 1, a person the network saw recently keeps the joints flow moved instead
   (:mod:`posetrack_cli.tracking.carry`: the network on each person every N-th frame);
5. and 6. the tracker compares the new poses with its queue by flow-based OKS
   (:mod:`posetrack_cli.tracking.similarity`) and gives ids by greedy matching (:mod:`posetrack_cli.tracking.tracker`).

Beyond the paper, frames are then held back a few frames until each new track in them is
confirmed (:mod:`posetrack_cli.tracking.confirmation`), so a false positive is never written and a
person is written from their first frame.

With given poses, steps 1-4 are replaced by the poses of the frame. Decoding that stops early (a
truncated video, an unreadable image, a frame of another size) ends the video there, keeps the
frames before it and says why, for both commands alike.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Generator, Iterator, Protocol

import numpy as np

from posetrack_cli.core.errors import FrameStopped, PosetrackError
from posetrack_cli.core.flow_field import FlowEstimator, FlowField
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import Detections, Frame, Poses, TrackedFrame
from posetrack_cli.run.frame_tracker import FrameTracker
from posetrack_cli.run.prefetch import prefetch
from posetrack_cli.run.settings import PipelineConfig
from posetrack_cli.tracking.carry import carried_poses, carry_plan
from posetrack_cli.tracking.confirmation import Confirmation
from posetrack_cli.tracking.proposals import moved_poses, unified_order
from posetrack_cli.tracking.scoring import enough_joints, rescore
from posetrack_cli.tracking.stitching import stitch


class Detector(Protocol):
    name: str

    def detect(self, frames: list[np.ndarray]) -> list[Detections]: ...


class BoxSource(Protocol):
    """Person boxes by frame index (a boxes file)."""

    def get(self, index: int) -> Detections: ...


class PoseSource(Protocol):
    """Poses by frame index, made by another estimator (``posetrack track``)."""

    def get(self, index: int) -> Poses: ...


class GivenPoses:
    """Poses by frame index (a :class:`PoseSource`), ``(N, K, ...)`` per frame, empty for frames without any."""

    def __init__(self, by_frame: dict[int, Poses], num_keypoints: int = len(COCO_KEYPOINTS)) -> None:
        self._by_frame = by_frame
        self._empty = Poses.empty(num_keypoints)
        self.last_frame = max(by_frame, default=-1)

    def get(self, index: int) -> Poses:
        return self._by_frame.get(index, self._empty)


class Estimator(Protocol):
    @property
    def num_keypoints(self) -> int: ...

    def estimate(self, frame: np.ndarray, detections: Detections) -> Poses: ...


class Source(Protocol):
    """What the frame loop reads: a video file, a frame folder (:mod:`posetrack_cli.io.video`) or a
    live source (:mod:`posetrack_cli.io.live`, whose ``frame_count`` is None)."""

    @property
    def path(self) -> object: ...

    @property
    def frame_count(self) -> int | None: ...

    @property
    def fps(self) -> float:
        """Nominal frame rate (0 where unknown)."""

    @property
    def missing(self) -> list[tuple[int, int]]:
        """``(first, last)`` index ranges of frames the source has but could not decode (known once read)."""

    def frames(self) -> Iterator[Frame]: ...

    def request_stop(self, reason: str) -> None:
        """End ``frames()`` before its next frame (FrameStopped with ``reason``)."""

    def close(self) -> None: ...


class FrameSink(Protocol):
    """Where each frame's result goes (:class:`posetrack_cli.io.outputs.TrackOutputs`)."""

    def add(self, frame: Frame, tracked: TrackedFrame) -> None: ...


@dataclass
class StageTimes:
    """Seconds spent in each stage over a video (decode is time waiting for the next frame).

    With ``overlap`` the stages run at the same time in several threads, so their sum can exceed
    the wall time.
    """

    decode: float = 0.0
    detect: float = 0.0
    flow: float = 0.0
    pose: float = 0.0
    track: float = 0.0
    write: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class VideoOutcome:
    """How tracking a video ended, filled in by :meth:`Pipeline.track` as it goes.

    Attributes:
        stopped: why decoding stopped early, if it did (one reason).
        reidentified: people re-found from the memory of lost tracks.
        id_map: ``{old_id: new_id}`` of offline stitching (``TrackOutputConfig.stitch``), to apply to
            the files before they are committed; empty otherwise.
    """

    stopped: list[str] = field(default_factory=list)
    reidentified: int = 0
    id_map: dict[int, int] = field(default_factory=dict)


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
        reidentified: people re-found from the memory of lost tracks.
        id_map: stitching's id remapping, to apply before committing (see :class:`VideoOutcome`).
    """

    frames: int
    poses: int
    tracks: int
    partial: str | None
    seconds: float
    times: StageTimes
    reidentified: int = 0
    id_map: dict[int, int] = field(default_factory=dict)
    missing: tuple[tuple[int, int], ...] = ()
    last_index: int = -1


@dataclass
class LoopState:
    """What the frame loop carries from one frame to the next, and its counts so far: everything a
    video resumed after frame ``last_index`` needs (with that frame itself, for the flow).

    Attributes:
        tracker: the tracker, with its queue, lost memory and smoothing filters.
        carried: the last frame's people, scored by their boxes (Algorithm 1's joint propagation
            moves them to the next frame).
        carried_age: ``(N,)`` frames since the pose network last ran on each carried person
            (0: on the last frame; only ``pose_every`` > 1 makes it more).
        frames, poses: frames and poses written.
        poses_carried: poses written whose joints flow carried instead of the pose network.
        last_index: the index of the last frame written (-1 before the first).
        confirm: the frames tracked and held back until their new tracks are confirmed (with their
            images, for the overlay).
    """

    tracker: FrameTracker
    carried: Poses
    confirm: Confirmation[tuple[Frame, TrackedFrame]]
    carried_age: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    frames: int = 0
    poses: int = 0
    poses_carried: int = 0
    last_index: int = -1

    @property
    def ids(self) -> set[int]:
        """Every track id written (the confirmation keeps them)."""
        return self.confirm.written

    @property
    def tracked_index(self) -> int:
        """The index of the last frame tracked: the last one held back, else the last written;
        a resumed video goes on after it."""
        return self.confirm.pending[-1][0][0].index if self.confirm.pending else self.last_index

    def state(self) -> dict[str, Any]:
        """A state tree (:mod:`posetrack_cli.core.state`) of all of it."""
        c = self.carried
        return {"tracker": self.tracker.state(), "frames": self.frames, "poses": self.poses,
                "poses_carried": self.poses_carried, "last_index": self.last_index,
                "carried": {"keypoints": c.keypoints, "keypoint_scores": c.keypoint_scores, "boxes": c.boxes,
                            "scores": c.scores, "ages": self.carried_age},
                "confirm": self.confirm.state(_held_state)}


def _held_state(held: tuple[Frame, TrackedFrame]) -> dict[str, Any]:
    """A frame held back for confirmation, with its tracked people, as a state tree."""
    frame, tracked = held
    p = tracked.poses
    return {"index": frame.index, "timestamp": frame.timestamp, "image": frame.image, "file_name": frame.file_name,
            "keypoints": p.keypoints, "keypoint_scores": p.keypoint_scores, "boxes": p.boxes, "scores": p.scores,
            "track_ids": tracked.track_ids, "sources": tracked.sources, "matches": tracked.matches}


def _held_from_state(state: dict[str, Any]) -> tuple[Frame, TrackedFrame]:
    """The held frame :func:`_held_state` described."""
    frame = Frame(int(state["index"]), float(state["timestamp"]), state["image"], state["file_name"])
    poses = Poses(state["keypoints"], state["keypoint_scores"], state["boxes"], state["scores"])
    return frame, TrackedFrame(frame.index, frame.timestamp, poses, state["track_ids"], state["sources"],
                               state["matches"])


class Checkpoints(Protocol):
    """Asked after every frame written whether a checkpoint is due (the loop state then matches
    what the sink holds, flushed); live sources flush their files this way, files save their state."""

    def due(self) -> bool: ...

    def save(self, state: LoopState) -> None: ...


def default_overlap(device: Any) -> bool:
    """Whether stages overlap in threads unless told: with CUDA (the stages use different
    hardware), and on a CPU where torch has two or more threads (the threads fill each other's
    idle moments, see ``benchmarks/pipeline.py``); not on a single core (a Ray worker's), where
    there is nothing to fill. ``device`` is the pose network's torch device (None: the CPU).

    A process that has not imported torch (tracking given poses loads no network) does not import
    it for this question (seconds on a small CPU): it counts the threads torch would start with,
    ``OMP_NUM_THREADS`` where set, else the CPUs this process may run on."""
    if getattr(device, "type", "cpu") == "cuda":
        return True
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].get_num_threads() >= 2)
    from posetrack_cli.runtime.cpu import cpu_info

    threads = os.environ.get("OMP_NUM_THREADS", "").strip()
    return (int(threads) if threads.isdigit() else cpu_info().cores) >= 2


class Pipeline:
    """Models and settings for running many videos; load once, call ``run`` per video.

    Args:
        estimator: the top-down pose estimator, or None when every video brings its poses.
        flow: optical flow estimator.
        config: method settings.
        detector: person detector, or None when every video brings a boxes file or poses.
        num_keypoints: K of given poses when there is no estimator (COCO's 17).

    Example:
        Real models come from :meth:`posetrack_cli.VideoTracker.load`; any objects with their methods
        do. Here a detector that finds one person standing still, a stand-in estimator that spreads
        17 keypoints over each box, and a source of three black frames:

        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> from posetrack_cli import Detections, Frame, Pipeline, PipelineConfig, Poses
        >>> from posetrack_cli.models.flow import make_flow
        >>> class StillPerson:
        ...     name = "still-person"
        ...     def detect(self, images):
        ...         return [Detections([[40, 20, 80, 150]], [0.9]) for _ in images]
        >>> class SpreadOverBox:
        ...     num_keypoints = 17
        ...     def estimate(self, image, detections):
        ...         x1, y1, x2, y2 = detections.boxes.T[:, :, None]  # (N, 1) each
        ...         k = np.arange(17)
        ...         keypoints = np.stack([x1 + (x2 - x1) * (k % 2), y1 + (y2 - y1) * k / 16], axis=-1)  # (N, 17, 2)
        ...         return Poses(keypoints, np.full((len(detections), 17), 0.9), detections.boxes, detections.scores)
        >>> frames = [Frame(i, i / 30, np.zeros((180, 120, 3), np.uint8)) for i in range(3)]
        >>> source = SimpleNamespace(path="still", frame_count=3, fps=30.0, frames=lambda: iter(frames),
        ...                          close=lambda: None)
        >>> pipeline = Pipeline(SpreadOverBox(), make_flow("dis-ultrafast"), PipelineConfig(overlap=False),
        ...                     detector=StillPerson())
        >>> for frame, tracked in pipeline.track(source):
        ...     print(frame.index, tracked.track_ids.tolist(), tracked.sources.tolist(), tracked.matches.tolist())
        0 [0] ['detector'] ['new']
        1 [0] ['detector'] ['live']
        2 [0] ['detector'] ['live']
    """

    def __init__(self, estimator: Estimator | None, flow: FlowEstimator, config: PipelineConfig = PipelineConfig(),
                 detector: Detector | None = None, *, num_keypoints: int = 17) -> None:
        self.estimator = estimator
        self.flow = flow
        if config.overlap is None:
            config = replace(config, overlap=default_overlap(getattr(estimator, "device", None)))
        self.config = config
        self.detector = detector
        self.num_keypoints = estimator.num_keypoints if estimator is not None else num_keypoints

    def new_state(self) -> LoopState:
        """The loop state of a video's start: ids from 0, nobody carried."""
        cfg = self.config
        # smoothing on the yielded keypoints; tracking uses the raw ones
        tracker = FrameTracker(cfg.tracker, flow=None, smoothing=cfg.output.smoothing)
        return LoopState(tracker, Poses.empty(self.num_keypoints), Confirmation(cfg.tracker.confirm_frames))

    def restore_state(self, state: dict[str, Any]) -> LoopState:
        """The loop state a :meth:`LoopState.state` described, for this pipeline's settings."""
        loop = self.new_state()
        loop.tracker.load_state(state["tracker"])
        c = state["carried"]
        loop.carried = Poses(c["keypoints"], c["keypoint_scores"], c["boxes"], c["scores"])
        loop.carried_age = np.asarray(c["ages"], np.int64)
        loop.frames, loop.poses = int(state["frames"]), int(state["poses"])
        loop.poses_carried = int(state["poses_carried"])
        loop.last_index = int(state["last_index"])
        loop.confirm.load_state(state["confirm"], _held_from_state)
        return loop

    def track(self, source: Source, *, boxes: BoxSource | None = None, poses: PoseSource | None = None,
              times: StageTimes | None = None, outcome: VideoOutcome | None = None, state: LoopState | None = None,
              prime: Frame | None = None, stop: Callable[[], str | None] | None = None,
              on_tracked: Callable[[int], None] | None = None) -> Generator[tuple[Frame, TrackedFrame], None, None]:
        """Each decoded frame of ``source`` with its tracked people, as the frames come: up to
        ``TrackerConfig.confirm_frames - 1`` frames behind, without the people whose tracks were not
        confirmed in time (:class:`~posetrack_cli.tracking.confirmation.Confirmation`).

        People come from the detector, from ``boxes`` (a boxes file, through the pose network) or
        from ``poses`` (given poses, tracked as they are). ``times`` collects the stage seconds;
        ``outcome`` receives why decoding stopped early, if it did (the frames before are all
        yielded), and, once the video is done, its re-identifications and stitching. With
        ``overlap``, detection and flow of frame k+1 (which need nothing from frame k's poses) run
        in a thread of their own while the pose network works on frame k, and decoding runs ahead
        in another. ``state`` is the loop's memory (a new one by default; a restored one resumes a
        video, with ``prime`` the frame before the source's first, which the flow starts from).
        ``stop`` is asked after each frame whether to end there (and why: Ctrl-C), as if decoding
        had stopped; the frames decoded ahead are not used. ``on_tracked(index)`` is called as each
        frame is tracked, before it waits for confirmation.
        """
        if poses is None and self.estimator is None:
            raise PosetrackError("no pose estimator and no given poses: one of them is needed")
        if poses is None and boxes is None and self.detector is None:
            raise PosetrackError("no detector and no boxes file: one of them is needed")
        cfg = self.config
        loop = state if state is not None else self.new_state()
        tracker = loop.tracker
        times = times if times is not None else StageTimes()
        outcome = outcome if outcome is not None else VideoOutcome()
        stopped = outcome.stopped
        decoded = prefetch(source.frames(), cfg.prefetch)
        ahead = self._detect_and_flow(decoded, None if poses is not None else boxes, times, stopped, prime)
        if cfg.overlap:
            ahead = prefetch(ahead, 2)  # detection and flow one frame ahead, in a thread of their own
        interrupted = False
        try:
            for frame, detected, motion in ahead:
                t0 = time.perf_counter()
                if poses is not None:
                    people = poses.get(frame.index)
                    sources = np.full(len(people), "given")
                    box_scores = people.scores
                    ages = np.zeros(len(people), np.int64)
                else:
                    people, sources, box_scores, ages = self._estimate(frame, detected, loop.carried,
                                                                       loop.carried_age, motion)
                # One pose per person: a duplicate (a second box on someone, a flow box that slid
                # half off them) is dropped before it can take an id; detections win over flow boxes.
                keep = tracker.distinct(people, preferred=sources != "flow")
                people, sources, box_scores, ages = people[keep], sources[keep], box_scores[keep], ages[keep]
                t1 = time.perf_counter()
                # 5-6. flow-OKS similarity against the queue of the last L_Q frames; greedy ids;
                #      then the poses left over against the lost tracks (own motion, colours).
                tracked = tracker.step(frame.index, frame.timestamp, frame.image, people, motion, sources)
                times.pose += t1 - t0
                times.track += time.perf_counter() - t1
                kept = tracker.last_kept  # weak poses no track took are not in ``tracked``
                loop.poses_carried += int((ages[kept] > 0).sum())
                loop.carried, loop.carried_age = self._carried(tracker, tracked, people[kept], box_scores[kept],
                                                               ages[kept], frame.timestamp)
                if on_tracked is not None:
                    on_tracked(frame.index)
                for (held, held_tracked), keep in loop.confirm.push((frame, tracked), tracked.track_ids):
                    yield held, held_tracked.subset(keep)
                reason = stop() if stop is not None else None
                if reason is not None:
                    stopped.append(reason)
                    interrupted = True  # the frames held back stay in the state, for a resumed run
                    break
            if not interrupted:  # the input ended (or stopped decoding): the frames held back are decided
                for (held, held_tracked), keep in loop.confirm.flush():
                    yield held, held_tracked.subset(keep)
            outcome.reidentified = tracker.reidentified
            if cfg.output.stitch:
                written = [t for t in tracker.tracklets() if t.track_id in loop.ids]
                outcome.id_map = stitch(written, cfg.tracker)
        finally:
            ahead.close()
            decoded.close()

    def run(self, source: Source, sink: FrameSink, *, boxes: BoxSource | None = None,
            poses: PoseSource | None = None, on_frame: Callable[[int, int], None] | None = None,
            state: LoopState | None = None, prime: Frame | None = None, checkpoints: Checkpoints | None = None,
            stop: Callable[[], str | None] | None = None,
            on_tracked: Callable[[int], None] | None = None) -> VideoResult:
        """Process every frame of ``source`` into ``sink`` (whose files the caller commits or aborts).

        As :meth:`track`, and with ``overlap`` writing and rendering run behind in a thread.
        ``on_frame(index, people)`` is called after each frame written (``on_tracked``: as
        :meth:`track`); ``checkpoints`` is asked after each
        frame whether to save the loop ``state`` (the sink has every frame so far by then).
        Decoding that stops early ends the video there with ``partial`` saying why; the frames
        before it are kept. Frames the source could not decode keep their places (``missing``).
        """
        times = StageTimes()
        outcome = VideoOutcome()
        start = time.perf_counter()
        loop = state if state is not None else self.new_state()
        background = _BackgroundAdds(sink, self.config.prefetch) if self.config.overlap else None
        out: FrameSink = background if background is not None else sink
        try:
            for frame, tracked in self.track(source, boxes=boxes, poses=poses, times=times, outcome=outcome,
                                             state=loop, prime=prime, stop=stop, on_tracked=on_tracked):
                t0 = time.perf_counter()
                out.add(frame, tracked)
                loop.frames += 1
                loop.poses += len(tracked)
                loop.last_index = frame.index
                if checkpoints is not None and checkpoints.due():
                    if background is not None:
                        background.drain()  # the sink holds every frame of the state
                    checkpoints.save(loop)
                times.write += time.perf_counter() - t0
                if on_frame is not None:
                    on_frame(frame.index, len(tracked))
            if background is not None:
                t1 = time.perf_counter()
                background.flush()
                times.write += time.perf_counter() - t1
        finally:
            if background is not None:
                background.stop()
        missing = tuple(source.missing)
        partial = outcome.stopped[0] if outcome.stopped else None
        if partial is None and missing:
            count = source.frame_count or loop.last_index + 1
            ranges = ", ".join(f"frame {a}" if a == b else f"frames {a}-{b}" for a, b in missing)
            partial = (f"decoded {loop.frames} of {count} frames: {ranges} could not be decoded (damaged or "
                       "truncated file); every frame keeps its number")
        if loop.frames == 0:
            raise PosetrackError(f"{source.path}: no frame could be decoded" + (f" ({partial})" if partial else ""))
        tracks = len({outcome.id_map.get(i, i) for i in loop.ids})
        return VideoResult(loop.frames, loop.poses, tracks, partial, time.perf_counter() - start, times,
                           outcome.reidentified, outcome.id_map, missing, loop.last_index)

    def _carried(self, tracker: FrameTracker, tracked: TrackedFrame, people: Poses, box_scores: np.ndarray,
                 ages: np.ndarray, now: float) -> tuple[Poses, np.ndarray]:
        """The people flow boxes follow into the next frame (step 2), each with the score of the box
        it was found in, and their ages ``(N,)`` (frames since the pose network saw them): everyone,
        except those flow boxes alone have carried (no detection, no given pose) for more than
        ``TrackerConfig.flow_life`` seconds. A flow box that follows a person nobody detects any
        more would otherwise go on seeding poses for ever."""
        alive = tracker.fresh(tracked.track_ids, now)
        return (Poses(people.keypoints[alive], people.keypoint_scores[alive], people.boxes[alive], box_scores[alive]),
                ages[alive])

    def poses_in_image(self, image: np.ndarray, boxes: Detections | None = None) -> Poses:
        """Steps 1 and 4 on one image alone (no flow, no tracking): the detector's boxes (or
        ``boxes``, given for this image, kept from the detection threshold up as a boxes file's
        are), top-down poses, scored and kept as in a video; ``(H, W, 3)`` uint8 BGR of any size."""
        frame = Frame(0, 0.0, image)
        [detected] = self._detect([frame], None if boxes is None else _Given(boxes))
        people, _, _, _ = self._estimate(frame, detected, Poses.empty(self.num_keypoints), np.zeros(0, np.int64),
                                         None)
        return people

    def _estimate(self, frame: Frame, detected: Detections, carried: Poses, ages: np.ndarray,
                  motion: FlowField | None) -> tuple[Poses, np.ndarray, np.ndarray, np.ndarray]:
        """Steps 2-4 for one frame: the people, where each box came from, each box's score, and
        each pose's age (0: the pose network's, else frames since it last ran on that person).

        A flow box carries the score of the box its person was found in, never the rescored
        person score, so scores cannot compound frame over frame while flow carries someone.
        """
        cfg = self.config
        assert self.estimator is not None
        size = (frame.image.shape[1], frame.image.shape[0])
        # 2. Last frame's joints moved by the flow: boxes where its people are now.
        propagated, origin, moved = (
            moved_poses(carried, motion, joint_threshold=cfg.joint_threshold, enlarge=cfg.flow_box_enlarge,
                        min_joints=cfg.min_joints, frame_size=size)
            if motion is not None else (Detections.empty(), np.zeros(0, np.int64), carried.keypoints))
        # 3. Detections and flow boxes unified by NMS.
        kept = unified_order(detected, propagated, cfg.nms_iou)
        unified = Detections(np.concatenate([detected.boxes, propagated.boxes])[kept],
                             np.concatenate([detected.scores, propagated.scores])[kept])
        from_flow = kept >= len(detected)
        # 4. Top-down poses in each box, scored, and kept where enough joints are confident; a person
        #    the network saw within the last pose_every - 1 frames keeps the joints flow moved.
        plan = (carry_plan(carried, ages, moved, kept, detected, propagated, origin, pose_every=cfg.pose_every,
                           joint_threshold=cfg.joint_threshold, iou_threshold=cfg.nms_iou)
                if motion is not None else np.full(len(kept), -1, np.int64))
        run = plan < 0
        if run.all():
            people = self.estimator.estimate(frame.image, unified)
        else:
            people = Poses.empty(self.num_keypoints) if not run.any() else self.estimator.estimate(frame.image,
                                                                                                  unified[run])
            people = Poses.concatenate([people, carried_poses(carried, moved, plan, unified)])
            people = people[np.argsort(np.concatenate([np.flatnonzero(run), np.flatnonzero(~run)]), kind="stable")]
        people = rescore(people, cfg.rescore_threshold)
        age = np.where(run, 0, ages[np.maximum(plan, 0)] + 1) if len(ages) else np.zeros(len(kept), np.int64)
        keep = enough_joints(people, cfg.joint_threshold, cfg.min_joints)
        sources = np.where(from_flow, "flow", "detector")
        return people[keep], sources[keep], unified.scores[keep], age[keep].astype(np.int64)

    def _detect_and_flow(self, decoded: Iterator[Frame], boxes: BoxSource | None, times: StageTimes,
                         stopped: list[str], prime: Frame | None = None,
                         ) -> Generator[tuple[Frame, Detections, FlowField | None], None, None]:
        """Frames with their detections (step 1; keyframes only when ``detect_every`` > 1) and the
        flow from the previous frame (``prime`` before the first): the work that needs nothing from
        earlier poses."""
        cfg = self.config
        detect = self.estimator is not None  # given poses need no boxes
        previous: Any = self.flow.prepare(prime.image) if prime is not None else None
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
            keyframes = [f for f in batch if detect and f.index % cfg.detect_every == 0]
            found = dict(zip((f.index for f in keyframes), self._detect(keyframes, boxes)))
            times.detect += time.perf_counter() - t0
            for frame in batch:
                t1 = time.perf_counter()
                current = self.flow.prepare(frame.image)
                motion = self.flow.compute(previous, current) if previous is not None else None
                previous = current
                times.flow += time.perf_counter() - t1
                yield frame, found.get(frame.index, Detections.empty()), motion
            if stopped:
                return

    def _detect(self, frames: list[Frame], boxes: BoxSource | None) -> list[Detections]:
        """1. Person boxes of ``frames`` scoring at least the detection threshold."""
        if not frames:
            return []
        if boxes is not None:
            found = [boxes.get(f.index) for f in frames]
        else:
            assert self.detector is not None
            found = self.detector.detect([f.image for f in frames])
        threshold = self.config.detection_threshold
        return [d[d.scores >= threshold] for d in found]


class _Given:
    """One image's given boxes as a box source (``poses_in_image``)."""

    def __init__(self, boxes: Detections) -> None:
        self._boxes = boxes

    def get(self, index: int) -> Detections:
        return self._boxes


class _BackgroundAdds:
    """Hands ``sink.add`` calls to a thread through a bounded queue, so encoding the overlay
    and writing rows happen behind the models. ``flush`` waits for the queue to drain, stops the
    thread and raises its error, if any; ``drain`` waits without stopping it."""

    def __init__(self, sink: FrameSink, depth: int) -> None:
        self._sink = sink
        self._queue: queue.Queue[tuple[Frame, TrackedFrame] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="posetrack-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    try:
                        self._sink.add(*item)
                    except BaseException as exc:  # re-raised in the pipeline thread by add(), drain() or flush()
                        self._error = exc
            finally:
                self._queue.task_done()

    def drain(self) -> None:
        """Wait until every frame handed over is in the sink; raise the thread's error, if any."""
        self._queue.join()
        if self._error is not None:
            raise self._error

    def add(self, frame: Frame, tracked: TrackedFrame) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((frame, tracked))

    def flush(self) -> None:
        self.stop()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
