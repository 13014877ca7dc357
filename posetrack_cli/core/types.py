"""The few core types: person boxes, poses, one frame's tracked poses, and a decoded frame.

Small frozen dataclasses holding numpy arrays in the original frame's pixel coordinates
(pixel centres at integer coordinates, as OpenCV). They check their shapes on construction and
convert to the documented dtypes, so a wrong shape fails where it is made, with a message naming
the expected shape, instead of deep inside the tracker. Indexing with a boolean mask or an index
array returns the same type.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, fields
from typing import Any, ClassVar, Sequence, TypeVar

import numpy as np

T = TypeVar("T", bound="_ArrayRecord")

# Where a tracked person's box came from: the detector, a flow box (Algorithm 1's joint
# propagation recovering a person the detector missed), or a pose the user gave (``posetrack track``).
SOURCES = ("detector", "flow", "given")
# How the tracker gave a pose its id: matched to a track seen within the queue, re-found from the
# memory of lost tracks, or a new track.
MATCHES = ("live", "lost", "new")
# The frame rate of frames that carry no timing (frame folders, poses without frames); PoseTrack's videos are ~30 fps.
DEFAULT_IMAGE_FPS = 30.0


def _as_array(name: str, value: Any, dtype: Any, shape: tuple[int | str, ...]) -> np.ndarray:
    """Convert ``value`` to ``dtype`` and check it has ``shape`` (ints fixed, strings free dims)."""
    arr = np.asarray(value, dtype=dtype)
    expected = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    if arr.ndim != len(shape):
        raise ValueError(f"{name} must have shape {expected}, got {tuple(arr.shape)}")
    for size, want in zip(arr.shape, shape):
        if isinstance(want, int) and size != want:
            raise ValueError(f"{name} must have shape {expected}, got {tuple(arr.shape)}")
    return arr


class _ArrayRecord:
    """Shared behaviour: length, mask/index selection, and per-field leading-dimension checks."""

    # Every subclass is a dataclass (declared, not assigned: the decorator sets it on the subclass).
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def __len__(self) -> int:
        return int(getattr(self, fields(self)[0].name).shape[0])

    def __getitem__(self: T, index: Any) -> T:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        index = np.asarray(index)
        if index.size == 0:
            index = index.astype(np.int64)  # [] selects nothing
        if index.dtype == bool and index.shape != (len(self),):
            raise IndexError(f"boolean mask must have shape ({len(self)},), got {index.shape}")
        values = {f.name: getattr(self, f.name)[index] for f in fields(self)}
        return type(self)(**values)

    def _check_lengths(self) -> None:
        n = len(self)
        for f in fields(self):
            arr = getattr(self, f.name)
            if arr.shape[0] != n:
                raise ValueError(
                    f"{f.name} has {arr.shape[0]} rows but {fields(self)[0].name} has {n}"
                )


@dataclass(frozen=True, eq=False)
class Detections(_ArrayRecord):
    """Person boxes of one frame.

    Attributes:
        boxes: ``(N, 4)`` float32, ``x1, y1, x2, y2`` in frame pixels.
        scores: ``(N,)`` float32 confidence in ``[0, 1]``.

    Example:
        Two boxes, of which a boolean mask keeps the confident one:

        >>> from posetrack_cli import Detections
        >>> found = Detections([[10, 20, 50, 120], [200, 30, 240, 130]], [0.9, 0.3])
        >>> len(found), str(found.boxes.dtype)
        (2, 'float32')
        >>> kept = found[found.scores >= 0.5]
        >>> len(kept), kept.boxes.tolist()
        (1, [[10.0, 20.0, 50.0, 120.0]])
        >>> Detections([[10, 20, 50]], [0.9])
        Traceback (most recent call last):
        ...
        ValueError: boxes must have shape (N, 4), got (1, 3)
    """

    boxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", _as_array("boxes", self.boxes, np.float32, ("N", 4)))
        object.__setattr__(self, "scores", _as_array("scores", self.scores, np.float32, ("N",)))
        self._check_lengths()

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))


@dataclass(frozen=True, eq=False)
class Poses(_ArrayRecord):
    """Estimated poses of the people in one frame.

    Attributes:
        keypoints: ``(N, K, 2)`` float32, ``x, y`` of each keypoint in frame pixels.
        keypoint_scores: ``(N, K)`` float32, the heatmap maximum of each keypoint.
        boxes: ``(N, 4)`` float32, the person box each pose was estimated in (xyxy).
        scores: ``(N,)`` float32, the person's score.

    Example:
        Two people with three keypoints each; a mask keeps those whose first keypoint is confident,
        an index array reorders them:

        >>> from posetrack_cli import Poses
        >>> people = Poses(keypoints=[[[30, 10], [25, 40], [35, 40]], [[130, 12], [125, 42], [135, 42]]],
        ...                keypoint_scores=[[0.9, 0.8, 0.7], [0.2, 0.9, 0.9]],
        ...                boxes=[[20, 0, 40, 50], [120, 2, 140, 52]], scores=[0.8, 0.6])
        >>> len(people), people.num_keypoints, people.keypoints.shape
        (2, 3, (2, 3, 2))
        >>> people[people.keypoint_scores[:, 0] >= 0.5].keypoints.tolist()
        [[[30.0, 10.0], [25.0, 40.0], [35.0, 40.0]]]
        >>> people[[1, 0]].boxes.tolist()
        [[120.0, 2.0, 140.0, 52.0], [20.0, 0.0, 40.0, 50.0]]
        >>> Poses.empty(17).keypoints.shape
        (0, 17, 2)
    """

    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        kps = _as_array("keypoints", self.keypoints, np.float32, ("N", "K", 2))
        object.__setattr__(self, "keypoints", kps)
        object.__setattr__(
            self,
            "keypoint_scores",
            _as_array("keypoint_scores", self.keypoint_scores, np.float32, ("N", kps.shape[1])),
        )
        object.__setattr__(self, "boxes", _as_array("boxes", self.boxes, np.float32, ("N", 4)))
        object.__setattr__(self, "scores", _as_array("scores", self.scores, np.float32, ("N",)))
        self._check_lengths()

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[1])

    @classmethod
    def empty(cls, num_keypoints: int) -> Poses:
        return cls(
            np.zeros((0, num_keypoints, 2), np.float32),
            np.zeros((0, num_keypoints), np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
        )

    @classmethod
    def from_keypoints(cls, keypoints: Any, keypoint_scores: Any, scores: Any = None) -> Poses:
        """Poses from keypoints alone (an estimator that gives no boxes): each box is the extent of
        the pose's scored keypoints (all of them if none is scored), each person's score the mean of
        its keypoint scores unless ``scores (N,)`` are given.

        Example:
            >>> p = Poses.from_keypoints([[[10, 20], [30, 60], [0, 0]]], [[0.9, 0.7, 0.0]])
            >>> p.boxes.tolist(), [round(float(s), 3) for s in p.scores]
            ([[10.0, 20.0, 30.0, 60.0]], [0.533])
        """
        kps = _as_array("keypoints", keypoints, np.float32, ("N", "K", 2))
        kscores = _as_array("keypoint_scores", keypoint_scores, np.float32, ("N", kps.shape[1]))
        boxes = np.zeros((len(kps), 4), np.float32)
        for i, (points, seen) in enumerate(zip(kps, kscores > 0)):
            if len(points):
                used = points[seen] if seen.any() else points
                boxes[i] = np.concatenate([used.min(0), used.max(0)])
        person = kscores.mean(1) if scores is None else scores
        return cls(kps, kscores, boxes, person)

    @classmethod
    def concatenate(cls, parts: Sequence[Poses]) -> Poses:
        """Stack the poses of several parts (all with the same K) into one."""
        if not parts:
            raise ValueError("concatenate needs at least one Poses")
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


@dataclass(frozen=True, eq=False)
class TrackedFrame:
    """One frame's poses with their track ids.

    Attributes:
        frame_index: 0-based index of the frame in its video or image sequence.
        timestamp: seconds from the start of the container (variable frame rate is real).
        poses: the ``N`` poses of the frame.
        track_ids: ``(N,)`` int64, the id of each pose's track; ids are small integers from 0.
        sources: ``(N,)`` str, where each person's box came from (one of ``SOURCES``: the
            detector, a flow box of Algorithm 1, or poses given by the user), or None if unknown.
        matches: ``(N,)`` str, how the tracker gave each id (one of ``MATCHES``), or None if unknown.

    Example:
        Two people in frame 3, one continuing track 4 and one starting track 7:

        >>> from posetrack_cli import Poses, TrackedFrame
        >>> poses = Poses.from_keypoints([[[10, 20], [30, 60]], [[110, 20], [130, 60]]], [[0.9, 0.8], [0.7, 0.9]])
        >>> tracked = TrackedFrame(frame_index=3, timestamp=0.1, poses=poses, track_ids=[4, 7], matches=["live", "new"])
        >>> len(tracked), tracked.track_ids.tolist(), tracked.matches.tolist()
        (2, [4, 7], ['live', 'new'])
        >>> TrackedFrame(3, 0.1, poses, track_ids=[4])
        Traceback (most recent call last):
        ...
        ValueError: track_ids must have shape (2,) to match the poses, got (1,)
    """

    frame_index: int
    timestamp: float
    poses: Poses
    track_ids: np.ndarray
    sources: np.ndarray | None = None
    matches: np.ndarray | None = None

    def __post_init__(self) -> None:
        given = np.asarray(self.track_ids)
        if given.dtype.kind not in "iu" and given.size and not (given.dtype.kind == "f"
                                                                 and np.array_equal(given, np.round(given))):
            raise ValueError(f"track_ids must be integers, got {given.tolist()}")
        ids = _as_array("track_ids", self.track_ids, np.int64, ("N",))
        if len(ids) != len(self.poses):
            raise ValueError(f"track_ids must have shape ({len(self.poses)},) to match the poses, got {ids.shape}")
        object.__setattr__(self, "track_ids", ids)
        for name, allowed in (("sources", SOURCES), ("matches", MATCHES)):
            value = getattr(self, name)
            if value is None:
                continue
            arr = _as_array(name, value, np.str_, (len(ids),))
            unknown = set(arr.tolist()) - set(allowed)
            if unknown:
                raise ValueError(f"{name} must be among {allowed}, got {sorted(unknown)}")
            object.__setattr__(self, name, arr)
        if self.frame_index < 0:
            raise ValueError(f"frame_index must be >= 0, got {self.frame_index}")

    def __len__(self) -> int:
        return len(self.poses)

    def subset(self, keep: np.ndarray) -> TrackedFrame:
        """The frame with only the poses ``keep`` ``(N,)`` bool selects (itself when all are kept)."""
        keep = np.asarray(keep, bool)
        if keep.all():
            return self
        return TrackedFrame(self.frame_index, self.timestamp, self.poses[keep], self.track_ids[keep],
                            None if self.sources is None else self.sources[keep],
                            None if self.matches is None else self.matches[keep])


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based position in the source.
        timestamp: seconds from the start of the container.
        image: ``(H, W, 3)`` uint8 BGR.
        file_name: the image's name for a frame folder, else None.

    Example:
        Sources (:func:`~posetrack_cli.io.video.open_source`) make them; a frame of your own is one line:

        >>> import numpy as np
        >>> from posetrack_cli import Frame
        >>> frame = Frame(index=0, timestamp=0.0, image=np.zeros((48, 64, 3), np.uint8), file_name="000000.jpg")
        >>> frame.image.shape, frame.file_name
        ((48, 64, 3), '000000.jpg')
    """

    index: int
    timestamp: float
    image: np.ndarray
    file_name: str | None = None
