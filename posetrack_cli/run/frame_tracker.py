"""Track ids for poses from any estimator, one frame at a time: steps 5 and 6 of Algorithm 1 with
the optical flow computed here, so a caller hands over only the frame and its poses.

The whole-video frame loop (:class:`~posetrack_cli.run.pipeline.Pipeline`) tracks through the same
class, giving it the flow it computed a frame ahead (:meth:`FrameTracker.step`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from posetrack_cli.core.flow_field import FlowEstimator, FlowField
from posetrack_cli.core.types import DEFAULT_IMAGE_FPS, Poses, TrackedFrame
from posetrack_cli.tracking.duplicates import distinct_poses
from posetrack_cli.tracking.smoothing import SmoothingConfig, make_smoother
from posetrack_cli.tracking.tracker import PoseTracker, TrackerConfig, Tracklet

# Sources of poses handed to update(): the caller's own estimator.
GIVEN = "given"


class FrameTracker:
    """Gives each frame's poses their track ids, owning the optical flow between frames.

    Feed frames in order with :meth:`update`; ids are small integers from 0 for this tracker
    (a new video wants a new tracker, or :meth:`reset`). Poses may come from any estimator
    (YOLO-pose, a top-down network, annotations): see :mod:`posetrack_cli.io.interop` for
    Ultralytics' and supervision's structures. Without frames (``frame=None``) the queue is compared
    where each person was last seen, or moved by their own motion (``TrackerConfig.own_motion``).

    Args:
        config: the tracker's settings (the paper's queue, similarity and thresholds; the lost
            memory beyond it).
        flow: the optical flow estimator, by name (``dis-medium``, ``dis-fast``, ``dis-ultrafast``,
            ``raft-small``, ``raft-large``) or an object with ``prepare(image)`` and ``compute(a, b)``;
            None: no flow.
        smoothing: One Euro smoothing of the returned keypoints (the tracker itself uses raw ones).
        fps: frame rate assumed for frames given without a timestamp.
        device: where RAFT runs (``auto``, ``cpu``, ``cuda``); DIS runs on the CPU.
        allow_download: fetch RAFT's weights when missing.

    Example:
        Two people walking right, 4 px a frame, on grey frames (flow sees no motion there; the
        tracker's own-motion prediction and OKS keep the ids):

        >>> import numpy as np
        >>> from posetrack_cli import FrameTracker, Poses
        >>> tracker = FrameTracker(flow="dis-ultrafast")
        >>> frame = np.full((240, 480, 3), 127, np.uint8)
        >>> body = np.array([[40.0 * (k % 2), 10.0 * k] for k in range(17)])  # (17, 2): 40 x 160 px
        >>> def two_people(x: float) -> Poses:
        ...     keypoints = np.stack([body + [x, 40], body + [x + 200, 40]])  # (2, 17, 2)
        ...     return Poses.from_keypoints(keypoints, np.full((2, 17), 0.9))
        >>> [tracker.update(frame, two_people(20 + 4 * t)).track_ids.tolist() for t in range(3)]
        [[0, 1], [0, 1], [0, 1]]
    """

    def __init__(self, config: TrackerConfig | None = None, *, flow: str | FlowEstimator | None = "dis-medium",
                 smoothing: SmoothingConfig | None = None, fps: float = DEFAULT_IMAGE_FPS, device: str = "auto",
                 allow_download: bool = True) -> None:
        if isinstance(flow, str):
            from posetrack_cli.models.flow import make_flow

            flow = make_flow(flow, device=device, allow_download=allow_download)
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.config = config if config is not None else TrackerConfig()
        self.flow = flow
        self.fps = fps
        self._smoothing = smoothing if smoothing is not None else SmoothingConfig()
        self.reset()

    def reset(self) -> None:
        """Forget every track: ids start from 0 again (a new video)."""
        self._tracker = PoseTracker(self.config)
        self._smoother = make_smoother(self._smoothing)
        self._previous: Any = None  # the flow estimator's prepared last frame
        self._previous_shape: tuple[int, ...] | None = None
        self._index = -1
        self.suppressed = 0  # duplicate poses dropped by update()
        self.last_kept = np.zeros(0, bool)  # the poses of the last step() in its result

    def state(self) -> dict[str, Any]:
        """Where this tracker is (its tracks, queue, lost memory, smoothing filters, frame count), as
        a state tree (:mod:`posetrack_cli.core.state`); :meth:`load_state` on a tracker of the same
        settings continues exactly from there, once it is given the last frame again (for the flow).
        """
        return {"tracker": self._tracker.state(), "index": self._index, "suppressed": self.suppressed,
                "smoother": None if self._smoother is None else self._smoother.state()}

    def load_state(self, state: dict[str, Any], previous: np.ndarray | None = None) -> None:
        """Continue from a :meth:`state`; ``previous`` is the last frame it had seen (the flow to the
        next frame starts from it)."""
        self.reset()
        self._tracker.load_state(state["tracker"])
        self._index, self.suppressed = int(state["index"]), int(state["suppressed"])
        if self._smoother is not None and state["smoother"] is not None:
            self._smoother.load_state(state["smoother"])
        if previous is not None and self.flow is not None:
            self._previous, self._previous_shape = self.flow.prepare(previous), previous.shape

    @property
    def reidentified(self) -> int:
        """People given their id back from the memory of lost tracks so far."""
        return self._tracker.reidentified

    def fresh(self, track_ids: np.ndarray, now: float) -> np.ndarray:
        """Mask ``(T,)`` of the tracks a strong pose had within ``TrackerConfig.flow_life`` of ``now``."""
        return self._tracker.fresh(track_ids, now)

    def tracklets(self) -> list[Tracklet]:
        """A summary of every track so far, for offline stitching (:func:`posetrack_cli.tracking.stitching.stitch`)."""
        return self._tracker.tracklets()

    def update(self, frame: np.ndarray | None, poses: Poses, *, timestamp: float | None = None) -> TrackedFrame:
        """The tracked poses of the next frame.

        Args:
            frame: ``(H, W, 3)`` uint8 BGR image the poses were found in (for the flow and the
                torso colours), or None without frames.
            poses: the frame's ``N`` poses in its pixel coordinates.
            timestamp: the frame's time in seconds; None: the frame's index at ``fps``.

        Returns:
            A :class:`~posetrack_cli.core.types.TrackedFrame` of the poses that are not a duplicate
            of a better one (``suppressed`` counts the others), with their ``track_ids``,
            ``sources`` ``given`` and ``matches`` saying how each id was given.
        """
        index = self._index + 1
        motion: FlowField | None = None
        if frame is not None and self.flow is not None:
            current = self.flow.prepare(frame)
            if self._previous is not None and self._previous_shape == frame.shape:
                motion = self.flow.compute(self._previous, current)
            self._previous, self._previous_shape = current, frame.shape
        when = float(timestamp) if timestamp is not None else index / self.fps
        keep = self.distinct(poses)
        return self.step(index, when, frame, poses[keep], motion, np.full(int(keep.sum()), GIVEN))

    def distinct(self, poses: Poses, preferred: np.ndarray | None = None) -> np.ndarray:
        """Mask ``(N,)`` of the poses that are not a duplicate of a better one (``TrackerConfig.duplicate_oks``);
        the others are counted in ``suppressed``."""
        keep = distinct_poses(poses, self._tracker.sigmas, max_oks=self.config.duplicate_oks,
                              joint_threshold=self.config.joint_threshold, preferred=preferred)
        self.suppressed += int(len(poses) - keep.sum())
        return keep

    def step(self, index: int, timestamp: float, image: np.ndarray | None, poses: Poses, motion: FlowField | None,
             sources: np.ndarray | None) -> TrackedFrame:
        """Track one frame whose flow from the previous frame is known already (``motion``; None on
        the first frame): what :meth:`update` and the whole-video frame loop both do. Weak poses
        (``TrackerConfig.weak_score``, and those ``sources`` says a flow box found) that no track
        takes are left out of the result; ``last_kept`` ``(N,)`` says which poses are in it."""
        weak = None
        if self.config.staged:
            weak = poses.scores < self.config.weak_score
            if sources is not None:
                weak |= sources == "flow"
        ids = self._tracker.update(poses, motion, timestamp=timestamp, image=image, weak=weak)
        kept = self.last_kept = ids >= 0  # a weak pose no track took is dropped
        tracked = TrackedFrame(index, timestamp, poses[kept], ids[kept],
                               sources=None if sources is None else sources[kept],
                               matches=self._tracker.last_matches[kept])
        self._index = index
        return self._smoother.apply(tracked) if self._smoother is not None else tracked
