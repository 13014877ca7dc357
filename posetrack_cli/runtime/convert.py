"""torch to OpenVINO: converting the pose network (uint8 NHWC crops in) and compiling for the CPU.

Stride-2 deconvolutions are converted as four convolutions and a pixel shuffle
(:mod:`posetrack_cli.models.subpixel`): the same arithmetic, but OpenVINO runs deconvolutions in
fp32 even in an int8 model, and convolutions in int8.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posetrack_cli.runtime.cache import (
    Damaged,
    Unwritable,
    Warn,
    cache_dir,
    read_about,
    save_entry,
    warn_on_stderr,
)
from posetrack_cli.runtime.notes import quiet_tracing
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
    with torch.no_grad(), quiet_tracing():
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
    """An ``openvino.CompiledModel`` whose calls leave the calling thread's signal stack as it was.

    ``keep`` is memory the compiled model reads from and must outlive it (an imported blob's mapping).
    """

    def __init__(self, compiled: Any, keep: Any = None) -> None:
        self.compiled = compiled
        self._keep = keep

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with own_signal_stack():
            return self.compiled(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.compiled, name)


BLOB = "compiled.blob"


@functools.cache  # the CPU does not change while a process runs
def _cpu_identity() -> str:
    """The CPU as OpenVINO sees it (a compiled model is made for one)."""
    import openvino as ov

    core = ov.Core()
    capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return f"{core.get_property('CPU', 'FULL_DEVICE_NAME')} [{' '.join(map(str, capabilities))}]"


def compiled_entry(source: tuple[str, str], config: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """The cache folder of a model compiled with ``config`` on this CPU from the saved model ``source``
    (:func:`~posetrack_cli.runtime.cache.source_of`: its folder name and its files' digest), and what the
    entry's ``about.json`` must say: the settings, OpenVINO's version, the CPU and the source's digest.

    The folder is named by the source's folder and the rest but not by the source's digest: a
    source made again (a damaged one, a recalibration) replaces its compiled model, not adds one.
    """
    import openvino as ov

    name, digest = source
    settings = {"config": {k: str(v) for k, v in sorted(config.items())}, "openvino": ov.__version__,
                "cpu": _cpu_identity()}
    tag = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / f"compiled-{name}-{tag}", {**settings, "source": name, "source_sha256": digest}


def _import(path: Path, config: dict[str, Any]) -> Compiled:
    """A compiled model read back from its exported blob. OpenVINO reads the blob's memory while the
    model lives (a new batch size prepares its kernels from it): the mapping stays with the model."""
    import openvino as ov

    data = np.memmap(path, dtype=np.uint8, mode="c")  # copy-on-write: the file is never written to
    with own_signal_stack():
        return Compiled(ov.Core().import_model(ov.Tensor(data, shared_memory=True), "CPU", config), keep=data)


def _export(compiled: Compiled, path: Path) -> None:
    with own_signal_stack():
        blob = compiled.compiled.export_model()
    with open(path, "wb") as f:
        f.write(blob.getbuffer())


def compile_model(ov_model: Any, precision: str, *, profile: bool = False, source: tuple[str, str] | None = None,
                  warn: Warn = warn_on_stderr, unquantized: str | None = None) -> Compiled:
    """``ov_model`` compiled for the CPU with torch's thread count (one-thread runs stay one thread);
    with ``profile``, its infer requests keep per-layer times (``profiling_info``). An int8 model's
    layers NNCF left in float run in OpenVINO's default precision for the CPU, or in ``unquantized``
    (``fp32`` or ``bf16``) when given (:class:`~posetrack_cli.runtime.quantize.Form`).

    With ``source`` (:func:`~posetrack_cli.runtime.cache.source_of`: the saved model ``ov_model`` was read
    from), the compiled model is cached too, as an entry of its own
    (:func:`compiled_entry`) verified like every entry: OpenVINO's own blob cache checks nothing
    (a blob with zeroed bytes is used, and computes other heatmaps). A damaged one is compiled again
    with one warning; one that cannot be written is not kept, silently (the conversion's entry, in the
    same folder, has said so).
    """
    import openvino as ov

    config = _compile_config(precision, unquantized, profile)
    folder, made_from = compiled_entry(source, config) if source is not None and not profile else (None, {})
    if folder is not None:
        settings = {k: v for k, v in made_from.items() if k != "source_sha256"}
        try:
            about = read_about(folder, settings, (BLOB,))
            if about is not None and about.get("source_sha256") == made_from["source_sha256"]:
                return _import(folder / BLOB, config)
            # else none yet, or compiled from the model before it was made again: compiled and replaced
        except Damaged as exc:
            warn(f"cached compiled model {folder} is damaged ({exc}); compiled it again")
        except (RuntimeError, ValueError, OSError):
            pass  # refused by OpenVINO though intact (another build's blob): compiled again and replaced
    with own_signal_stack():
        compiled = Compiled(ov.Core().compile_model(ov_model, "CPU", config))
    if folder is not None:
        _save_compiled(compiled, folder, made_from)
    return compiled


def keep_compiled(compiled: Compiled, precision: str, source: tuple[str, str] | None, *,
                  unquantized: str | None = None) -> None:
    """Cache ``compiled``, a model this process compiled before ``source`` was saved, as
    :func:`compile_model` would have cached it from ``source``: the next run imports it instead of
    compiling again (int8 calibration keeps the model it chose this way). Nothing for a ``source``
    that was not saved (None); a cache that cannot be written keeps nothing, silently, as there."""
    if source is not None:
        _save_compiled(compiled, *compiled_entry(source, _compile_config(precision, unquantized)))


def _compile_config(precision: str, unquantized: str | None, profile: bool = False) -> dict[str, Any]:
    """OpenVINO's settings for :func:`compile_model` (they are part of a compiled entry's key)."""
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
                              "ENABLE_CPU_PINNING": False}
    if precision in OV_PRECISION:  # int8 models carry their own precisions; the rest run as asked
        config["INFERENCE_PRECISION_HINT"] = OV_PRECISION[precision]
    elif unquantized is not None:
        config["INFERENCE_PRECISION_HINT"] = OV_PRECISION[unquantized]
    if profile:
        config["PERF_COUNT"] = True
    return config


def _save_compiled(compiled: Compiled, folder: Path, made_from: dict[str, Any]) -> None:
    try:
        save_entry(folder, made_from, lambda tmp: _export(compiled, tmp / BLOB))
    except Unwritable:
        pass
