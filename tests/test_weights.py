"""Model files: manifest, download over a file:// URL with verification, offline messages, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import WeightsError
from posetrack_cli.models import weights as W
from posetrack_cli.models.pose_resnet import pose_resnet

from helpers import FAST, walkers, write_checkpoint, write_video


def test_builtin_manifest_describes_every_file() -> None:
    manifest = W.load_manifest()
    kinds = {e.kind for e in manifest.values()}
    assert kinds == {"pose", "detector", "flow", "backbone"}
    for entry in manifest.values():
        assert entry.url.startswith("https://") and entry.filename in entry.url
        assert entry.sha256 in entry.filename  # the publisher's digest prefix is in the name
        if entry.kind == "pose":
            assert entry.input_size in {(192, 256), (288, 384)}
            assert entry.norm["channel_order"] in {"rgb", "bgr"}
        if entry.kind == "backbone":  # torchvision's ImageNet ResNets, fed RGB with ImageNet statistics
            assert entry.name.startswith("resnet") and entry.norm["channel_order"] == "rgb"


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A local 'server' folder holding one checkpoint, and a manifest pointing at it by file:// URL."""
    server = tmp_path / "server"
    server.mkdir()
    blob = write_checkpoint(pose_resnet(depth=18), server / "tiny_pose_256x192.pth", "mmpose-0.x")
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    entry = {
        "name": "tiny_pose", "kind": "pose", "filename": blob.name, "url": blob.as_uri(), "sha256": digest,
        "size_mb": 0.1, "source": "test", "input_size": [192, 256],
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
    assert not list(W.weights_dir().glob("*.partial"))
    assert sorted(p.name for p in W.weights_dir().iterdir()) == sorted([blob.name, W.CACHE_NAME])
    listing = CliRunner().invoke(main, ["weights", "list"])
    assert "tiny_pose" in listing.output and " yes " in listing.output and blob.as_uri() in listing.output
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
                         sha256="deadbeef", size_mb=1, source="test")
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
    expected = ("mmpose-1.x", "ResNet-50", "widths [256, 256, 256]", "keypoints:   17", "288x384", "RGB", "33,999,697")
    for text in expected:
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


def strict_json(text: str) -> object:
    """Parse JSON refusing NaN and Infinity, as strict parsers do."""
    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def corrupt(path: Path) -> bytes:
    """Flip one byte in the middle of ``path`` (the size stays); returns the new bytes."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("posetrack: error:") and "Traceback" not in stderr, stderr
    return lines[0]


def test_corrupt_file_is_refused_when_loaded_and_download_force_replaces_it(mirror: tuple[Path, Path]) -> None:
    blob, _ = mirror
    assert CliRunner().invoke(main, ["weights", "download", "tiny_pose", "--no-progress"]).exit_code == 0
    target = W.weights_dir() / blob.name
    damaged = corrupt(target)
    with pytest.raises(WeightsError) as info:
        W.resolve("tiny_pose", allow_download=False)
    message = str(info.value)
    assert "corrupt" in message and "posetrack weights download tiny_pose --force" in message and "\n" not in message
    # download without --force checks the file there and says it is corrupt, instead of "it is there"
    result = CliRunner().invoke(main, ["weights", "download", "tiny_pose", "--no-progress"])
    assert result.exit_code == 1 and result.stdout == ""
    assert "corrupt" in one_error_line(result.stderr) and "--force" in result.stderr
    assert target.read_bytes() == damaged
    result = CliRunner().invoke(main, ["weights", "download", "tiny_pose", "--no-progress", "--force"])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == blob.read_bytes()
    assert W.resolve("tiny_pose", allow_download=False)[1] == target
    assert not list(W.weights_dir().glob(".*.partial")) and not list(W.weights_dir().glob("tmp*"))


def test_a_run_with_a_corrupt_model_file_stops_before_work(weights_folder: Path, tmp_path: Path) -> None:
    entry = W.load_manifest()["pose_resnet50_256x192"]
    pose = weights_folder / entry.filename
    data = pose.read_bytes()
    pose.unlink()  # a copy of the test checkpoint in place of the link, then damaged
    pose.write_bytes(data)
    corrupt(pose)
    video = write_video(tmp_path / "clip.mp4", walkers(frames=3))
    before = video.read_bytes()
    result = CliRunner().invoke(main, ["run", str(video), "-o", str(tmp_path / "out"), *FAST])
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "corrupt" in line and f"posetrack weights download {entry.name} --force" in line and str(pose) in line
    assert video.read_bytes() == before
    assert not (tmp_path / "out" / "clip.json").exists()


def test_digests_are_cached_by_path_size_and_mtime(mirror: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    blob, _ = mirror
    folder = W.weights_dir()
    folder.mkdir(parents=True)
    target = folder / blob.name
    target.write_bytes(blob.read_bytes())
    hashed: list[Path] = []
    real = W.file_sha256
    monkeypatch.setattr(W, "file_sha256", lambda path, *a: hashed.append(path) or real(path, *a))
    W.resolve("tiny_pose", allow_download=False)
    assert hashed == [target]
    W.resolve("tiny_pose", allow_download=False)
    W.require_files(["tiny_pose"], allow_download=False)
    assert hashed == [target]  # the second and third look-ups read the cache, not the file
    cache = strict_json((folder / W.CACHE_NAME).read_text())
    assert isinstance(cache, dict) and cache["files"][str(target.resolve())]["size"] == target.stat().st_size
    stat = target.stat()
    corrupt(target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # same size, later mtime
    with pytest.raises(WeightsError, match="corrupt"):
        W.resolve("tiny_pose", allow_download=False)
    assert hashed == [target, target]
    (folder / W.CACHE_NAME).write_text("{not json")  # a damaged cache is recomputed, not trusted
    with pytest.raises(WeightsError, match="corrupt"):
        W.resolve("tiny_pose", allow_download=False)
    assert len(hashed) == 3 and strict_json((folder / W.CACHE_NAME).read_text())


def test_every_missing_file_is_named_in_one_message_offline() -> None:
    manifest = W.load_manifest()
    names = ["fasterrcnn_mobilenet_v3_large_fpn", "pose_resnet50_256x192", "raft_small"]
    with pytest.raises(WeightsError) as info:
        W.require_files(names, allow_download=False)
    message = str(info.value)
    assert "\n" not in message and message.startswith("3 model files are missing")
    for name in names:
        entry = manifest[name]
        assert entry.url in message and str(W.weights_dir() / entry.filename) in message
    assert "posetrack weights download " + " ".join(names) in message


def test_missing_and_corrupt_files_are_named_together(mirror: tuple[Path, Path], tmp_path: Path) -> None:
    blob, manifest_path = mirror
    doc = json.loads(manifest_path.read_text())
    other = {**doc["files"][0], "name": "other_pose", "filename": "other.pth", "url": (tmp_path / "gone.pth").as_uri()}
    manifest_path.write_text(json.dumps({"files": [*doc["files"], other]}))
    folder = W.weights_dir()
    folder.mkdir(parents=True)
    (folder / blob.name).write_bytes(blob.read_bytes()[:-1] + b"x")
    with pytest.raises(WeightsError) as info:
        W.require_files(["tiny_pose", "other_pose"], allow_download=True)
    message = str(info.value)
    assert "\n" not in message and "tiny_pose --force" in message and "other.pth (other_pose) is missing" in message
    assert other["url"] in message


def test_list_shows_urls_and_strict_json(mirror: tuple[Path, Path]) -> None:
    blob, _ = mirror
    result = CliRunner().invoke(main, ["weights", "list", "--json"])
    assert result.exit_code == 0 and result.stderr == ""
    doc = strict_json(result.stdout)
    assert isinstance(doc, dict) and doc["folder"] == str(W.weights_dir())
    assert [(f["name"], f["present"], f["verified"], f["url"]) for f in doc["files"]] == [
        ("tiny_pose", False, None, blob.as_uri())]
    assert CliRunner().invoke(main, ["weights", "download", "tiny_pose", "--no-progress"]).exit_code == 0
    doc = strict_json(CliRunner().invoke(main, ["weights", "list", "--json"]).stdout)
    assert isinstance(doc, dict) and (doc["files"][0]["present"], doc["files"][0]["verified"]) == (True, True)
    corrupt(W.weights_dir() / blob.name)
    assert CliRunner().invoke(main, ["weights", "verify"]).exit_code == 1
    doc = strict_json(CliRunner().invoke(main, ["weights", "list", "--json"]).stdout)
    assert isinstance(doc, dict) and doc["files"][0]["verified"] is False
    assert "CORRUPT" in CliRunner().invoke(main, ["weights", "list"]).stdout


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_downloaded_files_and_the_cache_follow_the_umask(umask: int, mirror: tuple[Path, Path]) -> None:
    blob, _ = mirror
    previous = os.umask(umask)
    try:
        assert CliRunner().invoke(main, ["weights", "download", "tiny_pose", "--no-progress"]).exit_code == 0
    finally:
        os.umask(previous)
    for name in (blob.name, W.CACHE_NAME):
        assert stat.S_IMODE((W.weights_dir() / name).stat().st_mode) == 0o666 & ~umask, name
