"""The arithmetic of one training example: augmentation draws, crop maps, Gaussian targets, loss."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from posetrack_cli.core.geometry import apply_affine
from posetrack_cli.core.keypoints import COCO_KEYPOINTS, flip_permutation
from posetrack_cli.training.augment import (
    Augmentation,
    AugmentSettings,
    random_augmentation,
    sample_transforms,
    swap_left_right,
)
from posetrack_cli.training.data import PersonSamples
from posetrack_cli.training.dataset import TopDownDataset
from posetrack_cli.training.targets import gaussian_targets, joints_mse_loss


def test_target_is_a_unit_gaussian_at_the_rounded_joint_cut_at_3_sigma() -> None:
    targets, weights = gaussian_targets(np.array([[[10.4, 7.6]]]), np.array([[True]]), (24, 32), sigma=2.0)
    hm = targets[0, 0]
    assert hm.shape == (32, 24) and weights.tolist() == [[1.0]]
    assert np.unravel_index(hm.argmax(), hm.shape) == (8, 10)  # (row y, column x) of the rounded joint
    assert hm[8, 10] == pytest.approx(1.0)
    assert hm[8, 12] == pytest.approx(np.exp(-4 / 8)) and hm[10, 12] == pytest.approx(np.exp(-8 / 8))
    assert hm[8, 16] > 0 and hm[8, 17] == 0 and hm[1, 10] == 0  # 6 pixels = 3 sigma is the last one kept


def test_unlabelled_and_out_of_crop_joints_weigh_nothing() -> None:
    points = np.array([[[5.0, 5.0], [5.0, 5.0], [-3.0, 5.0], [-7.0, 5.0], [5.0, 40.0]]])
    labelled = np.array([[True, False, True, True, True]])
    targets, weights = gaussian_targets(points, labelled, (24, 32), sigma=2.0)
    # labelled inside; unlabelled; outside but its Gaussian reaches in; fully outside (x); fully outside (y)
    assert weights[0].tolist() == [1, 0, 1, 0, 0]
    assert targets[0, 1].max() == 0 and targets[0, 3].max() == 0 and targets[0, 4].max() == 0
    assert targets[0, 2, 5, 0] == pytest.approx(np.exp(-9 / 8))  # the tail of a joint 3 pixels left of the map


def test_loss_is_half_the_weighted_mean_square_and_ignores_zero_weight_joints() -> None:
    target = torch.rand(2, 3, 8, 6)
    pred = target.clone()
    weight = torch.ones(2, 3)
    assert joints_mse_loss(pred, target, weight).item() == 0.0
    pred[1, 2] += 5.0  # a wild guess for a joint that does not count
    weight[1, 2] = 0.0
    assert joints_mse_loss(pred, target, weight).item() == 0.0
    pred[0, 0] += 0.1
    assert joints_mse_loss(pred, target, weight).item() == pytest.approx(0.5 * 0.01 * 48 / (2 * 3 * 48), rel=1e-4)
    assert joints_mse_loss(pred.half(), target, weight).dtype == torch.float32  # mixed precision stays float32 here


def test_augmentation_draws_follow_the_released_settings() -> None:
    aug = random_augmentation(np.random.default_rng(0), 20000, AugmentSettings())
    assert aug.scales.min() >= 0.7 and aug.scales.max() <= 1.3 and 0.2 < aug.scales.std() < 0.3
    assert np.mean(aug.rotations == 0) == pytest.approx(0.4, abs=0.02)  # rotated with probability 0.6
    turned = aug.rotations[aug.rotations != 0]
    assert np.abs(turned).max() <= 80 and 30 < turned.std() < 40  # N(0, 40) clipped at +-80
    assert np.mean(aug.flips) == pytest.approx(0.5, abs=0.02)
    off = random_augmentation(np.random.default_rng(0), 100, AugmentSettings(0.0, 0.0, 0.6, False))
    assert np.all(off.scales == 1) and np.all(off.rotations == 0) and not off.flips.any()


def test_flip_mirrors_the_crop_about_its_centre_line() -> None:
    centers, sizes = np.array([[100.0, 80.0]]), np.array([[60.0, 80.0]])
    plain = sample_transforms(centers, sizes, (48, 64), Augmentation.none(1))
    mirrored = sample_transforms(centers, sizes, (48, 64), Augmentation(np.ones(1), np.zeros(1), np.ones(1, bool)))
    points = np.array([[[100.0, 80.0], [85.0, 60.0]]])
    a, b = apply_affine(points, plain)[0], apply_affine(points, mirrored)[0]
    np.testing.assert_allclose(a[0], [24, 32])
    np.testing.assert_allclose(b[0], [24, 32])  # the window centre stays put
    np.testing.assert_allclose(b[1], [48 - a[1, 0], a[1, 1]])


def test_swap_left_right_renames_only_mirrored_rows() -> None:
    perm = flip_permutation(COCO_KEYPOINTS)
    values = np.tile(np.arange(17), (2, 1))
    out = swap_left_right(values, np.array([False, True]), perm)
    lw, rw = COCO_KEYPOINTS.index("left_wrist"), COCO_KEYPOINTS.index("right_wrist")
    assert out[0].tolist() == list(range(17))
    assert out[1, lw] == rw and out[1, rw] == lw and out[1, 0] == 0


def test_augmented_targets_follow_the_pixels(tmp_path) -> None:
    """In every augmented crop, a joint's heatmap peak sits on the drawn dot (under its mirrored name if flipped)."""
    frame = np.full((240, 320, 3), 30, np.uint8)
    lw = COCO_KEYPOINTS.index("left_wrist")
    dot = np.array([190.0, 100.0])
    cv2.circle(frame, (190, 100), 3, (255, 255, 255), -1)
    cv2.imwrite(str(tmp_path / "f.png"), frame)
    keypoints = np.zeros((1, 17, 2), np.float32)
    keypoints[0, lw] = dot
    labelled = np.zeros((1, 17), bool)
    labelled[0, lw] = True
    boxes = np.array([[120.0, 40.0, 220.0, 220.0]], np.float32)
    samples = PersonSamples((tmp_path / "f.png",), (1,), np.zeros(1, np.int64), boxes, keypoints, labelled,
                            COCO_KEYPOINTS)
    data = TopDownDataset(samples, input_size=(96, 128), stride=4, augment=AugmentSettings(), seed=3)
    perm = flip_permutation(COCO_KEYPOINTS)
    flipped_seen = 0
    for epoch in range(12):
        data.set_epoch(epoch)
        example = data[0]
        _, aug = data.transforms(0)
        channel = perm[lw] if aug.flips[0] else lw
        flipped_seen += bool(aug.flips[0])
        assert example["weight"].nonzero().flatten().tolist() == [channel]
        crop = example["image"].numpy()[0].astype(float)  # (H, W), one plane
        ys, xs = np.nonzero(crop > 128)
        seen = np.array([xs.mean(), ys.mean()]) / 4  # dot centroid in heatmap pixels
        hm = example["target"][channel].numpy()
        peak = np.array(np.unravel_index(hm.argmax(), hm.shape)[::-1], float)
        assert np.abs(peak - seen).max() <= 0.75, (epoch, aug, peak, seen)
    assert 0 < flipped_seen < 12
