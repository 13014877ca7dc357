"""Video sources: 0-frame videos, a frame-size change inside a video file (two clips of
different sizes concatenated), timestamps that restart in concatenated MPEG-TS, and decoding
that matches OpenCV's pixel for pixel on ordinary files.

The test videos are made with OpenCV's writers; MPEG-TS files can be concatenated byte for byte
(each packet is self-contained), which is what ``cat a.ts b.ts > c.ts`` does to a user's clips.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import FrameSizeChanged, PosetrackError
from posetrack_cli.io.video import open_source

from helpers import FAST, walkers, write_video


def write_ts(path: Path, size: tuple[int, int], frames: int, seed: int) -> Path:
    """An MPEG-TS (MPEG-4 part 2) clip of ``size`` (width, height) at 10 fps."""
    images = [cv2.resize(f, size) for f in walkers(frames=frames, seed=seed)]
    return write_video(path, images, fps=10, fourcc="mp4v")


def concatenate(target: Path, *parts: Path) -> Path:
    target.write_bytes(b"".join(p.read_bytes() for p in parts))
    return target


def one_line(stderr: str, word: str = "error") -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"posetrack: {word}:") and "Traceback" not in stderr, stderr
    return lines[0]


def pose_file(path: Path, frames: int) -> Path:
    """A COCO-results file with one person standing in each of ``frames`` frames."""
    entries = []
    for t in range(frames):
        flat: list[float] = []
        for j in range(17):
            flat += [100.0 + 4 * (j % 4), 60.0 + 6 * (j // 4), 0.9]
        entries.append({"image_id": t, "category_id": 1, "keypoints": flat, "score": 0.9})
    path.write_text(json.dumps(entries))
    return path


@pytest.mark.parametrize(("name", "fourcc"), [("zero.mp4", "mp4v"), ("zero.avi", "MJPG")])
def test_a_video_without_frames_says_no_frames(name: str, fourcc: str, tmp_path: Path) -> None:
    video = tmp_path / name
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*fourcc), 10, (320, 240))
    writer.release()  # a valid container holding no frame
    assert video.stat().st_size > 0
    with pytest.raises(PosetrackError, match="has no frames"):
        open_source(video)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["track", str(pose_file(tmp_path / "p.json", 1)), "--video", str(video),
                                       "-o", str(out), "--no-progress"])
    assert result.exit_code == 1
    line = one_line(result.stderr)
    assert "has no frames" in line and "cannot open" not in line and not out.exists()


def test_a_size_change_inside_a_video_file_stops_there(tmp_path: Path) -> None:
    video = concatenate(tmp_path / "joined.ts", write_ts(tmp_path / "a.ts", (320, 240), 6, 1),
                        write_ts(tmp_path / "b.ts", (160, 128), 6, 2))
    # OpenCV's capture hands back every frame at 320x240: the second clip silently stretched.
    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    shapes = []
    while (frame := capture.read()[1]) is not None:
        shapes.append(frame.shape[:2])
    assert len(shapes) > 6 and set(shapes) == {(240, 320)}
    source = open_source(video)
    seen = []
    with pytest.raises(FrameSizeChanged, match=r"joined\.ts: frame 6 is 160x128, the video started at 320x240"):
        for frame in source.frames():
            seen.append(frame.index)
    assert seen == list(range(6))


def test_run_on_a_video_whose_size_changes_keeps_the_frames_before(weights_folder: Path, tmp_path: Path) -> None:
    video = concatenate(tmp_path / "joined.ts", write_ts(tmp_path / "a.ts", (320, 240), 6, 1),
                        write_ts(tmp_path / "b.ts", (160, 128), 6, 2))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(video), "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output  # partial, not failed
    assert one_line(result.stderr, "warning").endswith("joined.ts: frame 6 is 160x128, the video started at 320x240")
    doc = json.loads((out / "joined.json").read_text())
    assert doc["info"]["partial"] is True and doc["info"]["frames"] == 6 == len(doc["images"])
    assert "frame 6 is 160x128" in doc["info"]["partial_reason"]
    with open(out / "summary.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["status"] == "partial" and row["frames"] == "6"
    assert not list(out.glob(".*partial*"))


def test_restarting_timestamps_are_warned_about_once_and_kept_increasing(tmp_path: Path) -> None:
    parts = [write_ts(tmp_path / f"{i}.ts", (320, 240), 6, i) for i in range(3)]
    video = concatenate(tmp_path / "joined.ts", *parts)
    warnings: list[str] = []
    source = open_source(video, warn=warnings.append)
    times = [frame.timestamp for frame in source.frames()]
    assert len(times) == 18 and all(b > a for a, b in zip(times, times[1:]))
    np.testing.assert_allclose(np.diff(times), 0.1, atol=1e-6)  # the clips follow each other at 10 fps
    assert len(warnings) == 2 and warnings == source.notes  # one per jump
    assert "joined.ts: timestamps jump back at frame 6 (0.500 s to 0.000 s" in warnings[0]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["track", str(pose_file(tmp_path / "p.json", 18)), "--video", str(video),
                                       "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(result.stderr.strip().splitlines()) == 2 and "timestamps jump back at frame 12" in result.stderr
    stamps = [im["timestamp"] for im in json.loads((out / "joined.tracks.json").read_text())["images"]]
    assert stamps == pytest.approx([round(0.1 * t, 6) for t in range(18)])


@pytest.mark.parametrize(("name", "fourcc"), [("clip.mp4", "mp4v"), ("clip.avi", "MJPG")])
def test_frames_and_timestamps_match_opencv_on_ordinary_files(name: str, fourcc: str, tmp_path: Path) -> None:
    video = write_video(tmp_path / name, walkers(frames=6), fps=10, fourcc=fourcc)
    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    source = open_source(video)
    assert (source.width, source.height, source.frame_count, source.fps) == (320, 240, 6, 10.0)
    count = 0
    for frame in source.frames():
        ok, expected = capture.read()
        assert ok and np.array_equal(frame.image, expected)
        assert frame.timestamp == pytest.approx(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000)
        count += 1
    assert count == 6 and not capture.read()[0]


# The display matrices of an MP4 track header (16.16 fixed point, w in 2.30) that phones write.
ROTATIONS = {"90": (0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000),
             "180": (0xFFFF0000, 0, 0, 0, 0xFFFF0000, 0, 0, 0, 0x40000000),
             "270": (0, 0xFFFF0000, 0, 0x10000, 0, 0, 0, 0, 0x40000000)}


@pytest.mark.parametrize("angle", sorted(ROTATIONS))
def test_rotated_videos_come_out_upright_as_opencv_shows_them(angle: str, tmp_path: Path) -> None:
    import struct

    video = write_video(tmp_path / "phone.mp4", walkers(frames=3), fps=10, fourcc="mp4v")
    data = bytearray(video.read_bytes())
    at = data.find(b"tkhd") + 44  # the matrix follows version, times, track id, duration, layer, volume
    data[at:at + 36] = struct.pack(">9I", *ROTATIONS[angle])
    video.write_bytes(bytes(data))
    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    assert capture.get(cv2.CAP_PROP_ORIENTATION_META) == float(angle)
    source = open_source(video)
    assert (source.width, source.height) == ((320, 240) if angle == "180" else (240, 320))
    for frame in source.frames():
        ok, expected = capture.read()
        assert ok and np.array_equal(frame.image, expected)
