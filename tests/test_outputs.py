"""Track files: JSON and CSV agree row for row, read back losslessly, and writes are atomic."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from posetrack_cli.errors import PosetrackError
from posetrack_cli.keypoints import COCO_KEYPOINTS
from posetrack_cli.outputs import FrameMeta, atomic_write, build_document, document_to_frames, read_json, write_csv, write_json
from posetrack_cli.types import Poses, TrackedFrame


def frames_fixture() -> tuple[list[TrackedFrame], list[FrameMeta]]:
    rng = np.random.default_rng(0)
    frames, metas = [], []
    for t in range(4):
        n = t % 3  # 0, 1, 2, 0 people
        xy = rng.uniform(0, 300, (n, 2))
        poses = Poses(rng.uniform(0, 400, (n, 17, 2)), rng.uniform(0, 1, (n, 17)),
                      np.concatenate([xy, xy + 50], 1), rng.uniform(0.5, 1, n))
        metas.append(FrameMeta(t, t / 25, 640, 360))
        if n:
            frames.append(TrackedFrame(t, t / 25, poses, np.arange(n)[::-1]))
    return frames, metas


def test_json_and_csv_round_trip(tmp_path: Path) -> None:
    frames, metas = frames_fixture()
    doc = build_document(frames, metas, COCO_KEYPOINTS, info={"source": "x.mp4"})
    write_json(tmp_path / "x.json", doc)
    write_csv(tmp_path / "x.csv", frames, COCO_KEYPOINTS)
    loaded = read_json(tmp_path / "x.json")
    assert len(loaded["images"]) == 4 and len(loaded["annotations"]) == 3
    assert all("track_id" in a for a in loaded["annotations"])
    back, back_metas, names = document_to_frames(loaded)
    assert names == list(COCO_KEYPOINTS) and back_metas == metas
    for a, b in zip(frames, back):
        assert a.frame_index == b.frame_index
        np.testing.assert_array_equal(a.track_ids, b.track_ids)
        np.testing.assert_allclose(a.poses.keypoints, b.poses.keypoints, atol=0.006)
        np.testing.assert_allclose(a.poses.boxes, b.poses.boxes, atol=0.02)
    with open(tmp_path / "x.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(loaded["annotations"])
    assert list(rows[0])[:8] == ["frame", "time_s", "track_id", "x1", "y1", "x2", "y2", "score"]
    assert list(rows[0])[8:11] == ["nose_x", "nose_y", "nose_score"] and len(rows[0]) == 8 + 3 * 17
    keyed = {(int(a["image_id"]), a["track_id"]): a for a in loaded["annotations"]}
    for row in rows:
        ann = keyed[(int(row["frame"]), int(row["track_id"]))]
        assert float(row["left_wrist_x"]) == ann["keypoints"][3 * 9]


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_not_a_track_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PosetrackError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
    with pytest.raises(PosetrackError, match="not a posetrack track file"):
        document_to_frames(json.loads('{"images": []}'))
