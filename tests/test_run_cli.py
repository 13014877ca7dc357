"""``posetrack run`` end to end through the real CLI, with random-initialised checkpoints of the
released layouts in a temporary weights folder.

Random weights cannot find people, so biases make them produce a few: the detector's region
proposals come from one anchor shape only (a few dozen instead of 1,000), its "person" logit is
raised, and its person box regression is pushed to the largest growth torchvision allows, so boxes
clip to the frame and NMS keeps about one per frame; the pose head's bias is raised so every joint
scores above the 0.4 threshold. Everything else -- loading, cropping, flow, NMS, tracking,
writing, resuming -- runs as it does for a user. Small pose inputs keep it fast on a CPU.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from helpers import write_checkpoint
from posetrack_cli import weights as W
from posetrack_cli.cli import main
from posetrack_cli.detector import build_detector
from posetrack_cli.models.pose_resnet import pose_resnet
from synthetic import Person, linear_path, render

FAST = ["--input-size", "32x32", "--no-flip-test", "--detector-size", "256", "--no-progress", "--offline"]


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    pose = pose_resnet(depth=18)
    torch.nn.init.constant_(pose.final_layer.bias, 0.5)
    detector = build_detector("fasterrcnn_mobilenet_v3_large_fpn")
    with torch.no_grad():
        detector.rpn.head.cls_logits.bias.fill_(-10.0)
        detector.rpn.head.cls_logits.bias[13] = 10.0  # anchors of size 256, height:width 2
        detector.roi_heads.box_predictor.cls_score.bias[1] = 10.0  # class 1 = person
        detector.roi_heads.box_predictor.bbox_pred.bias[6:8] = 50.0  # person dw, dh: grow to the frame
    manifest = W.load_manifest()
    pose_file = write_checkpoint(pose, root / manifest["pose_resnet50_256x192"].filename, "mmpose-0.x")
    det_file = root / manifest["fasterrcnn_mobilenet_v3_large_fpn"].filename
    torch.save(detector.state_dict(), det_file)
    return {"pose": pose_file, "detector": det_file}


@pytest.fixture
def weights_folder(checkpoints: dict[str, Path]) -> Path:
    """The preset's files under their manifest names in this test's weights folder."""
    folder = W.weights_dir()
    folder.mkdir(parents=True)
    for path in checkpoints.values():
        (folder / path.name).symlink_to(path)
    return folder


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10, fourcc: str = "mp4v") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def walkers(frames: int = 6, seed: int = 1) -> list[np.ndarray]:
    people = [Person(120, linear_path((40, 20), (10, 0), frames), seed=seed),
              Person(110, linear_path((250, 100), (-10, 0), frames), seed=seed + 1)]
    return render(people, frames, size=(320, 240), seed=seed)


def run(*args: str) -> object:
    return CliRunner().invoke(main, ["run", *args])


def check_outputs(out: Path, name: str, frames: int) -> dict:
    """The JSON and CSV of one input agree: every annotation has a track id, rows match one to one."""
    doc = json.loads((out / f"{name}.json").read_text())
    assert len(doc["images"]) == frames == doc["info"]["frames"]
    assert [im["frame_id"] for im in doc["images"]] == list(range(frames))
    assert doc["annotations"], "the biased checkpoints should produce people"
    for ann in doc["annotations"]:
        assert isinstance(ann["track_id"], int) and ann["track_id"] >= 0
        assert len(ann["keypoints"]) == 51 and len(ann["keypoint_scores"]) == 17
    per_frame: dict[int, list[int]] = {}
    for ann in doc["annotations"]:
        per_frame.setdefault(ann["image_id"], []).append(ann["track_id"])
    assert all(len(ids) == len(set(ids)) for ids in per_frame.values())  # an id once per frame
    with open(out / f"{name}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(doc["annotations"])
    by_key = {(a["image_id"], a["track_id"]): a for a in doc["annotations"]}
    for row in rows:
        ann = by_key[(int(row["frame"]), int(row["track_id"]))]
        assert float(row["nose_x"]) == ann["keypoints"][0] and float(row["right_ankle_score"]) == ann["keypoint_scores"][16]
        assert float(row["time_s"]) == doc["images"][ann["image_id"]]["timestamp"]
    return doc


def summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as f:
        return {Path(r["input"]).name: r for r in csv.DictReader(f)}


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
    assert "the sequence started at 320x240" in rows["resized_frames"]["reason"] and rows["resized_frames"]["frames"] == "2"
    for name, frames in (("good1", 6), ("good2", 6), ("corrupt_frames", 3), ("resized_frames", 2)):
        check_outputs(out, name, frames)
    cut = json.loads((out / "cut.json").read_text())
    assert cut["info"]["partial"] is True and 0 < cut["info"]["frames"] < 20
    assert not (out / "notes.json").exists() and not list(out.glob(".*"))
    errors = [line for line in result.stderr.splitlines() if line.startswith("posetrack:")]
    assert len(errors) == 6 and "Traceback" not in result.output  # one line per bad input


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


def test_ctrl_c_stops_cleanly_and_a_rerun_resumes(weights_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from posetrack_cli.pipeline import Pipeline

    for name in ("a", "b", "c"):
        write_video(tmp_path / f"{name}.mp4", walkers(seed=ord(name)))
    out = tmp_path / "out"
    real_run = Pipeline.run

    def interrupted_in_b(self, source, writer, **kwargs):  # noqa: ANN001, ANN202
        if source.path.name == "b.mp4":
            def stop(index: int, people: int) -> None:
                if index == 2:
                    raise KeyboardInterrupt
            kwargs["on_frame"] = stop
        return real_run(self, source, writer, **kwargs)

    monkeypatch.setattr(Pipeline, "run", interrupted_in_b)
    result = run(str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), str(tmp_path / "c.mp4"), "-o", str(out), *FAST)
    assert result.exit_code == 130 and "interrupted" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "a.json", "summary.csv"]  # nothing half-written
    assert summary(out)["b.mp4"]["status"] == "interrupted"
    monkeypatch.setattr(Pipeline, "run", real_run)
    resumed = run(str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"), str(tmp_path / "c.mp4"), "-o", str(out), *FAST)
    assert resumed.exit_code == 0
    assert [summary(out)[f"{n}.mp4"]["status"] for n in "abc"] == ["skipped", "ok", "ok"]


def test_boxes_from_a_file_and_local_pose_weights(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    frames = walkers()
    video = write_video(tmp_path / "clip.mp4", frames)
    boxes = [{"image_id": t, "category_id": 1, "bbox": [30.0 + 10 * t, 15.0, 60.0, 130.0], "score": 0.9} for t in range(6)]
    boxes.append({"image_id": 2, "category_id": 3, "bbox": [0, 0, 10, 10], "score": 0.99})  # a car: ignored
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    out = tmp_path / "out"
    result = run(str(video), "-o", str(out), "--detections", str(tmp_path / "boxes.json"),
                 "--pose-weights", str(checkpoints["pose"]), *FAST)
    assert result.exit_code == 0, result.output
    doc = check_outputs(out, "clip", 6)
    assert doc["info"]["models"]["detector"].startswith("file:")
    for t in range(6):  # each frame has the file's person box (flow boxes may add others)
        assert any(np.allclose(a["bbox"], boxes[t]["bbox"], atol=0.01) for a in doc["annotations"] if a["image_id"] == t)
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
