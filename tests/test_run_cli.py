"""``posetrack run`` end to end through the real CLI, with random-initialised checkpoints of the
released layouts in a temporary weights folder (the ``checkpoints`` and ``weights_folder``
fixtures of conftest.py, which say how they are biased to find a few people). Everything --
loading, cropping, flow, NMS, tracking, writing, resuming -- runs as it does for a user. Small
pose inputs keep it fast on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.models import weights as W

from helpers import FAST, check_outputs, summary, walkers, without_timings, write_video


def run(*args: str) -> object:
    return CliRunner().invoke(main, ["run", *args])


def test_sample_video_with_the_default_preset(weights_folder: Path, shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "video" / "street_5frames.mp4"
    out = tmp_path / "out"
    result = run(str(video), "-o", str(out), "--render", *FAST)
    assert result.exit_code == 0, result.output
    doc = check_outputs(out, "street_5frames", 5)
    assert doc["images"][1]["timestamp"] == pytest.approx(0.2)  # 5 fps, from the container
    assert doc["info"]["models"] == {"detector": "fasterrcnn_mobilenet_v3_large_fpn", "pose": "pose_resnet50_256x192",
                                     "flow": "dis-medium"}
    overlay = cv2.VideoCapture(str(out / "street_5frames.mp4"))
    assert int(overlay.get(cv2.CAP_PROP_FRAME_COUNT)) == 5 and overlay.get(cv2.CAP_PROP_FRAME_WIDTH) == 960
    assert summary(out)["street_5frames.mp4"]["status"] == "ok"
    assert not list(out.glob(".*"))  # no temporary files left


def test_batch_with_bad_inputs_keeps_going(weights_folder: Path, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "good1.mp4", walkers(seed=1))
    write_video(videos / "good2.mp4", walkers(seed=3))
    (videos / "notes.mp4").write_text("this is text, not a video")
    (videos / "empty.mp4").write_bytes(b"")
    whole = write_video(tmp_path / "whole.avi", walkers(frames=20, seed=5), fourcc="MJPG")
    (videos / "cut.avi").write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    corrupt = tmp_path / "corrupt_frames"
    resized = tmp_path / "resized_frames"
    for folder in (corrupt, resized):
        folder.mkdir()
        for t, frame in enumerate(walkers(frames=5, seed=7)):
            cv2.imwrite(str(folder / f"f{t}.png"), frame)
    (corrupt / "f3.png").write_bytes(b"\x89PNG broken")
    cv2.imwrite(str(resized / "f2.png"), np.zeros((100, 100, 3), np.uint8))
    out = tmp_path / "out"

    result = run(str(videos), str(corrupt), str(resized), str(tmp_path / "nowhere.mp4"), "-o", str(out), *FAST)
    assert result.exit_code == 1  # some inputs failed
    rows = summary(out)
    assert {k: v["status"] for k, v in rows.items()} == {
        "good1.mp4": "ok", "good2.mp4": "ok", "notes.mp4": "failed", "empty.mp4": "failed", "cut.avi": "partial",
        "corrupt_frames": "partial", "resized_frames": "partial", "nowhere.mp4": "failed",
    }
    assert "cannot open" in rows["notes.mp4"]["reason"] and "empty file" in rows["empty.mp4"]["reason"]
    assert rows["cut.avi"]["reason"].startswith("decoded ") and "of 20 frames" in rows["cut.avi"]["reason"]
    assert "cannot read image" in rows["corrupt_frames"]["reason"] and rows["corrupt_frames"]["frames"] == "3"
    assert "the sequence started at 320x240" in rows["resized_frames"]["reason"]
    assert rows["resized_frames"]["frames"] == "2"
    for name, frames in (("good1", 6), ("good2", 6), ("corrupt_frames", 3), ("resized_frames", 2)):
        check_outputs(out, name, frames)
    cut = json.loads((out / "cut.json").read_text())
    assert cut["info"]["partial"] is True and 0 < cut["info"]["frames"] < 20
    assert not (out / "notes.json").exists() and not list(out.glob(".*"))
    errors = [line for line in result.stderr.splitlines() if line.startswith("posetrack:")]
    assert len(errors) == 6 and "Traceback" not in result.output  # one line per bad input


@pytest.mark.slow
def test_rerun_skips_finished_inputs_by_content(weights_folder: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers())
    out = tmp_path / "out"
    assert run(str(video), "-o", str(out), *FAST).exit_code == 0
    stamp = (out / "clip.json").stat().st_mtime_ns
    again = run(str(video), "-o", str(out), *FAST)
    assert again.exit_code == 0 and summary(out)["clip.mp4"]["status"] == "skipped"
    assert (out / "clip.json").stat().st_mtime_ns == stamp
    # A CSV that lost a row is not complete, whatever the JSON says.
    lines = (out / "clip.csv").read_text().splitlines(keepends=True)
    (out / "clip.csv").write_text("".join(lines[:-1]))
    assert run(str(video), "-o", str(out), *FAST).exit_code == 0 and summary(out)["clip.mp4"]["status"] == "ok"
    # Other settings make other outputs.
    assert run(str(video), "-o", str(out), *FAST, "--joint-threshold", "0.3").exit_code == 0
    assert summary(out)["clip.mp4"]["status"] == "ok"
    assert run(str(video), "-o", str(out), *FAST, "--joint-threshold", "0.3", "--overwrite").exit_code == 0
    assert summary(out)["clip.mp4"]["status"] == "ok"


def test_ctrl_c_keeps_the_frames_done_and_a_rerun_resumes_to_the_same_files(weights_folder: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C inside b: b's frames so far are in place as an interrupted output (c was never
    started), every input has its row, and a rerun resumes b after the frame it stopped at, to the
    bytes of an uninterrupted run."""
    import os
    import signal

    from posetrack_cli.run.pipeline import Pipeline

    for name in ("a", "b", "c"):
        write_video(tmp_path / f"{name}.mp4", walkers(frames=10, seed=ord(name)))
    inputs = [str(tmp_path / f"{n}.mp4") for n in "abc"]
    reference, out = tmp_path / "reference", tmp_path / "out"
    assert run(*inputs, "-o", str(reference), *FAST).exit_code == 0
    real_run = Pipeline.run

    def ctrl_c_in_b(self, source, writer, **kwargs):  # noqa: ANN001, ANN202
        if source.path.name == "b.mp4":
            def press(index: int, people: int) -> None:
                if index == 4:
                    os.kill(os.getpid(), signal.SIGINT)
            kwargs["on_frame"] = press
        return real_run(self, source, writer, **kwargs)

    monkeypatch.setattr(Pipeline, "run", ctrl_c_in_b)
    result = run(*inputs, "-o", str(out), *FAST)
    assert result.exit_code == 130 and result.stderr.rstrip().endswith("posetrack: interrupted")
    assert sorted(p.name for p in out.iterdir()) == [".b.checkpoint", "a.csv", "a.json", "b.csv", "b.json",
                                                      "summary.csv"]
    kept = json.loads((out / "b.json").read_text())
    assert (kept["info"]["partial"], kept["info"]["interrupted"], kept["info"]["frames"]) == (True, True, 5)
    assert kept["info"]["partial_reason"] == "stopped by Ctrl-C after frame 4"
    assert [im["id"] for im in kept["images"]] == [0, 1, 2, 3, 4]
    rows = summary(out)
    assert [(rows[f"{n}.mp4"]["status"], rows[f"{n}.mp4"]["reason"], rows[f"{n}.mp4"]["frames"]) for n in "bc"] == [
        ("interrupted", "stopped by Ctrl-C after frame 4; rerun to resume", "5"),
        ("interrupted", "Ctrl-C before it started", "0")]  # every input has its row

    monkeypatch.setattr(Pipeline, "run", real_run)
    resumed = run(*inputs, "-o", str(out), *FAST)
    assert resumed.exit_code == 0, resumed.output
    rows = summary(out)
    assert [rows[f"{n}.mp4"]["status"] for n in "abc"] == ["skipped", "ok", "ok"]
    assert rows["b.mp4"]["reason"] == "resumed after frame 4" and rows["b.mp4"]["frames"] == "10"
    for name in "bc":
        assert without_timings(out / f"{name}.json") == without_timings(reference / f"{name}.json")
        assert (out / f"{name}.csv").read_bytes() == (reference / f"{name}.csv").read_bytes()
    assert not list(out.glob(".*"))


def test_ctrl_c_just_after_a_commit_leaves_the_row_ok(weights_folder: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary says what is on disk: Ctrl-C landing between an input's commit and its row."""
    from posetrack_cli.run.job import LoadedRun

    for name in ("a", "b"):
        write_video(tmp_path / f"{name}.mp4", walkers(seed=ord(name)))
    out = tmp_path / "out"
    real_process = LoadedRun.process

    def committed_then_stopped(self, item):  # noqa: ANN001, ANN202
        real_process(self, item)
        raise KeyboardInterrupt

    monkeypatch.setattr(LoadedRun, "process", committed_then_stopped)
    result = run(str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), "-o", str(out), *FAST)
    assert result.exit_code == 130
    rows = summary(out)
    assert (rows["a.mp4"]["status"], rows["a.mp4"]["reason"], rows["a.mp4"]["frames"]) == (
        "ok", "finished before Ctrl-C", "6")
    assert (out / "a.json").is_file() and not (out / "b.json").exists()
    assert rows["b.mp4"]["status"] == "interrupted"


def test_boxes_from_a_file_and_local_pose_weights(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    frames = walkers()
    video = write_video(tmp_path / "clip.mp4", frames)
    boxes = [{"image_id": t, "category_id": 1, "bbox": [30.0 + 10 * t, 15.0, 60.0, 130.0], "score": 0.9}
             for t in range(6)]
    boxes.append({"image_id": 2, "category_id": 3, "bbox": [0, 0, 10, 10], "score": 0.99})  # a car: ignored
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    out = tmp_path / "out"
    result = run(str(video), "-o", str(out), "--detections", str(tmp_path / "boxes.json"),
                 "--pose-weights", str(checkpoints["pose"]), *FAST)
    assert result.exit_code == 0, result.output
    doc = check_outputs(out, "clip", 6)
    assert doc["info"]["models"]["detector"].startswith("file:")
    for t in range(6):  # each frame has the file's person box (flow boxes may add others)
        assert any(np.allclose(a["bbox"], boxes[t]["bbox"], atol=0.01)
                   for a in doc["annotations"] if a["image_id"] == t)
    other = write_video(tmp_path / "other.mp4", frames)
    two = run(str(video), str(other), "-o", str(out), "--detections", str(tmp_path / "boxes.json"), *FAST)
    assert two.exit_code == 1 and "exactly one SOURCE" in two.stderr


def test_missing_weights_offline_say_which_file_and_where(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers())
    result = run(str(video), "-o", str(tmp_path / "out"), *FAST)
    entry = W.load_manifest()["pose_resnet50_256x192"]
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and entry.filename in line and entry.url in line and str(W.weights_dir()) in line


def test_unwritable_output_folder_is_one_line(weights_folder: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers())
    (tmp_path / "file").write_text("x")
    result = run(str(video), "-o", str(tmp_path / "file" / "out"), *FAST)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "cannot write to output folder" in result.stderr


def test_images_mode_scores_every_image_as_pycocotools_does(weights_folder: Path, shared_data: Path,
                                                           tmp_path: Path) -> None:
    """`--images` on the COCO sample (four unrelated images of different sizes): every image is
    estimated, and `posetrack evaluate --metric coco` gives the AP pycocotools gives directly."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = tmp_path / "coco_imgs"
    images.mkdir()
    for jpg in (shared_data / "coco_sample").glob("*.jpg"):
        (images / jpg.name).symlink_to(jpg)
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    result = run(str(images), "--images", "-o", str(out), *FAST)
    assert result.exit_code == 0, result.output
    row = summary(out)["coco_imgs"]
    assert row["status"] == "partial" and row["frames"] == "4" and "broken.jpg" in row["reason"]
    results = json.loads((out / "coco_imgs.coco.json").read_text())
    assert {r["file_name"] for r in results} == {p.name for p in (shared_data / "coco_sample").glob("*.jpg")}
    assert all(isinstance(r["image_id"], int) and len(r["keypoints"]) == 51 for r in results)
    gt_path = shared_data / "coco_sample" / "test_coco.json"
    evaluated = CliRunner().invoke(main, ["evaluate", str(gt_path), str(out / "coco_imgs.coco.json"), "--metric",
                                          "coco", "--json", str(tmp_path / "ap.json")])
    assert evaluated.exit_code == 0, evaluated.output
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes([{k: r[k] for k in ("image_id", "category_id", "keypoints", "score")} for r in results])
        direct = COCOeval(gt, dt, iouType="keypoints")
        direct.evaluate()
        direct.accumulate()
        direct.summarize()
    assert json.loads((tmp_path / "ap.json").read_text())["stats"]["AP"] == pytest.approx(max(direct.stats[0], 0.0))


def test_run_writes_exports_and_the_report_of_each_video(weights_folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    video = write_video(tmp_path / "clip.mp4", walkers())
    out = tmp_path / "out"
    result = run(str(video), "-o", str(out), "--format", "coco,mot", "--report", *FAST)
    assert result.exit_code == 0, result.output
    check_outputs(out, "clip", 6)
    assert (out / "coco" / "clip.json").is_file() and (out / "mot" / "clip.txt").is_file()
    assert not (out / "posetrack18").exists() and (out / "clip.report.html").is_file()
    bad = run(str(video), "-o", str(out), "--format", "xml", *FAST)
    assert bad.exit_code == 2 and "not an export format" in bad.stderr


@pytest.mark.slow
def test_a_rerun_asking_for_exports_makes_them_from_the_finished_track_file(weights_folder: Path,
                                                                            tmp_path: Path) -> None:
    """Asking for an export or the report of a video already done makes just those, from its track
    file: the video is neither tracked again nor skipped without them."""
    pytest.importorskip("matplotlib")
    video = write_video(tmp_path / "clip.mp4", walkers())
    out = tmp_path / "out"
    assert run(str(video), "-o", str(out), *FAST).exit_code == 0
    track_file = (out / "clip.json").read_bytes()
    result = run(str(video), "-o", str(out), "--format", "mot", "--report", *FAST)
    assert result.exit_code == 0, result.output
    row = summary(out)["clip.mp4"]
    assert row["status"] == "skipped"
    assert row["reason"] == "already done (--overwrite to redo); made clip.txt, clip.report.html from its track file"
    assert (out / "clip.json").read_bytes() == track_file  # not tracked again
    people = len(json.loads(track_file)["annotations"])
    assert people > 0 and len((out / "mot" / "clip.txt").read_text().splitlines()) == people
    assert (out / "clip.report.html").is_file()
    again = run(str(video), "-o", str(out), "--format", "mot", "--report", *FAST)
    assert again.exit_code == 0 and summary(out)["clip.mp4"]["reason"] == "already done (--overwrite to redo)"
    # Only what is missing is made: the report stays as it was.
    (out / "mot" / "clip.txt").unlink()
    page = (out / "clip.report.html").stat().st_mtime_ns
    assert run(str(video), "-o", str(out), "--format", "mot", "--report", *FAST).exit_code == 0
    assert summary(out)["clip.mp4"]["reason"].endswith("; made clip.txt from its track file")
    assert (out / "mot" / "clip.txt").is_file() and (out / "clip.report.html").stat().st_mtime_ns == page


def test_without_openvino_everything_runs_on_torch(weights_folder: Path, shared_data: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Where OpenVINO is not installed, the default (a preset asking for int8) runs torch fp32, both
    networks, and says so; asking for OpenVINO is one line."""
    from posetrack_cli.runtime import choice

    monkeypatch.setattr(choice, "openvino_available", lambda: False)
    video = shared_data / "video" / "street_5frames.mp4"
    out = tmp_path / "out"
    result = run(str(video), "-o", str(out), *FAST)
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "street_5frames.json").read_text())["info"]["settings"]
    assert (settings["runtime"], settings["precision"]) == ("torch", "fp32")
    assert settings["detector_runtime"] == {"runtime": "torch", "precision": "fp32"}
    refused = run(str(video), "-o", str(tmp_path / "other"), *FAST, "--runtime", "openvino")
    assert refused.exit_code != 0 and "needs the openvino package" in refused.output


@pytest.mark.slow
def test_outputs_record_the_wait_for_the_first_frame(weights_folder: Path, tmp_path: Path) -> None:
    """``info.timings``: wall seconds from the command's start to each input's first frame, and the
    CPU seconds spent by then (interpreter, imports, model files checked and loaded, ...)."""
    import os
    import subprocess
    import sys
    import time

    videos = tmp_path / "videos"
    videos.mkdir()
    for name, seed in (("a", 1), ("b", 3)):
        write_video(videos / f"{name}.mp4", walkers(frames=4, seed=seed))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "posetrack_cli", "run", str(videos), "-o", str(tmp_path / "out"),
                           "--runtime", "torch", *FAST], env=dict(os.environ), capture_output=True, text=True)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    first, second = (json.loads((tmp_path / "out" / f"{n}.json").read_text())["info"]["timings"] for n in "ab")
    assert 0 < first["first_frame_s"] < second["first_frame_s"] < wall  # b waited for a's frames too
    # The imports and the model loading came first: CPU time, not zero at the process's start.
    assert 0.2 < first["first_frame_cpu_s"] < second["first_frame_cpu_s"]
