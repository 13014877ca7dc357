"""Top-down inference end to end: crops, batched forward, flip test, decoding back to frame pixels.

Random weights cannot say where a wrist is, so the geometry is checked with a hand-built network
that "sees" coloured markers: each keypoint pair has a colour, and like a trained network it tells
left from right by side (a person facing the camera has their left on the image's right). It is
mirror-consistent in the way a trained network is, so the flip test must reproduce its answers.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from posetrack_cli.core.keypoints import COCO_KEYPOINTS, flip_permutation
from posetrack_cli.core.types import Detections
from posetrack_cli.inference.config import EstimatorConfig
from posetrack_cli.inference.estimator import PoseEstimator
from posetrack_cli.models.checkpoints import InputNorm
from posetrack_cli.models.pose_resnet import pose_resnet

from helpers import write_checkpoint

# One colour (BGR) per keypoint pair; index 0 is the nose.
PAIR_OF = [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8]
COLOURS = np.array(
    [[255, 255, 255], [0, 0, 255], [0, 255, 0], [255, 0, 0], [0, 255, 255],
     [255, 0, 255], [255, 255, 0], [0, 128, 255], [255, 128, 0]], dtype=np.float32,
)
IS_LEFT = np.array([name.startswith("left_") for name in COCO_KEYPOINTS])
IS_RIGHT = np.array([name.startswith("right_") for name in COCO_KEYPOINTS])


class MarkerNet(torch.nn.Module):
    """Heatmap k = closeness to keypoint k's colour, on the side of the crop where k belongs,
    pooled to stride 4 so heatmap pixel u sits at input pixel 4u (the training targets' convention)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("colours", torch.from_numpy(COLOURS / 255.0).float()[PAIR_OF])  # (K, 3)
        self.register_buffer("is_left", torch.from_numpy(IS_LEFT).float()[:, None])  # (K, 1)
        self.register_buffer("is_right", torch.from_numpy(IS_RIGHT).float()[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) BGR on the 0..1 scale
        dist = ((x[:, None] - self.colours[None, :, :, None, None]) ** 2).sum(2)  # (N, K, H, W)
        score = torch.exp(-dist / (2 * 0.15**2))
        w = x.shape[-1]
        right_half = (torch.arange(w, device=x.device) >= w / 2).float()[None]  # (1, W)
        side = 1 - self.is_left - self.is_right + self.is_left * right_half + self.is_right * (1 - right_half)  # (K, W)
        score = score * side[None, :, None, :]
        return F.avg_pool2d(score, kernel_size=5, stride=4, padding=2)


def person_frame(rng: np.random.Generator, flip: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grey frame with one marker person; returns the frame, its box and the marker positions."""
    frame = np.full((360, 480, 3), 90, np.uint8)
    box = np.array([150.0, 40.0, 330.0, 330.0])
    cx = (box[0] + box[2]) / 2
    points = np.zeros((17, 2))
    for k in range(17):
        y = rng.uniform(70, 300)
        dx = rng.uniform(25, 80)
        points[k] = (cx + dx if IS_LEFT[k] else cx - dx if IS_RIGHT[k] else cx + rng.uniform(-5, 5), y)
    # Keep markers apart so each colour blob is unambiguous.
    for k, (x, y) in enumerate(points):
        cv2.circle(frame, (int(round(x)), int(round(y))), 6, COLOURS[PAIR_OF[k]].tolist(), -1, lineType=cv2.LINE_AA)
    frame = cv2.GaussianBlur(frame, (0, 0), 1.5)
    if flip:
        return frame[:, ::-1].copy(), box, points
    return frame, box, np.round(points)


def estimator(flip_test: bool) -> PoseEstimator:
    return PoseEstimator(
        MarkerNet(),
        norm=InputNorm("bgr", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
        keypoint_names=COCO_KEYPOINTS,
        config=EstimatorConfig(input_size=(192, 256), flip_test=flip_test, device="cpu"),
    )


@pytest.mark.parametrize("flip_test", [False, True])
def test_keypoints_land_on_the_markers(flip_test: bool) -> None:
    frame, box, points = person_frame(np.random.default_rng(3))
    poses = estimator(flip_test).estimate(frame, Detections(box[None], [0.9]))
    # One heatmap pixel is 4 crop pixels = 4 / (192 / window width) frame pixels.
    hm_px = 4 * (box[3] - box[1]) * 0.75 * 1.25 / 192
    err = np.linalg.norm(poses.keypoints[0] - points, axis=1)
    assert err.max() < 1.0 * hm_px, f"worst error {err.max():.2f} px (heatmap pixel = {hm_px:.2f} px)"
    assert poses.keypoint_scores.shape == (1, 17) and np.all(poses.keypoint_scores > 0.05)


def test_flip_test_mirrors_keypoints_with_left_right_swapped() -> None:
    frame, box, _ = person_frame(np.random.default_rng(5))
    width = frame.shape[1]
    mirrored = frame[:, ::-1].copy()
    mirrored_box = np.array([width - 1 - box[2], box[1], width - 1 - box[0], box[3]])
    est = estimator(flip_test=True)
    plain = est.estimate(frame, Detections(box[None], [0.9])).keypoints[0]
    flipped = est.estimate(mirrored, Detections(mirrored_box[None], [0.9])).keypoints[0]
    expected = plain[flip_permutation(COCO_KEYPOINTS)].copy()  # left wrist -> right wrist, ...
    expected[:, 0] = width - 1 - expected[:, 0]
    hm_px = 4 * (box[3] - box[1]) * 0.75 * 1.25 / 192
    err = np.linalg.norm(flipped - expected, axis=1)
    assert err.max() < 1.0 * hm_px, f"worst error {err.max():.2f} px"
    # The mirrored person's left wrist is the original right wrist mirrored, not the left one.
    lw, rw = COCO_KEYPOINTS.index("left_wrist"), COCO_KEYPOINTS.index("right_wrist")
    assert abs(flipped[lw, 0] - (width - 1 - plain[rw, 0])) < hm_px
    assert abs(flipped[lw, 0] - (width - 1 - plain[lw, 0])) > 40


def test_channel_order_follows_the_checkpoint_family() -> None:
    seen: list[torch.Tensor] = []

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.clone())
            return torch.zeros(x.shape[0], 17, x.shape[2] // 4, x.shape[3] // 4)

    frame = np.zeros((100, 100, 3), np.uint8)
    frame[..., 2] = 200  # red in OpenCV's BGR
    boxes = Detections(np.array([[0.0, 0.0, 99.0, 99.0]]), [1.0])
    for order, first_plane in (("rgb", 200), ("bgr", 0)):
        seen.clear()
        norm = InputNorm(order, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        # torch runtime: the probe records what the module itself is fed (a converted graph would not call it).
        est = PoseEstimator(Probe(), norm=norm, keypoint_names=COCO_KEYPOINTS,
                            config=EstimatorConfig(input_size=(64, 64), flip_test=False, device="cpu", runtime="torch"))
        est.estimate(frame, boxes)
        centre = seen[0][0, :, 32, 32] * 255
        assert centre[0].item() == pytest.approx(first_plane, abs=1)


@pytest.mark.slow
def test_batches_give_the_same_answer_as_one_pass(tmp_path) -> None:
    path = write_checkpoint(pose_resnet(depth=18), tmp_path / "pose_resnet_18_256x192.pth", "mmpose-0.x")
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    xy = rng.uniform(0, 200, (7, 2))
    boxes = Detections(np.concatenate([xy, xy + rng.uniform(30, 100, (7, 2))], axis=1), np.ones(7))
    one = PoseEstimator.from_checkpoint(path, device="cpu", batch_size=64).estimate(frame, boxes)
    many = PoseEstimator.from_checkpoint(path, device="cpu", batch_size=2).estimate(frame, boxes)
    np.testing.assert_allclose(one.keypoint_scores, many.keypoint_scores, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(one.keypoints, many.keypoints, atol=1e-3)
    assert len(PoseEstimator.from_checkpoint(path, device="cpu").estimate(frame, boxes[[]])) == 0


def test_batched_grid_sample_crops_match_cv2_warp_affine() -> None:
    """The one-call warp used on GPUs samples the same pixels as OpenCV's per-person warpAffine
    (used on CPUs, and the reference the released models were evaluated with), boxes partly
    outside the frame included."""
    from posetrack_cli.core.geometry import boxes_to_windows, crop_transforms, invert_affine
    from posetrack_cli.models.crops import warp_crops_cv2, warp_crops_torch

    rng = np.random.default_rng(2)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 1.0)
    boxes = np.array([[10, 20, 90, 200], [250, 100, 330, 260], [-30, -10, 40, 80]], np.float32)
    to_crop = crop_transforms(*boxes_to_windows(boxes, 192 / 256, 1.25), (192, 256))
    batched = warp_crops_torch(frame, invert_affine(to_crop), (192, 256), torch.device("cpu"))
    each = warp_crops_cv2(frame, to_crop, (192, 256))
    assert batched.shape == each.shape == (3, 3, 256, 192)
    for i, mat in enumerate(to_crop):
        reference = cv2.warpAffine(frame, mat, (192, 256), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        assert np.array_equal(each[i].permute(1, 2, 0).numpy(), reference.astype(np.float32))
        diff = np.abs(batched[i].permute(1, 2, 0).numpy() - reference.astype(np.float32))
        assert diff.mean() < 0.3 and np.percentile(diff, 99.9) < 2.5, (i, diff.mean(), diff.max())
