"""Results a user can trust on damaged input and when things go wrong: true frame numbers in a
damaged video, frames too small for the flow, absurd frame rates, a summary.csv posetrack did not
write, a disk that fills up under the overlay, a bug in the middle of a video. And a corpus of
hostile inputs run in one go: every one ends in at most one line per input on stderr, never a
traceback or an internal error, and nothing half-written."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.tracking.tracker import TrackerConfig

from helpers import FAST, summary, walkers, write_video


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["run", *args])


def damaged(path: Path, frames: int = 30) -> Path:
    """A 30-frame mp4 with random bytes over 45-60 % of the file (FFmpeg cannot decode a stretch of it)."""
    write_video(path, walkers(frames=frames, seed=3))
    data = bytearray(path.read_bytes())
    start, end = int(len(data) * 0.45), int(len(data) * 0.60)
    data[start:end] = np.random.default_rng(0).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def test_a_video_damaged_in_the_middle_keeps_its_frame_numbers(weights_folder: Path, tmp_path: Path) -> None:
    """The frames after the damage keep their numbers (their timestamps agree), the gap is listed,
    and the CSV, the MOT export and the overlay follow the same numbers."""
    video = damaged(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    result = run(str(video), "-o", str(out), *FAST, "--format", "mot", "--render")
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "clip.json").read_text())
    info = doc["info"]
    ids = [im["id"] for im in doc["images"]]
    assert info["missing_frames"] and info["partial"] is True
    (first, last), = info["missing_frames"]
    assert ids == [i for i in range(30) if not first <= i <= last]  # no number is reused or shifted
    assert all(im["timestamp"] == pytest.approx(im["id"] / 10) for im in doc["images"])  # 10 fps: number = time
    assert info["partial_reason"].startswith(f"decoded {30 - (last - first + 1)} of 30 frames: frames {first}-{last} "
                                             "could not be decoded")
    with open(out / "clip.csv") as f:
        assert {int(line.split(",")[0]) for line in f.readlines()[1:]} <= set(ids)
    mot_frames = {int(line.split(",")[0]) for line in (out / "mot" / "clip.txt").read_text().splitlines()}
    assert mot_frames <= {i + 1 for i in ids}  # MOTChallenge counts frames from 1
    overlay = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(overlay.get(cv2.CAP_PROP_FRAME_COUNT)) == len(ids)
    assert summary(out)["clip.mp4"]["status"] == "partial"


@pytest.mark.parametrize("kind", ["2x2 video", "1x1 images", "8x40 video"])
def test_frames_too_small_for_the_flow_are_one_line(kind: str, weights_folder: Path, tmp_path: Path) -> None:
    if kind.endswith("images"):
        source = tmp_path / "frames"
        source.mkdir()
        for i in range(3):
            cv2.imwrite(str(source / f"{i}.png"), np.full((1, 1, 3), 80 * i, np.uint8))
    else:
        w, h = (2, 2) if kind.startswith("2x2") else (40, 8)
        source = write_video(tmp_path / "tiny.mp4", [np.full((h, w, 3), 30 * i, np.uint8) for i in range(4)])
    result = run(str(source), "-o", str(tmp_path / "out"), *FAST)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "too small for optical flow: DIS needs 12 pixels on each side" in lines[0], lines
    assert "internal error" not in result.stderr
    assert not [p for p in (tmp_path / "out").iterdir() if p.name != "summary.csv"]


@pytest.mark.parametrize("fps", ["1e-308", "0", "inf", "1e300"])
def test_a_frame_rate_that_would_break_the_timestamps_is_refused(fps: str, tmp_path: Path) -> None:
    result = run(str(tmp_path), "--fps", fps, "-o", str(tmp_path / "out"))
    assert result.exit_code == 2 and "--fps" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_summary_csv_posetrack_did_not_write_is_never_replaced(weights_folder: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers())
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("my,own,notes\n1,2,3\n")
    result = run(str(video), "-o", str(out), *FAST)
    assert result.exit_code == 1
    assert result.stderr == (f"posetrack: error: {out / 'summary.csv'} exists and was not written by posetrack; move "
                             "it away or choose another output folder (-o) (posetrack writes its summary there)\n")
    assert (out / "summary.csv").read_text() == "my,own,notes\n1,2,3\n"
    assert sorted(p.name for p in out.iterdir()) == ["summary.csv"]  # refused before any work


def test_a_disk_that_fills_under_the_overlay_stops_at_that_frame(weights_folder: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write of the overlay is checked: the first that fails ends the input with one line
    naming the mp4, and nothing of that input is left; the next input still runs."""
    import av

    for name in ("a", "b"):
        write_video(tmp_path / f"{name}.mp4", walkers(frames=8))
    real_mux = av.container.OutputContainer.mux
    written = {"a": 0}

    def mux(self: Any, packets: Any) -> Any:
        if "a.mp4" in str(self.name):
            written["a"] += 1
            if written["a"] > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_mux(self, packets)

    monkeypatch.setattr(av.container.OutputContainer, "mux", mux)
    out = tmp_path / "out"
    result = run(str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "-o", str(out), *FAST, "--render")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("posetrack: error:")]
    assert errors == [f"posetrack: error: {tmp_path / 'a.mp4'}: disk full: cannot write {out / 'a.mp4'}: disk full"]
    assert "warning" not in result.stderr.lower() or "OpenCV" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["b.csv", "b.json", "b.mp4", "summary.csv"]
    assert summary(out)["a.mp4"]["status"] == "failed"


def test_a_bug_inside_a_video_keeps_its_frames_and_every_input_has_its_row(weights_folder: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from posetrack_cli.run.frame_tracker import FrameTracker

    for name in ("a", "b"):
        write_video(tmp_path / f"{name}.mp4", walkers(frames=8))
    real_step = FrameTracker.step
    bugs = [5]  # the frame the bug strikes at, once

    def step(self: FrameTracker, index: int, *args: Any) -> Any:
        if bugs and index == bugs[0]:
            bugs.clear()
            raise ZeroDivisionError("a bug")
        return real_step(self, index, *args)

    monkeypatch.setattr(FrameTracker, "step", step)
    out = tmp_path / "out"
    result = run(str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "-o", str(out), *FAST)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    rows = summary(out)
    assert rows["a.mp4"]["status"] == "failed" and rows["b.mp4"]["status"] == "ok"
    written = 5 - (TrackerConfig().confirm_frames - 1)  # the last frames tracked wait for their tracks' confirmation
    assert rows["a.mp4"]["reason"].startswith(f"internal error: ZeroDivisionError: a bug; the {written} frames before "
                                              "it are in a.json (partial; rerun to resume from the last checkpoint)")
    kept = json.loads((out / "a.json").read_text())["info"]
    assert (kept["frames"], kept["interrupted"], kept["partial_reason"]) == (
        written, True, f"stopped by an internal error after frame {written - 1}: ZeroDivisionError")
    monkeypatch.setattr(FrameTracker, "step", real_step)
    rerun = run(str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "-o", str(out), *FAST)
    assert rerun.exit_code == 0, rerun.output
    assert [summary(out)[f"{n}.mp4"]["status"] for n in "ab"] == ["ok", "skipped"]
    assert not list(out.glob(".*"))


# ---------------------------------------------------------------------------------------------- corpus


def _case_damaged(tmp: Path) -> list[str]:
    return ["run", str(damaged(tmp / "d.mp4")), *FAST]


def _case_not_a_video(tmp: Path) -> list[str]:
    (tmp / "x.mp4").write_bytes(b"\x00" * 4096)
    return ["run", str(tmp / "x.mp4"), *FAST]


def _case_empty(tmp: Path) -> list[str]:
    (tmp / "e.mp4").write_bytes(b"")
    return ["run", str(tmp / "e.mp4"), *FAST]


def _case_tiny(tmp: Path) -> list[str]:
    return ["run", str(write_video(tmp / "t.mp4", [np.zeros((2, 2, 3), np.uint8)] * 3)), *FAST]


def _case_nan_boxes(tmp: Path) -> list[str]:
    video = write_video(tmp / "v.mp4", walkers())
    (tmp / "b.json").write_text('[{"image_id": 0, "bbox": [NaN, 1, 2, 3], "score": 0.9}]')
    return ["run", str(video), "--detections", str(tmp / "b.json"), *FAST]


def _case_deep_poses(tmp: Path) -> list[str]:
    video = write_video(tmp / "v.mp4", walkers())
    (tmp / "p.json").write_text("[" * 200_000 + "]" * 200_000)
    return ["track", str(tmp / "p.json"), "--video", str(video)]


def _case_absurd_keypoint(tmp: Path) -> list[str]:
    video = write_video(tmp / "v.mp4", walkers())
    entry = {"image_id": 0, "category_id": 1, "keypoints": [1e300, 10, 2] + [20, 20, 2] * 16, "score": 0.9}
    (tmp / "p.json").write_text(json.dumps([entry]))
    return ["track", str(tmp / "p.json"), "--video", str(video)]


def _case_fractional_track_id(tmp: Path) -> list[str]:
    doc = {"info": {"source": "v.mp4"}, "images": [{"id": 0, "frame_id": 0, "width": 64, "height": 48}],
           "annotations": [{"id": 0, "image_id": 0, "track_id": 1.5, "category_id": 1, "bbox": [1, 1, 10, 20],
                            "keypoints": [5, 5, 2] * 17, "score": 0.9}],
           "categories": [{"id": 1, "name": "person", "keypoints": ["k"] * 17}]}
    (tmp / "t.json").write_text(json.dumps(doc))
    return ["export", str(tmp / "t.json"), "--format", "mot"]


def _case_info_string(tmp: Path) -> list[str]:
    (tmp / "t.json").write_text(json.dumps({"info": "x", "images": [], "annotations": [], "categories": []}))
    return ["export", str(tmp / "t.json"), "--format", "coco"]


def _case_tiny_fps(tmp: Path) -> list[str]:
    folder = tmp / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), np.zeros((48, 64, 3), np.uint8))
    return ["run", str(folder), "--fps", "1e-308", *FAST]


def _case_foreign_summary(tmp: Path) -> list[str]:
    (tmp / "out").mkdir()
    (tmp / "out" / "summary.csv").write_text("not,ours\n")
    return ["run", str(write_video(tmp / "v.mp4", walkers())), *FAST]


def _case_long_name(tmp: Path) -> list[str]:
    return ["run", str(write_video(tmp / ("n" * 236 + ".mp4"), walkers(frames=3))), *FAST]


CORPUS: dict[str, tuple[Callable[[Path], list[str]], int]] = {  # case -> (its command line, exit code)
    "damaged in the middle": (_case_damaged, 0),
    "not a video": (_case_not_a_video, 1),
    "empty file": (_case_empty, 1),
    "2x2 frames": (_case_tiny, 1),
    "NaN in a boxes file": (_case_nan_boxes, 1),
    "poses nested 200,000 deep": (_case_deep_poses, 1),
    "a keypoint at 1e300": (_case_absurd_keypoint, 1),
    "a track id of 1.5": (_case_fractional_track_id, 1),
    "info a string": (_case_info_string, 1),
    "--fps 1e-308": (_case_tiny_fps, 2),
    "someone else's summary.csv": (_case_foreign_summary, 1),
    "a 240-character name": (_case_long_name, 0),
}


def _not_strict(constant: str) -> None:
    raise AssertionError(f"a JSON output holds {constant}")


def test_every_hostile_input_in_one_go_is_at_most_one_line_and_no_traceback(weights_folder: Path,
                                                                           tmp_path: Path) -> None:
    failures = []
    for case, (make, code) in CORPUS.items():
        folder = tmp_path / case.replace(" ", "_").replace("'", "").replace(",", "")
        folder.mkdir()
        args = make(folder)
        out = folder / "out"
        if args[0] in ("run", "track"):
            args += ["-o", str(out)] + ([] if "--no-progress" in args else ["--no-progress"])
        result = CliRunner().invoke(main, args)
        errors = [line for line in result.stderr.splitlines() if line.startswith("posetrack: error:")]
        bad = (result.exit_code != code or "Traceback" in result.stderr or "internal error" in result.stderr
               or len(errors) > 1 or (code and not errors))
        for path in out.rglob("*") if out.exists() else []:
            if path.suffix == ".json":
                json.loads(path.read_text(), parse_constant=_not_strict)
            bad = bad or ".partial" in path.name
        if bad:
            failures.append(f"{case}: exit {result.exit_code} (expected {code}): {result.stderr!r}")
    assert not failures, "\n".join(failures)
