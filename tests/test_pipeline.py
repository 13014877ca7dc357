"""Algorithm 1 wiring: detections + flow boxes -> NMS -> poses -> rescoring -> tracking."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from posetrack_cli.core.types import Detections, Poses
from posetrack_cli.io.outputs import OutputSet
from posetrack_cli.io.video import ImageFolderSource
from posetrack_cli.models.flow import DISFlow
from posetrack_cli.run.pipeline import Pipeline, PipelineConfig
from posetrack_cli.tracking.scoring import rescore
from posetrack_cli.tracking.similarity import iou_matrix

from synthetic import Person, linear_path, render

FRAMES = 12


class OracleEstimator:
    """Stands in for the pose network: for each box, the true pose of the person it covers best
    (IoU > 0.3), or a pose with low joint scores for a box on nobody."""

    num_keypoints = 17

    def __init__(self, people: list[Person]) -> None:
        self.people = people
        self.frame = -1
        self.boxes_seen: list[np.ndarray] = []

    def estimate(self, image: np.ndarray, detections: Detections) -> Poses:
        self.frame += 1
        self.boxes_seen.append(detections.boxes)
        truth = np.stack([p.box(self.frame) for p in self.people])
        iou = iou_matrix(detections.boxes, truth)
        kps, scores = [], []
        for row in iou:
            best = int(row.argmax()) if len(row) else -1
            if best >= 0 and row[best] > 0.3:
                kps.append(self.people[best].keypoints(self.frame))
                scores.append(np.full(17, 0.9))
            else:
                kps.append(np.zeros((17, 2)))
                scores.append(np.full(17, 0.1))
        if not kps:
            return Poses.empty(17)
        return Poses(np.array(kps), np.array(scores), detections.boxes, detections.scores)


class MissingDetector:
    """Boxes of every person except ``missing`` in ``frames``."""

    name = "stub"

    def __init__(self, people: list[Person], missing: int, frames: range) -> None:
        self.people, self.missing, self.frames, self.t = people, missing, frames, -1

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        self.t += 1
        boxes = [p.box(self.t) for i, p in enumerate(self.people) if not (i == self.missing and self.t in self.frames)]
        return [Detections(np.array(boxes).reshape(-1, 4), np.full(len(boxes), 0.98))]


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Person], Path]:
    import cv2

    people = [Person(150, linear_path((60, 30), (12, 0), FRAMES), seed=1),
              Person(150, linear_path((380, 150), (-12, 0), FRAMES), seed=2)]
    folder = tmp_path_factory.mktemp("seq")
    for t, frame in enumerate(render(people, FRAMES)):
        cv2.imwrite(str(folder / f"{t:03d}.png"), frame)
    return people, folder


def test_person_missed_by_the_detector_is_kept_by_flow_boxes_with_the_same_id(sequence, tmp_path: Path) -> None:
    people, folder = sequence
    estimator = OracleEstimator(people)
    pipeline = Pipeline(estimator, DISFlow(), PipelineConfig(), MissingDetector(people, 1, range(4, 9)))
    with OutputSet(tmp_path, "seq").open([str(k) for k in range(17)]) as writer:
        result = pipeline.run(ImageFolderSource(folder), writer)
        writer.commit({"frames": FRAMES})
    import json

    doc = json.loads((tmp_path / "seq.json").read_text())
    per_frame = {}
    for ann in doc["annotations"]:
        per_frame.setdefault(ann["image_id"], []).append(ann)
    assert result.frames == FRAMES and result.partial is None
    assert all(len(per_frame[t]) == 2 for t in range(FRAMES))  # nobody lost in frames 4-8
    ids_of_person1 = {a["track_id"] for t in range(FRAMES) for a in per_frame[t]
                      if abs(a["keypoints"][0] - people[1].keypoints(t)[0, 0]) < 1}
    assert ids_of_person1 == {1} and result.tracks == 2
    # In frames 4-8 person 1's box came from the flow: it must cover the true box well.
    for t in range(4, 9):
        assert iou_matrix(estimator.boxes_seen[t], people[1].box(t)[None]).max() > 0.6


def test_nobody_is_invented_where_the_detector_sees_no_one(sequence, tmp_path: Path) -> None:
    people, folder = sequence
    estimator = OracleEstimator(people)
    pipeline = Pipeline(estimator, DISFlow(), PipelineConfig(), MissingDetector(people, 0, range(0, FRAMES)))
    with OutputSet(tmp_path, "seq").open([str(k) for k in range(17)]) as writer:
        result = pipeline.run(ImageFolderSource(folder), writer)
        writer.commit({"frames": FRAMES})
    assert result.poses == FRAMES and result.tracks == 1  # only person 1, every frame


def test_rescore_multiplies_box_score_by_mean_confident_joint_score() -> None:
    scores = np.array([[0.9, 0.5, 0.2] + [0.0] * 14, [0.1] * 17])
    poses = Poses(np.zeros((2, 17, 2)), scores, np.zeros((2, 4)), [0.8, 0.9])
    out = rescore(poses, 0.4)
    np.testing.assert_allclose(out.scores, [0.8 * 0.7, 0.0], rtol=1e-6)


class RecordedBoxes:
    """Boxes by frame index, as from a detections file; records which frames were asked for.
    Person ``late`` is not seen before frame ``late_from``."""

    name = "recorded"

    def __init__(self, people: list[Person], late: int, late_from: int) -> None:
        self.people, self.late, self.late_from, self.asked = people, late, late_from, []

    def get(self, index: int) -> Detections:
        self.asked.append(index)
        boxes = [p.box(index) for i, p in enumerate(self.people) if i != self.late or index >= self.late_from]
        return Detections(np.array(boxes).reshape(-1, 4), np.full(len(boxes), 0.98))


def test_keyframe_detection_asks_every_nth_frame_and_flow_carries_people_between(sequence, tmp_path: Path) -> None:
    import json

    people, folder = sequence
    boxes = RecordedBoxes(people, late=1, late_from=2)  # person 1 could be detected from frame 2 on
    pipeline = Pipeline(OracleEstimator(people), DISFlow(), PipelineConfig(detect_every=4))
    with OutputSet(tmp_path, "seq").open([str(k) for k in range(17)]) as writer:
        result = pipeline.run(ImageFolderSource(folder), writer, boxes=boxes)
        writer.commit({"frames": FRAMES})
    assert boxes.asked == [0, 4, 8]
    people_per_frame = [0] * FRAMES
    ids = {0: set(), 1: set()}
    for ann in json.loads((tmp_path / "seq.json").read_text())["annotations"]:
        t = ann["image_id"]
        people_per_frame[t] += 1
        for i, person in enumerate(people):
            if abs(ann["keypoints"][0] - person.keypoints(t)[0, 0]) < 1:
                ids[i].add(ann["track_id"])
    # Person 1 is found at the first keyframe that sees them (4), not at frame 2; both are then
    # carried by flow boxes through the frames without detection, each under one id.
    assert people_per_frame == [1, 1, 1, 1] + [2] * (FRAMES - 4)
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and ids[0] != ids[1] and result.tracks == 2


class FixedEstimator:
    """One pose per box on the box's centre; ``confident(i)`` joints of box ``i`` score ``high``, the rest 0.1."""

    num_keypoints = 17

    def __init__(self, confident: Callable[[int], int], high: float = 0.9) -> None:
        self.confident, self.high = confident, high

    def estimate(self, image: np.ndarray, detections: Detections) -> Poses:
        n = len(detections)
        centre = (detections.boxes[:, :2] + detections.boxes[:, 2:]) / 2
        kps = centre[:, None, :] + np.linspace(-20, 20, 17)[None, :, None]  # (N, 17, 2)
        scores = np.full((n, 17), 0.1, np.float32)
        for i in range(n):
            scores[i, : self.confident(i)] = self.high
        return Poses(kps, scores, detections.boxes, detections.scores)


class FrameBoxes:
    """The same boxes in frames ``frames`` (all frames if None)."""

    def __init__(self, boxes: list[list[float]], scores: list[float], frames: range | None = None) -> None:
        self.detections, self.frames = Detections(boxes, scores), frames

    def get(self, index: int) -> Detections:
        return self.detections if self.frames is None or index in self.frames else Detections.empty()


def run_sequence(folder: Path, out: Path, pipeline: Pipeline, boxes: object) -> dict:
    import json

    with OutputSet(out, "seq").open([str(k) for k in range(17)]) as writer:
        pipeline.run(ImageFolderSource(folder), writer, boxes=boxes)
        writer.commit({"frames": FRAMES})
    return json.loads((out / "seq.json").read_text())


@pytest.mark.parametrize("min_joints", [3, 2])
def test_poses_with_too_few_confident_joints_are_dropped(sequence, tmp_path: Path, min_joints: int) -> None:
    _, folder = sequence
    boxes = FrameBoxes([[20, 20, 120, 220], [300, 40, 400, 240]], [0.9, 0.9])
    # Box 0's pose has 3 joints at 0.9, box 1's pose 2: with the paper's minimum of 3 only box 0 is a person.
    pipeline = Pipeline(FixedEstimator(lambda i: 3 - i), DISFlow(), PipelineConfig(min_joints=min_joints))
    doc = run_sequence(folder, tmp_path, pipeline, boxes)
    per_frame = {t: sum(a["image_id"] == t for a in doc["annotations"]) for t in range(FRAMES)}
    assert set(per_frame.values()) == {1 if min_joints == 3 else 2}


def test_a_person_carried_by_flow_keeps_the_score_of_their_detection(sequence, tmp_path: Path) -> None:
    """Flow boxes carry the box score they descend from: with joint scores above 1 (heatmap
    maxima overshoot), the person score stays 0.9 x 1 in every frame, never compounding."""
    _, folder = sequence
    boxes = FrameBoxes([[40, 30, 140, 230]], [0.9], frames=range(0, 1))  # detected in frame 0 only
    pipeline = Pipeline(FixedEstimator(lambda i: 17, high=1.3), DISFlow(), PipelineConfig())
    doc = run_sequence(folder, tmp_path, pipeline, boxes)
    anns = doc["annotations"]
    assert len(anns) == FRAMES and len({a["track_id"] for a in anns}) == 1
    assert [a["score"] for a in anns] == [0.9] * FRAMES
    assert [a["source"] for a in anns] == ["detector"] + ["flow"] * (FRAMES - 1)
    assert max(max(a["keypoint_scores"]) for a in anns) == 1.0  # clipped to [0, 1]


@pytest.mark.parametrize("threshold, people", [(0.5, 1), (0.2, 2)])
def test_the_pipeline_applies_the_detection_threshold(sequence, tmp_path: Path, threshold: float, people: int) -> None:
    _, folder = sequence
    boxes = FrameBoxes([[20, 20, 120, 220], [300, 40, 400, 240]], [0.9, 0.3], frames=range(0, 1))
    pipeline = Pipeline(FixedEstimator(lambda i: 17), DISFlow(), PipelineConfig(detection_threshold=threshold))
    doc = run_sequence(folder, tmp_path, pipeline, boxes)
    assert sum(a["image_id"] == 0 for a in doc["annotations"]) == people


def test_rescoring_counts_joints_above_the_released_codes_threshold() -> None:
    """The released code's 0.2, not the tracker's 0.4: a joint at 0.3 counts in the person score."""
    scores = np.array([[0.9, 0.3, 0.2, 0.1] + [0.0] * 13])
    poses = Poses(np.zeros((1, 17, 2)), scores, np.zeros((1, 4)), [1.0])
    assert rescore(poses, 0.2).scores[0] == pytest.approx((0.9 + 0.3) / 2)
    assert rescore(poses, 0.4).scores[0] == pytest.approx(0.9)
