"""Converters to and from other pose tools (posetrack_cli/io/interop.py): Ultralytics results,
supervision's KeyPoints, COCO results in memory. Hand-built stand-ins run everywhere; the real
libraries' objects are tested where they are installed (supervision: ``pip install -e ".[interop]"``;
Ultralytics is not in any extra, see pyproject.toml)."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.types import Poses, TrackedFrame
from posetrack_cli.io.interop import (
    coco_results_from_tracked,
    poses_from_coco_results,
    poses_from_supervision,
    poses_from_ultralytics,
    to_supervision,
)
from posetrack_cli.tracking.tracker import PoseTracker

# A standing person 100 px tall around (0, 0), COCO order: head, shoulders, elbows, wrists, hips, knees, ankles.
SKELETON = np.array([
    [0, -45], [-3, -48], [3, -48], [-7, -46], [7, -46], [-12, -30], [12, -30], [-16, -12], [16, -12],
    [-18, 5], [18, 5], [-8, 5], [8, 5], [-9, 28], [9, 28], [-9, 50], [9, 50]], np.float32)


def person(x: float, y: float) -> np.ndarray:
    return SKELETON + np.array([x, y], np.float32)


def fake_result(xy: Any, conf: Any = None, boxes: Any = None, box_conf: Any = None) -> SimpleNamespace:
    """An Ultralytics pose result's attributes, as ``model(frame)[0]`` has them."""
    xy = np.asarray(xy, np.float32)
    if boxes is None:
        boxes = np.array([[*p.min(0) - 5, *p.max(0) + 5] for p in xy], np.float32).reshape(-1, 4)
    if box_conf is None:
        box_conf = np.full(len(xy), 0.9, np.float32)
    return SimpleNamespace(keypoints=SimpleNamespace(xy=xy, conf=conf),
                           boxes=SimpleNamespace(xyxy=boxes, conf=box_conf))


def tracked_frame(index: int = 0, people: int = 2, ids: list[int] | None = None) -> TrackedFrame:
    rng = np.random.default_rng(index)
    kps = np.array([person(100 + 150 * i + index, 120) for i in range(people)], np.float32).reshape(people, 17, 2)
    poses = Poses(kps + rng.uniform(-1, 1, kps.shape), rng.uniform(0, 1, (people, 17)),
                  np.array([[*p.min(0) - 4, *p.max(0) + 4] for p in kps]).reshape(people, 4),
                  rng.uniform(0.5, 1, people))
    return TrackedFrame(index, index / 30, poses, ids if ids is not None else list(range(people)))


def same_poses(a: Poses, b: Poses) -> None:
    for name in ("keypoints", "keypoint_scores", "boxes", "scores"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-5, err_msg=name)


def one_line_error(call: Any, *args: Any, match: str) -> str:
    with pytest.raises(PosetrackError, match=match) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------- ultralytics


def test_ultralytics_poses_with_confidence() -> None:
    xy = np.stack([person(100, 120), person(250, 130)])
    conf = np.linspace(0.1, 0.9, 34, dtype=np.float32).reshape(2, 17)
    boxes = np.array([[80, 60, 120, 180], [230, 70, 270, 190]], np.float32)
    poses = poses_from_ultralytics(fake_result(xy, conf, boxes, np.array([0.95, 0.6])))
    assert poses.keypoints.dtype == np.float32 and poses.keypoints.shape == (2, 17, 2)
    np.testing.assert_array_equal(poses.keypoints, xy)
    np.testing.assert_array_equal(poses.keypoint_scores, conf)
    np.testing.assert_array_equal(poses.boxes, boxes)
    np.testing.assert_allclose(poses.scores, [0.95, 0.6])


def test_ultralytics_without_confidence_scores_1_except_points_at_origin() -> None:
    """A model trained without visibility has ``keypoints.conf`` None and marks a missing point (0, 0)."""
    xy = np.stack([person(100, 120), person(250, 130)])
    xy[0, 15] = xy[1, 3] = 0
    poses = poses_from_ultralytics(fake_result(xy, conf=None))
    expected = np.ones((2, 17), np.float32)
    expected[0, 15] = expected[1, 3] = 0
    np.testing.assert_array_equal(poses.keypoint_scores, expected)


def test_ultralytics_point_at_origin_scores_0_even_with_confidence() -> None:
    """Ultralytics of late 2023 to 2025 moved points under 0.5 confidence to (0, 0) and kept the
    confidence: such a point must not be compared where it was put."""
    xy = person(100, 120)[None].copy()
    xy[0, 9] = 0
    poses = poses_from_ultralytics(fake_result(xy, np.full((1, 17), 0.45, np.float32)))
    assert poses.keypoint_scores[0, 9] == 0 and (np.delete(poses.keypoint_scores[0], 9) == np.float32(0.45)).all()


@pytest.mark.parametrize("shape", [(0, 17, 2), (0, 0, 2)])
def test_ultralytics_empty_result(shape: tuple[int, ...]) -> None:
    result = fake_result(np.zeros(shape), np.zeros(shape[:2]), np.zeros((0, 4)), np.zeros(0))
    poses = poses_from_ultralytics(result)
    assert len(poses) == 0 and poses.num_keypoints == 17


def test_ultralytics_torch_tensors_off_the_cpu_and_in_half_precision() -> None:
    class OnDevice:
        """A tensor on a GPU: numpy() fails until cpu() brings it back, as torch does."""

        def __init__(self, tensor: torch.Tensor) -> None:
            self.tensor = tensor

        def detach(self) -> OnDevice:
            return self

        def cpu(self) -> torch.Tensor:
            return self.tensor

        def numpy(self) -> np.ndarray:
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() first.")

    xy = torch.from_numpy(np.stack([person(100, 120)]))
    conf = torch.full((1, 17), 0.7, dtype=torch.bfloat16, requires_grad=True)
    result = SimpleNamespace(keypoints=SimpleNamespace(xy=OnDevice(xy.half()), conf=conf),
                             boxes=SimpleNamespace(xyxy=OnDevice(torch.tensor([[80.0, 60, 120, 180]])),
                                                   conf=torch.tensor([0.9]).half()))
    poses = poses_from_ultralytics(result)
    np.testing.assert_allclose(poses.keypoints, xy.numpy(), atol=0.1)
    np.testing.assert_allclose(poses.keypoint_scores, 0.7, atol=0.01)
    assert poses.keypoints.dtype == poses.scores.dtype == np.float32


def test_ultralytics_refuses_other_keypoint_sets() -> None:
    message = one_line_error(poses_from_ultralytics, fake_result(np.ones((1, 21, 2)), np.ones((1, 21))),
                             match="21 keypoints per person")
    assert "COCO's 17" in message and "nose" in message and "right_ankle" in message


@pytest.mark.parametrize("broken, match", [
    ("conf_nan", "keypoints conf of person 1's left_wrist is nan"),
    ("conf_above_1", r"keypoints conf of person 0's nose is 1\.5; it must be a finite number in \[0, 1\]"),
    ("conf_shape", r"keypoints conf must have shape \(2, 17\), got \(2, 16\)"),
    ("xy_inf", "keypoints xy of person 0's right_knee is inf"),
    ("xy_shape", r"keypoints xy must have shape \(N, K, 2\), got \(2, 17, 3\)"),
    ("box_nan", "boxes xyxy of person 1 is nan"),
    ("box_xywh", "box of person 0 is .* not x1, y1, x2, y2"),
    ("box_count", r"boxes xyxy must have shape \(2, 4\), got \(1, 4\)"),
    ("box_conf_negative", "boxes conf of person 1 is -0.1"),
    ("not_numbers", "keypoints conf is not an array of numbers"),
])
def test_ultralytics_bad_numbers_are_one_line_errors(broken: str, match: str) -> None:
    xy = np.stack([person(100, 120), person(250, 130)])
    conf: Any = np.full((2, 17), 0.8, np.float32)
    boxes = np.array([[80, 60, 120, 180], [230, 70, 270, 190]], np.float32)
    box_conf = np.array([0.9, 0.8], np.float32)
    if broken == "conf_nan":
        conf[1, 9] = np.nan
    elif broken == "conf_above_1":
        conf[0, 0] = 1.5
    elif broken == "conf_shape":
        conf = conf[:, :16]
    elif broken == "xy_inf":
        xy[0, 14, 1] = np.inf
    elif broken == "xy_shape":
        xy = np.concatenate([xy, np.ones((2, 17, 1), np.float32)], -1)
    elif broken == "box_nan":
        boxes[1, 2] = np.nan
    elif broken == "box_xywh":
        boxes[0] = [80, 60, 40, 120]
    elif broken == "box_count":
        boxes = boxes[:1]
    elif broken == "box_conf_negative":
        box_conf[1] = -0.1
    elif broken == "not_numbers":
        conf = [["high"] * 17] * 2
    message = one_line_error(poses_from_ultralytics, fake_result(xy, conf, boxes, box_conf), match=match)
    assert message.startswith("ultralytics result")


def test_ultralytics_detection_results_and_lists_are_refused() -> None:
    one_line_error(poses_from_ultralytics, SimpleNamespace(keypoints=None, boxes=None), match="not a pose model")
    one_line_error(poses_from_ultralytics, [fake_result(person(1, 2)[None])], match=r"model\(frame\)\[0\]")


def test_ultralytics_without_boxes_boxes_the_scored_keypoints() -> None:
    xy = person(100, 120)[None].copy()
    xy[0, 16] = 0
    poses = poses_from_ultralytics(SimpleNamespace(keypoints=SimpleNamespace(xy=xy, conf=None), boxes=None))
    seen = np.delete(xy[0], 16, axis=0)
    np.testing.assert_array_equal(poses.boxes[0], [*seen.min(0), *seen.max(0)])
    assert poses.scores.tolist() == [1.0]


def test_ultralytics_results_through_the_tracker_keep_ids() -> None:
    """The whole loop: an estimator's results -> Poses -> PoseTracker: two people walking slowly keep
    their ids, whatever order the estimator lists them in."""
    tracker = PoseTracker()
    rng = np.random.default_rng(0)
    for frame in range(6):
        left, right = person(100 + 3 * frame, 120), person(230 - 2 * frame, 125 + frame)
        order = [1, 0] if frame % 2 else [0, 1]
        xy = np.stack([left, right])[order] + rng.normal(0, 0.5, (2, 17, 2)).astype(np.float32)
        conf = rng.uniform(0.6, 1.0, (2, 17)).astype(np.float32)
        ids = tracker.update(poses_from_ultralytics(fake_result(torch.from_numpy(xy), torch.from_numpy(conf))),
                             timestamp=frame / 30)
        assert ids[order].tolist() == [0, 1], f"frame {frame}"


# ---------------------------------------------------------------------------------------------- supervision


def fake_key_points(xy: Any, confidence: Any = None, **extra: Any) -> SimpleNamespace:
    return SimpleNamespace(xy=np.asarray(xy, np.float32), keypoint_confidence=confidence, class_id=None,
                           data={}, **extra)


def test_supervision_boxes_from_the_scored_keypoints_or_the_detections() -> None:
    xy = np.stack([person(100, 120), person(250, 130)])
    conf = np.full((2, 17), 0.9, np.float32)
    conf[0, 15:] = 0  # ankles unseen: the box ends at the knees
    poses = poses_from_supervision(fake_key_points(xy, conf))
    np.testing.assert_array_equal(poses.boxes[0], [*xy[0, :15].min(0), *xy[0, :15].max(0)])
    np.testing.assert_array_equal(poses.boxes[1], [*xy[1].min(0), *xy[1].max(0)])
    assert poses.scores.tolist() == [1.0, 1.0]
    detections = SimpleNamespace(xyxy=np.array([[1.0, 2, 3, 4], [5, 6, 7, 8]]), confidence=np.array([0.3, 0.4]))
    poses = poses_from_supervision(fake_key_points(xy, conf), detections)
    np.testing.assert_array_equal(poses.boxes, detections.xyxy)
    np.testing.assert_allclose(poses.scores, [0.3, 0.4])


def test_supervision_confidence_visible_and_older_names() -> None:
    xy = person(100, 120)[None].copy()
    xy[0, 4] = 0
    visible = np.ones((1, 17), bool)
    visible[0, 10] = False
    # supervision before 0.29 called keypoint_confidence ``confidence``; None means every point is seen.
    old = SimpleNamespace(xy=xy, confidence=None, visible=visible, detection_confidence=np.array([0.7]), data={})
    poses = poses_from_supervision(old)
    expected = np.ones(17, np.float32)
    expected[[4, 10]] = 0
    np.testing.assert_array_equal(poses.keypoint_scores[0], expected)
    np.testing.assert_allclose(poses.scores, [0.7])


def test_supervision_errors() -> None:
    xy = np.stack([person(100, 120), person(250, 130)])
    one_line_error(poses_from_supervision, fake_key_points(xy), SimpleNamespace(xyxy=np.zeros((1, 4)), confidence=None),
                   match="2 people but the detections have 1 boxes")
    one_line_error(poses_from_supervision, fake_key_points(xy, np.full((2, 17), np.nan)),
                   match="^supervision KeyPoints: keypoint_confidence of person 0's nose is nan")
    one_line_error(poses_from_supervision, fake_key_points(np.ones((1, 133, 2))), match="133 keypoints per person")
    one_line_error(poses_from_supervision, fake_key_points(xy),
                   SimpleNamespace(xyxy=np.zeros((2, 4)), confidence=np.array([0.5, 2.0])),
                   match="detections confidence of person 1 is 2")


# ---------------------------------------------------------------------------------------------- COCO results


def test_coco_results_round_trip_keeps_poses_and_ids() -> None:
    frames = [tracked_frame(0, ids=[4, 9]), tracked_frame(1, people=0, ids=[]), tracked_frame(2, ids=[9, 4])]
    entries = coco_results_from_tracked(frames)
    assert len(entries) == 4
    assert [(e["image_id"], e["track_id"]) for e in entries] == [(0, 4), (0, 9), (2, 9), (2, 4)]
    assert all(set(e) == {"image_id", "category_id", "keypoints", "score", "bbox", "track_id"} for e in entries)
    assert json.loads(json.dumps(entries, allow_nan=False)) == entries
    back = poses_from_coco_results(json.loads(json.dumps(entries)))
    assert sorted(back) == [0, 2]
    same_poses(back[0], frames[0].poses)
    same_poses(back[2], frames[2].poses)


def test_coco_results_groups_by_frame_and_fills_what_is_missing() -> None:
    flat = [v for x, y in person(100, 120).tolist() for v in (x, y, 0.0)]
    flat[2] = flat[5] = 0.8  # only nose and left_eye scored: the box is theirs
    entries = [{"image_id": 5, "keypoints": [1.0, 2.0, 1.0] * 17, "score": 0.5, "bbox": [0, 0, 10, 10]},
               {"image_id": np.int64(2), "keypoints": flat},
               {"image_id": 5.0, "keypoints": [3.0, 4.0, 0.5] * 17, "keypoint_scores": [0.25] * 17}]
    back = poses_from_coco_results(iter(entries))
    assert list(back) == [2, 5] and len(back[5]) == 2
    seen = person(100, 120)[:2]
    np.testing.assert_allclose(back[2].boxes[0], [*seen.min(0), *seen.max(0)])
    assert back[2].scores.tolist() == [1.0]
    np.testing.assert_allclose(back[5].keypoint_scores[1], 0.25)
    np.testing.assert_allclose(back[5].boxes[0], [0, 0, 10, 10])
    assert poses_from_coco_results([]) == {}


@pytest.mark.parametrize("change, match", [
    ({"image_id": -1}, "COCO results entry 1: image_id must be a frame index"),
    ({"image_id": "000001.jpg"}, "needs load_poses with the frame folder"),
    ({"image_id": True}, "image_id must be a frame index"),
    ({"keypoints": [1.0, 2.0, 0.5] * 16}, "16 keypoints, expected 17"),
    ({"keypoints": [1.0, 2.0, 1.5] * 17}, r"keypoint score .* of nose is 1\.5, not in \[0, 1\]"),
    ({"score": float("nan")}, r"score nan is not a number in \[0, 1\]"),
    ({"bbox": [0, 0, 0, 10]}, "bbox .* has no size"),
])
def test_coco_results_bad_entries_are_refused_by_the_file_parser(change: dict, match: str) -> None:
    good = {"image_id": 0, "category_id": 1, "keypoints": [1.0, 2.0, 0.5] * 17, "score": 0.9}
    one_line_error(poses_from_coco_results, [good, {**good, **change}], match=match)


def test_coco_results_from_tracked_refuses_what_coco_cannot_hold() -> None:
    frame = tracked_frame(3)
    nan = Poses(frame.poses.keypoints, frame.poses.keypoint_scores, frame.poses.boxes, [0.5, np.nan])
    one_line_error(coco_results_from_tracked, [TrackedFrame(3, 0.1, nan, [0, 1])],
                   match=r"frame 3 person 1 \(track 1\): a score is not in \[0, 1\]")
    mpii = Poses(np.zeros((1, 16, 2)), np.ones((1, 16)), [[0, 0, 1, 1]], [1.0])
    one_line_error(coco_results_from_tracked, [TrackedFrame(0, 0.0, mpii, [0])], match="COCO's 17 keypoints")


# ---------------------------------------------------------------------------------------------- real libraries


def test_to_supervision_without_supervision_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "supervision", None)  # import supervision raises ImportError
    one_line_error(to_supervision, tracked_frame(), match="pip install supervision")


def test_real_supervision_round_trip() -> None:
    sv = pytest.importorskip("supervision")
    frame = tracked_frame(4, ids=[3, 8])
    key_points = to_supervision(frame)
    assert isinstance(key_points, sv.KeyPoints) and len(key_points) == 2
    assert key_points.data["tracker_id"].tolist() == [3, 8]
    np.testing.assert_array_equal(key_points.xy, frame.poses.keypoints)
    detections = sv.Detections(xyxy=frame.poses.boxes.astype(np.float64), confidence=frame.poses.scores,
                               tracker_id=frame.track_ids)
    same_poses(poses_from_supervision(key_points, detections), frame.poses)
    # Without detections: the box of the scored keypoints, the person score from detection_confidence.
    back = poses_from_supervision(key_points)
    np.testing.assert_allclose(back.scores, frame.poses.scores)
    # supervision's own selection keeps tracker ids with their people.
    assert key_points[[1]].data["tracker_id"].tolist() == [8]
    empty = to_supervision(TrackedFrame(0, 0.0, Poses.empty(17), []))
    assert len(empty) == 0 and len(poses_from_supervision(empty)) == 0
    assert len(poses_from_supervision(sv.KeyPoints.empty())) == 0


def test_real_ultralytics_results() -> None:
    pytest.importorskip("ultralytics")
    from ultralytics.engine.results import Results

    image = np.zeros((240, 320, 3), np.uint8)
    xy = torch.from_numpy(np.stack([person(100, 120), person(250, 130)]))
    conf = torch.rand(2, 17)
    boxes = torch.tensor([[80.0, 60, 120, 180, 0.9, 0], [230, 70, 270, 190, 0.7, 0]])
    result = Results(image, "frame.jpg", {0: "person"}, boxes=boxes, keypoints=torch.cat([xy, conf[..., None]], -1))
    poses = poses_from_ultralytics(result)
    np.testing.assert_allclose(poses.keypoints, xy.numpy())
    np.testing.assert_allclose(poses.keypoint_scores, conf.numpy())
    np.testing.assert_allclose(poses.boxes, boxes[:, :4].numpy())
    np.testing.assert_allclose(poses.scores, [0.9, 0.7])
    np.testing.assert_allclose(poses_from_ultralytics(result.numpy()).keypoints, xy.numpy())
    xy[0, 2] = 0
    no_conf = Results(image, "frame.jpg", {0: "person"}, boxes=boxes, keypoints=xy)
    assert no_conf.keypoints.conf is None
    scores = poses_from_ultralytics(no_conf).keypoint_scores
    assert scores[0, 2] == 0 and scores.sum() == 33
    empty = Results(image, "frame.jpg", {0: "person"}, boxes=torch.zeros((0, 6)), keypoints=torch.zeros((0, 17, 3)))
    assert len(poses_from_ultralytics(empty)) == 0
    detect_only = Results(image, "frame.jpg", {0: "person"}, boxes=boxes)
    one_line_error(poses_from_ultralytics, detect_only, match="not a pose model")
