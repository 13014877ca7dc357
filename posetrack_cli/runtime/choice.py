"""Which runtime and number format a run gets: the user's choice checked against this machine.

``auto`` picks OpenVINO on a CPU when it is installed, torch on CUDA; bf16 where the CPU computes
bf16 natively (AVX512_BF16 or AMX, as OpenVINO reports it), else fp32. Explicit choices the machine
cannot honour are errors, not quiet substitutions.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from posetrack_cli.core.errors import PosetrackError

if TYPE_CHECKING:
    import torch

# Where the pose network runs and in which number format.
RUNTIMES = ("auto", "torch", "openvino")
PRECISIONS = ("auto", "fp32", "bf16", "int8")


def openvino_available() -> bool:
    """Whether the ``openvino`` package imports here."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def nncf_available() -> bool:
    """Whether the ``nncf`` package (int8 quantization) is installed (found, not imported: that takes seconds)."""
    import importlib.util

    return importlib.util.find_spec("nncf") is not None


@functools.cache  # the CPU does not change while a process runs; asked up to three times per model load
def cpu_has_native_bf16() -> bool:
    """Whether OpenVINO reports native bf16 compute on this CPU (AVX512_BF16 or AMX)."""
    if not openvino_available():
        return False
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def resolve_runtime(runtime: str, precision: str, device: torch.device, *, half: bool = False,
                    compile: bool = False) -> tuple[str, str]:
    """The ``(runtime, precision)`` a run uses, from the user's choices and the machine.

    Raises PosetrackError when an explicit choice cannot run here (OpenVINO on CUDA or not
    installed, bf16 without native bf16, int8 without NNCF, torch asked for bf16 or int8).
    """
    if runtime not in RUNTIMES or precision not in PRECISIONS:
        raise PosetrackError(f"runtime must be one of {RUNTIMES} and precision one of {PRECISIONS}")
    if runtime == "auto":
        runtime = "openvino" if device.type == "cpu" and openvino_available() and not (half or compile) else "torch"
    if runtime == "torch":
        if precision in ("bf16", "int8"):
            raise PosetrackError(
                f"--precision {precision} needs --runtime openvino (torch runs fp32, or fp16 with --half)")
        return "torch", "fp16" if half else "fp32"
    if device.type != "cpu":
        raise PosetrackError(f"--runtime openvino runs on the CPU; use --runtime torch for {device}")
    if half or compile:
        raise PosetrackError("--half and --compile are torch options; they do not apply to --runtime openvino")
    if not openvino_available():
        raise PosetrackError('--runtime openvino needs the openvino package: pip install openvino')
    if precision == "auto":
        precision = "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "bf16" and not cpu_has_native_bf16():
        raise PosetrackError("this CPU has no native bf16 (AVX512_BF16 or AMX), where OpenVINO would run fp32 "
                             "anyway; use --precision fp32 or int8")
    if precision == "int8" and not nncf_available():
        raise PosetrackError("--precision int8 needs the nncf package for calibration: pip install nncf")
    return "openvino", precision


def choose_precision(runtime: str, precision: str, preferred: str, device: torch.device, *, half: bool = False,
                     compile: bool = False) -> str:
    """``precision``, or under ``auto`` a preset's ``preferred`` one where the runtime resolves to OpenVINO
    (a preset's int8 means nothing to torch on CUDA, which then keeps its own auto)."""
    if precision != "auto" or preferred == "auto":
        return precision
    resolved, _ = resolve_runtime(runtime, "auto", device, half=half, compile=compile)
    return preferred if resolved == "openvino" else precision


def detector_precision(pose_precision: str) -> str:
    """The detector's precision beside a pose network in ``pose_precision``: the same, except that int8
    (calibrated on person crops, which a detector never sees) gives the machine's own, bf16 or fp32."""
    if pose_precision != "int8":
        return pose_precision
    return "bf16" if cpu_has_native_bf16() else "fp32"
