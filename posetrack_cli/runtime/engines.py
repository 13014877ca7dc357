"""The pose network's runtimes: eager torch, or OpenVINO in fp32, bf16 or int8.

The estimator cuts crops and calls a runtime's ``__call__`` on ``(n, 3, H, W)`` tensors of them in
the frame's BGR order on the 0..255 scale (uint8 as ``cv2.warpAffine`` cuts them on a CPU), and
gets ``(n, K, h, w)`` float32 heatmaps back. The network a runtime runs is a
:class:`~posetrack_cli.models.crop_input.CropInput`: the input normalisation is its first step, the
same in every runtime. Decoding and the flip test stay in the estimator, so every runtime is judged
on the same keypoints.

* :class:`TorchRuntime`: the module itself (CUDA, ``--half``, ``--compile``; fp32 on a CPU).
* :class:`OpenVINORuntime`: the already strictly-loaded torch module converted by
  ``openvino.convert_model`` (so every checkpoint layout works; :mod:`.convert`), with a dynamic
  batch dimension and an 8-bit NHWC input, kept in the cache (:mod:`.cache`) under a key made of
  the SHA-256 of its state dict (weights and normalisation), the input size, the batch shape and
  the precision: a second run reads it back, verified, and pays no conversion; the compiled model is
  cached beside it the same way (:func:`~posetrack_cli.runtime.convert.compile_model`).
* int8 is NNCF post-training quantization calibrated on real person crops (:mod:`.quantize`):
  given crops (``posetrack calibrate``), or the first crops of the user's video (which run in fp32
  while they are gathered). Calibration reports how far int8 lands from fp32 on held-back crops.
  A network with depthwise convolutions (MobileNetV2) is quantized in each
  :class:`~posetrack_cli.runtime.quantize.Form` this CPU offers (depthwise in int8, fp32, bf16), on one
  pass of statistics, and the forms are timed once per CPU, weights, input size and batch
  (:func:`~posetrack_cli.runtime.tuning.fastest`, remembered in ``choices.json``): later
  calibrations quantize the remembered form only. The fastest form is kept unless its agreement
  with fp32 is outside the tested bound and another form's is within it (said in the calibration
  line). The form is recorded in the int8 model's ``about.json`` and in :meth:`OpenVINORuntime.describe`.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np
import torch

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.models.pose_resnet import fold_batchnorm
from posetrack_cli.runtime.cache import (
    CacheKey,
    Damaged,
    cache_dir,
    cached_or_converted,
    damaged_entry,
    read_cached,
    save_model,
    source_of,
    state_dict_sha256,
)
from posetrack_cli.runtime.choice import resolve_runtime
from posetrack_cli.runtime.convert import (
    Compiled,
    compile_model,
    convert_to_openvino,
    crops_for_openvino,
    keep_compiled,
)
from posetrack_cli.runtime.cpu import cpu_info
from posetrack_cli.runtime.notes import notes_shown
from posetrack_cli.runtime.quantize import (
    CALIBRATION_CROPS,
    FORMS,
    HELD_BACK,
    Agreement,
    candidate_forms,
    depthwise_precisions,
    heatmap_agreement,
    quantize_forms,
)
from posetrack_cli.runtime.signals import own_signal_stack
from posetrack_cli.runtime.tuning import fastest

TIMED_BATCH = 8  # crops per call when the int8 forms are timed: 4 people with the flip test


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


def _stderr_line(line: str) -> None:
    """A runtime's line on stderr: warnings always, calibration reports under ``--verbose`` only (the
    agreement they report stays in the result's ``info``; ``posetrack calibrate`` prints it itself)."""
    if line.startswith("warning:") or notes_shown():
        print(f"posetrack: {line}", file=sys.stderr, flush=True)


class OpenVINORuntime:
    """The network converted to OpenVINO, cached on disk, in fp32, bf16 or int8 (see the module docstring).

    Args:
        model: the strictly-loaded network in a :class:`~posetrack_cli.models.crop_input.CropInput`
            (BatchNorm folded or not: it is folded for the
            conversion, which a cached model spares).
        input_size: ``(width, height)``.
        precision: ``fp32``, ``bf16`` or ``int8``.
        weights_sha256: digest of ``model``'s state dict before folding (default: of its state dict).
        calibration: uint8 crops ``(N, H, W, 3)`` to quantize on now (int8 only); without them
            a cached int8 model is used, else the first ``CALIBRATION_CROPS`` crops the runtime sees.
        stride: input pixels per heatmap pixel, for the agreement report.
        log: where calibration reports and warnings (``warning: ...``: a damaged cache entry made
            again, a cache that cannot be written) go, one line each (default: stderr, after
            ``posetrack: ``; the calibration reports only within ``library_notes(True)``, i.e.
            ``--verbose``, so a normal run prints its progress line alone).
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
        self.log = log or _stderr_line
        self._torch_model = model
        self.sha256 = weights_sha256 or state_dict_sha256(model)
        self.calibration: dict[str, Any] | None = None
        self._pending: list[np.ndarray] = []
        self._fp32_model, self._fp32_about = self._cached_or_converted()
        cached = None
        if precision == "int8" and calibration is None:
            folder = cache_dir() / self.key("int8").folder_name()
            try:
                cached = read_cached(folder, self.key("int8"))
            except Damaged as exc:
                self._warn(f"{damaged_entry(folder, exc)}; int8 is calibrated again on this run's first crops")
            if cached is not None and not isinstance(cached[1].get("calibration"), dict):
                cached = None  # cannot happen to an entry that passed its check; calibrated again
            form = None if cached is None else cached[1]["calibration"].get("form")
            if cached is not None and form not in self.forms():
                why = ("records no form of its depthwise convolutions (an older posetrack made it)" if form is None
                       else f"runs its depthwise convolutions as {form}, which this CPU does not offer")
                self._warn(f"the cached int8 model {why}; int8 is calibrated again on this run's first crops")
                cached = None
        if cached is not None:
            form = FORMS[cached[1]["calibration"]["form"]]
            self._compiled = compile_model(cached[0], "int8", source=source_of(self.key("int8"), cached[1]),
                                           warn=self._warn, unquantized=form.unquantized)
            self.calibration = cached[1]["calibration"]
        elif precision == "int8" and calibration is not None:
            self.calibrate(calibration, source=f"{len(calibration)} given crops")  # compiles int8
        else:  # fp32 or bf16; an uncalibrated int8 runs fp32 while it gathers the run's first crops (__call__)
            self._compiled = self._compile_unquantized()

    def _compile_unquantized(self) -> Any:
        """The fp32 graph compiled to run in fp32, or bf16 when that is the precision."""
        return compile_model(self._fp32_model, "bf16" if self.precision == "bf16" else "fp32",
                             source=source_of(self.key("fp32"), self._fp32_about), warn=self._warn)

    def _warn(self, message: str) -> None:
        """One warning line, to ``log`` as ``warning: <message>``."""
        self.log(f"warning: {message}")

    def key(self, precision: str) -> CacheKey:
        return CacheKey(self.sha256, self.input_size, precision)

    def _cached_or_converted(self) -> tuple[Any, dict[str, Any]]:
        """The fp32 graph from the cache and its ``about.json``, converting on a miss. bf16 runs this same
        graph (it is a compile-time hint; the compiled cache keeps the compiled bf16 form), so both share
        one entry."""
        return cached_or_converted(self.key("fp32"),
                                   # BatchNorm folded only here: a warm start reads the cache and never needs it
                                   lambda: (convert_to_openvino(fold_batchnorm(self._torch_model), self.input_size),
                                            {}),
                                   self._warn)

    def forms(self) -> list[str]:
        """The int8 forms this network can run in on this CPU (:func:`.quantize.candidate_forms`)."""
        return candidate_forms(self._fp32_model, cpu_info().native_bf16)

    def forms_task(self) -> str:
        """What the timing of the int8 forms is remembered under (besides the CPU and library versions)."""
        w, h = self.input_size
        return f"pose int8 depthwise form: weights {self.sha256}, input {w}x{h}, batch {TIMED_BATCH}"

    @property
    def calibrated(self) -> bool:
        """False while an int8 runtime still gathers crops (and runs fp32)."""
        return self.precision != "int8" or self.calibration is not None

    def calibrate(self, crops: np.ndarray, *, source: str) -> Agreement:
        """Quantize on ``crops`` (uint8 ``(N, H, W, 3)``, see :func:`crops_for_openvino`) in the fastest form
        (see the module docstring), report agreement with fp32 on the held-back share, cache the int8
        model and switch to it. Logs one line as it starts and one with the result."""
        if len(crops) < 4:
            raise PosetrackError(f"int8 calibration needs at least 4 person crops, got {len(crops)}")
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[3] != 3:
            raise ValueError(f"calibration takes uint8 crops (N, H, W, 3), got {crops.dtype} {crops.shape}")
        crops = np.ascontiguousarray(crops)
        order = np.random.default_rng(0).permutation(len(crops))
        held = max(1, int(round(len(crops) * HELD_BACK)))
        test, train = crops[order[:held]], crops[order[held:]]
        self.log(f"calibrating int8 on {len(train)} crops ({held} more held back to compare it with fp32) ...")
        forms = self.forms()
        models: dict[str, Any] = {}
        compiled: dict[str, Compiled] = {}
        runs: dict[str, dict[str, int]] = {}

        def quantize(names: list[str]) -> None:
            with own_signal_stack():  # NNCF compiles and runs the model too
                made = quantize_forms(self._fp32_model, train, names)
            for name, model in made.items():
                models[name], compiled[name] = model, compile_model(model, "int8",
                                                                    unquantized=FORMS[name].unquantized)
                runs[name] = depthwise_precisions(model, compiled[name])
                if runs[name] and FORMS[name].depthwise not in runs[name]:
                    raise PosetrackError(f"OpenVINO runs the depthwise convolutions of the int8 form {name} in "
                                         f"{', '.join(runs[name])} on this CPU, not {FORMS[name].depthwise}")

        batch = test[np.arange(TIMED_BATCH) % held]

        def timed(name: str) -> Callable[[], object]:
            def call() -> object:
                if name not in compiled:  # the first call (an untimed warm-up) quantizes every form at once
                    quantize([f for f in forms if f not in compiled])
                return compiled[name](batch)
            return call

        choice = fastest(self.forms_task(), {name: timed(name) for name in forms}, warn=self._warn)
        if choice.name not in compiled:  # remembered: only the chosen form is quantized
            quantize([choice.name])
        reference = self._heatmaps(compile_model(self._fp32_model, "fp32"), test)
        agreements = {name: heatmap_agreement(reference, self._heatmaps(c, test), self.stride)
                      for name, c in compiled.items()}
        form, note = choice.name, ""
        if not agreements[form].acceptable and len(forms) > 1:
            by_speed = sorted(forms, key=lambda name: choice.ms.get(name, float("inf")))
            missing = [name for name in by_speed if name not in compiled]
            if missing:
                quantize(missing)
                agreements.update({name: heatmap_agreement(reference, self._heatmaps(compiled[name], test),
                                                           self.stride) for name in missing})
            closer = next((name for name in by_speed if agreements[name].acceptable), None)
            if closer is not None:
                note = f", not {form}: faster, but less close to fp32"
                form = closer
        agreement = agreements[form]
        per_crop = {name: round(ms / TIMED_BATCH, 3) for name, ms in choice.ms.items()}
        self.calibration = {
            **agreement.__dict__, "source": source, "crops": len(train), "held_back": agreement.crops, "form": form,
            "depthwise_runs": runs[form],
            "forms": {name: {**({"ms_per_crop": per_crop[name]} if name in per_crop else {}),
                             **({"within_1px": agreements[name].within_1px,
                                 "heatmap_rel_error": agreements[name].heatmap_rel_error}
                                if name in agreements else {})} for name in forms},
        }
        saved = save_model(models[form], cache_dir() / self.key("int8").folder_name(),
                           {**self.key("int8").made_from(), "openvino": self.version, "calibration": self.calibration},
                           self._warn)
        # the next run imports this compiled model rather than compiling the saved one again
        keep_compiled(compiled[form], "int8", source_of(self.key("int8"), saved), unquantized=FORMS[form].unquantized)
        self._compiled = compiled[form]
        words = self._form_words(form, per_crop, choice.measured)
        line = f"calibrated int8 on {source}; {words}{note}; {agreement.line()}"
        if agreement.acceptable:
            self.log(line)
        else:  # int8 strays from fp32 on every form: the line's advice is for the user, --verbose or not
            self._warn(line)
        return agreement

    @staticmethod
    def _heatmaps(compiled: Compiled, crops: np.ndarray) -> torch.Tensor:
        """Heatmaps ``(N, K, h, w)`` of uint8 crops ``(N, H, W, 3)``, eight at a time."""
        return torch.from_numpy(np.concatenate([compiled(crops[i:i + 8])[0] for i in range(0, len(crops), 8)]))

    @staticmethod
    def _form_words(form: str, per_crop: dict[str, float], measured: bool) -> str:
        """How the calibration line names the form: where the depthwise convolutions run and why."""
        if not per_crop:  # nothing to choose (a network without depthwise convolutions)
            return "every convolution in int8"
        times = " / ".join(f"{name} {ms:.1f}" for name, ms in per_crop.items())
        when = "timed now on this CPU and remembered" if measured else "as timed before on this CPU"
        return f"depthwise convolutions in {FORMS[form].depthwise} ({times} ms a crop, {when})"

    def state(self) -> dict[str, Any] | None:
        """What a run resumed from a checkpoint needs to go on computing as this one would (a state
        tree, :mod:`posetrack_cli.core.state`): int8's calibration as it stands, its record once done,
        else the crops gathered so far (which ran in fp32). None for fp32 and bf16, which keep none."""
        if self.precision != "int8":
            return None
        w, h = self.input_size
        pending = np.concatenate(self._pending) if self._pending else np.zeros((0, h, w, 3), np.uint8)
        return {"calibration": self.calibration, "pending": pending}

    def restore(self, state: dict[str, Any] | None) -> None:
        """Go on from a :meth:`state`: still gathering crops in fp32 (even where the cache has an
        int8 model by now), or calibrated to the very model the state names. Raises PosetrackError
        when that model is no longer the cached one (recalibrated since): the run cannot resume."""
        if (state is None) != (self.precision != "int8"):
            raise PosetrackError("the checkpoint was made with another precision of the pose network")
        if state is None:
            return
        if state["calibration"] is None:  # it was still gathering crops, and running fp32
            if self.calibration is not None:
                self.calibration = None
                self._compiled = self._compile_unquantized()
            self._pending = [state["pending"]] if len(state["pending"]) else []
        elif state["calibration"] != self.calibration:
            raise PosetrackError("the int8 model the run was calibrated to is no longer in the model cache (it was "
                                 "calibrated again since)")

    def describe(self) -> dict[str, Any]:
        about: dict[str, Any] = {"runtime": "openvino", "version": self.version, "precision": self.precision}
        if self.precision == "int8":
            about["calibration"] = self.calibration
            if self.calibration is not None and self.calibration.get("depthwise_runs"):  # a network that has them
                about["depthwise"] = FORMS[self.calibration["form"]].depthwise  # what they run in (see calibrate)
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
                 weights_sha256: str | None = None, stride: float = 4.0,
                 log: Callable[[str], None] | None = None) -> TorchRuntime | OpenVINORuntime:
    """The runtime ``resolve_runtime`` picks for these choices, built around ``model`` (``log``: see
    :class:`OpenVINORuntime`)."""
    runtime, precision = resolve_runtime(runtime, precision, device, half=half, compile=compile)
    if runtime == "torch":  # BatchNorm folded into the convolutions: one memory pass less per layer
        return TorchRuntime(fold_batchnorm(model), device, half=half, compile=compile)
    return OpenVINORuntime(model, input_size, precision, weights_sha256=weights_sha256, stride=stride, log=log)
