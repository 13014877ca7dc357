"""The paper's head (section 2), shared by every backbone: deconvolutions, then a 1x1 conv to heatmaps.

Three 4x4 stride-2 deconvolutions of 256 filters, each with BatchNorm and ReLU, turn the
backbone's stride-32 features into stride-4 maps; a 1x1 convolution gives one heatmap per joint.
The MSRA ResNets and mmpose's MobileNetV2 release it under the same names (``deconv_layers``,
``final_layer``), so one definition serves both layouts.
"""

from __future__ import annotations

from torch import nn

# Transposed-conv padding and output padding that exactly double the size, per kernel size.
DECONV_PADDING: dict[int, tuple[int, int]] = {4: (1, 0), 3: (1, 1), 2: (0, 0)}
BACKBONE_STRIDE = 32  # input pixels per feature pixel of a ResNet's or MobileNetV2's last stage


def check_head(num_keypoints: int, deconv_channels: tuple[int, ...], deconv_kernel: int) -> None:
    """Raise ValueError for a head that cannot be built."""
    if deconv_kernel not in DECONV_PADDING:
        raise ValueError(f"deconv_kernel must be one of {sorted(DECONV_PADDING)}, got {deconv_kernel}")
    if num_keypoints < 1 or not deconv_channels:
        raise ValueError("num_keypoints must be >= 1 and deconv_channels non-empty")


def head_stride(deconv_channels: tuple[int, ...]) -> int:
    """Input pixels per heatmap pixel: the backbone's 32 halved by each deconvolution."""
    return BACKBONE_STRIDE >> len(deconv_channels)


def deconv_layers(in_channels: int, deconv_channels: tuple[int, ...], kernel: int) -> nn.Sequential:
    """``(N, in_channels, h, w)`` -> ``(N, deconv_channels[-1], h * 2^L, w * 2^L)``: per layer a
    deconvolution (no bias: BatchNorm follows), BatchNorm and ReLU."""
    padding, output_padding = DECONV_PADDING[kernel]
    layers: list[nn.Module] = []
    for channels in deconv_channels:
        layers += [
            nn.ConvTranspose2d(in_channels, channels, kernel, stride=2, padding=padding,
                               output_padding=output_padding, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        ]
        in_channels = channels
    return nn.Sequential(*layers)
