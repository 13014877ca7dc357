"""A Faster R-CNN's backbone and RPN head run by OpenVINO as one network, in their places.

The RPN head (a 3x3 convolution and two 1x1 ones on every FPN level) is convolution work like the
backbone's, and with it in the same OpenVINO graph it runs at the detector's precision (bf16
where the CPU has it) instead of eager torch fp32. torchvision's Faster R-CNN calls the backbone
and then ``rpn.head(features)`` on what the backbone returned; :class:`BackboneAndRPNHead` hands it
two modules for those places: the backbone runs the converted network and keeps the RPN head's
outputs, which the head then returns for exactly those feature maps (anything else is an error,
never a silent recomputation). Anchors, proposal selection, RoIAlign and the box head are torch's.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import torch
from torch import nn

from posetrack_cli.runtime.backbone import OpenVINOBackbone
from posetrack_cli.runtime.cache import warn_on_stderr

RPN = "rpn."  # the prefix of the RPN head's outputs among the joined network's named outputs


class _Joined(nn.Module):
    """backbone + RPN head: ``(N, 3, H, W)`` -> the backbone's named feature maps, then
    ``rpn.objectness.<i>`` and ``rpn.deltas.<i>`` for each FPN level ``i`` in the backbone's order
    (named outputs: the converted network keeps the names, so a warm start runs nothing in torch)."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = self.backbone(images)
        objectness, deltas = self.head(list(features.values()))
        return OrderedDict([*features.items(), *((f"{RPN}objectness.{i}", o) for i, o in enumerate(objectness)),
                            *((f"{RPN}deltas.{i}", d) for i, d in enumerate(deltas))])


class _Kept:
    """The last call's (feature maps, objectness, box deltas), each a list with one tensor per level."""

    def __init__(self) -> None:
        self.value: tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]] | None = None


class _Head(nn.Module):
    """The RPN head's place: the outputs the converted network computed with the features given."""

    def __init__(self, kept: _Kept) -> None:
        super().__init__()
        self.kept = kept

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        kept = self.kept.value
        if kept is None or len(features) != len(kept[0]) or any(a is not b for a, b in zip(features, kept[0])):
            raise RuntimeError("the OpenVINO RPN head answers only for the feature maps its backbone just returned")
        self.kept.value = None
        return kept[1], kept[2]


class BackboneAndRPNHead(nn.Module):
    """The backbone's place (``(N, 3, H, W)`` -> ``{name: (N, 256, h, w)}``); :attr:`rpn_head` takes
    the RPN head's place.

    Args:
        backbone: the strictly-loaded backbone with FPN.
        rpn_head: its RPN head.
        name, precision, weights_sha256, warn: as for :class:`~posetrack_cli.runtime.backbone.OpenVINOBackbone`.
    """

    def __init__(self, backbone: nn.Module, rpn_head: nn.Module, *, name: str, precision: str, weights_sha256: str,
                 warn: Callable[[str], None] = warn_on_stderr) -> None:
        super().__init__()
        self.out_channels = getattr(backbone, "out_channels", None)  # read by torchvision's heads
        self.network = OpenVINOBackbone(_Joined(backbone, rpn_head), name=name, precision=precision,
                                        weights_sha256=weights_sha256, part="backbone-rpn", warn=warn)
        self.kept = _Kept()
        self.rpn_head = _Head(self.kept)

    def forward(self, images: torch.Tensor) -> Any:
        outputs = self.network(images)
        features = OrderedDict((name, map_) for name, map_ in outputs.items() if not name.startswith(RPN))
        self.kept.value = (list(features.values()),
                           [v for k, v in outputs.items() if k.startswith(f"{RPN}objectness.")],
                           [v for k, v in outputs.items() if k.startswith(f"{RPN}deltas.")])
        return features
