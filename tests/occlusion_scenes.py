"""Rendered sequences where people are hidden for a while, with known identities.

Shared by tests/test_occlusion.py and benchmarks/occlusion.py. Each scene says, per frame, who an
estimator would see (a person behind a pillar, behind a passer-by or outside the picture is not
seen); the tracker gets those people's true poses (plus noise) and real DIS flow of the rendered
frames, and its ids are compared with the true identities. Frames are 30 fps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from posetrack_cli.core.keypoints import COCO_SKELETON
from posetrack_cli.core.paper import MIN_JOINTS
from posetrack_cli.core.types import Poses
from posetrack_cli.models.flow import DISFlow
from posetrack_cli.tracking.tracker import PoseTracker, TrackerConfig

from synthetic import TEMPLATE, Person, linear_path, render

FPS = 30.0
SIZE = (480, 320)
QUEUE = TrackerConfig().queue_length


@dataclass
class Scene:
    """A rendered sequence: frames ``(T,)`` of ``(H, W, 3)``, and ``present`` ``(T, P)`` bool, who is seen."""

    name: str
    people: list[Person]
    frames: list[np.ndarray]
    present: np.ndarray
    occluders: list[tuple[int, int, int, int]] = field(default_factory=list)  # pillars (x1, y1, x2, y2)
    hidden: dict[int, int] = field(default_factory=dict)  # person -> longest run of frames unseen

    def visible(self, t: int) -> np.ndarray:
        """``(P, K)`` bool: joints in the picture and in front of every pillar and of every person
        drawn after (nearer the camera)."""
        kps = np.stack([p.keypoints(t) for p in self.people])  # (P, K, 2)
        x, y = kps[..., 0], kps[..., 1]
        out = (x >= 0) & (x <= SIZE[0] - 1) & (y >= 0) & (y <= SIZE[1] - 1)
        for i in range(len(self.people)):
            for box in list(self.occluders) + [self.people[j].box(t) for j in range(i + 1, len(self.people))]:
                out[i] &= ~((x[i] >= box[0]) & (x[i] <= box[2]) & (y[i] >= box[1]) & (y[i] <= box[3]))
        return out


def _run_lengths_hidden(present: np.ndarray, person: int) -> int:
    """Longest run of frames ``person`` is not seen between two frames they are seen in."""
    seen = np.flatnonzero(present[:, person])
    return int(np.diff(seen).max() - 1) if len(seen) > 1 else 0


def _with_occluders(frames: list[np.ndarray], occluders: list[tuple[int, int, int, int]],
                    seed: int = 7) -> list[np.ndarray]:
    """Paste static textured pillars (x1, y1, x2, y2) in front of everyone."""
    rng = np.random.default_rng(seed)
    out = []
    textures = [cv2.GaussianBlur(rng.integers(0, 256, (y2 - y1, x2 - x1, 3), dtype=np.uint8), (0, 0), 2)
                for x1, y1, x2, y2 in occluders]
    for frame in frames:
        frame = frame.copy()
        for (x1, y1, x2, y2), tex in zip(occluders, textures):
            frame[y1:y2, x1:x2] = tex
        out.append(frame)
    return out


def _pillar_for(person: Person, first: int, hidden: int) -> tuple[int, int]:
    """x range of a pillar behind which ``person`` is exactly in frames ``first .. first + hidden - 1``."""
    return int(np.floor(person.box(first)[0])), int(np.ceil(person.box(first + hidden - 1)[2]))


def _narrowed(people: list[Person], person: int, box: tuple[int, int, int, int], hidden: int,
              num_frames: int) -> tuple[int, int, int, int]:
    """``box`` narrowed until ``person`` is unseen (fewer than 3 joints visible) for at most
    ``hidden`` frames in a row."""
    x1, y1, x2, y2 = box
    while x2 - x1 > 2:
        probe = Scene("", people, [], np.ones((num_frames, len(people)), bool), [(x1, y1, x2, y2)])
        seen = np.stack([probe.visible(t).sum(1) >= MIN_JOINTS for t in range(num_frames)])
        if _run_lengths_hidden(seen, person) <= hidden:
            break
        x1, x2 = x1 + 1, x2 - 1
    return x1, y1, x2, y2


def _behind(person: Person, t: int, box: tuple[int, int, int, int]) -> bool:
    b = person.box(t)
    return bool(b[0] >= box[0] and b[2] <= box[2])


def _finish(name: str, people: list[Person], frames: list[np.ndarray], present: np.ndarray,
            occluders: tuple[tuple[int, int, int, int], ...] = ()) -> Scene:
    """The scene, where a person counts as seen only if ``present`` says so and at least 3 of their
    joints are visible (the pipeline drops poses with fewer)."""
    scene = Scene(name, people, frames, present, list(occluders))
    scene.present = present & np.stack([scene.visible(t).sum(1) >= MIN_JOINTS for t in range(len(frames))])
    hidden = {i: _run_lengths_hidden(scene.present, i) for i in range(len(people))}
    scene.hidden = {i: h for i, h in hidden.items() if h}
    return scene


def pillar(hidden: int) -> Scene:
    """A walker hidden ``hidden`` frames behind a pillar; a second walker passes in front of it the
    other way, on a row just below."""
    height, speed, before = 110.0, 4.0, 14
    n = hidden + 2 * before
    a = Person(height, linear_path((40, 30), (speed, 0), n), seed=11)
    x1, x2 = _pillar_for(a, before, hidden)
    b = Person(height, linear_path((x2 + 120, 150), (-3.0, 0), n), seed=12)
    box = _narrowed([a, b], 0, (x1, 10, x2, 160), hidden, n)
    frames = _with_occluders(render([a, b], n, SIZE), [box])
    return _finish(f"pillar {hidden // QUEUE}x L_Q", [a, b], frames, np.ones((n, 2), bool), (box,))


def passer_by(hidden: int) -> Scene:
    """A walker hidden ``hidden`` frames behind a taller person nearer the camera, who comes the
    other way, walks along with them for a while and goes on."""
    height, speed, before = 100.0, 4.0, 14
    n = hidden + 2 * before
    a = Person(height, linear_path((40, 60), (speed, 0), n), seed=21)
    ax = a.path[:, 0]
    t = np.arange(n)
    bx = np.where(t < before, ax[before] + speed * (before - t),
                  np.where(t < before + hidden, ax, ax[before + hidden - 1] - speed * (t - before - hidden + 1)))
    b = Person(1.3 * height, np.stack([bx, np.full(n, 60 - 0.1 * height)], 1).astype(np.float32), seed=22)
    frames = render([a, b], n, SIZE)
    return _finish(f"passer-by {hidden // QUEUE}x L_Q", [a, b], frames, np.ones((n, 2), bool))


def frame_edge(out_frames: int = 16) -> Scene:
    """A walker leaves through the right edge, turns round outside and comes back in."""
    height, speed = 110.0, 7.0
    n = 40 + out_frames
    turn = 20 + out_frames // 2
    xs = np.array([330 + speed * (t if t <= turn else 2 * turn - t) for t in range(n)], np.float32)
    a = Person(height, np.stack([xs, np.full(n, 40.0, np.float32)], 1), seed=31)
    b = Person(height, linear_path((60, 170), (2.0, 0), n), seed=32)
    frames = render([a, b], n, SIZE)
    present = np.ones((n, 2), bool)
    return _finish("frame edge", [a, b], frames, present)


def swap_behind_pillar() -> Scene:
    """Two walkers cross while both are hidden behind one wide pillar, so they come out swapped."""
    height, speed, n = 100.0, 5.0, 64
    a = Person(height, linear_path((30, 40), (speed, 0), n), seed=41)
    b = Person(height, linear_path((30 + speed * (n - 1), 70), (-speed, 0), n), seed=42)
    box = (150, 20, 330, 200)
    frames = _with_occluders(render([a, b], n, SIZE), [box])
    present = np.array([[not _behind(p, t, box) for p in (a, b)] for t in range(n)])
    return _finish("swap behind pillar", [a, b], frames, present, (box,))


def reversal(speed: float = 9.0) -> Scene:
    """A walker turns back abruptly beside another walking the same way, missed for 3 frames at the turn."""
    height, n, turn = 110.0, 40, 18
    xs = np.array([60 + speed * (t if t <= turn else 2 * turn - t) for t in range(n)], np.float32)
    a = Person(height, np.stack([xs, np.full(n, 30.0, np.float32)], 1), seed=51)
    b = Person(height, linear_path((120, 150), (speed / 2, 0), n), seed=52)
    frames = render([a, b], n, SIZE)
    present = np.array([[not turn - 1 <= t <= turn + 1, True] for t in range(n)])
    return _finish("motion reversal", [a, b], frames, present)


def stranger(scale: float = 1.0) -> Scene:
    """A walker goes behind a pillar and stays there; someone else (other clothes, ``scale`` x the
    height) comes out of it where and when the first would have. They must not be merged."""
    height, speed, before, hidden = 110.0, 4.0, 14, 20
    n = hidden + 2 * before
    path = linear_path((40, 30), (speed, 0), n)
    mid = before + hidden // 2
    # a walks the path until the middle of the pillar and stays there; b waits there (behind the
    # pillar) and walks on from the middle, so b comes out when and where a would have.
    a = Person(height, np.where(np.arange(n)[:, None] < mid, path, path[mid]), seed=61)
    x1, x2 = _pillar_for(Person(height, path, 0), before, hidden)
    b_path = np.where(np.arange(n)[:, None] < mid, path[mid], path) + np.array([0, height * (1 - scale)], np.float32)
    b = Person(height * scale, b_path, seed=62)
    box = (x1, 10, x2, 180)
    frames = _with_occluders(render([a, b], n, SIZE), [box])
    present = np.array([[t < before, t >= before + hidden] for t in range(n)])
    return _finish(f"stranger x{scale:g}", [a, b], frames, present, (box,))


def reversal_behind_pillar() -> Scene:
    """A walker goes behind a pillar, turns round there and comes out the side they went in."""
    height, speed, n = 110.0, 5.0, 50
    turn = 25
    xs = np.array([40 + speed * (t if t <= turn else 2 * turn - t) for t in range(n)], np.float32)
    a = Person(height, np.stack([xs, np.full(n, 30.0, np.float32)], 1), seed=71)
    b = Person(height, linear_path((380, 160), (-2.0, 0), n), seed=72)
    box = (130, 10, 260, 160)
    frames = _with_occluders(render([a, b], n, SIZE), [box])
    present = np.ones((n, 2), bool)
    return _finish("turn behind pillar", [a, b], frames, present, (box,))


def sprint_behind_pillar(walk: float = 3.0, run: float = 20.0) -> Scene:
    """A walker (``walk`` px a frame) breaks into a run (``run`` px a frame) behind a pillar and
    comes out far beyond where their walk would have taken them: online their track is not found
    again; stitching, which also tries the new track's own speed, joins the two."""
    height, n, box = 110.0, 60, (130, 10, 260, 160)
    xs = [40.0]
    for _ in range(n - 1):
        xs.append(xs[-1] + (walk if xs[-1] < 150 else run))
    a = Person(height, np.stack([np.array(xs, np.float32), np.full(n, 30.0, np.float32)], 1), seed=71)
    b = Person(height, linear_path((380, 160), (-2.0, 0), n), seed=72)
    frames = _with_occluders(render([a, b], n, SIZE), [box])
    present = np.array([[not _behind(p, t, box) for p in (a, b)] for t in range(n)])
    return _finish("sprint behind pillar", [a, b], frames, present, (box,))


def all_scenes() -> list[Scene]:
    """The benchmark's scenes (the tests use them one by one)."""
    return ([pillar(k * QUEUE) for k in (2, 4, 8)] + [passer_by(k * QUEUE) for k in (2, 4, 8)]
            + [frame_edge(), swap_behind_pillar(), reversal(), stranger(), reversal_behind_pillar()])


def poses_of(scene: Scene, t: int, rng: np.random.Generator) -> tuple[Poses, list[int]]:
    """What an estimator reports in frame ``t``: true joints + 0.5 px noise of the people seen;
    hidden joints (outside the picture, behind a pillar or a nearer person) score 0.1, below the
    tracker's threshold."""
    who = [i for i in range(len(scene.people)) if scene.present[t, i]]
    if not who:
        return Poses.empty(len(TEMPLATE)), []
    kps = np.stack([scene.people[i].keypoints(t) for i in who]) + rng.normal(0, 0.5, (len(who), len(TEMPLATE), 2))
    seen = scene.visible(t)[who]
    boxes = np.stack([scene.people[i].box(t) for i in who])
    return Poses(kps, np.where(seen, 0.9, 0.1), boxes, np.full(len(who), 0.95)), who


def run(scene: Scene, config: TrackerConfig, step: int = 1, kinds: list[dict[int, str]] | None = None,
        flow_preset: str = "medium") -> tuple[list[dict[int, int]], PoseTracker]:
    """Track every ``step``-th frame of ``scene`` with DIS flow (``flow_preset``); per frame, person
    index -> track id, and the tracker. ``kinds``, if given, receives per frame person index -> how
    the id was matched."""
    flow = DISFlow(flow_preset)
    tracker = PoseTracker(config)
    rng = np.random.default_rng(0)
    previous, out = None, []
    for t in range(0, len(scene.frames), step):
        current = flow.prepare(scene.frames[t])
        field_ = flow.compute(previous, current) if previous is not None else None
        previous = current
        poses, who = poses_of(scene, t, rng)
        ids = tracker.update(poses, field_, timestamp=t / FPS, image=scene.frames[t])
        out.append(dict(zip(who, ids.tolist())))
        if kinds is not None:
            kinds.append(dict(zip(who, tracker.last_matches.tolist())))
    return out, tracker


def ids_of(result: list[dict[int, int]], person: int) -> list[int]:
    return [frame[person] for frame in result if person in frame]


def flat_render(people: list[Person], num_frames: int, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """Frames of people in flat colours over a flat background: no texture, so DIS sees almost no motion."""
    width, height = size
    colours = [(60, 60, 60), (200, 200, 200), (90, 90, 90), (170, 170, 170)]
    frames = []
    for t in range(num_frames):
        frame = np.full((height, width, 3), 128, np.uint8)
        for person, colour in zip(people, colours):
            kps = person.keypoints(t)
            thick = max(3, round(0.11 * person.height))
            for a, b in COCO_SKELETON:
                cv2.line(frame, tuple(np.round(kps[a]).astype(int)), tuple(np.round(kps[b]).astype(int)), colour, thick)
            cv2.fillPoly(frame, [np.round(kps[[5, 6, 12, 11]]).astype(np.int32)], colour)
        frames.append(frame)
    return frames
