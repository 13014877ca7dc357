"""Training augmentation of a top-down sample: random scale, rotation and horizontal flip.

The distributions are those of the released training code (MSRA ``JointsDataset.__getitem__`` with
the COCO experiment settings ``SCALE_FACTOR 0.3``, ``ROT_FACTOR 40``, ``FLIP true``), which the paper
summarises as "scale +-30 %, rotation +-40 degrees, flip":

* the crop window is scaled by ``clip(1 + 0.3 * N(0, 1), 0.7, 1.3)``;
* with probability 0.6 it is rotated by ``clip(40 * N(0, 1), -80, 80)`` degrees, else not at all;
* with probability 0.5 it is mirrored, and left/right joints swap names.

Augmentation is expressed as one affine map per sample, built on ``geometry.crop_transforms``,
so training crops and inference crops share one geometry (window centre at ``(W/2, H/2)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posetrack_cli.core.geometry import crop_transforms


@dataclass(frozen=True)
class Augmentation:
    """Per-sample augmentation parameters.

    Attributes:
        scales: ``(N,)`` factor on the crop window size (above 1 zooms out).
        rotations: ``(N,)`` degrees the window is turned by.
        flips: ``(N,)`` bool, mirror the crop horizontally.
    """

    scales: np.ndarray
    rotations: np.ndarray
    flips: np.ndarray

    @classmethod
    def none(cls, n: int) -> Augmentation:
        """The identity: plain crops, as at inference."""
        return cls(np.ones(n), np.zeros(n), np.zeros(n, dtype=bool))


@dataclass(frozen=True)
class AugmentSettings:
    """Strength of the random augmentation (defaults: the released COCO training settings).

    Attributes:
        scale_factor: window scale is ``clip(1 + scale_factor * N(0, 1), 1 -+ scale_factor)``.
        rotation_factor: rotation is ``clip(rotation_factor * N(0, 1), -+2 rotation_factor)`` degrees.
        rotation_prob: probability that a sample is rotated at all.
        flip: mirror half of the samples.
    """

    scale_factor: float = 0.3
    rotation_factor: float = 40.0
    rotation_prob: float = 0.6
    flip: bool = True


def random_augmentation(rng: np.random.Generator, n: int,
                        settings: AugmentSettings = AugmentSettings()) -> Augmentation:
    """Draw augmentation parameters for ``n`` samples (distributions in the module docstring)."""
    sf, rf = settings.scale_factor, settings.rotation_factor
    scales = np.clip(1.0 + sf * rng.standard_normal(n), 1.0 - sf, 1.0 + sf)
    angles = np.clip(rf * rng.standard_normal(n), -2 * rf, 2 * rf)
    rotations = np.where(rng.random(n) < settings.rotation_prob, angles, 0.0)
    flips = (rng.random(n) < 0.5) & settings.flip
    return Augmentation(scales, rotations, flips)


def sample_transforms(
    centers: np.ndarray, sizes: np.ndarray, output_size: tuple[int, int], aug: Augmentation
) -> np.ndarray:
    """Frame-to-crop affine maps of augmented samples.

    The mirror is about the crop's vertical centre line ``x = W/2`` (``x -> W - x``), which is what
    MSRA's flip of the whole image followed by its crop amounts to: the window centre stays at
    ``W/2`` in flipped and plain crops alike.

    Args:
        centers: ``(N, 2)`` window centres in frame pixels.
        sizes: ``(N, 2)`` window (width, height) before scaling.
        output_size: ``(W, H)`` of the crop.
        aug: per-sample parameters.

    Returns:
        ``(N, 2, 3)`` float64 matrices for ``cv2.warpAffine`` (frame -> crop).
    """
    sizes = np.asarray(sizes, dtype=np.float64) * np.asarray(aug.scales, dtype=np.float64)[:, None]
    mats = crop_transforms(centers, sizes, output_size, aug.rotations)  # (N, 2, 3)
    flips = np.asarray(aug.flips, dtype=bool)
    mats[flips, 0, :] *= -1.0  # x -> -x ...
    mats[flips, 0, 2] += output_size[0]  # ... + W
    return mats


def swap_left_right(values: np.ndarray, flips: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """Rename joints of mirrored samples: a mirrored left wrist is where a right wrist would be.

    Args:
        values: ``(N, K, ...)`` per-joint values (positions, labels).
        flips: ``(N,)`` bool, which samples are mirrored.
        permutation: ``(K,)`` mirror partner of each joint (``keypoints.flip_permutation``).

    Returns:
        a copy with the joint axis permuted in the mirrored rows.
    """
    out = np.array(values, copy=True)
    flips = np.asarray(flips, dtype=bool)
    out[flips] = out[flips][:, permutation]
    return out
