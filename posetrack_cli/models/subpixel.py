"""Stride-2 deconvolutions rewritten as four ordinary convolutions and a pixel shuffle.

A transposed convolution with stride 2 computes each output phase (even/odd row x even/odd column)
from a small dense kernel: output ``(2i + ry, 2j + rx)`` reads the input around ``(i, j)`` with the
taps ``k`` of the ``ry``/``rx`` parity only. So the layer equals four convolutions of
``ceil(K / 2)`` taps on the (padded) input, one per phase, interleaved by a pixel shuffle, with the
same multiply-adds and the same result up to float rounding.

Why: OpenVINO's CPU plugin runs ``ConvolutionBackpropData`` in fp32 even in a model NNCF quantized
(seen as ``brgconv_avx2_f32`` in its per-layer profile), and SimpleBaseline's three deconvolutions
are most of the MobileNetV2 head's work. As convolutions they run in int8 like the rest.
"""

from __future__ import annotations

import copy
from typing import TypeGuard

import torch
import torch.nn.functional as F
from torch import nn


def _phase_taps(kernel: int, padding: int, phase: int) -> tuple[int, list[int]]:
    """For one output phase ``r`` of a stride-2 transposed convolution along one axis: the input
    offset ``d0`` of the first tap and the kernel index of each tap (``-1``: no tap, a zero weight).

    Output ``o = 2i + r`` receives ``x[j] * w[k]`` where ``o = 2j - padding + k``, so the taps are the
    ``k`` of parity ``(r + padding) % 2`` and tap ``s`` reads ``x[i + d0 + s]``.
    """
    taps = (kernel + 1) // 2
    parity = (phase + padding) % 2
    k_max = kernel - 1 if (kernel - 1) % 2 == parity else kernel - 2
    d0 = (phase + padding - k_max) // 2
    ks = [phase + padding - 2 * (d0 + s) for s in range(taps)]
    return d0, [k if 0 <= k < kernel else -1 for k in ks]


def rewritable(layer: nn.Module) -> TypeGuard[nn.ConvTranspose2d]:
    """True for a square stride-2 ``ConvTranspose2d`` that exactly doubles its input size (the
    SimpleBaseline head's: kernel 4 / padding 1, kernel 3 / padding 1 / output padding 1, kernel 2)."""
    if not isinstance(layer, nn.ConvTranspose2d):
        return False
    k, s, p, op = layer.kernel_size, layer.stride, layer.padding, layer.output_padding
    if isinstance(p, str):  # torch types padding as a string too (convolutions' "same")
        return False
    return (k[0] == k[1] and s == (2, 2) and p[0] == p[1] and op[0] == op[1] and layer.groups == 1
            and layer.dilation == (1, 1) and k[0] - 2 * p[0] + op[0] == 2)


class SubpixelDeconv(nn.Module):
    """A :func:`rewritable` ``ConvTranspose2d`` as four convolutions and a pixel shuffle.

    Input ``(N, C_in, H, W)``; output ``(N, C_out, 2H, 2W)``, equal to the layer's (followed by a ReLU
    with ``relu``, then by the 1x1 convolution ``then``: ``(N, C_then, 2H, 2W)``) up to rounding. Each
    phase pads the input on its own sides, so converters fold the pad into the convolution; the ReLU
    runs per phase, where it fuses with the convolution, and so does ``then``, so that the shuffle
    moves its few channels (17 heatmaps) rather than the deconvolution's 256.
    """

    def __init__(self, layer: nn.ConvTranspose2d, *, relu: bool = False, then: nn.Conv2d | None = None) -> None:
        super().__init__()
        if not rewritable(layer):
            raise ValueError(f"not a stride-2 deconvolution that doubles its input: {layer}")
        kernel, padding = layer.kernel_size[0], int(layer.padding[0])
        phases = [_phase_taps(kernel, padding, r) for r in (0, 1)]
        self.relu = relu
        if then is not None and (then.kernel_size != (1, 1) or then.stride != (1, 1) or then.groups != 1):
            raise ValueError(f"only a 1x1 convolution can run per phase, not {then}")
        self.then = then
        self.taps = len(phases[0][1])
        # phase r's tap s reads x[i + d0 + s]: pad -d0 before and d0 + taps - 1 after
        self.pads = [(-d0, d0 + self.taps - 1) for d0, _ in phases]
        if min(min(p) for p in self.pads) < 0:
            raise ValueError(f"a phase of {layer} reads outside its padded input")
        w = layer.weight.detach()  # (C_in, C_out, K, K)
        c_in, c_out = w.shape[0], w.shape[1]
        weights = torch.zeros(2, 2, c_out, c_in, self.taps, self.taps, dtype=w.dtype)
        for ry, (_, ky) in enumerate(phases):
            for rx, (_, kx) in enumerate(phases):
                for sy, a in enumerate(ky):
                    for sx, b in enumerate(kx):
                        if a >= 0 and b >= 0:
                            weights[ry, rx, :, :, sy, sx] = w[:, :, a, b].T
        # (4, C_out, C_in, taps, taps), phase 2 * ry + rx
        self.weight = nn.Parameter(weights.reshape(4, c_out, c_in, self.taps, self.taps), requires_grad=False)
        bias = layer.bias.detach() if layer.bias is not None else torch.zeros(c_out, dtype=w.dtype)
        self.bias = nn.Parameter(bias.clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = []
        for ry in (0, 1):
            top, bottom = self.pads[ry]
            for rx in (0, 1):
                left, right = self.pads[rx]
                y = F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight[2 * ry + rx], self.bias)
                y = F.relu(y) if self.relu else y  # (N, C_out, H, W)
                phases.append(self.then(y) if self.then is not None else y)  # (N, C, H, W)
        stacked = torch.stack(phases, dim=2)  # (N, C, 4, H, W): channel c * 4 + 2 * ry + rx
        return F.pixel_shuffle(stacked.flatten(1, 2), 2)


def subpixel_deconvolutions(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every :func:`rewritable` deconvolution replaced by :class:`SubpixelDeconv`.

    A ReLU that follows the deconvolution (with only ``Identity`` between, as BatchNorm folding leaves
    it) moves into the replacement, and so does a pose network's ``final_layer`` (its forward is
    ``final_layer(deconv_layers(x))``) after its last deconvolution, wherever in ``model`` that
    network sits. Inference only; like a folded
    model, the copy's state dict is not a checkpoint layout.
    """
    from posetrack_cli.models.pose_mobilenetv2 import PoseMobileNetV2
    from posetrack_cli.models.pose_resnet import PoseResNet

    rewritten = copy.deepcopy(model).eval()

    def visit(module: nn.Module) -> None:
        names = list(module._modules)
        for i, name in enumerate(names):
            child = module._modules[name]
            if child is None:
                continue
            if not rewritable(child):
                visit(child)
                continue
            following = [n for n in names[i + 1:] if not isinstance(module._modules[n], nn.Identity)]
            relu = bool(following) and isinstance(module._modules[following[0]], nn.ReLU)
            module._modules[name] = SubpixelDeconv(child, relu=relu)
            if relu:
                module._modules[following[0]] = nn.Identity()

    visit(rewritten)
    for net in list(rewritten.modules()):  # the model itself, or one inside a wrapper (models/crop_input.py)
        if isinstance(net, (PoseResNet, PoseMobileNetV2)):
            head = [m for m in net.deconv_layers if not isinstance(m, nn.Identity)]
            final = net.final_layer
            if head and isinstance(head[-1], SubpixelDeconv) and final.kernel_size == (1, 1):
                head[-1].then = final
                # Through _modules, as visit() replaces layers: the attribute is declared as the
                # checkpoint's Conv2d, which now runs inside the SubpixelDeconv.
                net._modules["final_layer"] = nn.Identity()
    return rewritten
