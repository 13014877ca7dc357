"""Guards against regressions the rest of the suite let through: greedy matching best pair first,
the paper's NMS at IoU 0.5, the tie margin and the colour veto of the lost memory, and flow boxes
that carry their detection's score (never the rescored person score, which would compound).

Poses are built by hand (tests/synthetic.py's figure at a fixed place), flow is zero and frames are
flat grey with painted torsos, so every number here is exact and the file runs in about a second.
"""

from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np
import pytest

from posetrack_cli.core.flow_field import FlowField
from posetrack_cli.core.types import Detections, Frame, Poses, TrackedFrame
from posetrack_cli.run.pipeline import Pipeline, PipelineConfig
from posetrack_cli.tracking.proposals import unify_boxes
from posetrack_cli.tracking.tracker import PoseTracker, clear_winners, greedy_match

from synthetic import Person

FPS = 30.0
SIZE = (480, 320)  # (width, height) of every frame here
HEIGHT = 150  # px, body height of every figure here
RED, BLUE = (0, 0, 255), (255, 0, 0)  # BGR
BOX = [100.0, 50.0, 200.0, 250.0]  # 100 px wide: shifted by s px it overlaps itself at IoU (100 - s) / (100 + s)


# ----------------------------------------------------------------------------------------------
# Hand-placed poses, painted frames, and a pipeline of stand-ins (zero flow, boxes by frame)


def figures(*places: tuple[float, float]) -> Poses:
    """Poses of standing figures whose head-top centres are at ``places`` (x, y), joints at 0.9."""
    people = [Person(HEIGHT, np.array([place], np.float32), seed=0) for place in places]
    if not people:
        return Poses.empty(17)
    return Poses(np.stack([p.keypoints(0) for p in people]), np.full((len(people), 17), 0.9),
                 np.stack([p.box(0) for p in people]), np.full(len(people), 0.9))


def painted(poses: Poses, colours: list[tuple[int, int, int]]) -> np.ndarray:
    """A flat grey frame with each pose's torso (shoulders to hips) filled with its colour."""
    image = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    for kps, colour in zip(poses.keypoints, colours):
        cv2.fillPoly(image, [np.round(kps[[5, 6, 12, 11]]).astype(np.int32)], colour)
    return image


class StillFlow:
    """Optical flow of a static scene: zero everywhere."""

    name = "still"

    def prepare(self, image: np.ndarray) -> tuple[int, int]:
        return image.shape[0], image.shape[1]

    def compute(self, prev: tuple[int, int], cur: tuple[int, int]) -> FlowField:
        return FlowField(np.zeros((*cur, 2), np.float32))


class ScoredEstimator:
    """One pose per box, its 17 joints on a grid spanning the box shrunk by the flow box's 15 %
    (so the flow box of the pose is the box itself), every joint scoring ``joint_score``. Records
    the box scores it was given, frame by frame."""

    num_keypoints = 17

    def __init__(self, joint_score: float) -> None:
        self.joint_score = joint_score
        self.box_scores: list[list[float]] = []

    def estimate(self, image: np.ndarray, detections: Detections) -> Poses:
        self.box_scores.append(detections.scores.tolist())
        n = len(detections)
        centre = (detections.boxes[:, :2] + detections.boxes[:, 2:]) / 2  # (N, 2)
        half = (detections.boxes[:, 2:] - detections.boxes[:, :2]) / 2 / 1.15  # (N, 2)
        grid = np.stack(np.meshgrid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 4)), -1).reshape(-1, 2)
        unit = np.concatenate([grid, [[0.0, 0.0]]])  # (17, 2) in [-1, 1], the corners included
        kps = centre[:, None, :] + unit[None] * half[:, None, :]
        return Poses(kps, np.full((n, 17), self.joint_score), detections.boxes, detections.scores)


class FramesBoxes:
    """Detections by frame index, as from a boxes file; none in frames not given."""

    def __init__(self, by_frame: dict[int, Detections]) -> None:
        self.by_frame = by_frame

    def get(self, index: int) -> Detections:
        return self.by_frame.get(index, Detections.empty())


class GreyFrames:
    """``count`` flat grey frames at 30 fps."""

    path = "grey"

    def __init__(self, count: int) -> None:
        self.frame_count = count

    def frames(self) -> Iterator[Frame]:
        for t in range(self.frame_count):
            yield Frame(t, t / FPS, np.full((SIZE[1], SIZE[0], 3), 128, np.uint8))

    def close(self) -> None:
        pass


def run_pipeline(config: PipelineConfig, boxes: FramesBoxes, estimator: ScoredEstimator,
                 frames: int) -> Iterator[TrackedFrame]:
    pipeline = Pipeline(estimator, StillFlow(), config)
    for _, tracked in pipeline.track(GreyFrames(frames), boxes=boxes):
        yield tracked


# ----------------------------------------------------------------------------------------------
# 1. Greedy matching: the best pair first, wherever it is


def test_greedy_matching_takes_the_best_pair_first_wherever_it_is() -> None:
    """The maximum is in a later row: taking rows in order would give row 0 its best column first."""
    # Row 0's best is column 0 (0.6), but column 0 fits row 1 far better (0.9): best-first pairs
    # (1, 0) then (0, 1); rows in order would pair (0, 0) and leave row 1 with 0.1, below 0.3.
    assert sorted(greedy_match(np.array([[0.6, 0.5], [0.9, 0.1]]), 0.3)) == [(0, 1), (1, 0)]
    # Three rows, the best pair in the last one.
    sim = np.array([[0.5, 0.4, 0.0],
                    [0.0, 0.6, 0.35],
                    [0.95, 0.0, 0.0]])
    assert sorted(greedy_match(sim, 0.3)) == [(1, 1), (2, 0)]  # rows in order: (0, 0), (1, 1)
    # A wide matrix whose best pair is in row 1 (rows in order: (0, 1), then (1, 2)).
    assert sorted(greedy_match(np.array([[0.2, 0.7, 0.1], [0.1, 0.9, 0.5]]), 0.15)) == [(0, 0), (1, 1)]


def test_a_pose_goes_to_the_track_it_fits_best_even_when_an_earlier_track_also_fits() -> None:
    """Two people stand close (B 15 px right of A); A is missed in the next frame. B's pose fits
    A's track above the threshold too, but fits B's own track perfectly: it keeps B's id."""
    tracker = PoseTracker()
    a, b = (100.0, 20.0), (115.0, 20.0)
    assert tracker.update(figures(a, b), timestamp=0.0).tolist() == [0, 1]
    assert tracker.update(figures(b), timestamp=1 / FPS).tolist() == [1]
    assert tracker.last_matches.tolist() == ["live"]
    assert tracker.update(figures(a, b), timestamp=2 / FPS).tolist() == [0, 1]  # A back in the queue


# ----------------------------------------------------------------------------------------------
# 2. Detection and flow boxes are unified by NMS at IoU 0.5 (paper defaults)


def shifted(box: list[float], dx: float) -> list[float]:
    return [box[0] + dx, box[1], box[2] + dx, box[3]]


@pytest.mark.parametrize("shift, kept", [(20.0, 1), (43.0, 2)], ids=["iou-0.67", "iou-0.40"])
def test_a_flow_box_overlapping_a_detection_at_iou_above_one_half_is_the_same_person(shift: float, kept: int) -> None:
    """With the defaults, IoU 0.67 is one person (the detection is kept), IoU 0.40 two people."""
    detected = Detections([shifted(BOX, shift)], [0.95])
    from_flow_boxes = Detections([BOX], [0.9])
    boxes, from_flow = unify_boxes(detected, from_flow_boxes)
    assert len(boxes) == kept
    assert from_flow.tolist() == [False] + [True] * (kept - 1)  # the detection always survives
    np.testing.assert_allclose(boxes.boxes[0], shifted(BOX, shift))


@pytest.mark.parametrize("shift, people", [(20.0, 1), (43.0, 2)], ids=["iou-0.67", "iou-0.40"])
def test_the_pipeline_by_default_merges_a_detection_and_a_flow_box_overlapping_above_iou_one_half(
        shift: float, people: int) -> None:
    """Frame 0 finds a person; in frame 1 the detector's box is shifted: at IoU 0.67 with the flow
    box it is the same person, found once under the same id; at IoU 0.40 the flow box stays too."""
    boxes = FramesBoxes({0: Detections([BOX], [0.9]), 1: Detections([shifted(BOX, shift)], [0.95])})
    frames = list(run_pipeline(PipelineConfig(overlap=False), boxes, ScoredEstimator(0.9), frames=2))
    second = frames[1]
    assert len(second.poses) == people
    assert second.sources is not None and sorted(second.sources.tolist()) == (["detector"] if people == 1
                                                                              else ["detector", "flow"])
    if people == 1:
        assert second.track_ids.tolist() == frames[0].track_ids.tolist() == [0]


# ----------------------------------------------------------------------------------------------
# 3. A reappearing pose that fits two lost tracks nearly equally well gets a new id


def test_clear_winners_refuses_pairs_within_the_margin_and_keeps_clear_ones() -> None:
    """Rows are tracks, columns poses: a pair is kept only if it beats every rival by the margin."""
    near = np.array([[0.81], [0.73]])  # one pose fitting track 0 and track 1 within 0.1
    assert clear_winners(near, np.ones((2, 1), bool), 0.1) == []
    assert clear_winners(near, np.ones((2, 1), bool), 0.0) == [(0, 0)]  # without a margin: a guess
    # A track with two poses nearly as good: neither pose gets it.
    assert clear_winners(np.array([[0.8, 0.75]]), np.ones((1, 2), bool), 0.1) == []
    # Clear by more than the margin: kept.
    assert clear_winners(np.array([[0.9], [0.75]]), np.ones((2, 1), bool), 0.1) == [(0, 0)]
    # A rival that is not admissible is no rival.
    assert clear_winners(near, np.array([[True], [False]]), 0.1) == [(0, 0)]
    # Two clear pairs side by side are both kept.
    assert clear_winners(np.array([[0.9, 0.2], [0.3, 0.7]]), np.ones((2, 2), bool), 0.1) == [(0, 0), (1, 1)]


def lost_pair_then(place: tuple[float, float]) -> tuple[list[int], str]:
    """Two people standing at x 100 and 160 are seen for 5 frames, then nobody for 1 s (30 frames,
    6 x the queue, within max_lost): both tracks are lost. One pose appears at ``place``; its id and
    how it got it."""
    tracker = PoseTracker()
    for t in range(5):
        assert tracker.update(figures((100, 20), (160, 20)), timestamp=t / FPS).tolist() == [0, 1]
    for t in range(5, 35):
        tracker.update(figures(), timestamp=t / FPS)
    ids = tracker.update(figures(place), timestamp=35 / FPS).tolist()
    return ids, str(tracker.last_matches[0])


def test_a_pose_fitting_two_lost_tracks_nearly_equally_gets_a_new_id() -> None:
    """At x 127 the pose is 27 px from one lost person and 33 px from the other: it fits both
    within the tie margin, so it is given a new id rather than one of theirs by a guess."""
    assert lost_pair_then((127, 20)) == ([2], "new")
    assert lost_pair_then((130, 20)) == ([2], "new")  # exactly between: a tie
    # The premise: the lost memory does re-find a pose that clearly fits one of them.
    assert lost_pair_then((105, 20)) == ([0], "lost")
    assert lost_pair_then((155, 20)) == ([1], "lost")


# ----------------------------------------------------------------------------------------------
# 4. The colour veto: a lost track is not re-identified with someone in other clothes


def lost_red_shirt_then(places: list[tuple[float, float]], colours: list[tuple[int, int, int]],
                        hidden: int) -> tuple[list[int], list[str], int]:
    """A person in a red shirt stands at (100, 20) for 5 frames and is then unseen for ``hidden``
    frames (longer than the queue, within max_lost); then poses at ``places`` in shirts of
    ``colours`` appear. Their ids, how they got them, and the tracker's re-identification count."""
    tracker = PoseTracker()
    for t in range(5):
        poses = figures((100, 20))
        assert tracker.update(poses, timestamp=t / FPS, image=painted(poses, [RED])).tolist() == [0]
    for t in range(5, 5 + hidden):
        tracker.update(figures(), timestamp=t / FPS, image=painted(figures(), []))
    poses = figures(*places)
    ids = tracker.update(poses, timestamp=(5 + hidden) / FPS, image=painted(poses, colours)).tolist()
    return ids, tracker.last_matches.tolist(), tracker.reidentified


def test_a_lost_track_is_not_given_to_someone_in_other_clothes_standing_where_it_was() -> None:
    """Same place, same size after 0.5 s: a blue shirt is someone else (new id), the red shirt is
    the lost person back (old id) -- so it is the colours that decide."""
    assert lost_red_shirt_then([(100, 20)], [BLUE], 15) == ([1], ["new"], 0)
    assert lost_red_shirt_then([(100, 20)], [RED], 15) == ([0], ["lost"], 1)


def test_the_lost_person_is_found_by_colour_beside_a_stranger_standing_where_they_were_predicted() -> None:
    """After 1 s, a blue shirt stands exactly where the red-shirted person was lost, and a red shirt
    50 px beside it. Position favours the blue shirt, but its colours veto it: the red shirt gets
    the old id and the blue shirt a new one."""
    ids, matches, reidentified = lost_red_shirt_then([(100, 20), (150, 20)], [BLUE, RED], 30)
    assert ids == [1, 0] and matches == ["new", "lost"] and reidentified == 1


# ----------------------------------------------------------------------------------------------
# 5. Flow boxes carry the score of the detection they descend from: no compounding


def test_a_person_carried_by_flow_boxes_keeps_the_score_of_their_detection_frame_after_frame() -> None:
    """Detected once (box 0.9), then carried by flow boxes only for 5 frames, with joints at 0.8:
    every flow box scores 0.9 and the person 0.9 x 0.8 = 0.72 in every frame, not 0.9 x 0.8^k."""
    frames = 6
    estimator = ScoredEstimator(0.8)
    tracked = list(run_pipeline(PipelineConfig(overlap=False), FramesBoxes({0: Detections([BOX], [0.9])}),
                                estimator, frames))
    assert [t.sources.tolist() if t.sources is not None else None for t in tracked] == \
        [["detector"]] + [["flow"]] * (frames - 1)
    assert [t.track_ids.tolist() for t in tracked] == [[0]] * frames
    assert [t.poses.scores.tolist() for t in tracked] == [[pytest.approx(0.72)]] * frames
    assert estimator.box_scores == [[pytest.approx(0.9)]] * frames  # what each flow box carried
