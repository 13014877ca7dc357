"""The int8 pose network runs its depthwise convolutions in the form this CPU runs fastest (int8, or left
in fp32 / bf16), chosen once per CPU and remembered; the recorded form is the one OpenVINO executes; a form
outside the agreement bound is not taken silently; calibration prints posetrack's two lines and nothing of
NNCF's or OpenVINO's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.types import Detections
from posetrack_cli.inference.estimator import PoseEstimator
from posetrack_cli.models.checkpoints import load_pose_checkpoint
from posetrack_cli.runtime import cache, engines, tuning
from posetrack_cli.runtime.cpu import CpuInfo, cpu_info
from posetrack_cli.runtime.notes import library_notes
from posetrack_cli.runtime.quantize import (
    FORMS,
    Agreement,
    candidate_forms,
    depthwise_precisions,
    quantize_forms,
    quiet_nncf,
)

pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install openvino nncf)")


@pytest.fixture(autouse=True)
def private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """These tests count cache entries and remembered choices: their own cache, not the session's."""
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch held to one thread


def with_depthwise(checkpoint: Path, **settings: Any) -> PoseEstimator:
    """The network trained on rendered figures (conftest) with a depthwise 3x3 convolution after each of its
    four stages, near identity (centre tap 1, the others noise of 0.02): its heatmaps stay the trained
    ones (peaked, so agreement means something) and OpenVINO gets depthwise layers to quantize or not."""
    model, info = load_pose_checkpoint(checkpoint)
    generator = torch.Generator().manual_seed(0)
    for name, channels in (("layer1", 64), ("layer2", 128), ("layer3", 256), ("layer4", 512)):
        depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        with torch.no_grad():
            depthwise.weight.copy_(0.02 * torch.randn(depthwise.weight.shape, generator=generator))
            depthwise.weight[:, 0, 1, 1] += 1.0
        setattr(model, name, nn.Sequential(getattr(model, name), depthwise))
    return PoseEstimator.from_loaded(model, info, device="cpu", **{"runtime": "openvino", **settings})


@pytest.fixture
def figures(trained_on_figures) -> tuple[Path, np.ndarray, list[Any]]:  # noqa: ANN001
    """The trained checkpoint, the network inputs of 8 of its images (flipped crops included) to calibrate
    on, and 8 other images (frame, boxes, joints)."""
    checkpoint = trained_on_figures.result.checkpoint
    estimator = with_depthwise(checkpoint, runtime="torch", precision="fp32")
    inputs = np.concatenate([estimator.network_inputs(f, b) for f, b, _ in trained_on_figures.images[:8]])
    return checkpoint, inputs, trained_on_figures.images[8:16]


def poses(estimator: PoseEstimator, images: list[Any]) -> np.ndarray:
    """Keypoints ``(P, K, 2)`` of every person of every image, in frame pixels."""
    return np.concatenate([estimator.estimate(f, Detections(b, np.ones(len(b)))).keypoints for f, b, _ in images])


def runs_in(runtime: engines.OpenVINORuntime) -> dict[str, int]:
    """How many depthwise convolutions the runtime's compiled model executes in each number format."""
    return depthwise_precisions(runtime._fp32_model, runtime._compiled)


def small_network() -> nn.Module:
    """A small network with a depthwise convolution between two dense ones, as MobileNetV2 has 17 of:
    ``(N, 3, 64, 64)`` uint8 crops -> ``(N, 17, 32, 32)``."""
    from posetrack_cli.models.checkpoints import InputNorm
    from posetrack_cli.models.crop_input import CropInput

    torch.manual_seed(0)
    layers = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU6(), nn.Conv2d(32, 32, 3, 1, 1, groups=32), nn.ReLU6(),
                           nn.Conv2d(32, 17, 1))
    return CropInput(layers, InputNorm("rgb")).eval()


@pytest.mark.slow
def test_forms_quantized_on_one_pass_of_statistics_equal_nncf_quantize() -> None:
    import nncf

    from posetrack_cli.runtime.convert import compile_model, convert_to_openvino

    net = small_network()
    model = convert_to_openvino(net, (64, 64))
    dense = convert_to_openvino(net.net[:2], (64, 64))
    assert candidate_forms(model, native_bf16=False) == ["int8", "fp32-depthwise"]
    assert candidate_forms(model, native_bf16=True) == ["int8", "fp32-depthwise", "bf16-depthwise"]
    assert candidate_forms(dense, native_bf16=True) == ["int8"]  # no depthwise convolution: nothing to time

    crops = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    shared = quantize_forms(model, crops, ["int8", "fp32-depthwise"])
    for name, form in (("int8", "int8"), ("fp32-depthwise", "fp32")):
        types = list(FORMS[name].ignored_types)
        with quiet_nncf():
            alone = nncf.quantize(model, nncf.Dataset([crops[i:i + 1] for i in range(len(crops))]),
                                  subset_size=len(crops), preset=nncf.QuantizationPreset.MIXED,
                                  fast_bias_correction=True,
                                  ignored_scope=nncf.IgnoredScope(types=types) if types else None)
        ours, theirs = (compile_model(m, "int8", unquantized=FORMS[name].unquantized) for m in (shared[name], alone))
        np.testing.assert_array_equal(ours(crops[:4])[0], theirs(crops[:4])[0])
        assert depthwise_precisions(shared[name], ours) == {form: 1}  # run as the form says


@pytest.mark.slow
def test_the_fastest_form_is_chosen_once_remembered_and_is_what_runs(figures, monkeypatch, capsys) -> None:  # noqa: ANN001
    checkpoint, inputs, held_out = figures
    asked: list[list[str]] = []
    quantize, time_them = engines.quantize_forms, tuning._time
    monkeypatch.setattr(engines, "quantize_forms",
                        lambda m, c, names: asked.append(list(names)) or quantize(m, c, names))
    timed: list[int] = []
    monkeypatch.setattr(tuning, "_time", lambda *a: timed.append(1) or time_them(*a))

    int8 = with_depthwise(checkpoint, precision="int8")
    forms = int8.runtime.forms()
    assert forms[:2] == ["int8", "fp32-depthwise"] and len(forms) == 2 + cpu_info().native_bf16
    with library_notes(True):  # the calibration's lines, as --verbose shows them
        int8.calibrate(inputs, source="rendered figures")
    err = capsys.readouterr().err.splitlines()
    assert asked == [forms] and timed == [1]  # every form quantized on one pass of statistics, timed once
    record = int8.runtime_info()["calibration"]
    print(f"\nforms on this CPU: {record['forms']}; chose {record['form']}")
    assert record["form"] in forms and set(record["forms"]) == set(forms)
    assert (record["crops"], record["held_back"]) == (20, 6)  # quantized on 20, compared on 6 (the line says so)
    for name in forms:  # each form within the bound the tests hold int8 to, on the trained network
        form = record["forms"][name]
        assert form["ms_per_crop"] > 0 and Agreement(1, form["within_1px"], 0.0, form["heatmap_rel_error"]).acceptable
    # What OpenVINO executes is what the record says.
    depthwise = FORMS[record["form"]].depthwise
    assert runs_in(int8.runtime) == record["depthwise_runs"] == {depthwise: 4}
    assert int8.runtime_info()["depthwise"] == depthwise
    assert err[0].startswith("posetrack: calibrating int8 on 20 crops (6 more held back")
    assert err[1].startswith(f"posetrack: calibrated int8 on rendered figures; depthwise convolutions in {depthwise} (")
    assert "ms a crop, timed now on this CPU and remembered); int8 vs fp32 on 6 held-back crops: for " in err[1]
    fp32 = with_depthwise(checkpoint, precision="fp32")
    a, b = poses(fp32, held_out), poses(int8, held_out)
    assert np.median(np.linalg.norm(a - b, axis=2)) <= 1.0

    # A second load takes the cached int8 model in its form: nothing quantized, nothing timed.
    again = with_depthwise(checkpoint, precision="int8")
    assert again.runtime.calibrated and asked == [forms] and timed == [1]
    assert again.runtime_info() == int8.runtime_info() and runs_in(again.runtime) == {depthwise: 4}
    np.testing.assert_allclose(poses(again, held_out), b, atol=1e-4)
    # A new calibration quantizes the remembered form only, and times nothing.
    with library_notes(True):
        again.calibrate(inputs[::-1].copy(), source="the same crops, another order")
    assert asked == [forms, [record["form"]]] and timed == [1]
    assert "as timed before on this CPU" in capsys.readouterr().err
    assert again.runtime_info()["calibration"]["form"] == record["form"]
    # A cached form this CPU does not offer (a bf16 form carried to a CPU without bf16) is not run.
    monkeypatch.setattr(engines.OpenVINORuntime, "forms", lambda self: ["bf16-depthwise"])
    elsewhere = with_depthwise(checkpoint, precision="int8")
    assert not elsewhere.runtime.calibrated
    assert (f"posetrack: warning: the cached int8 model runs its depthwise convolutions as {record['form']}, which "
            "this CPU does not offer; int8 is calibrated again on this run's first crops") in capsys.readouterr().err


@pytest.mark.slow
def test_a_faster_form_that_strays_from_fp32_is_not_taken_silently(figures, monkeypatch, capsys) -> None:  # noqa: ANN001
    checkpoint, inputs, _ = figures
    monkeypatch.setattr(engines, "fastest", lambda task, candidates, **_: tuning.Choice(
        "int8", {"int8": 8.0, "fp32-depthwise": 16.0}, measured=False))  # as if remembered: int8 the faster
    measure, measured = engines.heatmap_agreement, []
    off = Agreement(6, 0.5, 9.0, 0.4)  # the remembered form (int8, measured first), as if it strayed

    def agreement(reference: torch.Tensor, other: torch.Tensor, stride: float) -> Agreement:
        measured.append(1)
        return off if len(measured) == 1 else measure(reference, other, stride)

    monkeypatch.setattr(engines, "heatmap_agreement", agreement)
    int8 = with_depthwise(checkpoint, precision="int8")
    with library_notes(True):
        int8.calibrate(inputs, source="rendered figures")
    record = int8.runtime_info()["calibration"]
    assert record["form"] == "fp32-depthwise" and record["forms"]["int8"]["within_1px"] == 0.5
    assert record["forms"]["fp32-depthwise"]["within_1px"] >= 0.8 and runs_in(int8.runtime) == {"fp32": 4}
    assert ("depthwise convolutions in fp32 (int8 1.0 / fp32-depthwise 2.0 ms a crop, as timed before on this CPU), "
            "not int8: faster, but less close to fp32;") in capsys.readouterr().err
    assert off.line().endswith("run `posetrack calibrate` on more or other crops of your footage (--crops 500), "
                               "or use --precision fp32")


@pytest.mark.slow
def test_the_bf16_form_runs_in_bf16_or_is_refused(figures, monkeypatch) -> None:  # noqa: ANN001
    """Forced on: where the CPU has native bf16 it is timed with the others; elsewhere OpenVINO would run
    it in fp32 under the bf16 name, which is an error, not a quiet substitution."""
    checkpoint, inputs, _ = figures
    real = cpu_info()
    monkeypatch.setattr(engines, "cpu_info", lambda: CpuInfo(real.model, (*real.flags, "avx512_bf16"), real.cores))
    int8 = with_depthwise(checkpoint, precision="int8")
    assert int8.runtime.forms() == ["int8", "fp32-depthwise", "bf16-depthwise"]
    if not real.native_bf16:
        with pytest.raises(PosetrackError, match="depthwise convolutions of the int8 form bf16-depthwise in fp32 on "
                                                 "this CPU, not bf16"):
            int8.calibrate(inputs, source="rendered figures")
        return
    int8.calibrate(inputs, source="rendered figures")
    record = int8.runtime_info()["calibration"]
    assert record["forms"]["bf16-depthwise"]["ms_per_crop"] > 0
    assert runs_in(int8.runtime) == {FORMS[record["form"]].depthwise: 4}


QUIET_RUN = """
import os, sys
import numpy as np, torch
from test_pose_forms import small_network
from posetrack_cli.runtime import engines
from posetrack_cli.runtime.notes import library_notes
torch.set_num_threads(1)
engines.CALIBRATION_CROPS = 12
crops = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (12, 3, 64, 64), dtype=np.uint8))
for verbose in (False, True):  # each in a cache of its own, so each calibrates
    os.environ["POSETRACK_CACHE"] = os.path.join(sys.argv[1], str(verbose))
    with library_notes(verbose):
        runtime = engines.OpenVINORuntime(small_network(), (64, 64), "int8", stride=2.0)
        for i in range(0, 12, 4):
            runtime(crops[i:i + 4])
    assert runtime.calibrated
    print("--- verbose" if not verbose else "--- end", file=sys.stderr, flush=True)
"""


def test_an_int8_run_calibrates_quietly_and_says_so_in_two_lines_under_verbose(tmp_path: Path) -> None:
    """A run's first crops calibrate int8 in a process of its own (as a user's run does, NNCF loaded
    fresh), its terminal forced (rich draws progress bars only on a terminal): stdout stays empty; a
    normal run's stderr holds nothing at all, and under ``--verbose`` (``library_notes(True)``)
    posetrack's start and result lines beside the libraries' notes (NNCF's progress bars stay hidden)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1",
           "COLUMNS": "120", "OMP_NUM_THREADS": "1"}
    here = Path(__file__).resolve().parent
    proc = subprocess.run([sys.executable, "-c", QUIET_RUN, str(tmp_path / "cache")], capture_output=True, text=True,
                          timeout=300, env={**env, "PYTHONPATH": f"{here.parent}:{here}"}, cwd=here.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    quiet, verbose = proc.stderr.split("--- verbose\n")
    assert proc.stdout == "" and quiet == "", proc.stdout + proc.stderr
    assert verbose.endswith("--- end\n"), proc.stderr
    lines = [line for line in verbose.splitlines() if line.startswith("posetrack:")]  # beside the libraries' notes
    assert len(lines) == 2, proc.stderr
    assert lines[0] == "posetrack: calibrating int8 on 9 crops (3 more held back to compare it with fp32) ..."
    assert lines[1].startswith("posetrack: calibrated int8 on the first 12 crops of this run (run in fp32 until "
                               "then); depthwise convolutions in ")
