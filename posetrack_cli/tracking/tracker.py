"""The flow-based pose tracker of the paper (section 3, Algorithm 1), with a memory of lost tracks.

For each frame the tracker compares the new poses with the tracked poses of the last ``L_Q``
frames (a fixed-length queue), greedily matches them by similarity, and gives unmatched poses new
ids. Queued poses are carried forward frame by frame by the optical flow, so a person unseen for a
few frames is still compared where the flow says they went (flow-based OKS, the paper's default).
Box IoU and OKS without flow are the paper's ablations and are selectable by name; the comparison
is a :class:`~posetrack_cli.tracking.similarity.Similarity`, and a caller may pass their own.

Beyond the paper, in the spirit of ByteTrack's cascade:

- each track is also predicted from its own recent velocity, and compared through whichever of
  flow and own motion fits the new pose better (flow sees nothing on textureless clothing or
  background, or when frames are far apart);
- a track unmatched for longer than the queue is *lost*, and remembered for ``max_lost`` seconds.
  Flow cannot follow a hidden person, so a lost track is predicted from its own damped velocity,
  with an uncertainty that grows with the time lost and widens the OKS scale. Poses left over by
  the queue are compared with the left-over tracks, and a pose gets a lost track's id only when
  the match is clear: the body size fits, the torso colours do not contradict it (when the
  appearance cue is on), and no other track or pose fits nearly as well.

Track life is a couple of integers per track (frame last matched, frames matched) plus what predicts
it; ids are small integers from 0 owned by one tracker instance, so every video starts from 0.
``max_lost=0`` and ``own_motion=False`` give the paper's tracker exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from posetrack_cli.core.flow_field import FlowField
from posetrack_cli.core.keypoints import COCO_SIGMAS
from posetrack_cli.core.paper import JOINT_THRESHOLD
from posetrack_cli.core.types import DEFAULT_IMAGE_FPS, Poses
from posetrack_cli.tracking.appearance import HISTOGRAM_BINS, histogram_distance, torso_histograms
from posetrack_cli.tracking.motion import (
    damped_distance,
    displacements,
    initial_velocity_variance,
    keep_in_frame,
    prediction_spread,
    uncertainty,
    velocity_update,
)
from posetrack_cli.tracking.similarity import (
    SIMILARITY_BY_NAME,
    Similarity,
    box_areas,
    oks_matrix,
    similarity_named,
    size_ratio,
)

# The names TrackerConfig.similarity accepts (``--similarity``'s choices), the paper's default first.
SIMILARITIES = tuple(SIMILARITY_BY_NAME)

# The paper's flow boxes live for ever; an hour of video is for ever to a track, and stays a finite
# number for the settings written in a run's JSON.
PAPER_FLOW_LIFE = 3600.0
# A lost track may take a pose as far from its prediction as this many times the prediction's
# typical error (motion.uncertainty): people stop, turn and speed up behind whatever hid them.
GATE_SPREAD = 3.0
# A lost track's id goes to a pose only if its score beats every rival's (another track for that
# pose, another pose for that track) by this much; otherwise the pose starts a new track. Giving a
# new id costs one id switch; giving the wrong old id merges two people.
TIE_MARGIN = 0.1
# A reappearing pose whose box is more than 1.5x taller or shorter than the lost track's is someone
# else (walking toward the camera for a second changes height far less). Not asked of a track seen
# in the frame before: from one frame to the next a body's size changes by bending, sitting or
# falling, and by joints going out of sight, not by a change of person.
MAX_SIZE_RATIO = 1.5
# Bhattacharyya distance between torso histograms above which a lost track is not re-identified.
# The same clothes under the same light measure below 0.3, different clothes above 0.6.
APPEARANCE_VETO = 0.5
# How much a colour mismatch lowers a lost track's score when ranking candidates (ties only: at the
# largest admissible distance it costs 1.25 x TIE_MARGIN).
APPEARANCE_WEIGHT = 0.25
# Weight of the newest torso histogram in a track's running average.
APPEARANCE_UPDATE = 0.2
# A matched track's colours are refreshed every 5th frame (staggered by id): clothes do not change
# faster, and it keeps the cue's cost to about a fifth. Poses left over by the live stage, tracks
# without colours yet and re-identifications on probation are measured every frame.
APPEARANCE_EVERY = 5
# The velocity after a track's first matches is kept for stitching (how it entered).
START_FRAMES = 5
# A person often comes out from behind something torso last. For this long after a re-identification
# the first torso histogram seen is checked against the colours before the loss; if it vetoes, the
# pose is split off as a new track and the lost one is remembered again.
PROBATION_SECONDS = 1.0


def greedy_match(similarity: np.ndarray, min_similarity: float) -> list[tuple[int, int]]:
    """Pairs ``(row, col)`` taken highest similarity first, each row and column at most once.

    Greedy rather than Hungarian, as the paper: a confident match is never given up to raise the
    total, which is what keeps ids stable when one person is briefly ambiguous. Pairs below
    ``min_similarity`` are not matched.

    Args:
        similarity: ``(M, N)``.

    Example:
        Greedy keeps the best pair even where swapping would raise the total.

        >>> import numpy as np
        >>> sim = np.array([[0.9, 0.8], [0.85, 0.4]])
        >>> greedy_match(sim, 0.3)
        [(0, 0), (1, 1)]
        >>> greedy_match(sim, 0.5)
        [(0, 0)]
    """
    sim = np.array(similarity, dtype=np.float64, copy=True)
    pairs = []
    while sim.size:
        flat = int(np.argmax(sim))
        row, col = divmod(flat, sim.shape[1])
        if not sim[row, col] >= min_similarity:  # also stops on NaN
            break
        pairs.append((row, col))
        sim[row, :] = -np.inf
        sim[:, col] = -np.inf
    return pairs


def clear_winners(score: np.ndarray, admissible: np.ndarray, margin: float) -> list[tuple[int, int]]:
    """Greedy pairs ``(row, col)`` of ``score (M, N)`` among ``admissible`` ones, each kept only if
    it beats every other admissible pair in its row and its column by ``margin``.

    A pose with two tracks nearly as good (or a track with two poses) is matched to neither: the
    caller gives it a new id rather than guess.

    Example:
        Pose 0 fits tracks 0 and 1 nearly as well, so it gets neither; pose 1 fits only track 1.

        >>> import numpy as np
        >>> score = np.array([[0.9, 0.2], [0.85, 0.3]])
        >>> clear_winners(score, score >= 0.3, 0.1)
        [(1, 1)]
        >>> clear_winners(score, score >= 0.3, 0.01)
        [(0, 0), (1, 1)]
    """
    s = np.where(admissible, score, -np.inf).astype(np.float64)
    pairs = []
    while s.size and np.isfinite(s.max()):
        row, col = divmod(int(np.argmax(s)), s.shape[1])
        best = s[row, col]
        rivals = np.concatenate([np.delete(s[row], col), np.delete(s[:, col], row)])
        if rivals.size and rivals.max() > best - margin:
            if np.delete(s[:, col], row).max(initial=-np.inf) > best - margin:
                s[:, col] = -np.inf  # the pose could be either track
            if np.delete(s[row], col).max(initial=-np.inf) > best - margin:
                s[row, :] = -np.inf  # the track could be either pose
            continue
        pairs.append((row, col))
        s[row, :] = -np.inf
        s[:, col] = -np.inf
    return pairs


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking settings; where the paper gives a value it is used.

    Attributes:
        similarity: ``flow-oks`` (paper default), ``oks`` (no flow) or ``iou`` (boxes, no flow): the
            name of a built-in :class:`~posetrack_cli.tracking.similarity.Similarity`.
        queue_length: ``L_Q``, frames of tracked poses compared against.
        min_similarity: below this a new pose starts a new track rather than continue one.
        joint_threshold: joints scoring below this take no part in OKS (paper: 0.4).
        max_lost: seconds of video a track unmatched for more than ``L_Q`` frames is remembered
            and can be re-identified; 0 turns the lost memory off (the paper).
        own_motion: also predict each track from its own velocity, not only by flow.
        appearance: use torso colour histograms to break ties and veto re-identifications
            (needs the frames).
        duplicate_oks: a frame's pose whose OKS with a better one (a detection's over a flow
            box's, then the higher score) is above this is the same person, and is dropped before
            matching (:func:`~posetrack_cli.tracking.duplicates.distinct_poses`); 1 keeps them all
            (the paper).
        weak_score: poses scoring below this (and every pose a flow box found) are *weak*: matched
            after the others, to the live tracks they left, and never starting a track, so a weak
            pose no track wants is dropped (ByteTrack's second association); 0 with flow boxes
            strong too (``staged=False``) is the paper's single greedy pass.
        staged: match in two stages (strong poses, then weak ones); off: every pose at once.
        flow_life: seconds a track lives on weak poses alone (a person flow boxes follow and no
            detection has): after that it takes no weak pose until a strong one has it again, and
            flow boxes stop following it.
        joint_noise: pixels of error every joint position has whatever the person's size, added
            to OKS's tolerance (a share of the box) when tracks are compared with new poses; 0 is
            the paper's OKS.
        confirm_frames: frames a new track needs a pose in before it is *confirmed*: a tentative
            track is not remembered once it leaves the queue, and the frame loop writes a track
            only once confirmed, from its first frame
            (:class:`~posetrack_cli.tracking.confirmation.Confirmation`); 1 confirms every track
            at once (the paper).

    :meth:`paper` gives the paper's tracker: every step this project adds turned off.

    Example:
        The paper's tracker without flow (its OKS ablation) and without the memory of lost tracks:

        >>> from posetrack_cli import FrameTracker, TrackerConfig
        >>> config = TrackerConfig(similarity="oks", max_lost=0.0)
        >>> config.queue_length, config.joint_threshold
        (5, 0.4)
        >>> tracker = FrameTracker(config, flow=None)
        >>> TrackerConfig(queue_length=0)
        Traceback (most recent call last):
        ...
        ValueError: queue_length must be >= 1, got 0
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
    # Not in the paper. 1.5 s re-identifies people hidden 8 x L_Q frames at 30 fps (1.33 s) by a
    # pillar or a passer-by; much longer and the predicted position is too uncertain to tell people apart.
    max_lost: float = 1.5
    # Not in the paper; flow is blind on flat clothing and backgrounds and at low frame rates.
    own_motion: bool = True
    # Not in the paper; see benchmarks/README.md for what it changes.
    appearance: bool = True
    # Not in the paper's tracking; its authors' code suppresses duplicates for COCO at 0.9. On real
    # motion two people in one frame measured up to 0.74 with each other, and a jittered second
    # pose of one person at least 0.92 with the first (benchmarks/tracking.py): 0.9 keeps both apart.
    duplicate_oks: float = 0.9
    # Not in the paper. Off: the detection threshold already keeps the boxes worth a person, and a
    # detection's rescored score (box x joints) runs lower than its box's; flow boxes are weak whatever.
    weak_score: float = 0.0
    # Not in the paper, which matches every pose in one greedy pass.
    staged: bool = True
    # Not in the paper, whose flow boxes live for ever: a box that slid off the person it followed
    # still finds a pose, and that pose seeds the next box. 1 s outlasts the detector's misses and
    # the keyframe gaps of --detect-every (benchmarks/tracking.py).
    flow_life: float = 1.0
    # Not in the paper. A joint is known to a few pixels (a heatmap's stride, a labeller's click)
    # whatever the person's size, while OKS's tolerance shrinks with the box: for a person a few
    # dozen pixels tall every step would look like a stranger's (benchmarks/tracking.py).
    joint_noise: float = 6.0
    # Not in the paper. SORT and DeepSORT confirm a track after 3 matches. 4 (2/15 s at 30 fps)
    # outlasts false positives that flicker for up to 3 frames, and cost no real person a frame on
    # the development set (benchmarks/tracking.py). Held back, not lost: a confirmed track is
    # written from its first frame.
    confirm_frames: int = 4

    @classmethod
    def paper(cls, similarity: str = "flow-oks") -> TrackerConfig:
        """The paper's tracker (its Algorithm 1, or with ``similarity`` one of its ablations): one
        greedy pass over every pose by plain OKS against the last ``L_Q`` frames, flow boxes that
        live for ever (an hour), and no duplicate suppression, lost-track memory, own motion or
        colours, and every track written at once. On the command line: ``--duplicate-oks 1
        --no-staged --flow-life 3600 --max-lost 0 --no-own-motion --no-appearance --joint-noise 0
        --confirm-frames 1``.

        >>> TrackerConfig.paper().staged, TrackerConfig.paper("oks").similarity
        (False, 'oks')
        """
        return cls(similarity=similarity, max_lost=0.0, own_motion=False, appearance=False, duplicate_oks=1.0,
                   staged=False, flow_life=PAPER_FLOW_LIFE, joint_noise=0.0, confirm_frames=1)

    def __post_init__(self) -> None:
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {self.similarity!r}")
        if self.queue_length < 1:
            raise ValueError(f"queue_length must be >= 1, got {self.queue_length}")
        if not 0.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in [0, 1], got {self.min_similarity}")
        if not 0.0 <= self.joint_threshold <= 1.0:
            raise ValueError(f"joint_threshold must be in [0, 1], got {self.joint_threshold}")
        if not (math.isfinite(self.max_lost) and self.max_lost >= 0):
            raise ValueError(f"max_lost must be >= 0 seconds, got {self.max_lost}")
        if not (math.isfinite(self.duplicate_oks) and 0.0 <= self.duplicate_oks <= 1.0):
            raise ValueError(f"duplicate_oks must be in [0, 1], got {self.duplicate_oks}")
        if not (math.isfinite(self.weak_score) and 0.0 <= self.weak_score <= 1.0):
            raise ValueError(f"weak_score must be in [0, 1], got {self.weak_score}")
        if not (math.isfinite(self.flow_life) and self.flow_life >= 0):
            raise ValueError(f"flow_life must be >= 0 seconds, got {self.flow_life}")
        if not (math.isfinite(self.joint_noise) and self.joint_noise >= 0):
            raise ValueError(f"joint_noise must be >= 0 pixels, got {self.joint_noise}")
        if self.confirm_frames < 1:
            raise ValueError(f"confirm_frames must be >= 1, got {self.confirm_frames}")


@dataclass(frozen=True, eq=False)
class Tracklet:
    """Summary of one track's two ends, for stitching tracklets after the video.

    Attributes:
        track_id: the id the tracker gave.
        first_frame, last_frame: frame indices it was first and last matched in.
        first_time, last_time: their timestamps in seconds.
        first_keypoints, first_valid: ``(K, 2)``, ``(K,)`` its first pose (raw) and confident joints.
        last_keypoints, last_valid: ``(K, 2)``, ``(K,)`` its last pose.
        first_box, last_box: ``(4,)`` xyxy boxes of those poses.
        start_velocity, end_velocity: ``(2,)`` px/s, how it moved after it began and before it ended.
        appearance: ``(64,)`` torso colour histogram (running average), or None if unknown.
        hits: frames it was matched in.
    """

    track_id: int
    first_frame: int
    last_frame: int
    first_time: float
    last_time: float
    first_keypoints: np.ndarray
    first_valid: np.ndarray
    last_keypoints: np.ndarray
    last_valid: np.ndarray
    first_box: np.ndarray
    last_box: np.ndarray
    start_velocity: np.ndarray
    end_velocity: np.ndarray
    appearance: np.ndarray | None
    hits: int


@dataclass
class Track:
    """One track: its life (frame last matched, frames matched) and what predicts it while unseen.

    Attributes:
        last_frame, last_time: frame index and timestamp (s) it was last matched in.
        keypoints, valid, box: its last matched pose ``(K, 2)``, ``(K,)``, ``(4,)``, raw; joints not
            seen in it keep their last seen position moved with the body (``valid`` says which
            joints were ever seen).
        hits: frames it was matched in.
        velocity: ``(2,)`` px/s of the pose as a whole, a Kalman filter's estimate.
        velocity_var: its variance (px^2/s^2, either axis): how sure the velocity is.
        last_strong: timestamp (s) a strong pose (not a weak one: a flow box's) last had it.
        appearance: ``(64,)`` running average of its torso histogram, or None if never seen.
        first_frame, first_time, first_keypoints, first_valid, first_box, start_velocity: how it
            began (kept for stitching).
        before_reid, reid_frame, reid_time: after a re-identification, the track as it was when
            lost and when it was re-found, until the torso colours confirm it (appearance cue).
        reid_keypoints, reid_valid, reid_box: the pose it was re-found with: the first pose of the
            track split off if the colours turn the re-identification down.
    """

    last_frame: int
    last_time: float
    keypoints: np.ndarray
    valid: np.ndarray
    box: np.ndarray
    hits: int = 1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    velocity_var: float = 0.0
    last_strong: float = 0.0
    appearance: np.ndarray | None = None
    first_frame: int = 0
    first_time: float = 0.0
    first_keypoints: np.ndarray | None = None
    first_valid: np.ndarray | None = None
    first_box: np.ndarray | None = None
    start_velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    # The track as it was when lost, while a re-identification waits for its colours to confirm it.
    before_reid: Track | None = None
    reid_frame: int = 0
    reid_time: float = 0.0
    reid_keypoints: np.ndarray | None = None
    reid_valid: np.ndarray | None = None
    reid_box: np.ndarray | None = None

    def state(self) -> dict[str, Any]:
        """Every field, as a state tree (:mod:`posetrack_cli.core.state`)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.state() if isinstance(value, Track) else value
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Track:
        """The track :meth:`state` described."""
        values = dict(state)
        if values.get("before_reid") is not None:
            values["before_reid"] = cls.from_state(values["before_reid"])
        return cls(**values)


@dataclass
class PoseTracker:
    """Assigns track ids to each frame's poses (paper Algorithm 1, lines on matching).

    Call ``update`` once per frame in order, with the flow from the previous frame to this one, the
    frame's timestamp and image. The queue is held as flat arrays of the ``M`` poses of the last
    ``L_Q`` frames, so each frame costs one flow sampling and one similarity matrix however long
    the queue is; lost tracks are a short list, pruned after ``max_lost`` seconds.

    After each ``update``: ``last_matches`` ``(N,)`` says how each pose got its id (``live``,
    ``lost`` or ``new``, as ``types.MATCHES``); ``reidentified`` counts poses re-found from the lost
    memory in this video; ``tracklets()`` summarises every track for offline stitching.

    Attributes:
        config: the settings; ``config.similarity`` names the similarity unless ``similarity`` is given.
        sigmas: ``(K,)`` OKS falloff per joint (COCO's 17 by default).
        similarity: a :class:`~posetrack_cli.tracking.similarity.Similarity` of the caller's own, used
            instead of the one ``config.similarity`` names (the lost memory compares by OKS either way).

    Example:
        One person walks right; another appears in the second frame and gets the next id.

        >>> import numpy as np
        >>> from posetrack_cli.core.types import Poses
        >>> def frame(*xs):  # people whose 17 joints run down the middle of a 20 x 80 px box from x
        ...     kps = np.array([[[x + 10, y] for y in np.linspace(0, 80, 17)] for x in xs], np.float32)
        ...     boxes = np.array([[x, 0, x + 20, 80] for x in xs], np.float32)
        ...     return Poses(kps, np.ones(kps.shape[:2], np.float32), boxes, np.ones(len(xs), np.float32))
        >>> tracker = PoseTracker()
        >>> tracker.update(frame(0)).tolist()
        [0]
        >>> tracker.update(frame(200, 1)).tolist()
        [1, 0]
        >>> tracker.last_matches.tolist()
        ['new', 'live']
    """

    config: TrackerConfig = field(default_factory=TrackerConfig)
    sigmas: np.ndarray = field(default_factory=lambda: COCO_SIGMAS.copy())
    similarity: Similarity | None = None
    tracks: dict[int, Track] = field(default_factory=dict, init=False)
    frame: int = field(default=-1, init=False)
    reidentified: int = field(default=0, init=False)
    last_matches: np.ndarray = field(default_factory=lambda: np.zeros(0, "<U4"), init=False)
    _next_id: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._clear_queue()
        self._similarity = self._chosen_similarity()

    def _chosen_similarity(self) -> Similarity:
        """The caller's similarity if given, else the built-in one the config names."""
        return self.similarity if self.similarity is not None else similarity_named(self.config.similarity)

    def _clear_queue(self) -> None:
        k = len(self.sigmas)
        self._keypoints = np.zeros((0, k, 2), np.float32)  # (M, K, 2), carried to the latest frame
        self._valid = np.zeros((0, k), bool)  # (M, K) joints confident enough to compare
        self._boxes = np.zeros((0, 4), np.float32)  # (M, 4) as observed (IoU ignores flow)
        self._ids = np.zeros(0, np.int64)  # (M,) track id of each queued pose
        self._frames = np.zeros(0, np.int64)  # (M,) frame each queued pose was seen in
        self._lost: list[int] = []  # ids of tracks out of the queue and within max_lost
        self._frame_size: tuple[int, int] | None = None

    def reset(self) -> None:
        """Forget all tracks; ids start from 0 again (a new video)."""
        self._clear_queue()
        self._similarity = self._chosen_similarity()
        self.tracks.clear()
        self._next_id = 0
        self.frame = -1
        self.reidentified = 0
        self.last_matches = np.zeros(0, "<U4")

    def state(self) -> dict[str, Any]:
        """Everything the tracker remembers (tracks, the queue, the lost memory, its counters), as a
        state tree (:mod:`posetrack_cli.core.state`): :meth:`load_state` on a tracker of the same
        config and similarity continues exactly where this one is. Used to resume a video."""
        return {"tracks": [[tid, t.state()] for tid, t in self.tracks.items()], "frame": self.frame,
                "reidentified": self.reidentified, "last_matches": self.last_matches, "next_id": self._next_id,
                "keypoints": self._keypoints, "valid": self._valid, "boxes": self._boxes, "ids": self._ids,
                "frames": self._frames, "lost": list(self._lost),
                "frame_size": None if self._frame_size is None else list(self._frame_size)}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state` (of a tracker with this config)."""
        self.tracks = {int(tid): Track.from_state(t) for tid, t in state["tracks"]}
        self.frame, self.reidentified = int(state["frame"]), int(state["reidentified"])
        self.last_matches, self._next_id = state["last_matches"], int(state["next_id"])
        self._keypoints, self._valid, self._boxes = state["keypoints"], state["valid"], state["boxes"]
        self._ids, self._frames = state["ids"], state["frames"]
        self._lost = [int(t) for t in state["lost"]]
        size = state["frame_size"]
        self._frame_size = None if size is None else (int(size[0]), int(size[1]))

    def update(self, poses: Poses, flow: FlowField | None = None, *, timestamp: float | None = None,
               image: np.ndarray | None = None, weak: np.ndarray | None = None) -> np.ndarray:
        """Track ids ``(N,)`` int64 for this frame's poses; -1 for a weak pose no track took.

        Args:
            poses: the frame's ``N`` poses.
            flow: flow from the previous frame to this one; None when there is none (first frame,
                or a caller without frames), in which case queued poses stay where they were.
            timestamp: the frame's time in seconds; None counts frames at ``DEFAULT_IMAGE_FPS``.
            image: ``(H, W, 3)`` the frame the poses came from, for the appearance cue and to keep
                predictions of people who left the picture at its edge; None without frames.
            weak: ``(N,)`` bool, poses that are matched only after the others, to the live tracks
                those left, and never start a track (a flow box's pose, a low-scored one: as
                ByteTrack's second association); their id is -1 when no track takes them, and they
                are not remembered. None: none is weak.

        Example:
            A person jumps 30 px right between frames: too far for OKS where they were last seen,
            but the flow says where they went (flow-OKS, the default).

            >>> import numpy as np
            >>> from posetrack_cli.core.flow_field import FlowField
            >>> from posetrack_cli.core.types import Poses
            >>> def frame(x):  # one person, 17 joints down the middle of a 20 x 80 px box from x
            ...     kps = np.stack([np.full(17, x + 10), np.linspace(0, 80, 17)], -1)[None].astype(np.float32)
            ...     box = np.array([[x, 0, x + 20, 80]], np.float32)
            ...     return Poses(kps, np.ones((1, 17), np.float32), box, np.ones(1, np.float32))
            >>> flow = FlowField(np.tile(np.array([30, 0], np.float32), (100, 100, 1)))  # (H, W, 2)
            >>> for name in ("flow-oks", "oks"):
            ...     tracker = PoseTracker(TrackerConfig(similarity=name))
            ...     print(name, tracker.update(frame(10)).tolist(), tracker.update(frame(40), flow).tolist())
            flow-oks [0] [0]
            oks [0] [1]
        """
        cfg = self.config
        self.frame += 1
        now = float(timestamp) if timestamp is not None else self.frame / DEFAULT_IMAGE_FPS
        if image is not None:
            self._frame_size = (int(image.shape[1]), int(image.shape[0]))
        # 1. Carry queued poses into this frame (flow-OKS only; OKS and IoU compare as they were).
        if flow is not None and self._similarity.uses_flow and len(self._ids):
            self._keypoints = flow.propagate(self._keypoints)
        valid = poses.keypoint_scores >= cfg.joint_threshold

        # 2. Live tracks (seen within L_Q frames) against the new poses by flow-OKS, or by their own
        #    motion where that fits better; greedy, highest first: the strong poses first, then the
        #    weak ones against the live tracks left.
        ids = np.full(len(poses), -1, dtype=np.int64)
        matches = np.full(len(poses), "new", dtype="<U4")
        weak = np.zeros(len(poses), bool) if weak is None else np.asarray(weak, bool)
        live_ids, similarity = self._live_similarity(poses, valid, now)
        free = np.ones(len(live_ids), bool)  # live tracks not taken yet
        fresh = self.fresh(live_ids, now)  # tracks a weak pose may still continue
        for stage, eligible in ((~weak, free), (weak, fresh)):
            rows, cols = np.flatnonzero(free & eligible), np.flatnonzero(stage)
            for row, col in greedy_match(similarity[np.ix_(rows, cols)], cfg.min_similarity):
                ids[cols[col]], matches[cols[col]] = live_ids[rows[row]], "live"
                free[rows[row]] = False
        histograms = self._histograms(image, poses, valid, ids) if cfg.appearance and image is not None else None

        # 3. Poses left over against tracks left over (lost, or live but missed by step 2), by
        #    own motion with an uncertainty that grows with the time unseen; clear matches only.
        if cfg.max_lost > 0:
            self._lost = [t for t in self._lost if now - self.tracks[t].last_time <= cfg.max_lost]
            taken = set(ids[ids >= 0].tolist())
            candidates = [t for t in live_ids.tolist() if t not in taken] + self._lost
            columns = np.flatnonzero((ids < 0) & ~weak)
            if candidates and len(columns):
                score, admissible = self._leftover_similarity(candidates, poses[columns], valid[columns],
                                                              None if histograms is None else histograms[columns], now)
                lost = set(self._lost)
                for row, col in clear_winners(score, admissible, TIE_MARGIN):
                    tid = candidates[row]
                    ids[columns[col]] = tid
                    matches[columns[col]] = "lost" if tid in lost else "live"
                found = set(ids[matches == "lost"].tolist())
                self.reidentified += len(found)
                if cfg.appearance:
                    for tid in found:
                        lost_track, row = self.tracks[tid], int(np.flatnonzero(ids == tid)[0])
                        lost_track.before_reid, lost_track.reid_frame, lost_track.reid_time = \
                            replace(lost_track), self.frame, now
                        lost_track.reid_keypoints, lost_track.reid_valid, lost_track.reid_box = \
                            poses.keypoints[row].copy(), valid[row].copy(), poses.boxes[row].copy()
                self._lost = [t for t in self._lost if t not in found]

        # 4. Unmatched strong poses start new tracks; weak ones no track took are dropped.
        for unmatched in np.flatnonzero((ids < 0) & ~weak):
            ids[unmatched] = self._next_id
            self._next_id += 1
        kept = ids >= 0
        every = ids
        if not kept.all():
            poses, valid, ids, matches = poses[kept], valid[kept], ids[kept], matches[kept]
            if histograms is not None:
                histograms = histograms[kept]
        self._record(poses, valid, histograms, ids, matches, now)
        for tid in ids[~weak[kept]].tolist():  # strong poses confirm their tracks
            self.tracks[int(tid)].last_strong = now

        # 5. This frame joins the queue; frames older than L_Q drop out and their tracks become lost,
        #    if confirmed (or there from the first frame): a tentative track that vanished was most
        #    likely nobody.
        keep = self._frames > self.frame - cfg.queue_length
        if cfg.max_lost > 0:
            dropped = set(self._ids[~keep].tolist()) - set(self._ids[keep].tolist()) - set(ids.tolist())
            self._lost.extend(t for t in sorted(dropped) if self._confirmed(self.tracks[t]))
        self._keypoints = np.concatenate([self._keypoints[keep], poses.keypoints])
        self._valid = np.concatenate([self._valid[keep], valid])
        self._boxes = np.concatenate([self._boxes[keep], poses.boxes])
        self._ids = np.concatenate([self._ids[keep], ids])
        self._frames = np.concatenate([self._frames[keep], np.full(len(poses), self.frame)])
        self.last_matches = np.full(len(every), "new", dtype="<U4")
        self.last_matches[kept] = matches
        every[kept] = ids  # a split-off re-identification may have changed an id in _record
        return every

    def _confirmed(self, track: Track) -> bool:
        """Whether a track is more than tentative: matched in ``confirm_frames`` frames, or there
        from the first frame (:class:`~posetrack_cli.tracking.confirmation.Confirmation`)."""
        return track.hits >= self.config.confirm_frames or track.first_frame == 0

    def fresh(self, track_ids: np.ndarray, now: float) -> np.ndarray:
        """Mask ``(T,)`` of the tracks a strong pose had within ``flow_life`` seconds of ``now``
        (unknown ids: False): those weak poses may still continue, and flow boxes still follow."""
        limit = self.config.flow_life
        return np.array([tid in self.tracks and now - self.tracks[tid].last_strong <= limit
                         for tid in np.asarray(track_ids).tolist()], bool)

    def tracklets(self) -> list[Tracklet]:
        """A summary of every track so far (its two ends, velocities, size, colours), for stitching."""
        return [Tracklet(tid, t.first_frame, t.last_frame, t.first_time, t.last_time,
                         t.first_keypoints if t.first_keypoints is not None else t.keypoints,
                         t.first_valid if t.first_valid is not None else t.valid,
                         t.keypoints, t.valid,
                         t.first_box if t.first_box is not None else t.box, t.box,
                         t.start_velocity, t.velocity, t.appearance, t.hits)
                for tid, t in sorted(self.tracks.items())]

    def _gather(self, track_ids: list[int]) -> tuple[np.ndarray, ...]:
        """Last poses ``(T, K, 2)``, valid ``(T, K)``, boxes ``(T, 4)``, times ``(T,)``, velocities
        ``(T, 2)`` of the given tracks."""
        ts = [self.tracks[t] for t in track_ids]
        return (np.stack([t.keypoints for t in ts]), np.stack([t.valid for t in ts]), np.stack([t.box for t in ts]),
                np.array([t.last_time for t in ts], np.float32), np.stack([t.velocity for t in ts]))

    def _live_similarity(self, poses: Poses, valid: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Live track ids ``(T,)`` and their similarity ``(T, N)`` to the new poses.

        A track in several queued frames is compared through whichever of its poses fits best, and
        with own motion on, if it was seen in the last frame, through its own-velocity prediction
        if that fits better still.
        """
        if not len(self._ids) or not len(poses):
            return np.zeros(0, np.int64), np.zeros((0, len(poses)), np.float32)
        similarity = self._similarity
        areas = box_areas(poses.boxes)
        noise = np.full(len(self._ids), self.config.joint_noise, np.float32)
        sim = similarity.matrix(self._keypoints, self._valid, self._boxes, poses.keypoints, valid, poses.boxes, areas,
                                self.sigmas, noise)
        order = np.argsort(self._ids, kind="stable")
        sorted_ids = self._ids[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        track_ids, best = sorted_ids[starts], np.maximum.reduceat(sim[order], starts, axis=0)  # (T,), (T, N)
        # Own motion only for tracks seen in the last frame: one missed for longer is uncertain
        # enough to meet the left-over poses in step 3, whose matching refuses ties between people.
        recent = [i for i, t in enumerate(track_ids.tolist()) if self.tracks[t].last_frame == self.frame - 1]
        if self.config.own_motion and recent:
            kps, kvalid, boxes, times, velocity = self._gather(track_ids[recent].tolist())
            unseen = now - times  # (R,) s
            step = velocity * unseen[:, None]  # (R, 2) px since last seen
            # as sure as the track's velocity is: a new track's could be anything a person can do
            spread = prediction_spread(np.array([self.tracks[t].velocity_var for t in track_ids[recent].tolist()]),
                                       unseen, np.maximum(boxes[:, 3] - boxes[:, 1], 1.0))
            own = similarity.matrix(kps + step[:, None, :], kvalid, boxes + np.tile(step, 2), poses.keypoints, valid,
                                    poses.boxes, areas, self.sigmas, np.hypot(spread, self.config.joint_noise))
            best[recent] = np.maximum(best[recent], own)
        return track_ids, best

    def _histograms(self, image: np.ndarray, poses: Poses, valid: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Torso histograms ``(N, 64)`` of the poses that need one this frame; NaN rows for the rest."""
        need = ids < 0
        for i in np.flatnonzero(~need):
            tid = int(ids[i])
            t = self.tracks[tid]
            need[i] = t.appearance is None or t.before_reid is not None or (self.frame + tid) % APPEARANCE_EVERY == 0
        out = np.full((len(poses), HISTOGRAM_BINS), np.nan, np.float32)
        if need.any():
            out[need] = torso_histograms(image, poses.keypoints[need], valid[need])
        return out

    def _leftover_similarity(self, candidates: list[int], poses: Poses, valid: np.ndarray,
                             histograms: np.ndarray | None, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Ranking score ``(L, N')`` of left-over tracks against left-over poses, and which pairs
        are admissible at all ``(L, N')`` bool (similar enough, size fits, colours do not veto)."""
        cfg = self.config
        kps, kvalid, boxes, times, velocity = self._gather(candidates)
        unseen = now - times  # (L,) seconds
        heights = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
        speed = np.sqrt((velocity ** 2).sum(1))
        predicted = kps + (velocity * damped_distance(unseen)[:, None])[:, None, :]  # (L, K, 2)
        predicted = keep_in_frame(predicted, kvalid, self._frame_size)
        # Ranked by OKS at the typical error of the prediction, so the track predicted closest
        # wins; admissible up to GATE_SPREAD times that error, as people do change pace.
        areas, spread = box_areas(poses.boxes), uncertainty(unseen, speed, heights)
        score = oks_matrix(predicted, kvalid, poses.keypoints, valid, areas, self.sigmas,
                           np.hypot(spread, self.config.joint_noise))
        gate = oks_matrix(predicted, kvalid, poses.keypoints, valid, areas, self.sigmas,
                          np.hypot(GATE_SPREAD * spread, self.config.joint_noise))
        ratio = size_ratio(kps, kvalid, boxes, poses.keypoints, valid, poses.boxes)
        unseen_since = np.array([self.tracks[t].last_frame < self.frame - 1 for t in candidates])[:, None]  # (L, 1)
        size_fits = (ratio <= MAX_SIZE_RATIO) & (ratio >= 1 / MAX_SIZE_RATIO)
        admissible = (gate >= cfg.min_similarity) & (size_fits | ~unseen_since)
        if histograms is not None:
            known = [self.tracks[t].appearance for t in candidates]
            mine = np.stack([a if a is not None else np.full(histograms.shape[1], np.nan, np.float32) for a in known])
            distance = histogram_distance(mine, histograms)  # (L, N'), NaN where either is unseen
            admissible &= ~(distance > APPEARANCE_VETO)
            score = score - APPEARANCE_WEIGHT * np.nan_to_num(distance, nan=0.0)
        return score, admissible

    def _record(self, poses: Poses, valid: np.ndarray, histograms: np.ndarray | None, ids: np.ndarray,
                matches: np.ndarray, now: float) -> None:
        """Update each matched track (pose, velocity, colours) and create the new ones; split off a
        re-identified track whose colours turn out not to match (``ids`` and ``matches`` updated)."""
        updated: list[tuple[int, Track]] = []  # (pose, its existing track), moved on together below
        for i, tid in enumerate(ids.tolist()):
            hist = None if histograms is None or np.isnan(histograms[i, 0]) else histograms[i]
            t = self.tracks.get(tid)
            if t is not None and t.before_reid is not None \
                    and (hist is not None or now - t.reid_time > PROBATION_SECONDS):
                self._confirm_or_split(i, t, hist, ids, matches)  # t goes on, under a new id if split off
            if t is None:
                # copies, not views: a track must not keep its frame's arrays alive
                kps, box = poses.keypoints[i].copy(), poses.boxes[i].copy()
                prior = float(initial_velocity_variance(np.array([max(float(box[3] - box[1]), 1.0)]))[0])
                self.tracks[tid] = Track(self.frame, now, kps, valid[i], box, velocity_var=prior, appearance=hist,
                                         first_frame=self.frame, first_time=now, first_keypoints=kps,
                                         first_valid=valid[i], first_box=box)
                continue
            if hist is not None:
                t.appearance = hist if t.appearance is None else \
                    t.appearance + APPEARANCE_UPDATE * (hist - t.appearance)
            updated.append((i, t))
        if updated:
            self._move_on([i for i, _ in updated], [t for _, t in updated], poses, valid, now)

    def _move_on(self, rows: list[int], tracks: list[Track], poses: Poses, valid: np.ndarray, now: float) -> None:
        """Bring matched ``tracks`` to their poses ``rows`` of this frame: velocity (a Kalman filter's,
        :func:`~posetrack_cli.tracking.motion.velocity_update`), keypoints, seen joints, box. One array
        operation per quantity for all tracks, not a dozen small ones per track.
        """
        seen = valid[rows]  # (M, K)
        old_keypoints = np.stack([t.keypoints for t in tracks])  # (M, K, 2)
        old_valid = np.stack([t.valid for t in tracks])  # (M, K)
        # (M, 2) px each pose moved since its track was last seen
        moved = displacements(old_keypoints, old_valid, poses.keypoints[rows], seen,
                              np.stack([t.box for t in tracks]), poses.boxes[rows]).astype(np.float32)
        dt = np.array([now - t.last_time for t in tracks]).astype(np.float32)  # (M,)
        heights = np.maximum(poses.boxes[rows, 3] - poses.boxes[rows, 1], 1.0)  # (M,)
        velocity, variance = velocity_update(np.stack([t.velocity for t in tracks]),
                                             np.array([t.velocity_var for t in tracks], np.float32), moved, dt,
                                             heights)
        # Joints not seen now keep their last position, carried by the body's motion: a person
        # going behind a pillar shows one side last and the other side first when they come out.
        keypoints = np.where(seen[:, :, None], poses.keypoints[rows], old_keypoints + moved[:, None]).astype(np.float32)
        ever_seen = seen | old_valid
        boxes = np.array(poses.boxes[rows])  # a copy (fancy indexing): not a view of the frame's arrays
        for j, t in enumerate(tracks):
            t.velocity, t.velocity_var = velocity[j], float(variance[j])
            t.keypoints, t.valid, t.box = keypoints[j], ever_seen[j], boxes[j]
            t.last_frame, t.last_time, t.hits = self.frame, now, t.hits + 1
            if t.hits <= START_FRAMES:
                t.start_velocity = t.velocity

    def _confirm_or_split(self, i: int, t: Track, hist: np.ndarray | None, ids: np.ndarray,
                          matches: np.ndarray) -> None:
        """End a re-identification's probation: keep it if the colours agree (or were never seen),
        else give pose ``i`` and the poses since the re-identification a new id, and remember the
        old track as lost again."""
        before, tid = t.before_reid, int(ids[i])
        assert before is not None
        t.before_reid = None
        if hist is None or before.appearance is None:
            return
        if not histogram_distance(before.appearance[None], hist[None])[0, 0] > APPEARANCE_VETO:
            return
        new_id = self._next_id
        self._next_id += 1
        ids[i], matches[i] = new_id, "new"
        self._ids[(self._ids == tid) & (self._frames >= t.reid_frame)] = new_id
        t.first_frame, t.first_time, t.hits = t.reid_frame, t.reid_time, t.hits - before.hits
        # It began where it was re-found (for stitching), not where the other person's track began.
        t.first_keypoints, t.first_valid, t.first_box = t.reid_keypoints, t.reid_valid, t.reid_box
        t.start_velocity = t.velocity  # its motion since, mostly (the running average began before)
        t.appearance = None  # the colours it learnt since the re-identification are someone else's mix
        self.tracks[new_id], self.tracks[tid] = t, before
        self._lost.append(tid)
        self.reidentified -= 1
