"""int8: NNCF post-training quantization calibrated on real person crops, and how far it lands from fp32.

The depthwise convolutions of MobileNetV2 (OpenVINO ``GroupConvolution``) move much memory per
operation, so int8 helps them less than dense convolutions, and on some CPUs not at all. Each
:class:`Form` is one way of running them inside the int8 network (int8 like the rest, or left
unquantized in fp32 or bf16); the runtime times the forms once per CPU (:mod:`.tuning`) and keeps
the fastest whose agreement with fp32 is within the bound the tests hold int8 to. Several forms
are quantized on one pass of statistics over the crops (:func:`quantize_forms`), which is most of
NNCF's time, so timing a second form costs a fraction of a second calibration.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch

CALIBRATION_CROPS = 96  # crops gathered from the user's video before int8 quantization
HELD_BACK = 0.25  # share of the calibration crops kept out of quantization to measure agreement
# The least agreement with fp32 an int8 model is used with without a word: the bound the tests hold int8 to.
MIN_WITHIN_1PX = 0.8  # share of joints whose int8 peak lands within 1 input pixel of fp32's
MAX_HEATMAP_REL_ERROR = 0.15
DEPTHWISE_OP = "GroupConvolution"  # what OpenVINO makes of a depthwise (grouped) torch convolution


@dataclass(frozen=True)
class Form:
    """One way to run the depthwise convolutions of an int8 network.

    Attributes:
        name: what ``about.json``, ``choices.json`` and the output JSON call it.
        depthwise: ``int8``, ``fp32`` or ``bf16``: the number format they run in.
    """

    name: str
    depthwise: str

    @property
    def ignored_types(self) -> tuple[str, ...]:
        """The OpenVINO operation types NNCF leaves unquantized in this form."""
        return () if self.depthwise == "int8" else (DEPTHWISE_OP,)

    @property
    def unquantized(self) -> str:
        """The precision the layers NNCF leaves in float run in (OpenVINO's inference precision hint):
        stated, not left to OpenVINO's default (bf16 on CPUs with native bf16)."""
        return "bf16" if self.depthwise == "bf16" else "fp32"


FORMS = {form.name: form for form in (Form("int8", "int8"), Form("fp32-depthwise", "fp32"),
                                      Form("bf16-depthwise", "bf16"))}


def candidate_forms(ov_model: Any, native_bf16: bool) -> list[str]:
    """The forms worth timing for ``ov_model`` on this CPU: ``int8`` alone for a network without
    depthwise convolutions (nothing to choose), else also ``fp32-depthwise``, and ``bf16-depthwise``
    where the CPU has native bf16 (elsewhere OpenVINO would run it in fp32 under another name)."""
    if not any(op.get_type_name() == DEPTHWISE_OP for op in ov_model.get_ops()):
        return ["int8"]
    return ["int8", "fp32-depthwise"] + (["bf16-depthwise"] if native_bf16 else [])


# OpenVINO's runtime precisions (``runtimePrecision`` of a compiled model's layers) as posetrack names them.
_RUNTIME_PRECISION = {"u8": "int8", "i8": "int8", "f32": "fp32", "bf16": "bf16", "f16": "fp16"}


def depthwise_precisions(ov_model: Any, compiled: Any) -> dict[str, int]:
    """How many of ``ov_model``'s depthwise convolutions the compiled model runs in each number format
    (``int8``, ``fp32``, ``bf16``), as OpenVINO's executed graph records it: what really runs."""
    names = {op.get_friendly_name() for op in ov_model.get_ops() if op.get_type_name() == DEPTHWISE_OP}
    counts: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if names & set(info["originalLayersNames"].astype(str).split(",")):
            precision = info["runtimePrecision"].astype(str)
            precision = _RUNTIME_PRECISION.get(precision, precision)
            counts[precision] = counts.get(precision, 0) + 1
    return counts


@dataclass(frozen=True)
class Agreement:
    """How close quantized heatmaps are to fp32 on held-back crops.

    Attributes:
        crops: held-back crops compared.
        within_1px: share of keypoints whose int8 location is within 1 input pixel of fp32's.
        max_px: largest keypoint distance, input pixels.
        heatmap_rel_error: ``||h_int8 - h_fp32|| / ||h_fp32||`` over all held-back heatmaps.
    """

    crops: int
    within_1px: float
    max_px: float
    heatmap_rel_error: float

    @property
    def acceptable(self) -> bool:
        """Within the bound the tests hold int8 to (:data:`MIN_WITHIN_1PX`, :data:`MAX_HEATMAP_REL_ERROR`)."""
        return self.within_1px >= MIN_WITHIN_1PX and self.heatmap_rel_error <= MAX_HEATMAP_REL_ERROR

    def line(self) -> str:
        """What the agreement means, in words, and what to do when it is low."""
        said = (f"int8 vs fp32 on {self.crops} held-back crops: for {self.within_1px:.1%} of joints int8's heatmap "
                f"peak lands within 1 input pixel of fp32's (farthest {self.max_px:.2f} px; heatmaps differ by "
                f"{self.heatmap_rel_error:.1%})")
        if self.acceptable:
            return f"{said}: as close as expected"
        return (f"{said}: less close than expected (at least {MIN_WITHIN_1PX:.0%} of joints, heatmaps within "
                f"{MAX_HEATMAP_REL_ERROR:.0%}), so int8 poses may stray; run `posetrack calibrate` on more or other "
                "crops of your footage (--crops 500), or use --precision fp32")


def heatmap_agreement(reference: torch.Tensor, other: torch.Tensor, stride: float) -> Agreement:
    """Compare heatmaps ``(N, K, h, w)``; keypoints decoded as the estimator decodes them,
    distances in input pixels (``stride`` input pixels per heatmap pixel)."""
    from posetrack_cli.models.heatmaps import decode_heatmaps

    a, _ = decode_heatmaps(reference)
    b, _ = decode_heatmaps(other)
    dist = torch.linalg.norm(a - b, dim=-1) * stride  # (N, K)
    rel = torch.linalg.norm(other - reference) / torch.linalg.norm(reference).clamp_min(1e-12)
    return Agreement(len(reference), float((dist <= 1.0).float().mean()), float(dist.max()), float(rel))


@contextlib.contextmanager
def quiet_nncf() -> Iterator[None]:
    """NNCF without its own output: its INFO log lines (written to stdout) and its rich progress bars
    ("Statistics collection", "Applying Fast Bias correction"), which draw on rich's global console
    (used by nothing else in posetrack), and the CUDA note of :func:`~.notes.no_cuda_note`. Its
    warnings and errors still show. The caller says in one line of its own that calibration runs."""
    import nncf
    from rich import get_console

    from posetrack_cli.runtime.notes import no_cuda_note

    logger = logging.getLogger("nncf")
    level, console = logger.level, get_console()
    quiet = console.quiet
    nncf.set_log_level(logging.WARNING)
    console.quiet = True
    try:
        with no_cuda_note():
            yield
    finally:
        console.quiet = quiet
        nncf.set_log_level(level)


def quantize_forms(fp32_model: Any, crops: np.ndarray, forms: Sequence[str]) -> dict[str, Any]:
    """NNCF post-training quantization of an OpenVINO model in each of ``forms`` (names of
    :data:`FORMS`), calibrated on samples of its input (crops ``(N, H, W, 3)``): name -> int8
    ``openvino.Model``.

    One form is ``nncf.quantize`` itself. Several share one pass of statistics over the crops (the
    bulk of NNCF's time: the model runs on every crop with every activation as an output): NNCF's
    own pipeline (``PostTrainingQuantization``, as ``nncf.quantize`` builds it) collects the points
    all forms need at once and applies each form to them; the models equal ``nncf.quantize``'s
    (tests/test_pose_forms.py holds them to it).
    """
    import nncf

    samples = [crops[i:i + 1] for i in range(len(crops))]
    settings: dict[str, Any] = {"subset_size": len(samples), "preset": nncf.QuantizationPreset.MIXED,
                                "fast_bias_correction": True}

    def ignored(name: str) -> Any:
        types = FORMS[name].ignored_types
        return nncf.IgnoredScope(types=list(types)) if types else None

    with quiet_nncf():
        if len(forms) == 1:
            return {forms[0]: nncf.quantize(fp32_model, nncf.Dataset(samples), ignored_scope=ignored(forms[0]),
                                            **settings)}
        from nncf.openvino.graph.model_utils import remove_friendly_name_duplicates
        from nncf.openvino.graph.nncf_graph_builder import GraphConverter
        from nncf.quantization.algorithms.pipeline import collect_statistics
        from nncf.quantization.algorithms.post_training.algorithm import PostTrainingQuantization
        from openvino._offline_transformations import compress_quantize_weights_transformation

        model = remove_friendly_name_duplicates(fp32_model)
        graph = GraphConverter.create_nncf_graph(model)
        dataset = nncf.Dataset(samples)
        algorithms = {name: PostTrainingQuantization(ignored_scope=ignored(name), **settings) for name in forms}
        statistics = collect_statistics([a.get_statistic_points(model, graph) for a in algorithms.values()],
                                        model, graph, dataset)
        quantized = {}
        for name, algorithm in algorithms.items():
            quantized[name] = algorithm.apply(model, graph, statistic_points=statistics, dataset=dataset)
            compress_quantize_weights_transformation(quantized[name])  # int8 weights, as nncf.quantize keeps them
        return quantized


def quantize_int8(fp32_model: Any, crops: np.ndarray, form: str = "int8") -> Any:
    """NNCF post-training quantization of an OpenVINO model on samples of its input (crops ``(N, H, W, 3)``),
    in one of :data:`FORMS` (default: everything int8)."""
    return quantize_forms(fp32_model, crops, [form])[form]
