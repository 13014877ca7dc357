"""The pose network on each person every N-th frame, flow carrying their joints in between."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posetrack_cli.core.types import Detections, Poses
from posetrack_cli.io.outputs import OutputSet
from posetrack_cli.io.video import ImageFolderSource
from posetrack_cli.models.flow import DISFlow
from posetrack_cli.run.pipeline import Pipeline, PipelineConfig
from posetrack_cli.tracking.carry import carry_plan
from posetrack_cli.tracking.proposals import moved_poses, unified_order
from posetrack_cli.tracking.similarity import iou_matrix

from synthetic import Person, linear_path, render

FRAMES = 13


class TruthEstimator:
    """Stands in for the pose network: the true pose of the person a box covers best, found by the
    frame's image; records which person it ran on in which frame."""

    num_keypoints = 17

    def __init__(self, people: list[Person], frames: list[np.ndarray], score: float = 0.9) -> None:
        self.people, self.score = people, score
        self.index = {frame.tobytes(): t for t, frame in enumerate(frames)}
        self.ran: list[tuple[int, int]] = []  # (frame, person)

    def estimate(self, image: np.ndarray, detections: Detections) -> Poses:
        t = self.index[image.tobytes()]
        truth = np.stack([p.box(t) for p in self.people])
        best = iou_matrix(detections.boxes, truth).argmax(1)
        self.ran += [(t, int(b)) for b in best]
        kps = np.stack([self.people[b].keypoints(t) for b in best]) if len(best) else np.zeros((0, 17, 2))
        return Poses(kps, np.full((len(best), 17), self.score), detections.boxes, detections.scores)


class TrueBoxes:
    def __init__(self, people: list[Person]) -> None:
        self.people = people

    def get(self, index: int) -> Detections:
        return Detections(np.stack([p.box(index) for p in self.people]), np.full(len(self.people), 0.98))


def scene(tmp_path: Path, steps: list[float]) -> tuple[list[Person], list[np.ndarray], Path]:
    import cv2

    people = [Person(150, linear_path((40 + 200 * i, 40 + 60 * i), (step, 0), FRAMES), seed=i + 1)
              for i, step in enumerate(steps)]
    frames = render(people, FRAMES, size=(640, 360))
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:03d}.png"), frame)
    return people, frames, folder


def run(folder: Path, out: Path, pipeline: Pipeline, boxes: object) -> dict:
    out.mkdir()
    with OutputSet(out, "seq").open([str(k) for k in range(17)]) as writer:
        result = pipeline.run(ImageFolderSource(folder), writer, boxes=boxes)
        writer.commit({"frames": result.frames})
    return json.loads((out / "seq.json").read_text())



def test_each_person_meets_the_network_every_third_frame_and_keeps_their_id(tmp_path: Path) -> None:
    people, frames, folder = scene(tmp_path, [6.0, -6.0])
    every = TruthEstimator(people, frames)
    doc1 = run(folder, tmp_path / "every", Pipeline(every, DISFlow(), PipelineConfig()), TrueBoxes(people))
    third = TruthEstimator(people, frames)
    pipeline = Pipeline(third, DISFlow(), PipelineConfig(pose_every=3))
    loop = pipeline.new_state()
    tracked = list(pipeline.track(ImageFolderSource(folder), boxes=TrueBoxes(people), state=loop))
    assert len(every.ran) == 2 * FRAMES
    # Frames 0, 3, 6, 9, 12 for each person: the detections of the frames between take the carried pose.
    assert sorted(third.ran) == sorted((t, p) for t in range(0, FRAMES, 3) for p in (0, 1))
    assert loop.poses_carried == 2 * FRAMES - len(third.ran)
    ids1 = [sorted(a["track_id"] for a in doc1["annotations"] if a["image_id"] == t) for t in range(FRAMES)]
    assert [sorted(t.track_ids.tolist()) for _, t in tracked] == ids1 == [[0, 1]] * FRAMES
    # The carried joints are where the people are: within 2 px of the truth (DIS flow on textured figures).
    for frame, t in tracked:
        for kps, tid in zip(t.poses.keypoints, t.track_ids):
            assert np.abs(kps - people[int(tid)].keypoints(frame.index)).max() < 2.0


def test_a_fast_step_or_a_weak_pose_meets_the_network_every_frame(tmp_path: Path) -> None:
    people, frames, folder = scene(tmp_path, [24.0, 5.0])  # 24 px a frame is 0.16 of a 150-px figure
    estimator = TruthEstimator(people, frames)
    pipeline = Pipeline(estimator, DISFlow(), PipelineConfig(pose_every=4), detector=None)
    list(pipeline.track(ImageFolderSource(folder), boxes=TrueBoxes(people)))
    fast = [t for t, p in estimator.ran if p == 0]
    slow = [t for t, p in estimator.ran if p == 1]
    assert fast == list(range(FRAMES))
    assert slow == list(range(0, FRAMES, 4))
    weak = TruthEstimator(people, frames, score=0.45)  # trusted (>= 0.4) but under the carrying confidence
    list(Pipeline(weak, DISFlow(), PipelineConfig(pose_every=4)).track(ImageFolderSource(folder),
                                                                        boxes=TrueBoxes(people)))
    assert len(weak.ran) == 2 * FRAMES


def pose_at(x: float, y: float, height: float = 100.0, score: float = 0.9) -> Poses:
    kps = np.stack([x + np.linspace(-15, 15, 17), np.linspace(y, y + height, 17)], axis=-1)[None]
    box = np.array([[x - 20, y, x + 20, y + height]])
    return Poses(kps, np.full((1, 17), score), box, np.array([0.9]))


class Shift:
    """A flow field moving everything by ``(dx, dy)``."""

    def __init__(self, dx: float, dy: float) -> None:
        self.d = np.array([dx, dy], np.float32)

    def propagate(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, np.float32) + self.d


def plan_for(carried: Poses, ages: list[int], detected: Detections, *, pose_every: int = 3,
             shift: tuple[float, float] = (2.0, 0.0)) -> np.ndarray:
    propagated, origin, moved = moved_poses(carried, Shift(*shift), frame_size=(640, 480))  # type: ignore[arg-type]
    kept = unified_order(detected, propagated)
    return carry_plan(carried, np.array(ages), moved, kept, detected, propagated, origin, pose_every=pose_every)


def test_the_plan_carries_young_confident_steady_poses_only() -> None:
    two = Poses.concatenate([pose_at(100, 50), pose_at(300, 50)])
    assert plan_for(two, [0, 1], Detections.empty()).tolist() == [0, 1]
    assert plan_for(two, [2, 0], Detections.empty()).tolist() == [-1, 1]  # the first is due
    assert plan_for(two, [0, 0], Detections.empty(), pose_every=1).tolist() == [-1, -1]
    assert plan_for(two, [0, 0], Detections.empty(), shift=(12.0, 0.0)).tolist() == [-1, -1]  # 0.12 of 100 px
    weak = Poses.concatenate([pose_at(100, 50, score=0.45), pose_at(300, 50)])
    assert plan_for(weak, [0, 0], Detections.empty()).tolist() == [-1, 1]


def test_a_detection_on_a_carried_person_keeps_their_pose_and_a_stranger_gets_the_network() -> None:
    one = pose_at(100, 50)
    moved_box = one.boxes[0] + [2, 0, 2, 0]
    detected = Detections(np.array([moved_box, [400, 50, 440, 150]]), np.array([0.99, 0.97]))
    assert plan_for(one, [0], detected).tolist() == [0, -1]  # the flow box lost NMS to the detection


@pytest.mark.parametrize("pose_every", [0, -2])
def test_pose_every_must_be_at_least_one(pose_every: int) -> None:
    with pytest.raises(ValueError, match="pose_every"):
        PipelineConfig(pose_every=pose_every)


def test_a_run_resumed_mid_way_carries_the_same_poses_as_one_that_was_not(tmp_path: Path) -> None:
    from posetrack_cli.core.state import pack, unpack

    people, frames, folder = scene(tmp_path, [6.0, -6.0])
    straight = Pipeline(TruthEstimator(people, frames), DISFlow(), PipelineConfig(pose_every=3, overlap=False))
    whole = [(f.index, t.track_ids.tolist(), t.poses.keypoints.tolist())
             for f, t in straight.track(ImageFolderSource(folder), boxes=TrueBoxes(people))]
    first = Pipeline(TruthEstimator(people, frames), DISFlow(), PipelineConfig(pose_every=3, overlap=False))
    loop = first.new_state()
    head = []
    for f, t in first.track(ImageFolderSource(folder), boxes=TrueBoxes(people), state=loop):
        head.append((f.index, t.track_ids.tolist(), t.poses.keypoints.tolist()))
        if loop.tracked_index == 4:  # stopped after tracking frame 4, between two passes of the network (ages 1);
            break  # the frames after the one just yielded wait in the state for their tracks' confirmation
    plain, arrays = pack(loop.state())
    estimator = TruthEstimator(people, frames)
    second = Pipeline(estimator, DISFlow(), PipelineConfig(pose_every=3, overlap=False))
    source = ImageFolderSource(folder)
    prime = source.resume_after({"index": 4, "file": "004.png"})
    tail = [(f.index, t.track_ids.tolist(), t.poses.keypoints.tolist())
            for f, t in second.track(source, boxes=TrueBoxes(people), state=second.restore_state(unpack(plain, arrays)),
                                     prime=prime)]
    assert head + tail == whole
    assert sorted({t for t, _ in estimator.ran}) == [6, 9, 12]  # the turn of the network went on where it was
