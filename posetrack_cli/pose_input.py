"""Per-frame poses from other estimators: COCO-results JSON or posetrack's own track file.

``image_id`` says which frame a pose belongs to: the 0-based frame index, or, for a folder of
frames, the frame's file name. Keypoints are COCO-17 ``[x, y, v] * 17``; ``v`` is read as the
keypoint's score unless the entry has ``keypoint_scores``. A missing ``bbox`` is taken as the box
around the keypoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from posetrack_cli.errors import PosetrackError
from posetrack_cli.keypoints import COCO_KEYPOINTS
from posetrack_cli.files import read_json
from posetrack_cli.outputs import document_to_frames
from posetrack_cli.types import Poses


def frame_index(image_id: Any, file_names: Sequence[str] | None, where: str) -> int:
    if isinstance(image_id, bool):
        raise PosetrackError(f"{where}: image_id must be a frame index or a frame file name, got {image_id!r}")
    if isinstance(image_id, (int, np.integer)) or (isinstance(image_id, float) and image_id.is_integer()):
        index = int(image_id)
        if index < 0:
            raise PosetrackError(f"{where}: image_id {index} is negative; frame indices start at 0")
        return index
    if isinstance(image_id, str):
        if file_names is None:
            raise PosetrackError(f"{where}: image_id {image_id!r} is a file name, but the video is not a frame folder")
        lookup = {name: i for i, name in enumerate(file_names)}
        lookup.update({Path(name).stem: i for i, name in enumerate(file_names)})
        if image_id not in lookup and Path(image_id).name not in lookup:
            raise PosetrackError(f"{where}: no frame named {image_id!r} in the frame folder")
        return lookup.get(image_id, lookup.get(Path(image_id).name, -1))
    raise PosetrackError(f"{where}: image_id must be a frame index or a frame file name, got {image_id!r}")


def _results_to_poses(items: list[Any], path: Path, file_names: Sequence[str] | None) -> dict[int, Poses]:
    k = len(COCO_KEYPOINTS)
    grouped: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]] = {}
    for n, item in enumerate(items):
        where = f"{path.name} entry {n}"
        if not isinstance(item, dict) or "keypoints" not in item or "image_id" not in item:
            raise PosetrackError(f"{where} is not a pose (needs image_id and keypoints)")
        try:
            flat = np.asarray(item["keypoints"], dtype=np.float32)
        except (TypeError, ValueError):
            raise PosetrackError(f"{where}: keypoints are not numbers") from None
        if flat.ndim != 1 or flat.size % 3:
            raise PosetrackError(f"{where}: keypoints must be a flat list [x, y, v] * {k}")
        if flat.size != 3 * k:
            raise PosetrackError(f"{where}: {flat.size // 3} keypoints, expected {k} (COCO order)")
        kps = flat.reshape(k, 3)
        scores = np.asarray(item.get("keypoint_scores", kps[:, 2]), dtype=np.float32)
        if scores.shape != (k,):
            raise PosetrackError(f"{where}: keypoint_scores must have {k} values")
        if "bbox" in item:
            x, y, w, h = (float(v) for v in item["bbox"])
            box = np.array([x, y, x + w, y + h], np.float32)
        else:
            seen = kps[scores > 0] if (scores > 0).any() else kps
            box = np.concatenate([seen[:, :2].min(0), seen[:, :2].max(0)]).astype(np.float32)
        index = frame_index(item["image_id"], file_names, where)
        grouped.setdefault(index, []).append((kps[:, :2], scores, box, float(item.get("score", 1.0))))
    return {
        index: Poses(np.stack([e[0] for e in entries]), np.stack([e[1] for e in entries]),
                     np.stack([e[2] for e in entries]), [e[3] for e in entries])
        for index, entries in grouped.items()
    }


def load_poses(path: str | Path, file_names: Sequence[str] | None = None) -> dict[int, Poses]:
    """Poses by frame index from a COCO-results list or a posetrack track file.

    Args:
        path: the JSON file.
        file_names: the frame folder's file names in order (to resolve string ``image_id``s), or
            None for a video.

    Raises PosetrackError (one line) for anything that is not poses of COCO's 17 keypoints.
    """
    path = Path(path)
    doc = read_json(path)
    if isinstance(doc, list):
        if not doc:
            raise PosetrackError(f"{path} holds an empty list: no poses to track")
        return _results_to_poses(doc, path, file_names)
    if isinstance(doc, dict) and {"images", "annotations", "categories"} <= doc.keys():
        frames, _, names = document_to_frames(doc)
        if tuple(names) != COCO_KEYPOINTS:
            raise PosetrackError(f"{path}: keypoints {len(names)} named {names[:2]}..., expected COCO's 17")
        return {f.frame_index: f.poses for f in frames if len(f.poses)}
    raise PosetrackError(f"{path} is neither a COCO-results list nor a posetrack track file")
