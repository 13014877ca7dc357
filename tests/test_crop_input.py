"""The pose network's input normalisation, now its first layer: each family's planes, from the crops as cut."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from posetrack_cli.models.checkpoints import IMAGENET_MEAN, IMAGENET_STD, InputNorm
from posetrack_cli.models.crop_input import CropInput


@pytest.mark.parametrize("order", ["bgr", "rgb"])
def test_crops_become_the_planes_each_family_was_trained_on(order: str) -> None:
    crops = torch.randint(0, 256, (2, 3, 8, 6), dtype=torch.uint8)  # BGR, as cv2.warpAffine cuts them
    seen = CropInput(nn.Identity(), InputNorm(order))(crops)
    planes = crops.float() / 255
    if order == "rgb":  # mmpose feeds RGB; MSRA fed OpenCV's BGR planes
        planes = planes.flip(1)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(seen, (planes - mean) / std, rtol=0, atol=1e-5)
    # The GPU path cuts float crops with the same values: the same planes.
    torch.testing.assert_close(CropInput(nn.Identity(), InputNorm(order))(crops.float()), seen, rtol=0, atol=0)


def test_the_normalisation_is_part_of_the_state_dict() -> None:
    """Converted models are cached by the digest of the state dict: another normalisation is another model."""
    bgr, rgb = CropInput(nn.Conv2d(3, 1, 1), InputNorm("bgr")), CropInput(nn.Conv2d(3, 1, 1), InputNorm("rgb"))
    assert {"planes", "scale", "shift"} <= set(bgr.state_dict())
    assert not torch.equal(bgr.state_dict()["planes"], rgb.state_dict()["planes"])
