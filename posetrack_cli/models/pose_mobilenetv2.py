"""SimpleBaseline head on a MobileNetV2 backbone, as mmpose releases it (``td-hm_mobilenetv2``).

The paper's head (three 4x4 stride-2 deconvolutions of 256 filters with BatchNorm and ReLU, then a
1x1 conv to K heatmaps) on MobileNetV2 (Sandler et al. 2018) instead of a ResNet: about a quarter
of ResNet-50's work per crop, for COCO AP 64.6-64.8 instead of 71.8 (mmpose's published numbers).

Attribute names follow mmpose's ``MobileNetV2`` backbone (``conv1``, ``layer1..7``, ``conv2``, each
convolution a ``ConvModule`` with ``conv``/``bn``) and its heatmap head (``deconv_layers``,
``final_layer``), so its checkpoints load with ``strict=True`` once the ``backbone.``/``head.``
prefixes are stripped. ``out_indices=(7,)``: the head reads the 1280-channel ``conv2`` output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from posetrack_cli.models.deconv_head import check_head, deconv_layers, head_stride

# mmpose's MobileNetV2.arch_settings: expand ratio, output channels, blocks, first stride per layer.
ARCH_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                 (6, 320, 1, 1))
STEM_CHANNELS = 32
OUT_CHANNELS = 1280  # conv2's width at widen_factor <= 1


def make_divisible(value: float, divisor: int = 8, min_ratio: float = 0.9) -> int:
    """mmpose's channel rounding: nearest multiple of ``divisor``, never below ``min_ratio * value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < min_ratio * value else new


@dataclass(frozen=True)
class PoseMobileNetV2Spec:
    """Shapes of a MobileNetV2 SimpleBaseline; inferred from a checkpoint's tensors.

    Attributes:
        num_keypoints: heatmap channels K.
        deconv_channels: filters of each deconvolution layer (released: three of 256).
        deconv_kernel: deconvolution kernel size (released: 4).
        widen_factor: channel multiplier of the backbone (released: 1.0).
    """

    num_keypoints: int = 17
    deconv_channels: tuple[int, ...] = (256, 256, 256)
    deconv_kernel: int = 4
    widen_factor: float = 1.0

    def __post_init__(self) -> None:
        check_head(self.num_keypoints, self.deconv_channels, self.deconv_kernel)
        if self.widen_factor <= 0:
            raise ValueError(f"widen_factor must be > 0, got {self.widen_factor}")

    @property
    def backbone_name(self) -> str:
        return "MobileNetV2" + ("" if self.widen_factor == 1.0 else f" x{self.widen_factor:g}")

    @property
    def stride(self) -> int:
        """Input pixels per heatmap pixel."""
        return head_stride(self.deconv_channels)


class ConvModule(nn.Module):
    """Convolution, BatchNorm and (optionally) ReLU6, named as mmcv's ``ConvModule`` names them."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activate = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.activate(self.bn(self.conv(x)))
        return out


class InvertedResidual(nn.Module):
    """1x1 expansion (unless ratio 1), 3x3 depthwise, 1x1 linear projection; residual when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = make_divisible(round(in_channels * expand_ratio), 8)
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = [ConvModule(in_channels, hidden, 1)] if expand_ratio != 1 else []
        layers += [ConvModule(hidden, hidden, 3, stride, groups=hidden), ConvModule(hidden, out_channels, 1, act=False)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return x + out if self.use_res_connect else out


class PoseMobileNetV2(nn.Module):
    """MobileNetV2 backbone (stride 32, 1280 channels), deconvolution head, 1x1 conv to K heatmaps.

    Input ``(N, 3, H, W)`` normalised crops; output ``(N, K, H/stride, W/stride)`` heatmaps
    (256x192 -> 64x48 with three deconvolutions).
    """

    def __init__(self, spec: PoseMobileNetV2Spec = PoseMobileNetV2Spec()) -> None:
        super().__init__()
        self.spec = spec
        channels = make_divisible(STEM_CHANNELS * spec.widen_factor, 8)
        self.conv1 = ConvModule(3, channels, 3, stride=2)
        for i, (expand, width, blocks, stride) in enumerate(ARCH_SETTINGS):
            out = make_divisible(width * spec.widen_factor, 8)
            layer = []
            for b in range(blocks):
                layer.append(InvertedResidual(channels, out, stride if b == 0 else 1, expand))
                channels = out
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
        out_channels = int(OUT_CHANNELS * spec.widen_factor) if spec.widen_factor > 1.0 else OUT_CHANNELS
        self.conv2 = ConvModule(channels, out_channels, 1)

        self.deconv_layers = deconv_layers(out_channels, spec.deconv_channels, spec.deconv_kernel)
        self.final_layer = nn.Conv2d(spec.deconv_channels[-1], spec.num_keypoints, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)  # (N, 32, H/2, W/2)
        for i in range(len(ARCH_SETTINGS)):
            x = getattr(self, f"layer{i + 1}")(x)
        x = self.conv2(x)  # (N, 1280, H/32, W/32)
        x = self.deconv_layers(x)  # (N, 256, H/stride, W/stride)
        out: torch.Tensor = self.final_layer(x)  # (N, K, H/stride, W/stride)
        return out


def pose_mobilenetv2(*, num_keypoints: int = 17, deconv_channels: tuple[int, ...] = (256, 256, 256),
                     deconv_kernel: int = 4, widen_factor: float = 1.0) -> PoseMobileNetV2:
    """Build a randomly initialised MobileNetV2 SimpleBaseline (keyword-only, like torchvision's builders)."""
    return PoseMobileNetV2(PoseMobileNetV2Spec(num_keypoints, tuple(deconv_channels), deconv_kernel, widen_factor))
