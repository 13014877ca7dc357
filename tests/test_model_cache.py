"""The OpenVINO model cache checks itself: a cached file that was changed, truncated or removed, metadata
that cannot be read or was edited, or an entry made from other weights is never used: it is made again
with one warning, and the heatmaps are those of a clean run. A cache that cannot be written (read-only,
disk full) costs only the saving: one warning, the same heatmaps, nothing left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np
import pytest
import torch

from posetrack_cli.models.checkpoints import InputNorm
from posetrack_cli.models.crop_input import CropInput
from posetrack_cli.models.heatmaps import decode_heatmaps
from posetrack_cli.models.pose_resnet import fold_batchnorm, pose_resnet
from posetrack_cli.runtime import cache, convert, engines
from posetrack_cli.runtime.cache import CacheKey, state_dict_sha256
from posetrack_cli.runtime.signals import own_signal_stack

from helpers import randomise_batchnorm

ov = pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install openvino nncf)")

SIZE = (64, 64)
CONVERTED = "; this run converts in memory (set POSETRACK_CACHE to a writable folder to keep conversions)"


def network(seed: int) -> torch.nn.Module:
    """A ResNet-18 pose network with spread BatchNorm statistics, as the estimator hands it to a runtime."""
    torch.manual_seed(seed)
    return fold_batchnorm(CropInput(randomise_batchnorm(pose_resnet(depth=18), seed), InputNorm("bgr")))


@dataclass(frozen=True)
class Clean:
    """A cache filled by a clean run, and that run's heatmaps."""

    folder: Path
    network: torch.nn.Module
    crops: torch.Tensor
    heatmaps: torch.Tensor


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clean]:
    folder = tmp_path_factory.mktemp("clean-cache")
    net = network(0)
    crops = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (5, 3, *SIZE), dtype=np.uint8))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # part of a compiled model's key: the tests run one thread too
    lines: list[str] = []
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(cache.ENV_CACHE, str(folder))
            heatmaps = engines.OpenVINORuntime(net, SIZE, "fp32", log=lines.append)(crops)
        assert lines == []
        assert sorted(p.name.split("-")[0] for p in folder.iterdir()) == ["compiled", "pose"]
        yield Clean(folder, net, crops, heatmaps)
    finally:
        torch.set_num_threads(threads)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch held to one thread


@pytest.fixture
def filled(clean: Clean, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's copy of the clean cache (``copy2`` keeps each file's mtime, as the entry recorded it)."""
    folder = tmp_path / "cache"
    shutil.copytree(clean.folder, folder)
    monkeypatch.setenv(cache.ENV_CACHE, str(folder))
    return folder


def load(clean: Clean, precision: str = "fp32", net: torch.nn.Module | None = None,
         **kwargs: Any) -> tuple[engines.OpenVINORuntime, list[str], torch.Tensor]:
    """A runtime of ``net`` (the clean run's by default) made now, the lines it logged, and its heatmaps."""
    lines: list[str] = []
    runtime = engines.OpenVINORuntime(net or clean.network, SIZE, precision, log=lines.append, **kwargs)
    return runtime, lines, runtime(clean.crops)


def assert_same_poses(heatmaps: torch.Tensor, clean: Clean) -> None:
    torch.testing.assert_close(heatmaps, clean.heatmaps, rtol=0, atol=0)
    for a, b in zip(decode_heatmaps(heatmaps), decode_heatmaps(clean.heatmaps)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def entry(folder: Path, kind: str) -> Path:
    (found,) = folder.glob(f"{kind}-*")
    return found


def damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    if how == "zeroed":  # a quarter of the file zeroed in the middle: the same size, a new mtime
        before = path.stat().st_mtime_ns
        with open(path, "r+b") as f:
            f.seek(size // 3)
            f.write(bytes(size // 4))
        if path.stat().st_mtime_ns == before:  # a coarse clock: the write must show as a change
            os.utime(path, ns=(before, before + 1_000_000_000))
        assert path.stat().st_size == size
    elif how == "truncated":
        os.truncate(path, size // 2)
    elif how == "garbage":
        path.write_text("{'not': json")
    elif how == "edited":  # valid JSON, one value changed
        about = json.loads(path.read_text())
        about["openvino"] = "0.0"
        path.write_text(json.dumps(about))
    elif how == "missing":
        path.unlink()
    else:
        raise ValueError(how)


def unchecked_heatmaps(folder: Path, name: str, crops: torch.Tensor) -> np.ndarray:
    """What OpenVINO computes from a damaged entry read as it is, without the cache's checks."""
    core = ov.Core()
    with own_signal_stack():
        if name == "compiled.blob":
            compiled = core.import_model((folder / name).read_bytes(), "CPU", {"INFERENCE_NUM_THREADS": 1})
        else:
            compiled = core.compile_model(core.read_model(str(folder / "model.xml")), "CPU",
                                          {"INFERENCE_NUM_THREADS": 1})
        return np.array(compiled(convert.crops_for_openvino(crops))[0])


def test_an_intact_cache_is_read_without_hashing_or_converting(clean: Clean, filled: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from posetrack_cli.models import weights

    hashed: list[str] = []
    file_sha256 = weights.file_sha256

    def counted(path: Path, *args: Any) -> str:
        hashed.append(Path(path).name)
        return file_sha256(path, *args)

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted again despite the cache")

    monkeypatch.setattr(weights, "file_sha256", counted)
    monkeypatch.setattr(engines, "convert_to_openvino", no_conversion)
    _, lines, heatmaps = load(clean)
    assert lines == [] and hashed == []  # sizes and mtimes as recorded: nothing read but about.json
    assert_same_poses(heatmaps, clean)
    # A file touched but not changed (a copy that kept no mtimes, say): hashed, found intact, used.
    for path in entry(filled, "pose") / "model.bin", entry(filled, "compiled") / "compiled.blob":
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    _, lines, heatmaps = load(clean)
    assert lines == [] and sorted(hashed) == ["compiled.blob", "model.bin"]
    assert_same_poses(heatmaps, clean)


DAMAGES = [
    ("pose", "model.bin", "zeroed", "model.bin was changed after it was saved: its SHA-256 differs"),
    ("pose", "model.bin", "truncated", "model.bin has {half} bytes, {size} when saved: truncated"),
    ("pose", "model.bin", "missing", "model.bin is missing"),
    ("pose", "model.xml", "zeroed", "model.xml was changed after it was saved: its SHA-256 differs"),
    ("pose", "model.xml", "truncated", "model.xml has {half} bytes, {size} when saved: truncated"),
    ("pose", "about.json", "garbage", "about.json cannot be read: not JSON"),
    ("pose", "about.json", "edited", "about.json was changed after it was saved"),
    ("pose", "about.json", "missing", "about.json is missing"),
    ("compiled", "compiled.blob", "zeroed", "compiled.blob was changed after it was saved: its SHA-256 differs"),
    ("compiled", "compiled.blob", "truncated", "compiled.blob has {half} bytes, {size} when saved: truncated"),
    ("compiled", "about.json", "garbage", "about.json cannot be read: not JSON"),
]


# One damage of each file kind runs by default; the rest of the matrix is slow (seconds each).
QUICK_DAMAGES = {("pose", "model.bin", "zeroed"), ("pose", "about.json", "garbage"),
                 ("compiled", "compiled.blob", "zeroed")}


@pytest.mark.parametrize(("kind", "name", "how", "problem"),
                         [pytest.param(*d, id=f"{d[0]}-{d[1]}-{d[2]}",
                                       marks=() if d[:3] in QUICK_DAMAGES else (pytest.mark.slow,)) for d in DAMAGES])
def test_a_damaged_entry_is_made_again_with_one_warning(clean: Clean, filled: Path, kind: str, name: str, how: str,
                                                       problem: str) -> None:
    folder = entry(filled, kind)
    size = (folder / name).stat().st_size
    damage(folder / name, how)
    if how == "zeroed" and name != "model.xml":  # the damage matters: read as it is, it gives other keypoints
        unchecked = torch.from_numpy(unchecked_heatmaps(folder, name, clean.crops))
        assert not torch.equal(decode_heatmaps(unchecked)[0], decode_heatmaps(clean.heatmaps)[0])

    _, lines, heatmaps = load(clean)
    what, again = ("cached model", "converted it again") if kind == "pose" else ("cached compiled model",
                                                                                 "compiled it again")
    assert lines == [f"warning: {what} {folder} is damaged ({problem.format(half=size // 2, size=size)}); {again}"]
    assert_same_poses(heatmaps, clean)
    # Made again in its place, whole: the next run uses it without a word.
    assert sorted(p.name for p in filled.iterdir()) == sorted(p.name for p in clean.folder.iterdir())
    _, lines, heatmaps = load(clean)
    assert lines == []
    assert_same_poses(heatmaps, clean)


@pytest.mark.slow
def test_an_entry_made_from_other_weights_is_made_again(clean: Clean, filled: Path) -> None:
    other = network(1)
    folder = filled / CacheKey(state_dict_sha256(other), SIZE, "fp32").folder_name()
    shutil.copytree(entry(filled, "pose"), folder)  # the clean run's entry under the other weights' name

    _, lines, heatmaps = load(clean, net=other)
    assert lines == [f"warning: cached model {folder} is damaged (it was converted from other weights); "
                     "converted it again"]
    with torch.no_grad():
        expected = other(clean.crops)
    torch.testing.assert_close(heatmaps, expected, rtol=0, atol=1e-4 * float(expected.abs().max()))
    assert not torch.allclose(heatmaps, clean.heatmaps, atol=1e-3)
    _, lines, again = load(clean, net=other)
    assert lines == []
    torch.testing.assert_close(again, heatmaps, rtol=0, atol=0)


def refuse_writes(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make ``folder`` (an empty cache) refuse new entries; the reason the warning gives.

    Not root: the folder made read-only (chmod). Root writes through mode bits, so there the
    temporary folder's creation fails as it does on a read-only file system (EROFS).
    """
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return "permission denied"

    monkeypatch.setattr(cache.tempfile, "mkdtemp", read_only_file_system)
    return "read-only file system"


def read_only_file_system(*args: object, **kwargs: object) -> str:
    raise OSError(errno.EROFS, os.strerror(errno.EROFS))


@pytest.mark.slow
def test_a_read_only_cache_converts_in_memory_with_one_warning(clean: Clean, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "read-only"
    monkeypatch.setenv(cache.ENV_CACHE, str(folder))
    reason = refuse_writes(folder, monkeypatch)
    try:
        _, lines, heatmaps = load(clean)
        assert lines == [f"warning: cannot write the model cache {folder} ({reason}){CONVERTED}"]
        assert_same_poses(heatmaps, clean)
        assert list(folder.iterdir()) == []
        _, lines, heatmaps = load(clean)  # the same problem again in this process: said once
        assert lines == []
        assert_same_poses(heatmaps, clean)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.slow
def test_a_damaged_entry_in_a_read_only_cache_is_replaced_in_memory(clean: Clean, filled: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = entry(filled, "pose")
    damage(folder / "model.bin", "zeroed")
    monkeypatch.setattr(cache.tempfile, "mkdtemp", read_only_file_system)
    _, lines, heatmaps = load(clean)
    assert lines == [f"warning: cached model {folder} is damaged (model.bin was changed after it was saved: its "
                     "SHA-256 differs); it cannot be replaced (read-only file system), so this run converts it in "
                     "memory"]
    assert_same_poses(heatmaps, clean)


@pytest.mark.slow
def test_a_cache_under_a_file_and_a_detector_beside_the_network_warn_once(clean: Clean, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from posetrack_cli.models.detectors import build_detector
    from posetrack_cli.runtime.backbone import OpenVINOBackbone

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    folder = blocker / "cache"  # cannot be made: not a directory, for root too
    monkeypatch.setenv(cache.ENV_CACHE, str(folder))
    _, lines, heatmaps = load(clean)
    assert lines == [f"warning: cannot write the model cache {folder} (not a directory){CONVERTED}"]
    assert_same_poses(heatmaps, clean)
    model = build_detector("ssdlite320_mobilenet_v3_large").eval()
    warned: list[str] = []
    backbone = OpenVINOBackbone(model.backbone, name="ssdlite320_mobilenet_v3_large", precision="fp32",
                                weights_sha256="4" * 64, warn=warned.append)
    assert warned == []  # the same cache, the same problem: said once
    x = torch.rand(1, 3, 320, 320)
    with torch.no_grad():
        expected = model.backbone(x)
    for name, value in backbone(x).items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-4 * float(expected[name].abs().max()) + 1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_full_disk_leaves_no_temporary_folder(clean: Clean, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenVINO's writer, out of space, leaves part of the files and says only 'basic_ios::clear'."""
    folder = tmp_path / "full"
    monkeypatch.setenv(cache.ENV_CACHE, str(folder))

    def out_of_space(model: object, path: str, **kwargs: object) -> None:
        Path(path).with_suffix(".bin").write_bytes(bytes(4096))
        raise RuntimeError("Exception from src/core/src/pass/serialize.cpp:1366:\nbasic_ios::clear: iostream error\n")

    monkeypatch.setattr(ov, "save_model", out_of_space)
    monkeypatch.setattr(cache.shutil, "disk_usage", lambda path: SimpleNamespace(total=1 << 30, used=1 << 30, free=0))
    _, lines, heatmaps = load(clean)
    assert lines == [f"warning: cannot write the model cache {folder} (disk full){CONVERTED}"]
    assert_same_poses(heatmaps, clean)
    assert list(folder.iterdir()) == []
    # Space enough, yet OpenVINO failed: its own words.
    monkeypatch.undo()
    other = tmp_path / "other"
    monkeypatch.setenv(cache.ENV_CACHE, str(other))
    monkeypatch.setattr(ov, "save_model", out_of_space)
    _, lines, heatmaps = load(clean)
    assert lines == [f"warning: cannot write the model cache {other} (OpenVINO could not write it: basic_ios::clear: "
                     f"iostream error){CONVERTED}"]
    assert_same_poses(heatmaps, clean)
    assert list(other.iterdir()) == []


def test_a_compiled_model_that_cannot_be_written_is_not_kept_silently(clean: Clean, filled: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.rmtree(entry(filled, "compiled"))

    def out_of_space(compiled: object, path: Path) -> None:
        path.write_bytes(bytes(4096))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(convert, "_export", out_of_space)
    _, lines, heatmaps = load(clean)
    assert lines == []  # costs a compilation next time, nothing else: not worth a line
    assert_same_poses(heatmaps, clean)
    assert [p.name.split("-")[0] for p in filled.iterdir()] == ["pose"]


@pytest.mark.slow
def test_a_damaged_int8_model_is_calibrated_again_not_used(clean: Clean, filled: Path) -> None:
    crops = np.ascontiguousarray(clean.crops.permute(0, 2, 3, 1).numpy())
    calibrated, lines, int8 = load(clean, "int8", calibration=np.concatenate([crops, crops[:, ::-1]]))
    # (a warning where int8 strays from fp32 on this untrained network, a note where it does not)
    assert calibrated.calibrated and len(lines) == 2
    assert lines[1].removeprefix("warning: ").startswith("calibrated int8 on 10 given crops")
    again, lines, heatmaps = load(clean, "int8")
    assert again.calibrated and lines == []
    torch.testing.assert_close(heatmaps, int8, rtol=0, atol=0)

    folder = entry(filled, "pose-*-int8")
    damage(folder / "model.bin", "zeroed")
    runtime, lines, heatmaps = load(clean, "int8")
    assert lines == [f"warning: cached model {folder} is damaged (model.bin was changed after it was saved: its "
                     "SHA-256 differs); int8 is calibrated again on this run's first crops"]
    assert not runtime.calibrated  # runs fp32 while it gathers crops, as with no int8 model at all
    assert_same_poses(heatmaps, clean)
