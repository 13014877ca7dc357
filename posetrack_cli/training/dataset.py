"""One annotated person -> one training example: augmented crop, Gaussian targets, joint weights."""

from __future__ import annotations

from typing import TypedDict

import cv2
import numpy as np
import torch

from posetrack_cli.core.geometry import apply_affine, boxes_to_windows
from posetrack_cli.core.keypoints import flip_permutation
from posetrack_cli.core.paper import CROP_PADDING
from posetrack_cli.training.augment import (
    Augmentation,
    AugmentSettings,
    random_augmentation,
    sample_transforms,
    swap_left_right,
)
from posetrack_cli.training.data import PersonSamples
from posetrack_cli.training.targets import gaussian_targets


class Example(TypedDict):
    """One training example (see :class:`TopDownDataset`)."""

    image: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor
    ok: bool
    index: int


class TopDownDataset(torch.utils.data.Dataset[Example]):
    """Person crops with their heatmap targets, for a ``DataLoader``.

    Each example is a dict:

    * ``image``: ``(3, H, W)`` uint8 crop, planes in ``channel_order`` (normalised on the device,
      where it is cheapest);
    * ``target``: ``(K, H/stride, W/stride)`` float32 Gaussian heatmaps;
    * ``weight``: ``(K,)`` float32 joint weights;
    * ``ok``: False when the image could not be read (the example then carries zero weights, so it
      trains nothing and the loop counts it instead of stopping mid-epoch);
    * ``index``: the sample's row in ``samples``.

    Augmentation is drawn from a generator seeded by ``(seed, epoch, index)``: the same run gives
    the same examples whatever the number of workers, and a resumed run continues exactly.

    Args:
        samples: annotated people.
        input_size: ``(W, H)`` of the network input.
        stride: input pixels per heatmap pixel.
        sigma: Gaussian standard deviation in heatmap pixels.
        padding: box enlargement before cropping (the paper's 1.25).
        channel_order: ``"rgb"`` or ``"bgr"``, what the network is fed.
        augment: random augmentation settings, or None for plain crops (validation, measuring).
        seed: base of the per-example generators.
    """

    def __init__(
        self,
        samples: PersonSamples,
        *,
        input_size: tuple[int, int],
        stride: int,
        sigma: float = 2.0,
        padding: float = CROP_PADDING,
        channel_order: str = "rgb",
        augment: AugmentSettings | None = None,
        seed: int = 0,
    ) -> None:
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        w, h = input_size
        if w % stride or h % stride:
            raise ValueError(f"input size {w}x{h} is not a multiple of the stride {stride}")
        self.samples = samples
        self.input_size = (int(w), int(h))
        self.heatmap_size = (w // stride, h // stride)
        self.stride = stride
        self.sigma = sigma
        self.channel_order = channel_order
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.permutation = flip_permutation(samples.keypoint_names)
        self.centers, self.sizes = boxes_to_windows(samples.boxes, w / h, padding)  # (N, 2) each

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch`` (set before the epoch's loader is iterated)."""
        self.epoch = int(epoch)

    def transforms(self, index: int) -> tuple[np.ndarray, Augmentation]:
        """The frame-to-crop map ``(1, 2, 3)`` of example ``index`` this epoch, and its parameters."""
        if self.augment is None:
            aug = Augmentation.none(1)
        else:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            aug = random_augmentation(rng, 1, self.augment)
        mats = sample_transforms(self.centers[index:index + 1], self.sizes[index:index + 1], self.input_size, aug)
        return mats, aug

    def __getitem__(self, index: int) -> Example:
        w, h = self.input_size
        k = len(self.samples.keypoint_names)
        path = self.samples.image_path(index)
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if frame is None:  # deleted or corrupt since loading: train nothing, let the loop count it
            return {
                "image": torch.zeros(3, h, w, dtype=torch.uint8),
                "target": torch.zeros(k, *self.heatmap_size[::-1]),
                "weight": torch.zeros(k),
                "ok": False,
                "index": index,
            }
        mats, aug = self.transforms(index)
        crop = cv2.warpAffine(frame, mats[0], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if self.channel_order == "rgb":
            crop = crop[:, :, ::-1]
        points = apply_affine(self.samples.keypoints[index:index + 1], mats)  # (1, K, 2) crop pixels
        points = swap_left_right(points, aug.flips, self.permutation)
        labelled = swap_left_right(self.samples.labelled[index:index + 1], aug.flips, self.permutation)
        targets, weights = gaussian_targets(points / self.stride, labelled, self.heatmap_size, self.sigma)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))),  # (3, H, W)
            "target": torch.from_numpy(targets[0]),  # (K, h, w)
            "weight": torch.from_numpy(weights[0]),  # (K,)
            "ok": True,
            "index": index,
        }
