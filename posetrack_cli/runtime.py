"""Where the pose network's forward runs: eager torch, or OpenVINO in fp32, bf16 or int8.

The estimator cuts crops and calls a runtime's ``__call__`` on ``(n, 3, H, W)`` tensors of them in
the frame's BGR order on the 0..255 scale (uint8 as ``cv2.warpAffine`` cuts them on a CPU), and
gets ``(n, K, h, w)`` float32 heatmaps back. The network a runtime runs is a
:class:`~posetrack_cli.models.crop_input.CropInput`: the input normalisation is its first step, the
same in every runtime. Decoding and the flip test stay in the estimator, so every runtime is judged
on the same keypoints.

* :class:`TorchRuntime`: the module itself (CUDA, ``--half``, ``--compile``; fp32 on a CPU).
* :class:`OpenVINORuntime`: the already strictly-loaded torch module converted by
  ``openvino.convert_model`` (so every checkpoint layout works), with a dynamic batch dimension and
  an 8-bit NHWC input (the crops themselves: OpenVINO converts them as part of the first layer), and
  saved in the cache folder beside the weights (``weights/cache/``) under a key made of the SHA-256
  of its state dict (weights and normalisation), the input size, the batch shape and the precision:
  a second run reads it back and pays no conversion; OpenVINO's own compiled-blob cache sits beside
  it. Stride-2 deconvolutions are
  converted as four convolutions and a pixel shuffle (``models/subpixel.py``): the same arithmetic,
  but OpenVINO runs deconvolutions in fp32 even in an int8 model, and convolutions in int8.
* int8 is NNCF post-training quantization calibrated on real person crops: given crops
  (``posetrack calibrate``), or the first crops of the user's video (which run in fp32 while they
  are gathered). Calibration reports how far int8 lands from fp32 on held-back crops.

``auto`` picks OpenVINO on a CPU when it is installed, torch on CUDA; bf16 where the CPU computes
bf16 natively (AVX512_BF16 or AMX, as OpenVINO reports it), else fp32. Explicit choices the machine
cannot honour are errors, not quiet substitutions.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import shutil
import sys
import tempfile
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from posetrack_cli.errors import PosetrackError
from posetrack_cli.settings import PRECISIONS, RUNTIMES

CACHE_VERSION = 4  # bump when what is cached (conversion arguments, quantization settings) changes
CALIBRATION_CROPS = 96  # crops gathered from the user's video before int8 quantization
HELD_BACK = 0.25  # share of the calibration crops kept out of quantization to measure agreement
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


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


def state_dict_sha256(model: torch.nn.Module) -> str:
    """Hex SHA-256 of a module's state dict: names, dtypes, shapes and bytes, in key order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


ENV_CACHE = "POSETRACK_CACHE"  # where converted models are kept, if not beside the weights


def cache_dir() -> Path:
    """Converted models live in ``$POSETRACK_CACHE`` when set, else in ``cache/`` inside the weights folder."""
    import os

    from posetrack_cli.weights import weights_dir

    return Path(os.environ[ENV_CACHE]) if os.environ.get(ENV_CACHE) else weights_dir() / "cache"


@dataclass(frozen=True)
class CacheKey:
    """What makes a converted model reusable.

    Attributes:
        weights_sha256: digest of the state dict the model was converted from.
        input_size: ``(width, height)``, or None for a model whose height and width are dynamic.
        precision: ``fp32``, ``bf16`` or ``int8``.
        batch: ``"dynamic"`` (any batch size), the only batch shape converted today.
        kind: ``pose`` for a pose network, ``<detector>-backbone`` for a detector's backbone.
    """

    weights_sha256: str
    input_size: tuple[int, int] | None
    precision: str
    batch: str = "dynamic"
    kind: str = "pose"

    def folder_name(self) -> str:
        """``<kind>-<sha16>-<W>x<H>-b<batch>-<precision>-v<N>`` (``any`` for a dynamic size): one folder per model."""
        size = "any" if self.input_size is None else "{}x{}".format(*self.input_size)
        return f"{self.kind}-{self.weights_sha256[:16]}-{size}-b{self.batch}-{self.precision}-v{CACHE_VERSION}"


def _save_atomically(model: Any, folder: Path, about: dict[str, Any]) -> None:
    """Write ``model.xml``/``model.bin``/``about.json`` into a temporary folder and rename it to ``folder``.

    A folder that already exists (another run finished first, or a recalibration) is replaced
    only after the new one is complete, so a reader never sees half a model.
    """
    import openvino as ov

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        (tmp / "about.json").write_text(json.dumps(about, indent=1, allow_nan=False))
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(folder)
    except OSError:
        if folder.is_dir() and (folder / "about.json").is_file():
            shutil.rmtree(tmp, ignore_errors=True)  # a concurrent run wrote the same model first
            return
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read_cached(folder: Path) -> tuple[Any, dict[str, Any]] | None:
    """The cached OpenVINO model and its ``about.json``, or None when absent."""
    if not (folder / "about.json").is_file():
        return None
    import openvino as ov

    return ov.Core().read_model(str(folder / "model.xml")), json.loads((folder / "about.json").read_text())


def cached_or_converted(key: CacheKey, convert: Callable[[], tuple[Any, dict[str, Any]]]) -> tuple[Any, dict[str, Any]]:
    """The fp32 ``openvino.Model`` cached under ``key`` and its ``about.json``; on a miss ``convert()``
    makes the model and what else to remember of it, saved (with the key's digest, size, precision
    and OpenVINO's version) for later runs."""
    import openvino as ov

    folder = cache_dir() / key.folder_name()
    cached = _read_cached(folder)
    if cached is not None:
        return cached
    ov_model, extra = convert()
    about = {**extra, "weights_sha256": key.weights_sha256,
             "input_size": None if key.input_size is None else list(key.input_size),
             "precision": key.precision, "openvino": ov.__version__}
    _save_atomically(ov_model, folder, about)
    return ov_model, about


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


class _SignalStack(ctypes.Structure):
    """``stack_t`` of ``sigaltstack(2)``."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


_libc: Any = None


@contextlib.contextmanager
def _own_signal_stack() -> Any:
    """Give the calling thread back its own alternate signal stack after OpenVINO ran on it.

    OpenVINO's CPU plugin, compiling or running a model, installs a signal stack of its own on the
    calling thread and frees it with the compiled model. Freed on another thread (the garbage
    collector runs wherever it happens to run), it stays installed on the first: the next signal
    with a handler that thread takes (a SIGCHLD as a subprocess ends, once torch's DataLoader has
    set a handler) cannot be delivered, and the kernel kills the process with SIGSEGV.
    """
    global _libc
    if not sys.platform.startswith("linux"):
        yield
        return
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    saved = _SignalStack()
    if _libc.sigaltstack(None, ctypes.byref(saved)) != 0:
        yield
        return
    try:
        yield
    finally:
        current = _SignalStack()
        if _libc.sigaltstack(None, ctypes.byref(current)) == 0 and (
                current.ss_sp, current.ss_size, current.ss_flags) != (saved.ss_sp, saved.ss_size, saved.ss_flags):
            if saved.ss_flags & 2:  # SS_DISABLE: the thread had none
                saved.ss_sp, saved.ss_size = None, 0
            _libc.sigaltstack(ctypes.byref(saved), None)


class _Compiled:
    """An ``openvino.CompiledModel`` whose calls leave the calling thread's signal stack as it was."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with _own_signal_stack():
            return self.compiled(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.compiled, name)


def _compile(ov_model: Any, precision: str, *, profile: bool = False) -> _Compiled:
    """``ov_model`` compiled for the CPU with torch's thread count (one-thread runs stay one thread);
    with ``profile``, its infer requests keep per-layer times (``profiling_info``)."""
    import openvino as ov

    core = ov.Core()
    core.set_property({"CACHE_DIR": str(cache_dir() / "openvino-blobs")})
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
                              "ENABLE_CPU_PINNING": False}
    if precision in _OV_PRECISION:  # int8 models carry their own precisions; the rest run as asked
        config["INFERENCE_PRECISION_HINT"] = _OV_PRECISION[precision]
    if profile:
        config["PERF_COUNT"] = True
    with _own_signal_stack():
        return _Compiled(core.compile_model(ov_model, "CPU", config))


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

    def line(self) -> str:
        return (f"int8 vs fp32 on {self.crops} held-back crops: {self.within_1px:.1%} of keypoints within 1 px "
                f"(max {self.max_px:.2f} px), heatmap relative error {self.heatmap_rel_error:.3f}")


def heatmap_agreement(reference: torch.Tensor, other: torch.Tensor, stride: float) -> Agreement:
    """Compare heatmaps ``(N, K, h, w)``; keypoints decoded as the estimator decodes them,
    distances in input pixels (``stride`` input pixels per heatmap pixel)."""
    from posetrack_cli.heatmaps import decode_heatmaps

    a, _ = decode_heatmaps(reference)
    b, _ = decode_heatmaps(other)
    dist = torch.linalg.norm(a - b, dim=-1) * stride  # (N, K)
    rel = torch.linalg.norm(other - reference) / torch.linalg.norm(reference).clamp_min(1e-12)
    return Agreement(len(reference), float((dist <= 1.0).float().mean()), float(dist.max()), float(rel))


def quantize_int8(fp32_model: Any, crops: np.ndarray) -> Any:
    """NNCF post-training quantization of an OpenVINO model on samples of its input (crops ``(N, H, W, 3)``)."""
    import nncf

    samples = [crops[i:i + 1] for i in range(len(crops))]
    with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: stdout stays for results
        return nncf.quantize(fp32_model, nncf.Dataset(samples), subset_size=len(samples),
                             preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=True)


class TorchRuntime:
    """The torch module itself: fp32 (CPU or CUDA), fp16 with ``half`` (CUDA), optionally compiled."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, device: torch.device, *, half: bool = False,
                 compile: bool = False) -> None:
        self.device = device
        self.precision = "fp16" if half else "fp32"
        self._dtype = torch.float16 if half else torch.float32
        self._compiled = compile
        model = model.to(device).to(memory_format=torch.channels_last).to(self._dtype)
        self.model: Callable[[torch.Tensor], torch.Tensor] = model
        if compile:
            # Inductor with freezing treats the weights as constants (pre-packed for oneDNN on a CPU).
            # dynamic=False: one static graph per padded batch size, not a slower shape-generic one.
            self.model = torch.compile(model, dynamic=False, options={"freezing": True})

    def describe(self) -> dict[str, Any]:
        return {"runtime": "torch", "version": torch.__version__, "precision": self.precision}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if self._compiled:  # a few fixed shapes rather than one compilation per person count
            padded = 1 << (n - 1).bit_length()
            x = torch.cat([x, x.new_zeros((padded - n, *x.shape[1:]))]) if padded > n else x
        x = x.to(self._dtype).contiguous(memory_format=torch.channels_last)
        out: torch.Tensor = self.model(x)[:n].float()
        return out


class OpenVINORuntime:
    """The network converted to OpenVINO, cached on disk, in fp32, bf16 or int8 (see the module docstring).

    Args:
        model: the strictly-loaded network in a :class:`~posetrack_cli.models.crop_input.CropInput`
            (BatchNorm may be folded already).
        input_size: ``(width, height)``.
        precision: ``fp32``, ``bf16`` or ``int8``.
        weights_sha256: digest of ``model``'s state dict before folding (default: of its state dict).
        calibration: uint8 crops ``(N, H, W, 3)`` to quantize on now (int8 only); without them
            a cached int8 model is used, else the first ``CALIBRATION_CROPS`` crops the runtime sees.
        stride: input pixels per heatmap pixel, for the agreement report.
        log: where calibration reports go (default: stderr).
    """

    name = "openvino"

    def __init__(self, model: torch.nn.Module, input_size: tuple[int, int], precision: str, *,
                 weights_sha256: str | None = None, calibration: np.ndarray | None = None, stride: float = 4.0,
                 log: Callable[[str], None] | None = None) -> None:
        import openvino as ov

        self.version = ov.__version__
        self.precision = precision
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.stride = stride
        self.log = log or (lambda line: print(f"posetrack: {line}", file=sys.stderr))
        self._torch_model = model
        self.sha256 = weights_sha256 or state_dict_sha256(model)
        self.calibration: dict[str, Any] | None = None
        self._pending: list[np.ndarray] = []
        self._fp32_model = self._cached_or_converted()
        cached = None
        if precision == "int8" and calibration is None:
            cached = _read_cached(cache_dir() / self.key("int8").folder_name())
        if cached is not None:
            self._compiled = _compile(cached[0], "int8")
            self.calibration = cached[1].get("calibration")
        elif precision == "int8" and calibration is not None:
            self.calibrate(calibration, source=f"{len(calibration)} given crops")  # compiles int8
        else:  # fp32 or bf16; an uncalibrated int8 runs fp32 while it gathers the run's first crops (__call__)
            self._compiled = _compile(self._fp32_model, "bf16" if precision == "bf16" else "fp32")

    def key(self, precision: str) -> CacheKey:
        return CacheKey(self.sha256, self.input_size, precision)

    def _cached_or_converted(self) -> Any:
        """The fp32 graph from the cache, converting on a miss. bf16 runs this same graph (it is a
        compile-time hint; OpenVINO's blob cache keeps the compiled bf16 form), so both share one entry."""
        return cached_or_converted(self.key("fp32"),
                                   lambda: (convert_to_openvino(self._torch_model, self.input_size), {}))[0]

    @property
    def calibrated(self) -> bool:
        """False while an int8 runtime still gathers crops (and runs fp32)."""
        return self.precision != "int8" or self.calibration is not None

    def calibrate(self, crops: np.ndarray, *, source: str) -> Agreement:
        """Quantize on ``crops`` (uint8 ``(N, H, W, 3)``, see :func:`crops_for_openvino`), report agreement
        with fp32 on the held-back share, cache the int8 model and switch to it."""
        if len(crops) < 4:
            raise PosetrackError(f"int8 calibration needs at least 4 person crops, got {len(crops)}")
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[3] != 3:
            raise ValueError(f"calibration takes uint8 crops (N, H, W, 3), got {crops.dtype} {crops.shape}")
        crops = np.ascontiguousarray(crops)
        order = np.random.default_rng(0).permutation(len(crops))
        held = max(1, int(round(len(crops) * HELD_BACK)))
        test, train = crops[order[:held]], crops[order[held:]]
        with _own_signal_stack():  # NNCF compiles and runs the model too
            int8_model = quantize_int8(self._fp32_model, train)
        fp32 = _compile(self._fp32_model, "fp32")
        int8 = _compile(int8_model, "int8")
        reference = torch.from_numpy(np.concatenate([fp32(test[i:i + 8])[0] for i in range(0, held, 8)]))
        quantized = torch.from_numpy(np.concatenate([int8(test[i:i + 8])[0] for i in range(0, held, 8)]))
        agreement = heatmap_agreement(reference, quantized, self.stride)
        self.calibration = {"source": source, "crops": len(train), **agreement.__dict__}
        _save_atomically(int8_model, cache_dir() / self.key("int8").folder_name(),
                         {"weights_sha256": self.sha256, "input_size": list(self.input_size), "precision": "int8",
                          "openvino": self.version, "calibration": self.calibration})
        self._compiled = int8
        self.log(f"calibrated int8 on {source}; {agreement.line()}")
        return agreement

    def describe(self) -> dict[str, Any]:
        about: dict[str, Any] = {"runtime": "openvino", "version": self.version, "precision": self.precision}
        if self.precision == "int8":
            about["calibration"] = self.calibration
        return about

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Heatmaps of uint8 crops ``(n, 3, H, W)``."""
        array = crops_for_openvino(x)
        out = torch.from_numpy(self._compiled(array)[0].copy())
        if not self.calibrated:
            self._pending.append(array)
            if sum(len(a) for a in self._pending) >= CALIBRATION_CROPS:
                crops = np.concatenate(self._pending)
                self._pending = []
                self.calibrate(crops, source=f"the first {len(crops)} crops of this run (run in fp32 until then)")
        return out


def make_runtime(model: torch.nn.Module, *, runtime: str, precision: str, device: torch.device,
                 input_size: tuple[int, int], half: bool = False, compile: bool = False,
                 weights_sha256: str | None = None, stride: float = 4.0) -> TorchRuntime | OpenVINORuntime:
    """The runtime ``resolve_runtime`` picks for these choices, built around ``model``."""
    runtime, precision = resolve_runtime(runtime, precision, device, half=half, compile=compile)
    if runtime == "torch":
        return TorchRuntime(model, device, half=half, compile=compile)
    return OpenVINORuntime(model, input_size, precision, weights_sha256=weights_sha256, stride=stride)


def detector_precision(pose_precision: str) -> str:
    """The detector's precision beside a pose network in ``pose_precision``: the same, except that int8
    (calibrated on person crops, which a detector never sees) gives the machine's own, bf16 or fp32."""
    if pose_precision != "int8":
        return pose_precision
    return "bf16" if cpu_has_native_bf16() else "fp32"


class OpenVINOBackbone(torch.nn.Module):
    """A torchvision detector's backbone run by OpenVINO, in its place.

    The backbone (convolutional features and FPN: most of a detector's time, and where eager torch
    is slowest, with its frozen BatchNorms and activations as separate passes) takes the padded image
    batch ``(N, 3, H, W)`` and returns the same ordered feature maps ``{name: (N, C, h, w)}``; H and W
    are dynamic, so any video size uses one converted model. Proposals, RoI pooling, the box heads
    and NMS stay in torch (the box head's matrix products are no faster in OpenVINO).

    Args:
        backbone: the strictly-loaded backbone module.
        name: the detector's name, part of the cache key.
        precision: ``fp32`` or ``bf16``.
        weights_sha256: digest of the detector's state dict.
    """

    def __init__(self, backbone: torch.nn.Module, *, name: str, precision: str, weights_sha256: str) -> None:
        super().__init__()
        import openvino as ov

        if precision not in _OV_PRECISION:
            raise PosetrackError(f"a detector runs fp32 or bf16 in OpenVINO, not {precision}")
        self.out_channels = getattr(backbone, "out_channels", None)  # read by torchvision's heads
        self.precision, self.version = precision, ov.__version__

        def convert() -> tuple[Any, dict[str, Any]]:
            example = torch.zeros(1, 3, 320, 320)
            with torch.no_grad():
                out = backbone.eval()(example)  # its output names, kept beside the converted model
                model = ov.convert_model(backbone, example_input=example, input=[ov.PartialShape([-1, 3, -1, -1])])
            return model, {"outputs": list(out) if isinstance(out, dict) else None}

        key = CacheKey(weights_sha256, None, "fp32", kind=f"{name}-backbone")
        ov_model, about = cached_or_converted(key, convert)
        self.names: list[str] | None = about["outputs"]  # None: a plain tensor, not a dict of maps
        self._compiled = _compile(ov_model, precision)

    def forward(self, images: torch.Tensor) -> Any:
        outputs = self._compiled(np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32))
        if self.names is None:
            return torch.from_numpy(outputs[0].copy())
        return OrderedDict((name, torch.from_numpy(outputs[i].copy())) for i, name in enumerate(self.names))
