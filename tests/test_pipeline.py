"""Algorithm 1 wiring: detections + flow boxes -> NMS -> poses -> rescoring -> tracking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posetrack_cli.flow import DISFlow
from posetrack_cli.outputs import TrackWriter
from posetrack_cli.pipeline import Pipeline, PipelineConfig, rescore
from posetrack_cli.similarity import iou_matrix
from posetrack_cli.types import Detections, Poses
from posetrack_cli.video import ImageFolderSource
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
    with TrackWriter(tmp_path, "seq", [str(k) for k in range(17)]) as writer:
        result = pipeline.run(ImageFolderSource(folder), writer)
        writer.commit({})
    import json

    doc = json.loads((tmp_path / "seq.json").read_text())
    per_frame = {}
    for ann in doc["annotations"]:
        per_frame.setdefault(ann["image_id"], []).append(ann)
    assert result.frames == FRAMES and result.partial is None
    assert all(len(per_frame[t]) == 2 for t in range(FRAMES))  # nobody lost in frames 4-8
    ids_of_person1 = {a["track_id"] for t in range(FRAMES) for a in per_frame[t] if abs(a["keypoints"][0] - people[1].keypoints(t)[0, 0]) < 1}
    assert ids_of_person1 == {1} and result.tracks == 2
    # In frames 4-8 person 1's box came from the flow: it must cover the true box well.
    for t in range(4, 9):
        assert iou_matrix(estimator.boxes_seen[t], people[1].box(t)[None]).max() > 0.6


def test_nobody_is_invented_where_the_detector_sees_no_one(sequence, tmp_path: Path) -> None:
    people, folder = sequence
    estimator = OracleEstimator(people)
    pipeline = Pipeline(estimator, DISFlow(), PipelineConfig(), MissingDetector(people, 0, range(0, FRAMES)))
    with TrackWriter(tmp_path, "seq", [str(k) for k in range(17)]) as writer:
        result = pipeline.run(ImageFolderSource(folder), writer)
        writer.commit({})
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
    with TrackWriter(tmp_path, "seq", [str(k) for k in range(17)]) as writer:
        result = pipeline.run(ImageFolderSource(folder), writer, boxes=boxes)
        writer.commit({})
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
