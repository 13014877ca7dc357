"""``posetrack run --images FOLDER``: every image on its own -- no flow, no tracking, any sizes.

For a set of unrelated images (the COCO workflow), steps 1 and 4 of Algorithm 1 run on each image
alone (detector boxes, top-down poses, the released code's scoring) and the poses are written as a
COCO-results list, ``OUT/<name>.coco.json``, which ``posetrack evaluate --metric coco`` takes as it
is. Each entry's ``image_id`` is the number of a COCO-style file name (``000000000785.jpg`` -> 785),
else the file name; ``file_name`` is kept in every entry.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import atomic_write, dump_json
from posetrack_cli.core.types import Poses
from posetrack_cli.io.video import list_images
from posetrack_cli.run.batch import InputItem, ItemResult
from posetrack_cli.run.pipeline import Pipeline


def image_id(file_name: str) -> int | str:
    """COCO's image id for a COCO-style name (its digits), else the file name itself."""
    stem = Path(file_name).stem
    return int(stem) if stem.isdigit() else file_name


def coco_results(poses: Poses, file_name: str) -> list[dict[str, Any]]:
    """COCO-results entries of one image's poses: ``keypoints`` ``[x, y, score] * K`` as COCO's
    own results carry scores in the third place, ``score`` the person score, ``bbox`` xywh."""
    entries = []
    for i in range(len(poses)):
        kps = np.concatenate([poses.keypoints[i], poses.keypoint_scores[i][:, None]], axis=1)
        x1, y1, x2, y2 = (float(v) for v in poses.boxes[i])
        entries.append({"image_id": image_id(file_name), "file_name": file_name, "category_id": 1,
                        "keypoints": [round(float(v), 3) for v in kps.ravel()],
                        "score": round(float(poses.scores[i]), 5),
                        "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]})
    return entries


def process_images(pipeline: Pipeline, item: InputItem, target: Path, *, progress: Any = None) -> ItemResult:
    """Poses of every image of ``item.path`` into ``target`` (``OUT/<name>.coco.json``).

    An image that cannot be read is skipped, counted in one warning line, and makes the row
    ``partial``; a folder without any readable image fails.
    """
    started = time.perf_counter()
    files = list_images(item.path) if item.path.is_dir() else []
    if not files:
        raise PosetrackError(f"{item.path}: no images for --images (a folder of .jpg, .png, ... files)")
    results: list[dict[str, Any]] = []
    unreadable: list[str] = []
    bar = progress(item.path.name, len(files)) if progress is not None else None
    try:
        for file in files:
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is None:
                unreadable.append(file.name)
            else:
                results += coco_results(pipeline.poses_in_image(image), file.name)
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    if len(unreadable) == len(files):
        raise PosetrackError(f"{item.path}: none of its {len(files)} images could be read")
    with atomic_write(target) as f:
        dump_json(results, f)
    reason = ""
    if unreadable:
        reason = f"{len(unreadable)} of {len(files)} images could not be read ({', '.join(unreadable[:3])}" + (
            ", ...)" if len(unreadable) > 3 else ")")
    seconds = time.perf_counter() - started
    read = len(files) - len(unreadable)
    return ItemResult(str(item.path), item.name, "partial" if unreadable else "ok", reason, read, seconds,
                      read / seconds if seconds > 0 else 0.0, 0)
