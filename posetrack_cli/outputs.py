"""Track files: posetrack's JSON and CSV, written atomically, and read back.

JSON (one file per video, COCO/PoseTrack18-like)::

    info:        source, models, settings, version, created, complete (False for a partial video)
    images:      id (= frame index), frame_id, file_name (frame folders only), timestamp, width, height
    annotations: id, image_id, track_id, category_id, bbox [x, y, w, h], area, score,
                 keypoints [x, y, v] * K, keypoint_scores [K], num_keypoints
    categories:  one "person" category with keypoint names and a 0-indexed skeleton

``v`` is 2 where the keypoint score reaches the keypoint threshold recorded in ``info.settings``
and 1 below it (located, not confidently seen), as COCO's visible / labelled-but-hidden flags.

CSV: one row per person per frame: ``frame, time_s, track_id, x1, y1, x2, y2, score`` then
``<name>_x, <name>_y, <name>_score`` for each keypoint.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from posetrack_cli import __version__
from posetrack_cli.errors import PosetrackError
from posetrack_cli.keypoints import COCO_SKELETON
from posetrack_cli.types import Poses, TrackedFrame

DEFAULT_KEYPOINT_THRESHOLD = 0.4  # paper: joints scoring below 0.4 are not trusted


@dataclass(frozen=True)
class FrameMeta:
    """What a track file records about a frame besides its poses.

    Attributes:
        index: 0-based frame index.
        timestamp: seconds from the start of the container.
        width, height: frame size in pixels.
        file_name: the image's file name for a frame folder, else None.
    """

    index: int
    timestamp: float
    width: int
    height: int
    file_name: str | None = None


def umask_mode(base: int = 0o666) -> int:
    """The mode a file created now gets: ``base`` less the process's umask (read from
    /proc/self/status where Linux provides it, so the umask is never changed, not even briefly)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return base & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return base & ~mask


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", newline: str | None = None) -> Iterator[Any]:
    """Write to a temporary file beside ``path`` and rename it into place only on success.

    An interrupted or failed write leaves any earlier file untouched and no partial file under
    the final name. The temporary name is unique to this process and call (pid and a random
    part), so two processes never share one; the file is created as ``open`` creates files
    (mode 0666 less the umask), unlike ``tempfile.mkstemp``'s 0600.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, mode, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _round(values: np.ndarray, digits: int = 2) -> list[float]:
    return [round(float(v), digits) for v in values]


def image_entry(meta: FrameMeta) -> dict[str, Any]:
    """The ``images`` entry of one frame."""
    image: dict[str, Any] = {"id": meta.index, "frame_id": meta.index}
    if meta.file_name is not None:  # frame folders; video frames are known by index
        image["file_name"] = meta.file_name
    return {**image, "timestamp": round(float(meta.timestamp), 6), "width": meta.width, "height": meta.height}


def annotation_entries(frame: TrackedFrame, first_id: int, keypoint_threshold: float) -> list[dict[str, Any]]:
    """The ``annotations`` entries of one frame's tracked poses, numbered from ``first_id``."""
    poses = frame.poses
    entries = []
    for i in range(len(poses)):
        x1, y1, x2, y2 = (float(v) for v in poses.boxes[i])
        kscores = poses.keypoint_scores[i]
        vis = np.where(kscores >= keypoint_threshold, 2, 1)
        flat: list[float] = []
        for (x, y), v in zip(poses.keypoints[i], vis):
            flat += [round(float(x), 2), round(float(y), 2), int(v)]
        entries.append({
            "id": first_id + i, "image_id": frame.frame_index, "track_id": int(frame.track_ids[i]),
            "category_id": 1, "bbox": _round(np.array([x1, y1, x2 - x1, y2 - y1])),
            "area": round((x2 - x1) * (y2 - y1), 2), "score": round(float(poses.scores[i]), 4),
            "keypoints": flat, "keypoint_scores": _round(kscores, 4), "num_keypoints": int((vis == 2).sum()),
        })
    return entries


def category_entry(keypoint_names: Sequence[str], skeleton: Sequence[tuple[int, int]] | None = None) -> dict[str, Any]:
    """The single ``person`` category with keypoint names and a 0-indexed skeleton."""
    if skeleton is None:
        skeleton = COCO_SKELETON if len(keypoint_names) == 17 else ()
    return {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(keypoint_names),
            "skeleton": [list(pair) for pair in skeleton]}


def info_entry(info: dict[str, Any], keypoint_threshold: float) -> dict[str, Any]:
    settings = {**info.get("settings", {}), "keypoint_threshold": keypoint_threshold}
    return {**info, "settings": settings, "version": __version__}


def build_document(
    frames: Sequence[TrackedFrame],
    metas: Sequence[FrameMeta],
    keypoint_names: Sequence[str],
    *,
    info: dict[str, Any],
    skeleton: Sequence[tuple[int, int]] | None = None,
    keypoint_threshold: float = DEFAULT_KEYPOINT_THRESHOLD,
) -> dict[str, Any]:
    """The JSON document for a video held in memory: every frame in ``metas``, poses from ``frames``.

    ``frames`` may omit frames without people; ``metas`` lists every frame that was read.
    """
    annotations: list[dict[str, Any]] = []
    for frame in frames:
        annotations += annotation_entries(frame, len(annotations), keypoint_threshold)
    return {
        "info": info_entry(info, keypoint_threshold),
        "images": [image_entry(m) for m in metas],
        "annotations": annotations,
        "categories": [category_entry(keypoint_names, skeleton)],
    }


def write_json(path: str | Path, document: dict[str, Any]) -> None:
    """Write a track document atomically."""
    with atomic_write(path) as f:
        json.dump(document, f, separators=(",", ":"))


def csv_header(keypoint_names: Sequence[str]) -> list[str]:
    cols = ["frame", "time_s", "track_id", "x1", "y1", "x2", "y2", "score"]
    for name in keypoint_names:
        cols += [f"{name}_x", f"{name}_y", f"{name}_score"]
    return cols


def csv_rows(frames: Iterable[TrackedFrame]) -> Iterator[list[Any]]:
    """One row per person per frame, in frame order then track id order."""
    for frame in frames:
        order = np.argsort(frame.track_ids, kind="stable")
        for i in order:
            p = frame.poses
            row: list[Any] = [frame.frame_index, round(frame.timestamp, 6), int(frame.track_ids[i])]
            row += _round(p.boxes[i]) + [round(float(p.scores[i]), 4)]
            for (x, y), s in zip(p.keypoints[i], p.keypoint_scores[i]):
                row += [round(float(x), 2), round(float(y), 2), round(float(s), 4)]
            yield row


def write_csv(path: str | Path, frames: Sequence[TrackedFrame], keypoint_names: Sequence[str]) -> None:
    """Write the CSV atomically."""
    with atomic_write(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(csv_header(keypoint_names))
        writer.writerows(csv_rows(frames))


def prepare_output_dir(out_dir: Path) -> None:
    """Create the output folder and check it can be written, with a one-line error if not."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out_dir, prefix=".posetrack-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise PosetrackError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None


class TrackWriter:
    """Streams one video's JSON, CSV and optional overlay video to temporary files and renames them
    into place on ``commit``, so memory does not grow with video length and nothing that looks
    finished exists before the video is done.

    The JSON is renamed last: its presence marks a completed video for resuming.

    Args:
        out_dir: output folder (must exist).
        name: base name of ``<name>.json``, ``<name>.csv`` and ``<name>.mp4``.
        keypoint_names: the K keypoint names.
        keypoint_threshold: score at which a keypoint is marked visible (v = 2).
        render: ``(fps, draw)`` to write ``<name>.mp4``, ``draw(image, frame)`` returning the overlay; or None.
    """

    def __init__(self, out_dir: Path, name: str, keypoint_names: Sequence[str], *,
                 keypoint_threshold: float = DEFAULT_KEYPOINT_THRESHOLD,
                 render: tuple[float, Callable[[np.ndarray, TrackedFrame | None], np.ndarray]] | None = None) -> None:
        self.paths = {"json": out_dir / f"{name}.json", "csv": out_dir / f"{name}.csv"}
        if render is not None:
            self.paths["mp4"] = out_dir / f"{name}.mp4"
        temps = self.temp_paths(out_dir, name)
        self._temps = {kind: temps[kind] for kind in self.paths}
        self._annotations_tmp = temps["annotations"]
        self.keypoint_names = list(keypoint_names)
        self.threshold = keypoint_threshold
        self._images: list[dict[str, Any]] = []
        self._count = 0
        self._render = render
        self._video: Any = None
        self._csv_file = open(self._temps["csv"], "w", newline="")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(csv_header(keypoint_names))
        self._ann_file = open(self._annotations_tmp, "w")

    @staticmethod
    def temp_paths(out_dir: Path, name: str) -> dict[str, Path]:
        """The temporary files a writer for ``name`` uses until it commits; a process killed
        mid-video leaves them behind, and whoever notices removes them."""
        return {"json": out_dir / f".{name}.json.partial", "csv": out_dir / f".{name}.csv.partial",
                "mp4": out_dir / f".{name}.partial.mp4",  # the container is chosen by extension
                "annotations": out_dir / f".{name}.annotations.partial"}

    def add(self, meta: FrameMeta, frame: TrackedFrame | None, image: np.ndarray | None = None) -> None:
        """Record one frame (``frame`` None or empty when it has no people)."""
        self._images.append(image_entry(meta))
        if frame is not None and len(frame):
            for entry in annotation_entries(frame, self._count, self.threshold):
                self._ann_file.write(("," if self._count else "") + json.dumps(entry, separators=(",", ":")))
                self._count += 1
            self._csv.writerows(csv_rows([frame]))
        if self._render is not None and image is not None:
            fps, draw = self._render
            if self._video is None:
                import cv2

                size = (image.shape[1], image.shape[0])
                self._video = cv2.VideoWriter(str(self._temps["mp4"]), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                if not self._video.isOpened():
                    raise PosetrackError(f"cannot write an overlay video into {self._temps['mp4'].parent}")
            self._video.write(draw(image, frame))

    @property
    def annotations(self) -> int:
        return self._count

    def commit(self, info: dict[str, Any]) -> dict[str, Path]:
        """Finish every file and move it into place; returns the final paths."""
        self._close_handles()
        with open(self._temps["json"], "w") as f:
            f.write('{"info":' + json.dumps(info_entry(info, self.threshold), separators=(",", ":")))
            f.write(',"images":' + json.dumps(self._images, separators=(",", ":")) + ',"annotations":[')
            with open(self._annotations_tmp) as fragments:
                shutil.copyfileobj(fragments, f)
            f.write('],"categories":' + json.dumps([category_entry(self.keypoint_names)], separators=(",", ":")) + "}")
            f.flush()
            os.fsync(f.fileno())
        self._annotations_tmp.unlink()
        for kind in [k for k in self.paths if k != "json"] + ["json"]:
            os.replace(self._temps[kind], self.paths[kind])
        return dict(self.paths)

    def abort(self) -> None:
        """Remove every temporary file; earlier finished outputs stay untouched."""
        self._close_handles()
        for path in [*self._temps.values(), self._annotations_tmp]:
            path.unlink(missing_ok=True)

    def _close_handles(self) -> None:
        for handle in (self._csv_file, self._ann_file):
            if not handle.closed:
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
        if self._video is not None:
            self._video.release()
            self._video = None

    def __enter__(self) -> "TrackWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abort()


def document_to_frames(document: dict[str, Any]) -> tuple[list[TrackedFrame], list[FrameMeta], list[str]]:
    """Frames with poses and ids, per-frame metadata and keypoint names from a track document.

    Raises PosetrackError if the document is not posetrack's JSON.
    """
    try:
        names = list(document["categories"][0]["keypoints"])
        metas = [
            FrameMeta(int(im["frame_id"]), float(im.get("timestamp", 0.0)), int(im.get("width", 0)),
                      int(im.get("height", 0)), im.get("file_name"))
            for im in document["images"]
        ]
        by_frame: dict[int, list[dict[str, Any]]] = {}
        for ann in document["annotations"]:
            by_frame.setdefault(int(ann["image_id"]), []).append(ann)
        k = len(names)
        frames = []
        times = {m.index: m.timestamp for m in metas}
        for index in sorted(by_frame):
            anns = by_frame[index]
            kps = np.array([a["keypoints"] for a in anns], dtype=np.float32).reshape(len(anns), k, 3)
            scores = np.array([a.get("keypoint_scores", kps[j, :, 2]) for j, a in enumerate(anns)], np.float32)
            boxes = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
            boxes[:, 2:] += boxes[:, :2]
            poses = Poses(kps[..., :2], scores, boxes, [a.get("score", 1.0) for a in anns])
            frames.append(TrackedFrame(index, times.get(index, 0.0), poses, [a["track_id"] for a in anns]))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PosetrackError(f"not a posetrack track file ({type(exc).__name__}: {exc})") from None
    return frames, metas, names


def read_json(path: str | Path) -> dict[str, Any]:
    """Load a JSON file with one-line errors for missing, unreadable or malformed files."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PosetrackError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PosetrackError(f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PosetrackError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None

