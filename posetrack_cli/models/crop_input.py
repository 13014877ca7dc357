"""A pose network with its input normalisation in front of it: crops go in as they were cut.

Each released family was trained on normalised planes in its own order (MSRA: OpenCV's BGR planes
with the ImageNet statistics; mmpose: RGB). As the network's first step, that normalisation is
computed the same way by every runtime, and a converted OpenVINO model takes the 8-bit crops that
``cv2.warpAffine`` writes: no float copy of the crops and no separate normalisation pass are made
on a CPU, and OpenVINO runs the conversion fused with the first layer's input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # the type only: checkpoints imports the network definitions
    from posetrack_cli.models.checkpoints import InputNorm


class CropInput(nn.Module):
    """``net`` fed crops in the frame's BGR plane order on the 0..255 scale.

    Args:
        net: maps ``(N, 3, H, W)`` normalised planes to ``(N, K, h, w)`` heatmaps.
        norm: plane order, mean and std (0..1 scale) ``net`` was trained with.

    The plane order, scale and shift are buffers, so they are part of the state dict and of its
    digest (which keys converted-model caches): the same weights with another normalisation are
    another model.
    """

    planes: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, net: nn.Module, norm: InputNorm) -> None:
        super().__init__()
        self.net = net
        mean = torch.tensor(norm.mean, dtype=torch.float32)
        std = torch.tensor(norm.std, dtype=torch.float32)
        # BGR frame planes -> the planes in the order fed; then (x / 255 - mean) / std as one multiply-add.
        self.register_buffer("planes", torch.tensor([2, 1, 0] if norm.channel_order == "rgb" else [0, 1, 2]))
        self.register_buffer("scale", (1.0 / (255.0 * std)).view(1, 3, 1, 1))
        self.register_buffer("shift", (-mean / std).view(1, 3, 1, 1))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Heatmaps ``(N, K, h, w)`` of crops ``(N, 3, H, W)``, uint8 or float, BGR, 0..255."""
        x = crops.to(self.scale.dtype).index_select(1, self.planes)
        out: torch.Tensor = self.net(x * self.scale + self.shift)
        return out
