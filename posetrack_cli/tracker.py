"""The flow-based pose tracker of the paper (section 3, Algorithm 1).

For each frame the tracker compares the new poses with the tracked poses of the last ``L_Q``
frames (a fixed-length queue), greedily matches them by similarity, and gives unmatched poses new
ids. Queued poses are carried forward frame by frame by the optical flow, so a person unseen for a
few frames is still compared where the flow says they went (flow-based OKS, the paper's default).
Box IoU and OKS without flow are the paper's ablations and are selectable.

Track life is two integers per track (frame last matched, frames matched); ids are small integers
from 0 owned by one tracker instance, so every video starts from 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from posetrack_cli.flow import FlowField
from posetrack_cli.keypoints import COCO_SIGMAS
from posetrack_cli.similarity import box_areas, greedy_match, iou_matrix, oks_matrix
from posetrack_cli.paper import JOINT_THRESHOLD
from posetrack_cli.types import Poses

SIMILARITIES = ("flow-oks", "oks", "iou")


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking settings; where the paper gives a value it is used.

    Attributes:
        similarity: ``flow-oks`` (paper default), ``oks`` (no flow) or ``iou`` (boxes, no flow).
        queue_length: ``L_Q``, frames of tracked poses compared against.
        min_similarity: below this a new pose starts a new track rather than continue one.
        joint_threshold: joints scoring below this take no part in OKS (paper: 0.4).
    """

    # Paper's default similarity; the others are its ablations.
    similarity: str = "flow-oks"
    # Not given by the paper. 5 frames bridge a detector miss or a short occlusion (1/6 s at
    # 30 fps) while flow carried further drifts onto whatever passes in front.
    queue_length: int = 5
    # Not given by the paper. Flow-OKS of the same person in consecutive frames is typically
    # above 0.7 and between different people below 0.1; 0.3 separates the two with margin for IoU too.
    min_similarity: float = 0.3
    # Paper: joints below 0.4 are dropped.
    joint_threshold: float = JOINT_THRESHOLD

    def __post_init__(self) -> None:
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {self.similarity!r}")
        if self.queue_length < 1:
            raise ValueError(f"queue_length must be >= 1, got {self.queue_length}")
        if not 0.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in [0, 1], got {self.min_similarity}")
        if not 0.0 <= self.joint_threshold <= 1.0:
            raise ValueError(f"joint_threshold must be in [0, 1], got {self.joint_threshold}")


@dataclass
class TrackState:
    """Life of one track: the frame it was last matched in and how many frames it was matched."""

    last_frame: int
    hits: int = 1


@dataclass
class PoseTracker:
    """Assigns track ids to each frame's poses (paper Algorithm 1, lines on matching).

    Call ``update`` once per frame in order, with the flow from the previous frame to this one.
    The queue is held as flat arrays of the ``M`` poses of the last ``L_Q`` frames, so each frame
    costs one flow sampling and one similarity matrix however long the queue is.
    """

    config: TrackerConfig = field(default_factory=TrackerConfig)
    sigmas: np.ndarray = field(default_factory=lambda: COCO_SIGMAS.copy())
    tracks: dict[int, TrackState] = field(default_factory=dict, init=False)
    frame: int = field(default=-1, init=False)
    _next_id: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._clear_queue()

    def _clear_queue(self) -> None:
        k = len(self.sigmas)
        self._keypoints = np.zeros((0, k, 2), np.float32)  # (M, K, 2), carried to the latest frame
        self._valid = np.zeros((0, k), bool)  # (M, K) joints confident enough to compare
        self._boxes = np.zeros((0, 4), np.float32)  # (M, 4) as observed (IoU ignores flow)
        self._ids = np.zeros(0, np.int64)  # (M,) track id of each queued pose
        self._frames = np.zeros(0, np.int64)  # (M,) frame each queued pose was seen in

    def reset(self) -> None:
        """Forget all tracks; ids start from 0 again (a new video)."""
        self._clear_queue()
        self.tracks.clear()
        self._next_id = 0
        self.frame = -1

    def update(self, poses: Poses, flow: FlowField | None = None) -> np.ndarray:
        """Track ids ``(N,)`` int64 for this frame's poses.

        Args:
            poses: the frame's ``N`` poses.
            flow: flow from the previous frame to this one; None when there is none (first frame,
                or a caller without frames), in which case queued poses stay where they were.
        """
        cfg = self.config
        self.frame += 1
        # 1. Carry queued poses into this frame (flow-OKS only; OKS and IoU compare as they were).
        if flow is not None and cfg.similarity == "flow-oks" and len(self._ids):
            self._keypoints = flow.propagate(self._keypoints)

        # 2. Similarity of each live track (its best queued pose) to each new pose.
        valid = poses.keypoint_scores >= cfg.joint_threshold
        track_ids, similarity = self._track_similarity(poses, valid)

        # 3. Greedy assignment, highest similarity first.
        ids = np.full(len(poses), -1, dtype=np.int64)
        for row, col in greedy_match(similarity, cfg.min_similarity):
            ids[col] = track_ids[row]

        # 4. Unmatched poses start new tracks.
        for col in np.flatnonzero(ids < 0):
            ids[col] = self._next_id
            self._next_id += 1
        for tid in ids.tolist():
            state = self.tracks.get(tid)
            if state is None:
                self.tracks[tid] = TrackState(self.frame)
            else:
                state.last_frame, state.hits = self.frame, state.hits + 1

        # 5. This frame joins the queue; frames older than L_Q drop out.
        keep = self._frames > self.frame - cfg.queue_length
        self._keypoints = np.concatenate([self._keypoints[keep], poses.keypoints])
        self._valid = np.concatenate([self._valid[keep], valid])
        self._boxes = np.concatenate([self._boxes[keep], poses.boxes])
        self._ids = np.concatenate([self._ids[keep], ids])
        self._frames = np.concatenate([self._frames[keep], np.full(len(poses), self.frame)])
        return ids

    def _track_similarity(self, poses: Poses, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Live track ids ``(T,)`` and their similarity ``(T, N)`` to the new poses.

        A track in several queued frames is compared through whichever of its poses fits best.
        """
        if not len(self._ids) or not len(poses):
            return np.zeros(0, np.int64), np.zeros((0, len(poses)), np.float32)
        if self.config.similarity == "iou":
            sim = iou_matrix(self._boxes, poses.boxes)
        else:
            sim = oks_matrix(self._keypoints, self._valid, poses.keypoints, valid, box_areas(poses.boxes), self.sigmas)
        order = np.argsort(self._ids, kind="stable")
        sorted_ids = self._ids[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        return sorted_ids[starts], np.maximum.reduceat(sim[order], starts, axis=0)  # (T,), (T, N)
