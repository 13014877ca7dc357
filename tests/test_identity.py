"""One person, one id: a duplicated pose takes no id, flow boxes do not breed ghosts, and ids
survive fast motion on frames where the flow sees nothing and people crossing the frame's edge."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli import FrameTracker, Poses, TrackerConfig
from posetrack_cli.cli import main
from posetrack_cli.core.keypoints import COCO_KEYPOINTS

from helpers import FAST, write_video

# A standing person's 17 joints in COCO's order, relative to the top of the head, for a 1-high body.
BODY = np.array([[0.00, 0.06], [0.02, 0.04], [-0.02, 0.04], [0.04, 0.05], [-0.04, 0.05], [0.10, 0.18],
                 [-0.10, 0.18], [0.14, 0.33], [-0.14, 0.33], [0.15, 0.47], [-0.15, 0.47], [0.07, 0.52],
                 [-0.07, 0.52], [0.08, 0.74], [-0.08, 0.74], [0.08, 0.97], [-0.08, 0.97]], np.float32)


def person(x: float, y: float, height: float = 200.0) -> np.ndarray:
    """``(17, 2)`` joints of a person whose head top is at ``(x, y)``."""
    return BODY * height + np.array([x, y], np.float32)


def frame_of(*people: np.ndarray, scores: list[float] | None = None) -> Poses:
    keypoints = np.stack(people) if people else np.zeros((0, 17, 2), np.float32)
    return Poses.from_keypoints(keypoints, np.full((len(people), 17), 0.9),
                                scores=scores if scores is not None else [0.9] * len(people))


def test_a_duplicated_pose_takes_no_id() -> None:
    """A second pose on one person (a second box, its joints 1.5 px off on a 200-px person, a
    lower score) is dropped before matching, every frame, and counted; two people side by side are
    both kept."""
    tracker = FrameTracker(flow=None)
    ids = []
    for t in range(12):
        a, b = person(200 + 5 * t, 100), person(320 + 5 * t, 100)
        duplicate = a + np.random.default_rng(t).normal(0, 1.5, a.shape).astype(np.float32)
        tracked = tracker.update(None, frame_of(a, duplicate, b, scores=[0.9, 0.7, 0.85]), timestamp=t / 25)
        ids.append(tracked.track_ids.tolist())
    assert ids == [[0, 1]] * 12 and tracker.suppressed == 12


def test_posetrack_track_suppresses_every_injected_duplicate(tmp_path: Path) -> None:
    """Poses from another estimator with duplicates: each is suppressed (info counts them all) and
    each person keeps one id in every frame."""
    frames = 20
    video = write_video(tmp_path / "walk.mp4", [np.full((360, 640, 3), 90, np.uint8)] * frames, fps=25)
    results, injected = [], 0
    for t in range(frames):
        for i, (x0, step) in enumerate(((100, 6), (420, -6))):
            kps = person(x0 + step * t, 60, 250)
            entry = {"image_id": t, "category_id": 1, "score": 0.9,
                     "keypoints": np.concatenate([kps, np.full((17, 1), 0.9)], 1).ravel().tolist()}
            results.append(entry)
            if (t + i) % 3 == 0:  # a second, weaker pose on the same person
                jitter = np.random.default_rng(100 * t + i).normal(0, 2, kps.shape)
                results.append({**entry, "score": 0.6, "keypoints": np.concatenate(
                    [kps + jitter, np.full((17, 1), 0.8)], 1).ravel().tolist()})
                injected += 1
    (tmp_path / "poses.json").write_text(json.dumps(results))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["track", str(tmp_path / "poses.json"), "--video", str(video), "-o", str(out),
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "walk.tracks.json").read_text())
    assert doc["info"]["duplicates_suppressed"] == injected == 13
    assert doc["info"]["poses_carried"] == 0  # given poses are the user's, never replaced by flow-carried ones
    per_frame: dict[int, list[int]] = {}
    for ann in doc["annotations"]:
        per_frame.setdefault(ann["image_id"], []).append(ann["track_id"])
    assert all(sorted(ids) == [0, 1] for ids in per_frame.values()) and len(per_frame) == frames


@pytest.mark.slow
def test_flow_boxes_breed_no_ghosts_on_real_footage(weights_folder: Path, shared_data: Path, tmp_path: Path) -> None:
    """The shared street clip (at half size) played forward and back to 205 frames, with boxes
    around its people given (each left out every 4th frame), and a pose network that confirms
    every crop (the tests' biased random weights): in every frame, the people written are at most
    its boxes plus the people a box had within the last ``--flow-life`` seconds and none has now.
    In the paper's setting (flow boxes for ever, start tracks, no duplicate check) they multiply."""
    import cv2

    from posetrack_cli.io.video import open_source

    source = open_source(shared_data / "video" / "street_5frames.mp4")
    clip = [cv2.resize(f.image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA) for f in source.frames()]
    source.close()
    frames = ((clip + clip[-2:0:-1]) * 26)[:205]  # forward and back: 8 frames a cycle
    people = [[380, 90, 452, 270], [292, 85, 332, 170], [248, 80, 280, 165], [226, 81, 250, 145],
              [435, 86, 458, 175]]
    boxes = [{"image_id": t, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": 0.95}
             for t in range(len(frames)) for i, (x1, y1, x2, y2) in enumerate(people) if (t + i) % 4]
    counts = {}
    paper = ["--flow-life", "3600", "--duplicate-oks", "1", "--no-staged"]
    for name, extra, length in (("default", [], len(frames)), ("paper", paper, 41)):
        video = write_video(tmp_path / f"{name}.mp4", frames[:length], fps=5)
        given_boxes = tmp_path / f"{name}-boxes.json"
        given_boxes.write_text(json.dumps([b for b in boxes if b["image_id"] < length]))
        result = CliRunner().invoke(main, ["run", str(video), "--detections", str(given_boxes), *FAST,
                                           "-o", str(tmp_path / name), *extra])
        assert result.exit_code == 0, result.output
        doc = json.loads((tmp_path / name / f"{name}.json").read_text())
        counts[name] = [0] * length
        detected_at: dict[int, float] = {}
        for im in doc["images"]:
            anns = [a for a in doc["annotations"] if a["image_id"] == im["id"]]
            counts[name][im["id"]] = len(anns)
            given = sum(1 for b in boxes if b["image_id"] == im["id"])
            detected = {a["track_id"] for a in anns if a["source"] == "detector"}
            detected_at.update((tid, im["timestamp"]) for tid in detected)
            lost = {tid for tid, t in detected_at.items() if im["timestamp"] - t <= 1.0} - detected
            if name == "default":
                assert all(a["track_id"] in lost for a in anns if a["source"] == "flow"), im["id"]
                assert len(anns) <= given + len(lost), im["id"]
    assert max(counts["paper"]) > 2 * max(counts["default"])  # the ghosts the limits keep away


@pytest.mark.parametrize("every", [1, 3])
def test_fast_walkers_crossing_on_a_flat_frame_keep_their_ids(every: int) -> None:
    """Two walkers crossing at 0.6 head sizes a frame (and every 3rd frame of them: 1.8), on grey
    frames where flow finds nothing: each keeps its id through the crossing."""
    tracker = FrameTracker(flow="dis-ultrafast")
    grey = np.full((540, 960, 3), 127, np.uint8)
    head = 0.12 * 200  # head size of a 200-pixel body, in pixels
    ids = []
    for t in range(0, 60, every):
        a = person(150 + 0.6 * head * t, 150)
        b = person(800 - 0.6 * head * t, 170)
        ids.append(tracker.update(grey, frame_of(a, b), timestamp=t / 25).track_ids.tolist())
    assert all(frame == [0, 1] for frame in ids), ids


def test_people_leaving_and_entering_at_the_edge() -> None:
    """One walks out through the right edge; another comes in through the left a moment later: the
    newcomer gets a new id, and the first, back through the edge they left by, their own."""
    tracker = FrameTracker(flow=None)
    width = 640
    grey = np.full((480, width, 3), 128, np.uint8)  # the frame tells the tracker where its edges are
    seen: list[dict[str, int]] = []
    for t in range(60):
        present: dict[str, np.ndarray] = {}
        x = 420 + 12 * t if t < 20 else 420 + 12 * (40 - t)  # out by frame 18, back from frame 22
        if -80 < x < width - 40:
            present["walker"] = person(x, 80)
        if t >= 21:
            present["newcomer"] = person(-40 + 10 * (t - 21), 90)
        if not present:
            tracker.update(grey, frame_of(), timestamp=t / 25)
            continue
        tracked = tracker.update(grey, frame_of(*present.values()), timestamp=t / 25)
        seen.append(dict(zip(present, tracked.track_ids.tolist())))
    walker = {frame["walker"] for frame in seen if "walker" in frame}
    newcomer = {frame["newcomer"] for frame in seen if "newcomer" in frame}
    assert walker == {0} and len(newcomer) == 1 and newcomer != walker, seen


# The paper's tracker on the command line, as docs/commands/track.md gives it.
PAPER_FLAGS = ["--duplicate-oks", "1", "--no-staged", "--flow-life", "3600", "--max-lost", "0", "--no-own-motion",
               "--no-appearance", "--joint-noise", "0", "--confirm-frames", "1"]


def test_the_paper_setting_stays_reachable(tmp_path: Path) -> None:
    """The documented flags give TrackerConfig.paper() (the JSON's settings say so), and that tracker
    does what the paper's does: a second pose on one person is a second person."""
    tracker = FrameTracker(TrackerConfig.paper(), flow=None)
    a = person(200, 100)
    tracked = tracker.update(None, frame_of(a, a + 1, scores=[0.9, 0.8]))
    assert tracked.track_ids.tolist() == [0, 1] and tracker.suppressed == 0

    video = write_video(tmp_path / "still.mp4", [np.full((360, 640, 3), 90, np.uint8)] * 3, fps=25)
    kps = np.concatenate([a, np.full((17, 1), 0.9)], 1).ravel().tolist()
    (tmp_path / "poses.json").write_text(json.dumps([{"image_id": t, "category_id": 1, "score": 0.9,
                                                      "keypoints": kps} for t in range(3)]))
    result = CliRunner().invoke(main, ["track", str(tmp_path / "poses.json"), "--video", str(video), "-o",
                                       str(tmp_path / "out"), "--no-progress", *PAPER_FLAGS])
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "out" / "still.tracks.json").read_text())["info"]["settings"]
    paper = dataclasses.asdict(TrackerConfig.paper())
    assert {k: settings[k] for k in paper} == paper
    assert len(COCO_KEYPOINTS) == BODY.shape[0]
