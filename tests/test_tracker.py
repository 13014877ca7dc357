"""The flow-based tracker on rendered sequences with known identities, using real DIS flow."""

from __future__ import annotations

import numpy as np
import pytest

from posetrack_cli.core.flow_field import FlowField
from posetrack_cli.core.keypoints import COCO_SIGMAS
from posetrack_cli.core.types import Detections, Poses
from posetrack_cli.models.flow import DISFlow
from posetrack_cli.tracking.proposals import flow_boxes, unify_boxes
from posetrack_cli.tracking.similarity import iou_matrix, oks_matrix
from posetrack_cli.tracking.tracker import PoseTracker, TrackerConfig, greedy_match

from synthetic import Person, linear_path, poses_at, render

QUEUE = 5


# The paper's tracker: the queue only, no lost memory, no own motion.
PAPER = {"max_lost": 0.0, "own_motion": False}


def track(people: list[Person], frames: list[np.ndarray], present, similarity: str = "flow-oks",
          **config) -> list[dict[int, int]]:
    """Run the tracker over a rendered sequence; per frame, person index -> track id."""
    flow = DISFlow()
    tracker = PoseTracker(TrackerConfig(similarity=similarity, queue_length=QUEUE, **config))
    previous, out = None, []
    for t, frame in enumerate(frames):
        current = flow.prepare(frame)
        field = flow.compute(previous, current) if previous is not None else None
        previous = current
        poses, who = poses_at(people, t, present(t))
        out.append(dict(zip(who, tracker.update(poses, field).tolist())))
    return out


def ids_of(result: list[dict[int, int]], person: int) -> list[int]:
    return [frame[person] for frame in result if person in frame]


@pytest.fixture(scope="module")
def crossing() -> tuple[list[Person], list[np.ndarray]]:
    """Two people walking toward each other and past each other, 15 px per frame."""
    frames_n = 24
    people = [Person(150, linear_path((60, 30), (15, 0), frames_n), seed=1),
              Person(150, linear_path((420, 150), (-15, 0), frames_n), seed=2)]
    return people, render(people, frames_n)


@pytest.mark.parametrize("hidden", [1, QUEUE - 1])
def test_crossing_people_hidden_up_to_queue_minus_one_keep_their_ids(crossing, hidden: int) -> None:
    people, frames = crossing
    # Person 1 is missed by the estimator while they pass person 0 (frames 10 .. 10 + hidden - 1).
    result = track(people, frames, lambda t: [True, not 10 <= t < 10 + hidden])
    a, b = ids_of(result, 0), ids_of(result, 1)
    assert len(set(a)) == 1 and len(set(b)) == 1, (a, b)
    assert a[0] != b[0]
    assert len(b) == 24 - hidden


@pytest.mark.parametrize("hidden", [QUEUE, QUEUE + 2])
def test_paper_tracker_gives_a_person_hidden_longer_than_the_queue_a_new_id(crossing, hidden: int) -> None:
    people, frames = crossing
    result = track(people, frames, lambda t: [True, not 10 <= t < 10 + hidden], **PAPER)
    b = ids_of(result, 1)
    assert b[:10] == [b[0]] * 10 and len(set(b[10:])) == 1
    assert b[10] != b[0] and b[10] != ids_of(result, 0)[0]
    assert len(set(ids_of(result, 0))) == 1  # the other person is not disturbed


@pytest.fixture(scope="module")
def fast_pan() -> tuple[list[Person], list[np.ndarray]]:
    """A camera panning faster than a box is wide: consecutive boxes of a person never overlap."""
    frames_n, height = 10, 120
    pan = round(1.15 * 0.40 * height)  # boxes are 0.40 x height wide
    camera = linear_path((0, 0), (pan, 0), frames_n)
    people = [Person(height, linear_path((600, 20), (3, 0), frames_n) - camera, seed=3),
              Person(height, linear_path((680, 170), (-3, 0), frames_n) - camera, seed=4)]
    return people, render(people, frames_n, size=(720, 320), camera=camera)


def test_fast_motion_tracks_with_flow_oks_where_iou_fails(fast_pan) -> None:
    people, frames = fast_pan
    for p in people:  # the premise: no overlap between consecutive boxes
        boxes = np.stack([p.box(t) for t in range(len(frames))])
        assert np.all(np.diag(iou_matrix(boxes[:-1], boxes[1:])) == 0)
    flow_result = track(people, frames, lambda t: [True, True])
    assert [len(set(ids_of(flow_result, i))) for i in (0, 1)] == [1, 1]
    assert ids_of(flow_result, 0)[0] != ids_of(flow_result, 1)[0]
    for similarity in ("iou", "oks"):  # the paper's ablations lose everyone, every frame
        result = track(people, frames, lambda t: [True, True], similarity=similarity, **PAPER)
        assert len(set(ids_of(result, 0))) == len(frames), similarity


def test_missed_person_is_recovered_by_a_flow_box(crossing) -> None:
    people, frames = crossing
    t = 6
    flow = DISFlow()
    field = flow.compute(flow.prepare(frames[t - 1]), flow.prepare(frames[t]))
    previous, _ = poses_at(people, t - 1)
    detected = Detections(people[0].box(t)[None], [0.99])  # the detector misses person 1 at frame t
    boxes, from_flow = unify_boxes(detected, flow_boxes(previous, field, frame_size=(480, 320)))
    assert len(boxes) == 2  # person 0's flow box is suppressed by its detection
    truth = people[1].box(t)[None]
    recovered = iou_matrix(boxes.boxes[from_flow], truth)
    assert from_flow.sum() == 1 and recovered.max() > 0.6


def test_flow_box_is_the_joint_box_enlarged_by_15_percent() -> None:
    kps = np.array([[[10, 20], [30, 60], [20, 40]]], np.float32)
    poses = Poses(kps, [[0.9, 0.9, 0.2]], [[0, 0, 1, 1]], [0.8])
    field = FlowField(np.full((100, 100, 2), [5.0, -3.0], np.float32))
    boxes = flow_boxes(poses, field, min_joints=2)
    # joints 0 and 1 only (joint 2 scores below 0.4), moved by (5, -3): x 15..35, y 17..57
    np.testing.assert_allclose(boxes.boxes, [[25 - 11.5, 37 - 23, 25 + 11.5, 37 + 23]], rtol=1e-5)
    np.testing.assert_allclose(boxes.scores, [0.8])
    assert len(flow_boxes(poses, field, min_joints=3)) == 0


def test_greedy_takes_the_best_pair_first_not_the_best_total() -> None:
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert greedy_match(sim, 0.3) == [(0, 0)]  # Hungarian would pair (0,1),(1,0) for 1.65
    assert greedy_match(sim, 0.05) == [(0, 0), (1, 1)]
    assert greedy_match(np.zeros((0, 3)), 0.3) == []


def test_oks_matches_the_hand_computed_value() -> None:
    base = np.zeros((1, 17, 2), np.float32)
    moved = base.copy()
    moved[0, 0] = [3.0, 4.0]  # nose 5 px away, everything else exact
    area = 10_000.0
    sim = oks_matrix(base, np.ones((1, 17), bool), moved, np.ones((1, 17), bool), np.array([area]), COCO_SIGMAS)
    expected = (16 + np.exp(-25 / (2 * area * (2 * COCO_SIGMAS[0]) ** 2))) / 17
    assert sim[0, 0] == pytest.approx(expected, rel=1e-6)
    none_valid = oks_matrix(base, np.zeros((1, 17), bool), moved, np.ones((1, 17), bool), np.array([area]), COCO_SIGMAS)
    assert none_valid[0, 0] == 0


def test_ids_belong_to_the_tracker_instance() -> None:
    people = [Person(100, linear_path((50, 20), (2, 0), 3), seed=1)]
    first, second = PoseTracker(), PoseTracker()
    assert first.update(poses_at(people, 0)[0]).tolist() == [0]
    assert second.update(poses_at(people, 0)[0]).tolist() == [0]
    first.reset()
    assert first.update(poses_at(people, 1)[0]).tolist() == [0]
    assert first.tracks[0].hits == 1 and second.tracks[0].last_frame == 0


def test_flow_field_samples_bilinearly_on_a_coarse_grid() -> None:
    # A linear flow on a grid 4x coarser than the frame: bilinear sampling reproduces it exactly.
    scale = 4.0
    gy, gx = np.mgrid[0:30, 0:40].astype(np.float32)
    cx, cy = (gx + 0.5) * scale - 0.5, (gy + 0.5) * scale - 0.5  # frame position of grid centres
    field = FlowField(np.stack([0.1 * cx + 2, -0.05 * cy + 1], -1), (scale, scale))
    pts = np.random.default_rng(0).uniform(10, 100, (50, 2)).astype(np.float32)
    expected = np.stack([0.1 * pts[:, 0] + 2, -0.05 * pts[:, 1] + 1], -1)
    np.testing.assert_allclose(field.sample(pts), expected, atol=1e-4)
    np.testing.assert_allclose(field.propagate(pts), pts + expected, atol=1e-4)


def test_dis_recovers_a_translation_at_full_hd_downscaled() -> None:
    rng = np.random.default_rng(0)
    import cv2

    scene = cv2.GaussianBlur(rng.integers(0, 255, (1200, 2000, 3), dtype=np.uint8), (0, 0), 3)
    a, b = scene[100:820, 100:1380], scene[94:814, 91:1371]  # content moves by (+9, +6)
    flow = DISFlow(max_width=640)
    field = flow.compute(flow.prepare(a), flow.prepare(b))
    assert field.scale == (2.0, 2.0) and field.flow.shape == (360, 640, 2)
    moved = field.sample(rng.uniform(100, 600, (200, 2)))
    assert np.abs(np.median(moved, 0) - [9, 6]).max() < 0.3


def test_raft_loads_manifest_weights_and_returns_a_full_frame_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    """RAFT through the real path: the manifest's file name in the weights folder, strict loading."""
    import torch
    from torchvision.models.optical_flow import raft_small

    from posetrack_cli.core.errors import PosetrackError
    from posetrack_cli.models import weights as W
    from posetrack_cli.models.flow import make_flow

    from helpers import trust_files

    entry = W.load_manifest()["raft_small"]
    with pytest.raises(PosetrackError, match=entry.filename):  # offline and absent: says which file
        make_flow("raft-small", device="cpu", allow_download=False)
    W.weights_dir().mkdir(parents=True)
    torch.save(raft_small(weights=None).state_dict(), W.weights_dir() / entry.filename)
    trust_files(monkeypatch, W.weights_dir() / entry.filename)
    flow = make_flow("raft-small", device="cpu", max_width=128, allow_download=False)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (150, 300, 3), dtype=np.uint8)
    field = flow.compute(flow.prepare(a), flow.prepare(a))
    assert field.flow.shape == (128, 128, 2) and field.scale == (300 / 128, 150 / 128)
    assert field.sample(np.array([[0.0, 0.0], [299.0, 149.0]])).shape == (2, 2)


def test_clear_winners_refuses_to_guess_between_two_near_equal_candidates() -> None:
    from posetrack_cli.tracking.tracker import clear_winners

    ok = np.ones((2, 2), bool)
    assert clear_winners(np.array([[0.8, 0.1], [0.2, 0.7]]), ok, 0.1) == [(0, 0), (1, 1)]
    # Pose 0 fits track 0 (0.80) and track 1 (0.75) nearly as well: neither gets it; pose 1 is clear.
    assert clear_winners(np.array([[0.80, 0.1], [0.75, 0.1]]), ok, 0.1) == []
    assert clear_winners(np.array([[0.80, 0.1], [0.75, 0.6]]), ok, 0.1) == [(1, 1)]
    assert clear_winners(np.array([[0.8, 0.1], [0.2, 0.7]]), np.array([[False, True], [True, True]]), 0.1) == [(1, 1)]


def test_lost_prediction_damps_velocity_and_waits_at_the_frame_edge() -> None:
    from posetrack_cli.tracking.motion import damped_distance, keep_in_frame, uncertainty

    assert damped_distance(0.01) == pytest.approx(0.01, rel=0.01)  # short: constant velocity
    assert damped_distance(100.0) == pytest.approx(2.0)  # long: at most the time constant
    spread = uncertainty(np.array([0.0, 0.5, 1.0]), np.array([100.0] * 3), np.array([150.0] * 3))
    assert spread[0] == 0 and 0 < spread[1] < spread[2]
    kps = np.zeros((1, 17, 2), np.float32) + [700, 100]  # centre right of a 640-wide frame
    inside = keep_in_frame(kps, np.ones((1, 17), bool), (640, 360))
    np.testing.assert_allclose(inside[0, :, 0], 639)


def test_a_pose_moved_out_of_the_frame_gives_no_flow_box() -> None:
    kps = np.array([[[10, 20], [30, 60], [20, 40]], [[900, 500], [950, 530], [930, 520]]], np.float32)
    poses = Poses(kps, np.full((2, 3), 0.9), [[0, 0, 1, 1]] * 2, [0.8, 0.7])
    field = FlowField(np.full((54, 96, 2), [200.0, 100.0], np.float32), (10.0, 10.0))  # all move right/down
    boxes = flow_boxes(poses, field, min_joints=2, frame_size=(960, 540))
    assert len(boxes) == 1 and boxes.scores.tolist() == [pytest.approx(0.8)]
    assert np.all(boxes.boxes[:, 2:] > boxes.boxes[:, :2])
