"""Track files: the shipped writers' JSON and CSV agree row for row, read back losslessly, are
strict JSON, and are written atomically under names of their own."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import OutputWriteError, atomic_write, read_json
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import Frame, Poses, TrackedFrame
from posetrack_cli.io.outputs import OutputSet, document_to_frames

from helpers import write_track_document


def frames_fixture() -> list[TrackedFrame]:
    rng = np.random.default_rng(0)
    frames = []
    for t in range(4):
        n = t % 3  # 0, 1, 2, 0 people
        if not n:
            continue
        xy = rng.uniform(0, 300, (n, 2))
        poses = Poses(rng.uniform(0, 400, (n, 17, 2)), rng.uniform(0, 1, (n, 17)),
                      np.concatenate([xy, xy + 50], 1), rng.uniform(0.5, 1, n))
        frames.append(TrackedFrame(t, t / 25, poses, np.arange(n)[::-1], sources=["detector", "flow"][:n],
                                   matches=["live", "new"][:n]))
    return frames


def test_json_and_csv_round_trip_through_the_shipped_writers(tmp_path: Path) -> None:
    frames = frames_fixture()
    loaded = write_track_document(tmp_path, "x", frames, [(640, 360, None)] * 4, COCO_KEYPOINTS, {"source": "x.mp4"})
    assert len(loaded["images"]) == 4 and len(loaded["annotations"]) == 3
    assert loaded["info"]["outputs"] == ["x.json", "x.csv"] and loaded["info"]["source"] == "x.mp4"
    assert [a["source"] for a in loaded["annotations"]] == ["detector", "detector", "flow"]
    assert [a["match"] for a in loaded["annotations"]] == ["live", "live", "new"]
    back, images, names = document_to_frames(loaded)
    assert names == list(COCO_KEYPOINTS) and [im["width"] for im in images] == [640] * 4
    for a, b in zip(frames, back, strict=True):
        assert a.frame_index == b.frame_index and b.timestamp == pytest.approx(a.timestamp)
        np.testing.assert_array_equal(a.track_ids, b.track_ids)
        np.testing.assert_allclose(a.poses.keypoints, b.poses.keypoints, atol=0.006)
        np.testing.assert_allclose(a.poses.boxes, b.poses.boxes, atol=0.02)
    with open(tmp_path / "x.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(loaded["annotations"])
    assert list(rows[0])[:10] == ["frame", "time_s", "track_id", "x1", "y1", "x2", "y2", "score", "source", "match"]
    assert list(rows[0])[10:13] == ["nose_x", "nose_y", "nose_score"] and len(rows[0]) == 10 + 3 * 17
    keyed = {(int(a["image_id"]), a["track_id"]): a for a in loaded["annotations"]}
    for row in rows:
        ann = keyed[(int(row["frame"]), int(row["track_id"]))]
        assert float(row["left_wrist_x"]) == ann["keypoints"][3 * 9] and row["source"] == ann["source"]


def test_v_flag_is_2_at_or_above_the_keypoint_threshold_and_1_below(tmp_path: Path) -> None:
    scores = np.full((1, 17), 0.9, np.float32)
    scores[0, 1], scores[0, 2], scores[0, 3] = 0.39, 0.4, 0.05
    frame = TrackedFrame(0, 0.0, Poses(np.ones((1, 17, 2)), scores, [[0, 0, 5, 5]], [0.8]), [0])
    doc = write_track_document(tmp_path, "v", [frame], [(64, 64, None)], COCO_KEYPOINTS)
    [ann] = doc["annotations"]
    assert ann["keypoints"][2::3] == [2, 1, 2, 1] + [2] * 13
    assert ann["num_keypoints"] == 15 and doc["info"]["settings"]["keypoint_threshold"] == 0.4


def test_a_value_that_is_not_finite_can_never_reach_a_json_file(tmp_path: Path) -> None:
    frame = TrackedFrame(0, 0.0, Poses(np.ones((1, 17, 2)), np.ones((1, 17)), [[0, 0, 5, 5]], [float("nan")]), [0])
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_track_document(tmp_path, "nan", [frame], [(64, 64, None)], COCO_KEYPOINTS)
    assert list(tmp_path.iterdir()) == []  # nothing half-written, no temporary file left


def test_strict_reader_refuses_nan(tmp_path: Path) -> None:
    (tmp_path / "n.json").write_text('{"score": NaN}')
    with pytest.raises(PosetrackError, match="not valid JSON"):
        read_json(tmp_path / "n.json")


def test_atomic_write_keeps_old_file_on_failure_and_follows_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "new.csv") as f:
            f.write("a,b\n")
    finally:
        os.umask(old)
    assert (tmp_path / "new.csv").stat().st_mode & 0o777 == 0o644


def test_a_write_error_names_the_file_and_the_cause(tmp_path: Path) -> None:
    import errno

    writers = OutputSet(tmp_path, "clip").open(COCO_KEYPOINTS)
    frame = Frame(0, 0.0, np.zeros((8, 8, 3), np.uint8))
    tracked = TrackedFrame(0, 0.0, Poses(np.ones((1, 17, 2)), np.ones((1, 17)), [[0, 0, 5, 5]], [0.9]), [0])

    class FullDisk:
        def write(self, text: str) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    writers._writers["csv"]._csv = csv.writer(FullDisk())
    with pytest.raises(OutputWriteError, match=r"cannot write .*clip\.csv: disk full") as caught:
        with writers:
            writers.add(frame, tracked)
    assert caught.value.disk_full and list(tmp_path.iterdir()) == []


def test_files_posetrack_did_not_write_are_foreign(tmp_path: Path) -> None:
    outputs = OutputSet(tmp_path, "clip", render=True)
    (tmp_path / "clip.csv").write_text("my own spreadsheet\n")
    assert outputs.foreign() == [tmp_path / "clip.csv"]
    write_track_document(tmp_path, "clip", [], [(8, 8, None)], COCO_KEYPOINTS)  # ours now, json + csv
    assert outputs.foreign() == []
    (tmp_path / "clip.mp4").write_bytes(b"a video of the user's")
    assert outputs.foreign() == [tmp_path / "clip.mp4"]  # our JSON does not list it


def test_not_a_track_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PosetrackError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
    with pytest.raises(PosetrackError, match="not a posetrack track file"):
        document_to_frames(json.loads('{"images": []}'))


def test_a_snapshot_puts_valid_files_of_the_frames_so_far_in_place(tmp_path: Path) -> None:
    frames = frames_fixture()
    writers = OutputSet(tmp_path, "live").open(COCO_KEYPOINTS)
    image = np.zeros((36, 64, 3), np.uint8)
    with writers:
        writers.add(Frame(0, 0.0, image), frames[0])
        writers.snapshot({"command": "run", "frames": 1, "partial": True, "partial_reason": "live, in progress"})
        doc = json.loads((tmp_path / "live.json").read_text())
        assert len(doc["images"]) == 1 and len(doc["annotations"]) == 1 and doc["info"]["partial"] is True
        assert len((tmp_path / "live.csv").read_text().splitlines()) == 2
        writers.add(Frame(1, 0.04, image), frames[1])
        writers.commit({"command": "run", "frames": 2, "partial": False})
    assert len(json.loads((tmp_path / "live.json").read_text())["annotations"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.csv", "live.json"]
