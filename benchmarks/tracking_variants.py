"""The development set of real motion (``shared/data/tracking_dev``) as tracker inputs: each clip's
annotations as per-frame ground truth, and the input variants ``benchmarks/tracking.py`` runs.

A variant is a function of the clean clip, a seeded generator and the tracker's queue length
``L_Q``; it returns what an estimator would have handed a tracker frame by frame (poses with joint
scores and boxes, each tagged with the annotated person it came from) beside the ground truth of
the same frames. Everything is deterministic for a given seed.

Poses as an estimator gives them: an annotated joint gets a score of 0.9 +- 0.05 (clipped to
[0.5, 1]), a joint not annotated scores 0 at (0, 0) (the set never annotates nose and ears); the
person's score is the mean over the scored joints; the box is the extent of the scored joints
enlarged 10 % about its centre, and at least one head size wide and high (a person annotated with
one or two joints still has a box, as a detector would give).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from posetrack_cli.core.types import Poses

K = 17  # PoseTrack18 joints: 0 nose, 1 head_bottom, 2 head_top, ... (the data set's README)
HEAD_BOTTOM, HEAD_TOP = 1, 2
FRAME_WIDTH, FRAME_HEIGHT = 960, 540  # the size the data set's converter assumes
# The clips store no frame rate; the source videos are broadcast-like footage, taken as 25 fps.
FPS = 25.0
# 0.6 x head-box diagonal (PCKh) where the clip has head boxes; otherwise this x the
# head_bottom-head_top distance (the data set's README: the median ratio over 1,150 annotations).
HEAD_FROM_BOX = 0.6
HEAD_FROM_JOINTS = 0.755

JOINT_SCORE, JOINT_SCORE_SPREAD = 0.9, 0.05
BOX_MARGIN = 0.10


@dataclass
class Truth:
    """One frame's annotated people.

    Attributes:
        ids: ``(n,)`` person identities (``track_id``).
        keypoints: ``(n, K, 2)`` joint positions in pixels.
        annotated: ``(n, K)`` bool, joints annotated.
        head: ``(n,)`` head size in pixels (PCKh).
    """

    ids: np.ndarray
    keypoints: np.ndarray
    annotated: np.ndarray
    head: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Clip:
    name: str
    frames: list[Truth]  # one per frame, in order

    @property
    def people(self) -> int:
        return len({int(i) for t in self.frames for i in t.ids})


@dataclass
class Inputs:
    """What a tracker gets for one frame.

    Attributes:
        index: the frame's index in the clip (its time is ``index / FPS``).
        poses: the ``N`` poses (keypoints, joint scores, boxes, person scores).
        person: ``(N,)`` the annotated person each pose came from, -1 for a false positive.
        duplicate_of: ``(N,)`` for an injected duplicate, the index (in this frame) of the pose it
            duplicates; -1 otherwise.
    """

    index: int
    poses: Poses
    person: np.ndarray
    duplicate_of: np.ndarray


@dataclass
class Variant:
    """A clip as one variant hands it to the trackers.

    Attributes:
        frames: ``(inputs, truth)`` of each frame the trackers see, in order.
        step: frames of the clip per frame seen (2 for every 2nd frame).
        notes: counts of what the variant injected (``duplicates``, ``false positives``, ``hidden``
            person-frames, ``gaps``, ``missed`` person-frames, ``dropped`` joints).
    """

    frames: list[tuple[Inputs, Truth]]
    step: int = 1
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return FPS / self.step


# ---------------------------------------------------------------------------------------------
# Loading


def head_sizes(annotations: list[dict]) -> dict[int, float]:
    """Head size per annotation id, as the data set's README defines it: 0.6 x the head box
    diagonal; without a head box 0.755 x the head_bottom-head_top distance; without either joint,
    the person's median head size over the clip (the clip's median if the person never has one)."""
    sizes: dict[int, float] = {}
    by_person: dict[int, list[float]] = {}
    for a in annotations:
        kps = np.asarray(a["keypoints"], np.float64).reshape(K, 3)
        size = math.nan
        if a.get("bbox_head"):
            _, _, w, h = a["bbox_head"]
            size = HEAD_FROM_BOX * math.hypot(w, h)
        elif kps[HEAD_BOTTOM, 2] > 0 and kps[HEAD_TOP, 2] > 0:
            size = HEAD_FROM_JOINTS * float(np.hypot(*(kps[HEAD_TOP, :2] - kps[HEAD_BOTTOM, :2])))
        if math.isfinite(size) and size > 0:
            sizes[a["id"]] = size
            by_person.setdefault(a["track_id"], []).append(size)
    everyone = [s for v in by_person.values() for s in v]
    fallback = float(np.median(everyone)) if everyone else 30.0
    for a in annotations:
        if a["id"] not in sizes:
            known = by_person.get(a["track_id"])
            sizes[a["id"]] = float(np.median(known)) if known else fallback
    return sizes


def load_clip(path: Path) -> Clip:
    """One clip's PoseTrack18-style JSON as per-frame ground truth."""
    data = json.loads(path.read_text())
    images = sorted(data["images"], key=lambda im: im["frame_index"])
    heads = head_sizes(data["annotations"])
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    frames = []
    for image in images:
        people = sorted(by_image.get(image["id"], []), key=lambda a: a["track_id"])
        kps = np.array([np.asarray(a["keypoints"], np.float64).reshape(K, 3) for a in people]).reshape(-1, K, 3)
        frames.append(Truth(np.array([a["track_id"] for a in people], np.int64), kps[..., :2].astype(np.float32),
                            kps[..., 2] > 0, np.array([heads[a["id"]] for a in people], np.float32)))
    return Clip(path.stem, frames)


def load_clips(folder: Path, names: list[str] | None = None) -> list[Clip]:
    paths = sorted(folder.glob("*.json"))
    if names:
        wanted = set(names)
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            raise SystemExit(f"no such clip in {folder}: {', '.join(sorted(unknown))}")
        paths = [p for p in paths if p.stem in wanted]
    return [load_clip(p) for p in paths]


# ---------------------------------------------------------------------------------------------
# Poses as an estimator would give them


def box_of(keypoints: np.ndarray, scored: np.ndarray, head: float) -> np.ndarray:
    """xyxy extent of the scored joints, 10 % larger about its centre, at least a head size a side."""
    pts = keypoints[scored] if scored.any() else keypoints
    lo, hi = pts.min(0), pts.max(0)
    centre, size = (lo + hi) / 2, np.maximum((hi - lo) * (1 + BOX_MARGIN), head)
    return np.concatenate([centre - size / 2, centre + size / 2]).astype(np.float32)


@dataclass
class Pose:
    """One pose being built: keypoints ``(K, 2)``, joint scores ``(K,)``, head size, the person."""

    keypoints: np.ndarray
    scores: np.ndarray
    head: float
    person: int
    duplicate_of: int = -1  # position in the frame's list of the pose it duplicates


def observe(truth: Truth, i: int, rng: np.random.Generator, *, noise: float = 0.0, drop: float = 0.0) -> Pose | None:
    """Annotated person ``i`` of a frame as a pose: joints moved by Gaussian noise of ``noise`` head
    sizes (each coordinate), each annotated joint dropped with probability ``drop``; None when no
    joint is left."""
    head = float(truth.head[i])
    seen = truth.annotated[i].copy()
    if drop > 0:
        seen &= rng.random(K) >= drop
    if not seen.any():
        return None
    kps = truth.keypoints[i].astype(np.float64)
    if noise > 0:
        kps = kps + rng.normal(0.0, noise * head, kps.shape)
    scores = np.clip(JOINT_SCORE + JOINT_SCORE_SPREAD * rng.standard_normal(K), 0.5, 1.0)
    return Pose(np.where(seen[:, None], kps, 0.0), np.where(seen, scores, 0.0), head, int(truth.ids[i]))


def to_inputs(index: int, poses: list[Pose], rng: np.random.Generator) -> Inputs:
    """A frame's poses in a random order (as an estimator lists them), as posetrack's ``Poses``."""
    order = rng.permutation(len(poses))
    where = {int(old): new for new, old in enumerate(order)}
    picked = [poses[o] for o in order]
    kps = np.array([p.keypoints for p in picked], np.float32).reshape(-1, K, 2)
    scores = np.array([p.scores for p in picked], np.float32).reshape(-1, K)
    boxes = np.array([box_of(p.keypoints, p.scores > 0, p.head) for p in picked], np.float32).reshape(-1, 4)
    person_scores = np.array([p.scores[p.scores > 0].mean() for p in picked], np.float32)
    duplicate_of = np.array([where[p.duplicate_of] if p.duplicate_of >= 0 else -1 for p in picked], np.int64)
    return Inputs(index, Poses(kps, scores, boxes, person_scores), np.array([p.person for p in picked], np.int64),
                  duplicate_of)


def _frames(clip: Clip, rng: np.random.Generator, make: Callable[[int, Truth], list[Pose]],
            step: int = 1) -> list[tuple[Inputs, Truth]]:
    return [(to_inputs(t, make(t, truth), rng), truth) for t, truth in enumerate(clip.frames) if t % step == 0]


# ---------------------------------------------------------------------------------------------
# Variants


def clean(clip: Clip, rng: np.random.Generator, queue_length: int, step: int = 1) -> Variant:
    """Every annotated person, joints where annotated; every ``step``-th frame."""
    def make(t: int, truth: Truth) -> list[Pose]:
        return [p for i in range(len(truth)) if (p := observe(truth, i, rng)) is not None]
    return Variant(_frames(clip, rng, make, step), step)


def noisy(clip: Clip, rng: np.random.Generator, queue_length: int, noise: float = 0.1, drop: float = 0.1,
          miss: float = 0.05) -> Variant:
    """Joints moved by Gaussian noise of ``noise`` head sizes, ``drop`` of the annotated joints left
    out, ``miss`` of the person-frames missed."""
    notes = {"missed": 0, "dropped": 0}

    def make(t: int, truth: Truth) -> list[Pose]:
        out = []
        for i in range(len(truth)):
            if rng.random() < miss:
                notes["missed"] += 1
                continue
            pose = observe(truth, i, rng, noise=noise, drop=drop)
            if pose is None:
                notes["missed"] += 1
                continue
            notes["dropped"] += int(truth.annotated[i].sum() - (pose.scores > 0).sum())
            out.append(pose)
        return out
    return Variant(_frames(clip, rng, make), 1, notes)


def person_boxes(truth: Truth) -> np.ndarray:
    return np.array([box_of(truth.keypoints[i], truth.annotated[i], float(truth.head[i])) for i in range(len(truth))],
                    np.float32).reshape(-1, 4)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def crossings(clip: Clip) -> list[tuple[float, int, int, int, int, int]]:
    """Pairs of people who come close: for each pair, the frame where their boxes (as ``box_of``
    makes them) overlap most, or, if they never overlap, come nearest, counted only if the space
    between them is then under one head size (the larger of the two) across and down.

    Returns ``(closeness, frame, a, b, smaller, larger)`` sorted most overlapping first; closeness is
    the IoU, or minus the space between the boxes in head sizes when they do not overlap; ``smaller``
    is whichever of ``a``, ``b`` has the smaller box then (more likely the one behind)."""
    best: dict[tuple[int, int], tuple[float, int, int, int]] = {}
    for t, truth in enumerate(clip.frames):
        boxes = person_boxes(truth)
        for i in range(len(truth)):
            for j in range(i + 1, len(truth)):
                a, b = boxes[i], boxes[j]
                head = float(max(truth.head[i], truth.head[j]))
                gap_x = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
                gap_y = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
                if gap_x >= head or gap_y >= head:
                    continue
                iou = _iou(a, b)
                closeness = iou if iou > 0 else -math.hypot(gap_x, gap_y) / head
                area = [(box[2] - box[0]) * (box[3] - box[1]) for box in (a, b)]
                ids = int(truth.ids[i]), int(truth.ids[j])
                key = (min(ids), max(ids))
                smaller = ids[0] if area[0] <= area[1] else ids[1]
                if key not in best or closeness > best[key][0]:
                    best[key] = (closeness, t, smaller, ids[0] + ids[1] - smaller)
    found = [(c, t, key[0], key[1], s, la) for key, (c, t, s, la) in best.items()]
    return sorted(found, key=lambda x: (-x[0], x[1], x[2], x[3]))


def occlusion_gaps(clip: Clip, rng: np.random.Generator, queue_length: int, times: int = 1) -> Variant:
    """At each crossing (``crossings``), one of the two people is hidden for ``times`` x ``L_Q``
    frames centred on the crossing frame, the other stays visible. The smaller-boxed one is hidden
    where their track allows a visible frame before and after the gap (the window slides within the
    track to fit), else the other one; each person is hidden at most once, and never while the
    other person of the pair is hidden. Crossings are taken most overlapping first. The hidden
    person stays in the ground truth (misses for every tracker)."""
    length = times * queue_length
    span: dict[int, tuple[int, int]] = {}  # person -> first, last frame annotated
    for t, truth in enumerate(clip.frames):
        for pid in truth.ids.tolist():
            first, _ = span.get(pid, (t, t))
            span[pid] = (first, t)
    hidden: dict[int, tuple[int, int]] = {}  # person -> [start, end) frames hidden
    for _, t, _, _, smaller, larger in crossings(clip):
        for who, other in ((smaller, larger), (larger, smaller)):
            first, last = span[who]
            if who in hidden or last - first + 1 < length + 2:
                continue
            start = min(max(t - length // 2, first + 1), last - length)
            window = (start, start + length)
            if other in hidden and hidden[other][0] < window[1] and window[0] < hidden[other][1]:
                continue
            hidden[who] = window
            break
    notes = {"gaps": len(hidden), "hidden": 0}

    def make(t: int, truth: Truth) -> list[Pose]:
        out = []
        for i, pid in enumerate(truth.ids.tolist()):
            if pid in hidden and hidden[pid][0] <= t < hidden[pid][1]:
                notes["hidden"] += 1
                continue
            if (pose := observe(truth, i, rng)) is not None:
                out.append(pose)
        return out
    return Variant(_frames(clip, rng, make), 1, notes)


def duplicates(clip: Clip, rng: np.random.Generator, queue_length: int, rate: float = 0.05, jitter: float = 0.05,
               score: float = 0.8) -> Variant:
    """For ``rate`` of the person-frames, a second pose of the same person: each joint moved by
    Gaussian jitter of ``jitter`` head sizes, joint scores ``score`` x the original's (so its person
    score is lower). The original is exact."""
    notes = {"duplicates": 0}

    def make(t: int, truth: Truth) -> list[Pose]:
        out = [p for i in range(len(truth)) if (p := observe(truth, i, rng)) is not None]
        for k, pose in enumerate(list(out)):
            if rng.random() < rate:
                seen = pose.scores > 0
                kps = pose.keypoints + rng.normal(0.0, jitter * pose.head, pose.keypoints.shape)
                out.append(Pose(np.where(seen[:, None], kps, 0.0), pose.scores * score, pose.head, pose.person, k))
                notes["duplicates"] += 1
        return out
    return Variant(_frames(clip, rng, make), 1, notes)


def false_positives(clip: Clip, rng: np.random.Generator, queue_length: int, rate: float = 0.05,
                    lives: tuple[int, ...] = (1, 2, 3)) -> Variant:
    """Extra poses of nobody, about ``rate`` of the real poses: each frame starts a Poisson number
    of them (mean ``rate`` x people / mean life), each living 1-3 frames. One is the annotated pose
    of a random person of a random frame of the clip, put at a random place in the frame (wholly
    inside where it fits) and drifting by 0.1 head sizes a frame, with joint scores 0.3-0.8."""
    pool = [(t, i) for t, truth in enumerate(clip.frames) for i in range(len(truth))]
    ghosts: list[list] = []  # [keypoints, scores, head, velocity, frames left]
    notes = {"false positives": 0}

    def spawn() -> list:
        t, i = pool[int(rng.integers(len(pool)))]
        truth = clip.frames[t]
        seen = truth.annotated[i]
        kps = truth.keypoints[i].astype(np.float64)
        lo, hi = kps[seen].min(0), kps[seen].max(0)
        room = np.maximum(np.array([FRAME_WIDTH, FRAME_HEIGHT]) - (hi - lo), 0)
        kps = kps - lo + rng.random(2) * room
        head = float(truth.head[i])
        scores = np.where(seen, rng.uniform(0.3, 0.8, K), 0.0)
        return [np.where(seen[:, None], kps, 0.0), scores, head, rng.normal(0.0, 0.1 * head, 2),
                int(rng.choice(lives))]

    def make(t: int, truth: Truth) -> list[Pose]:
        out = [p for i in range(len(truth)) if (p := observe(truth, i, rng)) is not None]
        ghosts.extend(spawn() for _ in range(int(rng.poisson(rate * len(truth) / np.mean(lives)))))
        for g in ghosts:
            out.append(Pose(g[0].copy(), g[1].copy(), g[2], -1))
            g[0] = np.where(g[1][:, None] > 0, g[0] + g[3], 0.0)
            g[4] -= 1
        notes["false positives"] += len(ghosts)
        ghosts[:] = [g for g in ghosts if g[4] > 0]
        return out
    return Variant(_frames(clip, rng, make), 1, notes)


# name -> the variant's function of (clip, rng, queue_length); the names are --variants' choices.
VARIANTS: dict[str, Callable[[Clip, np.random.Generator, int], Variant]] = {
    "clean": clean,
    "noisy": noisy,
    "every-2nd": partial(clean, step=2),
    "every-3rd": partial(clean, step=3),
    "gap-1x": partial(occlusion_gaps, times=1),
    "gap-2x": partial(occlusion_gaps, times=2),
    "gap-3x": partial(occlusion_gaps, times=3),
    "duplicates": duplicates,
    "false-pos": false_positives,
}
