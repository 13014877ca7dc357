"""torch to OpenVINO: converting the pose network (uint8 NHWC crops in) and compiling for the CPU.

Stride-2 deconvolutions are converted as four convolutions and a pixel shuffle
(:mod:`posetrack_cli.models.subpixel`): the same arithmetic, but OpenVINO runs deconvolutions in
fp32 even in an int8 model, and convolutions in int8.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from posetrack_cli.runtime.cache import cache_dir
from posetrack_cli.runtime.signals import own_signal_stack

# OpenVINO's inference precision hints of the precisions a model is compiled in (int8 models carry their own).
OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def convert_to_openvino(model: torch.nn.Module, input_size: tuple[int, int]) -> Any:
    """An fp32 ``openvino.Model`` of ``model`` (a :class:`~posetrack_cli.models.crop_input.CropInput`)
    whose input is uint8 crops ``(batch, H, W, 3)``, batch dynamic, as ``cv2.warpAffine`` writes them;
    its deconvolutions rewritten by :func:`~posetrack_cli.models.subpixel.subpixel_deconvolutions`."""
    import openvino as ov

    from posetrack_cli.models.subpixel import subpixel_deconvolutions

    w, h = input_size
    with torch.no_grad():
        converted = ov.convert_model(subpixel_deconvolutions(model), example_input=torch.zeros(2, 3, h, w),
                                     input=[ov.PartialShape([-1, 3, h, w])])
    steps = ov.preprocess.PrePostProcessor(converted)  # the uint8 -> float and NHWC -> NCHW steps, in the graph
    steps.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    steps.input().model().set_layout(ov.Layout("NCHW"))
    return steps.build()


def crops_for_openvino(crops: torch.Tensor) -> np.ndarray:
    """The OpenVINO pose network's input: uint8 crops ``(n, 3, H, W)`` (any strides) as ``(n, H, W, 3)``.

    Crops cut on a CPU are a channels-last view already, so this copies nothing for them.
    """
    if crops.dtype != torch.uint8:
        raise ValueError(f"the OpenVINO pose network takes uint8 crops, got {crops.dtype}")
    return np.ascontiguousarray(crops.detach().cpu().permute(0, 2, 3, 1).numpy())


class Compiled:
    """An ``openvino.CompiledModel`` whose calls leave the calling thread's signal stack as it was."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with own_signal_stack():
            return self.compiled(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.compiled, name)


def compile_model(ov_model: Any, precision: str, *, profile: bool = False) -> Compiled:
    """``ov_model`` compiled for the CPU with torch's thread count (one-thread runs stay one thread);
    with ``profile``, its infer requests keep per-layer times (``profiling_info``)."""
    import openvino as ov

    core = ov.Core()
    core.set_property({"CACHE_DIR": str(cache_dir() / "openvino-blobs")})
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
                              "ENABLE_CPU_PINNING": False}
    if precision in OV_PRECISION:  # int8 models carry their own precisions; the rest run as asked
        config["INFERENCE_PRECISION_HINT"] = OV_PRECISION[precision]
    if profile:
        config["PERF_COUNT"] = True
    with own_signal_stack():
        return Compiled(core.compile_model(ov_model, "CPU", config))
