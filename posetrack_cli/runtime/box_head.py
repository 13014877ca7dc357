"""A Faster R-CNN box head in the number format that runs fastest on this CPU.

The box head (two fully connected layers, ``fc6`` 12544 -> 1024 and ``fc7`` 1024 -> 1024, on every
RPN proposal's ``256 x 7 x 7`` RoI features) is most of a MobileNetV3-FPN Faster R-CNN's arithmetic
at 1000 proposals (28.7 GFLOP). Its forms, all taking ``(K, 256, 7, 7)`` to ``(K, 1024)``:

- ``fp32``: torchvision's, as loaded.
- ``int8``: both layers dynamically quantized (int8 weights per output channel, each call's
  activations quantized per tensor; fbgemm, which runs on AVX2).
- ``bf16``: the layers under torch's bf16 autocast, the output returned as fp32; offered only where the
  CPU computes bf16 natively (AVX512_BF16 or AMX): elsewhere it is emulated, correct but ~8x slower.
- ``bf16-openvino``: the head converted to OpenVINO and compiled with bf16 inference precision; offered
  where ``bf16`` is and OpenVINO is installed (on a CPU without bf16 OpenVINO computes fp32 instead).

The box predictor (class scores and box deltas, 1024 -> 91 and 1024 -> 364) stays fp32 in every
form. :func:`choose_box_head` times the forms offered on this CPU once
(:func:`~posetrack_cli.runtime.tuning.fastest`) and keeps the fastest.
"""

from __future__ import annotations

import copy
import warnings
from typing import Callable

import torch
from torch import nn

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.runtime.cache import Warn, warn_on_stderr
from posetrack_cli.runtime.tuning import Choice, fastest

# Every form there is, whether or not this CPU is offered it.
BOX_HEAD_FORMS = ("fp32", "int8", "bf16", "bf16-openvino")
# RoI features per proposal: FPN channels x RoIAlign output (torchvision's MultiScaleRoIAlign, 7x7).
ROI_FEATURES = (256, 7, 7)
# What torch 2.9+ says as an int8 head is made (category, start of the message): the eager
# quantization API is to move to torchao; the quantized tensors it makes are to go too.
_QUANTIZATION_NOTES: tuple[tuple[type[Warning], str], ...] = (
    (DeprecationWarning, r"torch\.ao\.quantization is deprecated"),
    (UserWarning, r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation"),
)


class Bf16Head(nn.Module):
    """``head`` run under torch's CPU bf16 autocast: ``(K, ...)`` fp32 in, ``(K, 1024)`` fp32 out."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out: torch.Tensor = self.head(features)
        return out.float()


def int8_head(head: nn.Module) -> nn.Module:
    """A copy of ``head`` with its Linear layers dynamically quantized to int8 (per output channel)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    from posetrack_cli.runtime.convert import notes_shown

    with warnings.catch_warnings():  # torch's notes on the quantization API's future, nothing a user can act on
        if not notes_shown():  # (--verbose shows them)
            for category, message in _QUANTIZATION_NOTES:
                warnings.filterwarnings("ignore", message, category)
        quantized: nn.Module = quantize_dynamic(  # type: ignore[no-untyped-call]
            copy.deepcopy(head), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return quantized.eval()


def offered_forms(native_bf16: bool) -> tuple[str, ...]:
    """The forms worth timing on a CPU: bf16 only where it is native (``cpu_info().native_bf16``)."""
    from posetrack_cli.runtime.choice import openvino_available

    if not native_bf16:
        return ("fp32", "int8")
    return BOX_HEAD_FORMS if openvino_available() else ("fp32", "int8", "bf16")


def box_head_form(head: nn.Module, form: str, *, source: tuple[str, str] | None = None,
                  warn: Warn = warn_on_stderr) -> nn.Module:
    """``head`` (torchvision's ``TwoMLPHead``) in ``form``, one of :data:`BOX_HEAD_FORMS`; ``source``
    (the detector's name and weights digest) names the OpenVINO form's cached conversion."""
    if form == "fp32":
        return head
    if form == "int8":
        return int8_head(head)
    if form == "bf16":
        return Bf16Head(head)
    if form == "bf16-openvino":
        from posetrack_cli.runtime.backbone import OpenVINOBackbone

        if source is None:
            raise ValueError("the OpenVINO box head needs the detector's name and weights digest")
        return OpenVINOBackbone(head, name=source[0], precision="bf16", weights_sha256=source[1], part="box_head",
                                item=ROI_FEATURES, warn=warn)
    raise PosetrackError(f"a box head runs in one of {', '.join(BOX_HEAD_FORMS)}, not {form}")


def choose_box_head(head: nn.Module, form: str, *, task: str, proposals: int, native_bf16: bool,
                    source: tuple[str, str] | None = None,
                    warn: Warn = warn_on_stderr) -> tuple[nn.Module, Choice]:
    """``head`` in ``form``, or under ``auto`` in the fastest of the forms offered on this CPU, timed
    once on ``proposals`` random RoI features and remembered under ``task``
    (:func:`~posetrack_cli.runtime.tuning.fastest`); ``source`` as for :func:`box_head_form`.

    A form asked for by name that this CPU is not offered (bf16 without native bf16) is an error.
    """
    offered = offered_forms(native_bf16)
    if form != "auto":
        if form not in offered:
            raise PosetrackError(f"the box head cannot run {form} on this CPU (no native bf16); "
                                 f"it runs {' or '.join(offered)}")
        return box_head_form(head, form, source=source, warn=warn), Choice(form, {}, measured=False)
    built: dict[str, nn.Module] = {}  # made on first use: a remembered choice builds only the chosen form

    def build(name: str) -> nn.Module:
        if name not in built:
            built[name] = box_head_form(head, name, source=source, warn=warn)
        return built[name]

    example = torch.randn(proposals, *ROI_FEATURES, generator=torch.Generator().manual_seed(0))

    def call(name: str) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                return build(name)(example)
        return run

    choice = fastest(task, {name: call(name) for name in offered}, calls=3, warn=warn)
    return build(choice.name), choice
