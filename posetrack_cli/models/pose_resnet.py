"""SimpleBaseline pose network (Xiao et al. 2018, section 2): ResNet + three deconvolutions.

Attribute names follow the MSRA release (``conv1 ... layer4``, ``deconv_layers``, ``final_layer``)
so its checkpoints load with ``strict=True``; the backbone blocks are torchvision's, which share
those names.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from posetrack_cli.models.deconv_head import check_head, deconv_layers, head_stride

# Block type (torchvision's class name) and blocks per stage of each supported depth (He et al.
# 2016); torchvision is imported when a network is built, not to read a checkpoint's layout.
RESNET_STAGES: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("BasicBlock", (2, 2, 2, 2)),
    34: ("BasicBlock", (3, 4, 6, 3)),
    50: ("Bottleneck", (3, 4, 6, 3)),
    101: ("Bottleneck", (3, 4, 23, 3)),
    152: ("Bottleneck", (3, 8, 36, 3)),
}


@dataclass(frozen=True)
class PoseResNetSpec:
    """Everything that fixes the network's shapes; inferred from a checkpoint's tensors.

    Attributes:
        depth: ResNet depth, one of 18, 34, 50, 101, 152.
        num_keypoints: heatmap channels K (17 for COCO, 16 for MPII).
        deconv_channels: filters of each deconvolution layer (the paper: three of 256).
        deconv_kernel: deconvolution kernel size (the paper: 4).
    """

    depth: int = 50
    num_keypoints: int = 17
    deconv_channels: tuple[int, ...] = (256, 256, 256)
    deconv_kernel: int = 4

    def __post_init__(self) -> None:
        if self.depth not in RESNET_STAGES:
            raise ValueError(f"depth must be one of {sorted(RESNET_STAGES)}, got {self.depth}")
        check_head(self.num_keypoints, self.deconv_channels, self.deconv_kernel)

    @property
    def backbone_name(self) -> str:
        return f"ResNet-{self.depth}"

    @property
    def stride(self) -> int:
        """Input pixels per heatmap pixel."""
        return head_stride(self.deconv_channels)


class PoseResNet(nn.Module):
    """ResNet backbone, deconvolution head, and a 1x1 conv to K heatmaps.

    Input ``(N, 3, H, W)`` normalised crops; output ``(N, K, H/stride, W/stride)`` heatmaps
    (stride 4 with the paper's three deconvolutions: 256x192 -> 64x48).
    """

    def __init__(self, spec: PoseResNetSpec = PoseResNetSpec()) -> None:
        super().__init__()
        self.spec = spec
        from torchvision.models import resnet as tv_resnet

        name, layers = RESNET_STAGES[spec.depth]
        block: type[tv_resnet.BasicBlock | tv_resnet.Bottleneck] = getattr(tv_resnet, name)
        backbone = tv_resnet.ResNet(block, list(layers))
        self.conv1 = backbone.conv1
        self.bn1 = backbone.bn1
        self.relu = backbone.relu
        self.maxpool = backbone.maxpool
        self.layer1 = backbone.layer1
        self.layer2 = backbone.layer2
        self.layer3 = backbone.layer3
        self.layer4 = backbone.layer4

        self.deconv_layers = deconv_layers(512 * block.expansion, spec.deconv_channels, spec.deconv_kernel)
        self.final_layer = nn.Conv2d(spec.deconv_channels[-1], spec.num_keypoints, kernel_size=1)
        self._init_head()

    def _init_head(self) -> None:
        """Head initialisation of the paper's code: N(0, 0.001) weights, zero bias, unit BN."""
        for m in self.deconv_layers.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        assert self.final_layer.bias is not None  # built with a bias in __init__
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, C, H/32, W/32)
        x = self.deconv_layers(x)  # (N, 256, H/stride, W/stride)
        heatmaps: torch.Tensor = self.final_layer(x)  # (N, K, H/stride, W/stride)
        return heatmaps


def pose_resnet(
    *, depth: int = 50, num_keypoints: int = 17, deconv_channels: tuple[int, ...] = (256, 256, 256),
    deconv_kernel: int = 4,
) -> PoseResNet:
    """Build a randomly initialised SimpleBaseline network (keyword-only, like torchvision's builders)."""
    return PoseResNet(PoseResNetSpec(depth, num_keypoints, tuple(deconv_channels), deconv_kernel))


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each BatchNorm folded into the (de)convolution registered just before it.

    In PoseResNet and torchvision's ResNet blocks that convolution is the one feeding the BatchNorm.

    Inference only (uses the running statistics). Saves one memory pass per layer; outputs equal
    the original's up to float rounding. The copy's state dict no longer has BatchNorm keys, so
    save the original, never the folded copy.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()

    def visit(module: nn.Module) -> None:
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d):
                module._modules[first] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                module._modules[second] = nn.Identity()
        for child in module.children():
            visit(child)

    visit(folded)
    return folded
