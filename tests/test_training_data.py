"""Reading COCO and PoseTrack 2018 keypoint files into training samples; bad input is one clear line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pytest

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_KEYPOINTS, flip_permutation
from posetrack_cli.training.data import load_keypoint_annotations

POSETRACK18_KEYPOINTS = ["nose", "head_bottom", "head_top", *COCO_KEYPOINTS[3:]]


def _kps(n_labelled: int, k: int = 17) -> list[float]:
    out = []
    for j in range(k):
        out += [10.0 + j, 20.0 + j, 2] if j < n_labelled else [0, 0, 0]
    return out


def _doc(annotations: list[dict], images: list[dict], names: Sequence[str] = COCO_KEYPOINTS) -> dict:
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "keypoints": list(names), "skeleton": []}]}


def _image(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), np.zeros((60, 80, 3), np.uint8))


def test_coco_sample_gives_one_sample_per_person_with_keypoints(shared_data: Path) -> None:
    samples, report = load_keypoint_annotations([shared_data / "coco_sample" / "test_coco.json"])
    assert len(samples) == 12 and len(samples.image_paths) == 4 and samples.keypoint_names == COCO_KEYPOINTS
    assert report.counts == {"no_keypoints": 2}
    gt = json.loads((shared_data / "coco_sample" / "test_coco.json").read_text())
    first = next(a for a in gt["annotations"] if a["num_keypoints"] > 0)
    kps = np.array(first["keypoints"], np.float32).reshape(17, 3)
    np.testing.assert_allclose(samples.keypoints[0][kps[:, 2] > 0], kps[kps[:, 2] > 0, :2])
    assert samples.labelled[0].sum() == first["num_keypoints"]
    x, y, w, h = first["bbox"]
    np.testing.assert_allclose(samples.boxes[0], [x, y, x + w, y + h], rtol=1e-5)


def test_unusable_annotations_are_counted_by_reason(tmp_path: Path) -> None:
    _image(tmp_path, "a.png")
    images = [{"id": 1, "file_name": "a.png", "width": 80, "height": 60},
              {"id": 2, "file_name": "gone.png", "width": 80, "height": 60}]
    good = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 40, 50], "keypoints": _kps(5)}
    doc = _doc([
        good,
        {**good, "id": 2, "iscrowd": 1},
        {**good, "id": 3, "keypoints": _kps(0)},
        {**good, "id": 4, "keypoints": [1, 2, 2]},
        {**good, "id": 5, "bbox": [5, 5, 0, 50]},
        {**good, "id": 6, "image_id": 99},
        {**good, "id": 7, "image_id": 2},
        {**good, "id": 8, "category_id": 3},  # not a person: ignored, not a skip
        {**good, "id": 9, "bbox": [60, 10, 500, 500]},  # runs off the image: clipped, kept
    ], images)
    (tmp_path / "train.json").write_text(json.dumps(doc))
    samples, report = load_keypoint_annotations([tmp_path / "train.json"])
    assert len(samples) == 2
    np.testing.assert_allclose(samples.boxes[1], [60, 10, 79, 59])
    assert report.counts == {"crowd": 1, "no_keypoints": 1, "bad_keypoints": 1, "bad_box": 1,
                             "no_image_entry": 1, "missing_image": 1}
    line = report.summary()
    assert line.startswith("skipped 6 annotations:") and "\n" not in line
    assert "gone.png" in line and "train.json annotation 3" in line


def test_posetrack18_folder_reads_every_video_with_its_own_keypoint_names(tmp_path: Path) -> None:
    root = tmp_path / "posetrack18"
    ann_dir = root / "annotations" / "train"
    ann_dir.mkdir(parents=True)
    for video in ("000001_bonn_train", "000002_bonn_train"):
        _image(root / "images" / "train" / video, "000000.jpg")
        images = [{"id": 10000010000, "file_name": f"images/train/{video}/000000.jpg", "frame_id": 10000010000,
                   "vid_id": video[:6], "is_labeled": True, "nframes": 1}]  # PoseTrack gives no width/height
        anns = [{"id": 1, "image_id": 10000010000, "category_id": 1, "track_id": 0, "bbox": [1, 1, 30, 40],
                 "bbox_head": [1, 1, 5, 5], "keypoints": _kps(13)}]
        (ann_dir / f"{video}.json").write_text(json.dumps(_doc(anns, images, POSETRACK18_KEYPOINTS)))
    samples, report = load_keypoint_annotations([ann_dir], images=root)
    assert len(samples) == 2 and report.total == 0
    assert samples.keypoint_names == tuple(POSETRACK18_KEYPOINTS)
    perm = flip_permutation(samples.keypoint_names)
    assert perm[1] == 1 and perm[2] == 2 and perm[5] == 6  # head points have no mirror partner
    with pytest.raises(PosetrackError, match="none of the 2 images .* pass --images"):
        load_keypoint_annotations([ann_dir])  # file names are relative to the dataset root, not the JSON's folder


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not valid JSON"),
        ("[]", "a COCO results file"),
        (json.dumps({"info": {}}), "no 'images' and 'annotations' lists"),
        (json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}),
         "no category lists 'keypoints'"),
    ],
)
def test_files_that_are_not_keypoint_annotations_are_refused_in_one_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(PosetrackError, match=message) as info:
        load_keypoint_annotations([path])
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_mixed_keypoint_sets_and_empty_files_are_refused(tmp_path: Path) -> None:
    _image(tmp_path, "a.png")
    images = [{"id": 1, "file_name": "a.png"}]
    ann = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 20, 20], "keypoints": _kps(3)}]
    (tmp_path / "coco.json").write_text(json.dumps(_doc(ann, images)))
    (tmp_path / "pt.json").write_text(json.dumps(_doc(ann, images, POSETRACK18_KEYPOINTS)))
    with pytest.raises(PosetrackError, match="one training run needs one keypoint set"):
        load_keypoint_annotations([tmp_path / "coco.json", tmp_path / "pt.json"])
    (tmp_path / "empty.json").write_text(json.dumps(_doc([{**ann[0], "keypoints": _kps(0)}], images)))
    with pytest.raises(PosetrackError, match=r"no trainable person annotations .* 1 without labelled keypoints"):
        load_keypoint_annotations([tmp_path / "empty.json"])
    with pytest.raises(PosetrackError, match="annotation file not found"):
        load_keypoint_annotations([tmp_path / "nope.json"])
