"""SimpleBaseline pose network (Xiao et al. 2018, section 2): ResNet + three deconvolutions.

Attribute names follow the MSRA release (``conv1 ... layer4``, ``deconv_layers``, ``final_layer``)
so its checkpoints load with ``strict=True``. The backbone blocks are posetrack's, in torchvision's
ResNet layout (v1.5: a Bottleneck strides on its 3x3 conv), so torchvision's ImageNet weights load
under the same names too; they are not imported from torchvision because ``import torchvision``
imports ``torch._dynamo``, seconds at every start on a small CPU. ``tests/test_pose_resnet_layout.py``
pins the layout and the features against torchvision's own ResNet.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from posetrack_cli.models.deconv_head import check_head, deconv_layers, head_stride

# Block type (the class name, as torchvision names it) and blocks per stage of each supported depth
# (He et al. 2016).
RESNET_STAGES: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("BasicBlock", (2, 2, 2, 2)),
    34: ("BasicBlock", (3, 4, 6, 3)),
    50: ("Bottleneck", (3, 4, 6, 3)),
    101: ("Bottleneck", (3, 4, 23, 3)),
    152: ("Bottleneck", (3, 8, 36, 3)),
}


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (ResNet-18/34); the first conv strides."""

    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity: torch.Tensor = x if self.downsample is None else self.downsample(x)
        out: torch.Tensor = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        out = self.relu(out)
        return out


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) and a shortcut (ResNet-50/101/152).

    The 3x3 conv strides (torchvision's "v1.5"), not the first 1x1 as in He et al.; torchvision's
    ImageNet weights and the MSRA pose checkpoints were trained this way.
    """

    expansion: int = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity: torch.Tensor = x if self.downsample is None else self.downsample(x)
        out: torch.Tensor = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        out = self.relu(out)
        return out


BLOCKS: dict[str, type[BasicBlock | Bottleneck]] = {"BasicBlock": BasicBlock, "Bottleneck": Bottleneck}


def resnet_layer(
    block: type[BasicBlock | Bottleneck], inplanes: int, planes: int, blocks: int, stride: int = 1,
) -> nn.Sequential:
    """One ResNet stage, ``blocks`` blocks of ``block`` (``layerN`` of torchvision's ``ResNet``).

    The first block takes ``inplanes`` channels and strides; it gets a 1x1 conv + BN shortcut
    (``downsample.0``, ``downsample.1``) where the stride or the channel count changes.
    """
    out = planes * block.expansion
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(_conv1x1(inplanes, out, stride), nn.BatchNorm2d(out))
    return nn.Sequential(
        block(inplanes, planes, stride, downsample), *(block(out, planes) for _ in range(1, blocks)))


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
        name, layers = RESNET_STAGES[spec.depth]
        block = BLOCKS[name]
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = resnet_layer(block, 64, 64, layers[0])
        self.layer2 = resnet_layer(block, 64 * block.expansion, 128, layers[1], stride=2)
        self.layer3 = resnet_layer(block, 128 * block.expansion, 256, layers[2], stride=2)
        self.layer4 = resnet_layer(block, 256 * block.expansion, 512, layers[3], stride=2)
        # torchvision's ResNet builds its ImageNet classifier here, drawing from the random generator;
        # drawing the same keeps a seeded network's weights what they were when the backbone was
        # torchvision's (the tests' random networks, and what they find, stay put).
        nn.Linear(512 * block.expansion, 1000)
        # Built on the meta device (to load a file's tensors), there is nothing to draw, and drawing
        # would cost seconds: normal_ on a meta tensor runs torch's Python reference, which imports
        # torch._dynamo.
        drawn = not self.conv1.weight.is_meta
        if drawn:
            self._init_backbone()

        self.deconv_layers = deconv_layers(512 * block.expansion, spec.deconv_channels, spec.deconv_kernel)
        self.final_layer = nn.Conv2d(spec.deconv_channels[-1], spec.num_keypoints, kernel_size=1)
        if drawn:
            self._init_head()

    def _init_backbone(self) -> None:
        """torchvision's ResNet initialisation: He (fan-out) convolutions, unit BN."""
        for name in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4"):
            for m in getattr(self, name).modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

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

    In PoseResNet and its ResNet blocks that convolution is the one feeding the BatchNorm.

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
