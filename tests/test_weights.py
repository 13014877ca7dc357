"""Model files: manifest, download over a file:// URL with verification, offline messages, CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from helpers import write_checkpoint
from posetrack_cli import weights as W
from posetrack_cli.cli import main
from posetrack_cli.errors import WeightsError
from posetrack_cli.models.pose_resnet import pose_resnet


def test_builtin_manifest_describes_every_file() -> None:
    manifest = W.load_manifest()
    kinds = {e.kind for e in manifest.values()}
    assert kinds == {"pose", "detector", "flow", "backbone"}
    for entry in manifest.values():
        assert entry.url.startswith("https://") and entry.filename in entry.url
        assert entry.sha256 in entry.filename  # the publisher's digest prefix is in the name
        if entry.kind == "pose":
            assert entry.input_size in {(192, 256), (288, 384)}
            assert entry.norm["channel_order"] in {"rgb", "bgr"} and entry.keypoints == "coco"
        if entry.kind == "backbone":  # torchvision's ImageNet ResNets, fed RGB with ImageNet statistics
            assert entry.architecture == entry.name.removesuffix("_imagenet") and entry.norm["channel_order"] == "rgb"


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A local 'server' folder holding one checkpoint, and a manifest pointing at it by file:// URL."""
    server = tmp_path / "server"
    server.mkdir()
    blob = write_checkpoint(pose_resnet(depth=18), server / "tiny_pose_256x192.pth", "mmpose-0.x")
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    entry = {
        "name": "tiny_pose", "kind": "pose", "filename": blob.name, "url": blob.as_uri(), "sha256": digest,
        "size_mb": 0.1, "layout": "mmpose-0.x", "source": "test", "input_size": [192, 256], "keypoints": "coco",
        "norm": {"channel_order": "rgb", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    }
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"files": [entry]}))
    monkeypatch.setenv(W.ENV_MANIFEST, str(manifest))
    return blob, manifest


def test_download_from_file_url_verifies_and_lands_atomically(mirror: tuple[Path, Path]) -> None:
    blob, _ = mirror
    result = CliRunner().invoke(main, ["weights", "download", "tiny_pose", "--no-progress"])
    assert result.exit_code == 0, result.output
    target = W.weights_dir() / blob.name
    assert target.read_bytes() == blob.read_bytes()
    assert not list(W.weights_dir().glob("*.partial")) and len(list(W.weights_dir().iterdir())) == 1
    listing = CliRunner().invoke(main, ["weights", "list"])
    assert "tiny_pose" in listing.output and " yes " in listing.output
    assert CliRunner().invoke(main, ["weights", "verify"]).exit_code == 0


def test_download_with_wrong_hash_leaves_nothing(mirror: tuple[Path, Path]) -> None:
    blob, manifest = mirror
    doc = json.loads(manifest.read_text())
    doc["files"][0]["sha256"] = "0" * 64
    manifest.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["weights", "download", "tiny_pose", "--no-progress"])
    assert result.exit_code == 1
    assert "failed verification" in result.stderr and "Traceback" not in result.output
    assert not (W.weights_dir() / blob.name).exists()


def test_verify_detects_changed_bytes(mirror: tuple[Path, Path]) -> None:
    blob, _ = mirror
    assert CliRunner().invoke(main, ["weights", "download", "tiny_pose", "--no-progress"]).exit_code == 0
    target = W.weights_dir() / blob.name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["weights", "verify", "tiny_pose"])
    assert result.exit_code == 1 and "CORRUPT" in result.output


def test_offline_missing_file_says_which_where_and_from_where() -> None:
    entry = W.load_manifest()["pose_resnet50_256x192"]
    with pytest.raises(WeightsError) as info:
        W.resolve("pose_resnet50_256x192", allow_download=False)
    message = str(info.value)
    assert entry.filename in message and entry.url in message
    assert str(W.weights_dir() / entry.filename) in message and "\n" not in message


def test_unreachable_url_gives_the_same_guidance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = W.WeightFile(name="gone", kind="pose", filename="gone.pth", url=(tmp_path / "nope.pth").as_uri(),
                         sha256="deadbeef", size_mb=1, layout="msra", source="test")
    with pytest.raises(WeightsError, match=r"cannot download gone\.pth .* save it as .*gone\.pth"):
        W.download(entry, progress=False)


def test_weights_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(W.ENV_WEIGHTS, str(tmp_path / "elsewhere"))
    assert W.weights_dir() == tmp_path / "elsewhere"
    assert str(tmp_path / "elsewhere") in CliRunner().invoke(main, ["weights", "list"]).output


def test_inspect_prints_architecture(tmp_path: Path) -> None:
    path = write_checkpoint(pose_resnet(depth=50, num_keypoints=17), tmp_path / "res50_coco_384x288.pth", "mmpose-1.x")
    result = CliRunner().invoke(main, ["weights", "inspect", str(path)])
    assert result.exit_code == 0, result.output
    for text in ("mmpose-1.x", "ResNet-50", "widths [256, 256, 256]", "keypoints:   17", "288x384", "RGB", "33,999,697"):
        assert text in result.output


@pytest.mark.parametrize("case", ["truncated", "missing", "text", "not-pose"])
def test_inspect_bad_files_one_line_no_traceback(case: str, tmp_path: Path) -> None:
    path = tmp_path / "x.pth"
    if case == "truncated":
        write_checkpoint(pose_resnet(depth=18), tmp_path / "full.pth", "msra")
        path.write_bytes((tmp_path / "full.pth").read_bytes()[:50_000])
    elif case == "text":
        path.write_text("not a checkpoint\n")
    elif case == "not-pose":
        torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, path)
    result = CliRunner().invoke(main, ["weights", "inspect", str(path)])
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("posetrack: error:") and "Traceback" not in result.stderr


def test_console_entry_point_reports_one_line(tmp_path: Path) -> None:
    """The real process (``python -m posetrack_cli``), not only click's runner, stays traceback-free."""
    import subprocess
    import sys

    (tmp_path / "x.pth").write_bytes(b"PK\x03\x04 cut short")
    proc = subprocess.run([sys.executable, "-m", "posetrack_cli", "weights", "inspect", str(tmp_path / "x.pth")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "truncated" in proc.stderr
