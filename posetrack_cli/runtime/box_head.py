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

import contextlib
import copy
import pickle
import warnings
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.runtime.cache import (
    CacheKey,
    Damaged,
    Warn,
    cache_dir,
    damaged_entry,
    keep,
    read_about,
    warn_on_stderr,
)
from posetrack_cli.runtime.tuning import Choice, fastest

# Every form there is, whether or not this CPU is offered it.
BOX_HEAD_FORMS = ("fp32", "int8", "bf16", "bf16-openvino")
# RoI features per proposal: FPN channels x RoIAlign output (torchvision's MultiScaleRoIAlign, 7x7).
ROI_FEATURES = (256, 7, 7)
INT8_FILE = "box_head.pt"  # the int8 form's quantized layers in its model cache entry
# What torch 2.9+ says as an int8 head is made or loaded (category, start of the message): the eager
# quantization API is to move to torchao; the quantized tensors it makes are to go too.
_QUANTIZATION_NOTES: tuple[tuple[type[Warning], str], ...] = (
    (DeprecationWarning, r"torch\.ao\.quantization is deprecated"),
    (UserWarning, r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation"),
    (UserWarning, r"TypedStorage is deprecated"),  # torch.load of quantized tensors
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


def int8_head(head: nn.Module, *, source: tuple[str, str] | None = None, warn: Warn = warn_on_stderr) -> nn.Module:
    """A copy of ``head`` with its Linear layers dynamically quantized to int8 (per output channel).

    With ``source`` (the detector's name and weights digest) the quantized layers are kept in the
    model cache, and a later run loads them (~0.1 s for the MobileNetV3 detector's head) instead of
    quantizing again (~0.3 s): part of every warm start of the ``fast`` preset.
    """
    if source is None:
        return _quantized(head)
    # torch's version in the key: the packed layers' format is torch's own
    key = CacheKey(source[1], None, "int8", kind=f"{source[0]}-box_head-torch{torch.__version__}")
    folder = cache_dir() / key.folder_name()
    damaged = None
    try:
        if read_about(folder, key.made_from(), (INT8_FILE,)) is not None:
            return _load_int8(head, folder / INT8_FILE)
    except Damaged as exc:
        damaged = damaged_entry(folder, exc)
    made = _quantized(head)
    keep(folder, key.made_from(), lambda tmp: torch.save(made.state_dict(), tmp / INT8_FILE), warn, damaged=damaged)
    return made


def _quantized(head: nn.Module) -> nn.Module:
    """``head`` with its Linear layers quantized by torch (a copy)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with _quantization_notes_hidden():
        quantized: nn.Module = quantize_dynamic(  # type: ignore[no-untyped-call]
            copy.deepcopy(head), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return quantized.eval()


@contextlib.contextmanager
def _quantization_notes_hidden() -> Iterator[None]:
    """torch's notes on the quantization API's future, nothing a user can act on, kept off the
    terminal (``--verbose`` shows them)."""
    from posetrack_cli.runtime.notes import notes_shown

    with warnings.catch_warnings():
        if not notes_shown():
            for category, message in _QUANTIZATION_NOTES:
                warnings.filterwarnings("ignore", message, category)
        yield


def _load_int8(head: nn.Module, path: Path) -> nn.Module:
    """The int8 copy of ``head`` whose layers :func:`int8_head` saved to ``path``: ``head``'s structure
    (its tensors not copied) with each Linear layer an empty int8 one, then the saved layers loaded
    strictly. Raises Damaged where the file does not load."""
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    skeleton = copy.deepcopy(head, memo={id(t): torch.empty_like(t, device="meta")
                                         for t in [*head.parameters(), *head.buffers()]})

    def swap(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, nn.Linear):
                setattr(module, name, Int8Linear(child.in_features, child.out_features,  # type: ignore[no-untyped-call]
                                                 dtype=torch.qint8))
            else:
                swap(child)

    try:
        with _quantization_notes_hidden():
            swap(skeleton)
            skeleton.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    except (RuntimeError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        raise Damaged(f"its int8 layers do not load: {str(exc).splitlines()[0][:160]}") from None
    if any(t.is_meta for t in [*skeleton.parameters(), *skeleton.buffers()]):
        raise Damaged("it lacks some of the head's tensors")
    return skeleton.eval()


def offered_forms(native_bf16: bool) -> tuple[str, ...]:
    """The forms worth timing on a CPU: bf16 only where it is native (``cpu_info().native_bf16``)."""
    from posetrack_cli.runtime.choice import openvino_available

    if not native_bf16:
        return ("fp32", "int8")
    return BOX_HEAD_FORMS if openvino_available() else ("fp32", "int8", "bf16")


def box_head_form(head: nn.Module, form: str, *, source: tuple[str, str] | None = None,
                  warn: Warn = warn_on_stderr) -> nn.Module:
    """``head`` (torchvision's ``TwoMLPHead``) in ``form``, one of :data:`BOX_HEAD_FORMS`; ``source``
    (the detector's name and weights digest) names the model cache entries of the OpenVINO form's
    conversion (required for it) and of the int8 form's quantized layers."""
    if form == "fp32":
        return head
    if form == "int8":
        return int8_head(head, source=source, warn=warn)
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
