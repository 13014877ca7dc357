"""The pose network's runtimes give the poses torch gives: OpenVINO fp32 within 0.05 px, int8 (calibrated on
person crops) within a measured bound, on a small network trained on rendered figures; converted models
are cached and reused; choices the machine cannot honour are refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.types import Detections
from posetrack_cli.inference.estimator import PoseEstimator
from posetrack_cli.runtime import cache, choice, engines
from posetrack_cli.runtime.notes import library_notes

pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install openvino nncf)")


@pytest.fixture(autouse=True)
def private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """These tests count and reuse cache entries: their own cache, not the session's."""
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def one_thread() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def trained(trained_on_figures) -> tuple[Path, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:  # noqa: ANN001
    """The session's network trained on rendered figures (conftest), and (frame, boxes, true joints) of 16 of
    its images (8 to calibrate on, 8 held out)."""
    return trained_on_figures.result.checkpoint, trained_on_figures.images[:16]


def poses(estimator: PoseEstimator, images) -> np.ndarray:  # noqa: ANN001 - list of (frame, boxes, joints)
    """Keypoints ``(P, K, 2)`` of every person of every image, in frame pixels."""
    return np.concatenate([estimator.estimate(f, Detections(b, np.ones(len(b)))).keypoints for f, b, _ in images])


@pytest.mark.slow
def test_openvino_fp32_gives_torchs_keypoints_and_caches_the_conversion(trained, monkeypatch) -> None:  # noqa: ANN001
    checkpoint, images = trained
    reference = PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="torch")
    converted = PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="openvino", precision="fp32")
    assert (reference.runtime_name, converted.runtime_name, converted.precision) == ("torch", "openvino", "fp32")
    truth = np.concatenate([j for _, _, j in images])
    a, b = poses(reference, images), poses(converted, images)
    assert np.abs(a - b).max() <= 0.05
    print(f"\ntrained network: median keypoint error {np.median(np.linalg.norm(a - truth, axis=2)):.2f} px")
    # Learned (an untrained one is tens of px off): within 1.5 heatmap pixels (~8 frame px each) at the median.
    assert np.median(np.linalg.norm(a - truth, axis=2)) < 12

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted again despite the cache")

    converter = engines.convert_to_openvino
    monkeypatch.setattr(engines, "convert_to_openvino", no_conversion)
    again = PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="openvino", precision="fp32")
    np.testing.assert_array_equal(poses(again, images[:3]), b[:len(poses(again, images[:3]))])
    cached = sorted(p.name for p in cache.cache_dir().glob("pose-*"))
    assert len(cached) == 1 and cached[0].endswith(f"-64x64-bdynamic-fp32-v{cache.CACHE_VERSION}")

    # The converted network starts from the 8-bit crops as cut, its normalisation inside (as in torch).
    inputs = converted.runtime._compiled.inputs
    assert [(i.get_element_type().get_type_name(), str(i.get_partial_shape())) for i in inputs] == [
        ("u8", "[?,64,64,3]")]
    frame, boxes, _ = images[0]
    fed = converted.network_inputs(frame, boxes)
    assert fed.dtype == np.uint8 and fed.shape == (2 * len(boxes), 64, 64, 3)  # flip test: mirrored crops too
    with pytest.raises(ValueError, match="takes uint8 crops"):
        converted.runtime(torch.zeros(1, 3, 64, 64))
    # The same weights fed the other plane order are another model: converted again, and right.
    from posetrack_cli.models.checkpoints import InputNorm

    monkeypatch.setattr(engines, "convert_to_openvino", converter)

    swapped = InputNorm("rgb" if converted.norm.channel_order == "bgr" else "bgr")
    a = poses(PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="torch", norm=swapped), images[:4])
    b = poses(PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="openvino", precision="fp32",
                                            norm=swapped), images[:4])
    assert np.abs(a - b).max() <= 0.05
    assert len(list(cache.cache_dir().glob("pose-*"))) == 2


@pytest.mark.slow
def test_int8_calibrated_on_person_crops_stays_close_to_fp32(trained, capsys) -> None:  # noqa: ANN001
    checkpoint, images = trained
    fp32 = PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="openvino", precision="fp32")
    int8 = PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="openvino", precision="int8")
    calibration, held_out = images[:8], images[8:]
    inputs = np.concatenate([int8.network_inputs(f, b) for f, b, _ in calibration])
    with library_notes(True):  # the calibration's line, as --verbose shows it
        agreement = int8.calibrate(inputs, source="rendered figures")
    # No depthwise convolutions in this ResNet: one form, nothing timed.
    assert "calibrated int8 on rendered figures; every convolution in int8; int8 vs fp32 on" in capsys.readouterr().err
    assert agreement.acceptable  # the bound: quantize.MIN_WITHIN_1PX, MAX_HEATMAP_REL_ERROR
    # On images calibration never saw, in frame pixels (a 64x64 crop of a ~100 px figure: ~2.3 px per input pixel).
    a, b = poses(fp32, held_out), poses(int8, held_out)
    err = np.linalg.norm(a - b, axis=2)
    print(f"\nint8 vs fp32, held-out images: median {np.median(err):.2f} px, 90th pct {np.percentile(err, 90):.2f} px, "
          f"max {err.max():.2f} px; {agreement.line()}")
    assert np.median(err) <= 1.0 and np.percentile(err, 90) <= 4.0
    about = int8.runtime_info()
    assert about["precision"] == "int8" and about["calibration"]["source"] == "rendered figures"

    # A second run takes the cached int8 model without calibrating.
    again = PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="openvino", precision="int8")
    assert again.runtime.calibrated and again.runtime_info()["calibration"]["source"] == "rendered figures"
    np.testing.assert_allclose(poses(again, held_out), b, atol=1e-4)


@pytest.mark.slow
def test_int8_without_calibration_gathers_the_runs_first_crops(trained, monkeypatch, capsys) -> None:  # noqa: ANN001
    checkpoint, images = trained
    monkeypatch.setattr(engines, "CALIBRATION_CROPS", 12)
    estimator = PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="openvino", precision="int8")
    assert not estimator.runtime.calibrated
    with library_notes(True):  # its lines, as --verbose shows them
        for frame, boxes, _ in images[:8]:
            estimator.estimate(frame, Detections(boxes, np.ones(len(boxes))))
    assert estimator.runtime.calibrated
    assert "the first" in estimator.runtime_info()["calibration"]["source"]
    assert "crops of this run (run in fp32 until then)" in capsys.readouterr().err


def test_choices_the_machine_cannot_honour_are_refused() -> None:
    cpu = torch.device("cpu")
    with pytest.raises(PosetrackError, match="needs --runtime openvino"):
        choice.resolve_runtime("torch", "int8", cpu)
    with pytest.raises(PosetrackError, match="--half and --compile are torch options"):
        choice.resolve_runtime("openvino", "fp32", cpu, half=True)
    with pytest.raises(PosetrackError, match="runs on the CPU"):
        choice.resolve_runtime("openvino", "fp32", torch.device("cuda"))
    assert choice.resolve_runtime("auto", "auto", torch.device("cuda")) == ("torch", "fp32")
    assert choice.resolve_runtime("auto", "auto", cpu, compile=True) == ("torch", "fp32")
    # A preset's int8 applies where the runtime is OpenVINO; torch on CUDA keeps its own choice.
    assert choice.choose_precision("auto", "auto", "int8", cpu) == "int8"
    assert choice.choose_precision("auto", "auto", "int8", torch.device("cuda")) == "auto"
    assert choice.choose_precision("auto", "fp32", "int8", cpu) == "fp32"
    native = choice.cpu_has_native_bf16()
    assert choice.resolve_runtime("auto", "auto", cpu) == ("openvino", "bf16" if native else "fp32")
    if not native:
        with pytest.raises(PosetrackError, match="no native bf16"):
            choice.resolve_runtime("openvino", "bf16", cpu)


@pytest.mark.slow
@pytest.mark.skipif(not choice.cpu_has_native_bf16(), reason="this CPU has no native bf16 (AVX512_BF16 or AMX)")
def test_bf16_stays_close_to_fp32_where_the_cpu_has_it(trained) -> None:  # noqa: ANN001
    checkpoint, images = trained
    fp32 = PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="openvino", precision="fp32")
    bf16 = PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="openvino", precision="bf16")
    err = np.linalg.norm(poses(fp32, images) - poses(bf16, images), axis=2)
    assert np.median(err) <= 0.5 and np.percentile(err, 90) <= 2.0


def test_calibrate_command_caches_int8_for_later_runs(checkpoints, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """The calibrate page's example on 6 frames of two walkers, with a small random-initialised
    ResNet-18 as ``posetrack train`` writes it (what is checked is the cache, not the accuracy)."""
    import openvino as ov
    from click.testing import CliRunner

    from posetrack_cli.cli import main
    from posetrack_cli.core.keypoints import COCO_KEYPOINTS
    from posetrack_cli.models.checkpoints import save_msra_checkpoint
    from posetrack_cli.models.pose_resnet import pose_resnet
    from posetrack_cli.training.initialise import TRAINING_NORM
    from posetrack_cli.training.loop import posetrack_metadata

    from helpers import walkers

    checkpoint = tmp_path / "small.pth"
    save_msra_checkpoint(pose_resnet(depth=18), checkpoint,
                         posetrack=posetrack_metadata((64, 64), COCO_KEYPOINTS, TRAINING_NORM))
    folder = tmp_path / "footage"
    folder.mkdir()
    for i, frame in enumerate(walkers(6)):
        cv2.imwrite(str(folder / f"{i}.png"), frame)
    args = ["--pose-weights", str(checkpoint), "--detector-weights", str(checkpoints["detector"]), "--offline"]
    result = CliRunner().invoke(main, ["calibrate", str(folder), *args, "--crops", "12"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("int8 vs fp32 on 3 held-back crops:")
    # The next run imports the int8 model calibration compiled: it compiles nothing.
    monkeypatch.setattr(ov.Core, "compile_model", lambda *a, **k: pytest.fail("compiled again on a warm start"))
    later = PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="openvino", precision="int8")
    assert later.runtime.calibrated
    assert later.runtime_info()["calibration"]["source"] == "12 crops from 6 frames of 6 file(s)"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["calibrate", str(empty), "--pose-weights", str(checkpoint), "--offline"])
    assert result.exit_code == 1 and result.stderr == "posetrack: error: no videos or images to calibrate on\n"


SIGNAL_STACK_SCRIPT = """
import gc, signal, subprocess, threading
import numpy as np, openvino as ov
from openvino import opset8 as ops
from posetrack_cli.runtime.convert import compile_model
p = ops.parameter([1, 3, 8, 8], np.float32)
held = {"model": compile_model(ov.Model([ops.relu(p)], [p]), "fp32")}
held["model"](np.zeros((1, 3, 8, 8), np.float32))
freeing = threading.Thread(target=lambda: (held.clear(), gc.collect()))
freeing.start()
freeing.join()
signal.signal(signal.SIGCHLD, lambda *args: None)  # as torch's DataLoader leaves it
subprocess.run(["sleep", "0.2"], timeout=60)  # waited for in a sleep loop, as the suite did
print("alive")
"""


def test_a_model_freed_on_another_thread_leaves_this_threads_signal_stack_usable() -> None:
    """OpenVINO installs a signal stack of its own on the thread that compiles and runs a model and
    frees it with the model; freed elsewhere, the next SIGCHLD to the first thread killed the whole
    process with SIGSEGV (a suite run died so as a subprocess ended). Run in a process of its own."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", SIGNAL_STACK_SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "alive", (proc.returncode, proc.stderr[-2000:])
