"""Expanding SOURCE arguments into inputs, and naming their outputs."""

from __future__ import annotations

from pathlib import Path

from posetrack_cli.run.batch import ItemResult, expand_sources, format_summary


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folders_of_videos_frames_and_missing_paths(tmp_path: Path) -> None:
    touch(tmp_path / "videos" / "clip10.mp4")
    touch(tmp_path / "videos" / "clip2.MOV")
    touch(tmp_path / "videos" / "notes.txt")
    touch(tmp_path / "videos" / "day2" / "clip2.mp4")
    touch(tmp_path / "frames" / "000001.jpg")
    touch(tmp_path / "frames" / "000002.jpg")
    (tmp_path / "empty").mkdir()
    items, failed = expand_sources(
        [tmp_path / "videos", tmp_path / "frames", tmp_path / "gone.mp4", tmp_path / "empty"]
    )
    assert [(i.path.name, i.name) for i in items] == [
        ("clip2.MOV", "clip2"), ("clip10.mp4", "clip10"), ("frames", "frames")
    ]
    assert [(r.name, r.status) for r in failed] == [("gone", "failed"), ("empty", "failed")]
    assert "no such file" in failed[0].reason and "no videos or images" in failed[1].reason

    nested, _ = expand_sources([tmp_path / "videos"], recursive=True)
    names = {i.path.relative_to(tmp_path / "videos").as_posix(): i.name for i in nested}
    assert names == {"clip2.MOV": "clip2", "clip10.mp4": "clip10", "day2/clip2.mp4": "day2__clip2"}  # no clash


def test_summary_table_lists_every_input() -> None:
    table = format_summary([
        ItemResult("a.mp4", "a", "ok", "", 120, 10.0, 12.0, 3),
        ItemResult("b.mp4", "b", "failed", "cannot open b.mp4 as a video"),
    ])
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["input", "status", "frames"]
    assert lines[1].split()[:3] == ["a.mp4", "ok", "120"] and lines[2].endswith("cannot open b.mp4 as a video")
