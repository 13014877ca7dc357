"""Poses and boxes posetrack is given: per-frame poses (``posetrack track``) and person boxes (``--detections``).

Poses come in any file posetrack writes or its users have (:func:`load_poses`): COCO results,
COCO keypoint annotation files, PoseTrack 2018 files, posetrack's JSON and CSV and its exports;
boxes in COCO results or MOTChallenge files (:class:`FileDetections`), or for a folder of
independent images in COCO results by COCO image id (:class:`ImageBoxes`).

COCO results are lists of entries keyed by ``image_id``: the 0-based frame index, or, for a folder of
frames, the frame's file name. A pose entry has ``keypoints`` (COCO-17 ``[x, y, v] * 17``; ``v``
is read as the keypoint's score unless the entry has ``keypoint_scores``), ``score`` and an
optional ``bbox`` ``[x, y, w, h]`` (the box around the keypoints if absent); a box entry has
``bbox`` and ``score``, and entries whose ``category_id`` is not 1 (person) are ignored.

Numbers are checked where they enter, so nothing downstream meets a NaN, a number whose arithmetic
overflows, or a box of no size:

* every coordinate is a finite number within ±1,000,000 pixels (``io.formats.MAX_COORDINATE``,
  further than any frame reaches); a file's box has a positive width and height;
* scores (person and keypoint) are finite and in [0, 1];
* a posetrack track file is checked by ``io.formats.check_document`` (track ids are integers);
* every ``image_id`` names a frame the source can have (its index is below the container's frame
  count where the container records one; ``check_decoded`` checks again once the video is read);
* boxes are clipped to the frame; those with nothing left inside it are dropped, and the count is
  given in one warning line per file.

A bad entry is one PosetrackError line naming the file and the entry.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import read_json_lenient
from posetrack_cli.core.geometry import clip_boxes
from posetrack_cli.core.keypoints import COCO_KEYPOINTS, COCO_PERSON
from posetrack_cli.core.paper import DETECTION_THRESHOLD
from posetrack_cli.core.types import DEFAULT_IMAGE_FPS, Detections, Poses
from posetrack_cli.io.formats import as_numbers, is_number, out_of_range, shown, why_refused
from posetrack_cli.io.outputs import CSV_COLUMNS, document_to_frames
from posetrack_cli.io.video import FrameSource, ImageFolderSource, open_source

Warn = Callable[[str], None]
# One checked pose entry: (entry number, frame, keypoints (17, 2), keypoint scores (17,), box (4,) xyxy, score).
PoseRow = tuple[int, int, np.ndarray, np.ndarray, np.ndarray, float]


@dataclass(frozen=True)
class FrameSpace:
    """The frames a COCO-results file may refer to: what the reader checks and clips against.

    Attributes:
        source: the video or frame folder, named in messages.
        width, height: frame size in pixels; boxes are clipped to it.
        frame_count: frames the source has, or None where its container does not record it (the
            references are then checked once the video has been read: ``check_decoded``).
        file_names: a frame folder's file names in order (an ``image_id`` may name one), else None.
    """

    source: Path
    width: int
    height: int
    frame_count: int | None = None
    file_names: tuple[str, ...] | None = None

    @classmethod
    def of(cls, source: FrameSource) -> FrameSpace:
        """The frame space of an open source."""
        names = tuple(p.name for p in source.files) if isinstance(source, ImageFolderSource) else None
        return cls(source.path, source.width, source.height, source.frame_count, names)

    @classmethod
    def probe(cls, path: str | Path, *, image_fps: float = DEFAULT_IMAGE_FPS) -> FrameSpace:
        """Open ``path`` (reading its first frame only) for its frame space; one-line
        PosetrackError if it cannot be read. Cheap: meant for checks before any model loads."""
        source = open_source(path, image_fps=image_fps, warn=lambda _: None)
        try:
            return cls.of(source)
        finally:
            source.close()

    @cached_property
    def _names(self) -> dict[str, int]:
        lookup: dict[str, int] = {}
        for i, name in enumerate(self.file_names or ()):
            lookup.setdefault(Path(name).stem, i)
        lookup.update({name: i for i, name in enumerate(self.file_names or ())})  # a full name wins
        return lookup

    def frame_index(self, image_id: Any, where: str) -> int:
        """The 0-based frame an ``image_id`` (index or frame file name) refers to.

        Raises PosetrackError for ids that are neither, negative, unknown names, or indices at
        or beyond the known frame count.
        """
        if isinstance(image_id, bool):
            raise PosetrackError(f"{where}: image_id must be a frame index or a frame file name, got {image_id!r}")
        if isinstance(image_id, (int, np.integer)) or (isinstance(image_id, float) and image_id.is_integer()):
            index = int(image_id)
            if index < 0:
                raise PosetrackError(f"{where}: image_id {index} is negative; frame indices start at 0")
            if self.frame_count is not None and index >= self.frame_count:
                raise PosetrackError(f"{where}: image_id {index} refers to frame {index}, but {self.source} has "
                                     f"{self.frame_count} frames (0 to {self.frame_count - 1})")
            return index
        if isinstance(image_id, str):
            if self.file_names is None:
                raise PosetrackError(f"{where}: image_id {image_id!r} is a file name, but {self.source} "
                                     "is not a frame folder")
            for key in (image_id, Path(image_id).name):
                if key in self._names:
                    return self._names[key]
            raise PosetrackError(f"{where}: no frame named {image_id!r} in the frame folder {self.source}")
        raise PosetrackError(f"{where}: image_id must be a frame index or a frame file name, got {image_id!r}")


def _numbers(value: Any, where: str, what: str, count: int | None = None) -> np.ndarray:
    """A flat list of JSON numbers as float64, each finite and within ±``MAX_COORDINATE`` (strings,
    booleans, NaN, Inf and absurd magnitudes refused): ``io.formats.as_numbers``, named by ``where``."""
    try:
        return as_numbers(value, what, count)
    except PosetrackError as exc:
        raise PosetrackError(f"{where}: {exc}") from None


def _score(item: dict[str, Any], where: str) -> float:
    """The entry's ``score`` (1.0 if absent): a finite number in [0, 1]."""
    score = item.get("score", 1.0)
    if not is_number(score) or not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise PosetrackError(f"{where}: score {score!r} is not a number in [0, 1]")
    return float(score)


def _bbox(item: dict[str, Any], where: str) -> np.ndarray:
    """The entry's ``bbox`` [x, y, w, h] as ``(4,)`` xyxy, with a positive width and height."""
    x, y, w, h = _numbers(item["bbox"], where, "bbox [x, y, w, h]", 4)
    if w <= 0 or h <= 0:
        raise PosetrackError(f"{where}: bbox {item['bbox']} has no size (width and height must be > 0)")
    return np.array([x, y, x + w, y + h])


def _inside(boxes: np.ndarray, space: FrameSpace) -> tuple[np.ndarray, np.ndarray]:
    """``boxes`` ``(N, 4)`` xyxy clipped to the frame, and the ``(N,)`` mask of those with area left."""
    clipped = clip_boxes(boxes.astype(np.float32), space.width, space.height)
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped, keep


def _warn_dropped(warn: Warn | None, path: Path, what: str, dropped: list[int], space: FrameSpace) -> None:
    if warn is not None and dropped:
        warn(f"{path.name}: dropped {len(dropped)} {what} lying wholly outside the {space.width}x{space.height} "
             f"frame (first: entry {dropped[0]})")


def _read(path: Path) -> tuple[Any, PosetrackError | None]:
    """The parsed file, and the strict parser's error if the file holds NaN or Infinity (which
    JSON does not allow but Python's parser reads): the entry checks then name the entry that
    holds one, and the caller raises the strict error if no check did."""
    return read_json_lenient(path)


def _list_of_entries(doc: Any, path: Path, what: str) -> list[Any]:
    if not isinstance(doc, list):
        raise PosetrackError(f"{path} is not a COCO-results list of {what}")
    return doc


def check_decoded(path: Path, last_frame: int, frames: int, space: FrameSpace) -> None:
    """Raise PosetrackError if a file's entries refer to a frame past the ``frames`` the source
    decoded: the check that follows reading, for containers that do not record a frame count
    (or record a wrong one)."""
    if last_frame >= frames:
        raise PosetrackError(f"{path.name} refers to frame {last_frame}, but {space.source} decoded only "
                             f"{frames} frames")


# ---------------------------------------------------------------------------------------------- poses


def _pose_entry(item: Any, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
    """``(keypoints (K, 2), keypoint scores (K,), box (4,) xyxy or None, score)`` of one entry."""
    k = len(COCO_KEYPOINTS)
    if not isinstance(item, dict) or "keypoints" not in item or "image_id" not in item:
        raise PosetrackError(f"{where} is not a pose (needs image_id and keypoints)")
    flat = item["keypoints"]
    if isinstance(flat, list) and len(flat) % 3 == 0 and len(flat) != 3 * k and all(is_number(v) for v in flat):
        raise PosetrackError(f"{where}: {len(flat) // 3} keypoints, expected {k} (COCO order)")
    kps = _numbers(flat, where, f"keypoints [x, y, v] * {k}", 3 * k).reshape(k, 3)
    if "keypoint_scores" in item:
        scores = _numbers(item["keypoint_scores"], where, "keypoint_scores", k)
        what = "keypoint_scores"
    else:
        scores = kps[:, 2]
        what = "keypoint score (the v of [x, y, v])"
    out = np.flatnonzero((scores < 0) | (scores > 1))
    if out.size:
        j = int(out[0])
        raise PosetrackError(f"{where}: {what} of {COCO_KEYPOINTS[j]} is {scores[j]:g}, not in [0, 1]"
                             + ("; give scores in keypoint_scores" if what != "keypoint_scores" else ""))
    box = _bbox(item, where) if "bbox" in item else None
    return kps[:, :2], scores, box, _score(item, where)


def _keypoint_box(keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The ``(4,)`` xyxy box around the scored keypoints (all of them if none is scored)."""
    seen = keypoints[scores > 0] if (scores > 0).any() else keypoints
    return np.concatenate([seen.min(0), seen.max(0)])


def pose_rows(entries: Iterable[Any], name: str, frame_index: Callable[[Any, str], int]) -> list[PoseRow]:
    """The checked poses of COCO-results entries, the one parser of files (``load_poses``) and of
    entries in memory (``io.interop``): ``(entry, frame, keypoints (17, 2), keypoint scores (17,),
    box (4,) xyxy, score)`` each, the box around the scored keypoints where an entry has none.

    ``frame_index(image_id, where)`` gives an entry's frame or raises PosetrackError; messages name
    ``"<name> entry <n>"``. Raises PosetrackError (one line) at the first bad entry.
    """
    rows = []
    for n, item in enumerate(entries):
        where = f"{name} entry {n}"
        kps, scores, box, score = _pose_entry(item, where)
        frame = frame_index(item["image_id"], where)
        rows.append((n, frame, kps, scores, _keypoint_box(kps, scores) if box is None else box, score))
    return rows


def _group_poses(entries: Iterable[PoseRow], path: Path, space: FrameSpace, warn: Warn | None) -> dict[int, Poses]:
    """Poses by frame from ``(entry, frame, keypoints, keypoint scores, box, score)``, boxes clipped
    to the frame and poses whose box lies wholly outside dropped."""
    rows = list(entries)
    if not rows:
        return {}
    boxes, keep = _inside(np.stack([r[4] for r in rows]), space)
    _warn_dropped(warn, path, "poses whose box is", [r[0] for r, k in zip(rows, keep) if not k], space)
    grouped: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        if keep[i]:
            grouped.setdefault(row[1], []).append(i)
    return {
        frame: Poses(np.stack([rows[i][2] for i in idx]), np.stack([rows[i][3] for i in idx]), boxes[idx],
                     np.array([rows[i][5] for i in idx]))
        for frame, idx in sorted(grouped.items())
    }


def load_poses(path: str | Path, space: FrameSpace, *, warn: Warn | None = None) -> dict[int, Poses]:
    """Poses by frame index from any poses file ``posetrack track`` takes, checked (see the module
    docstring) against ``space``:

    * a COCO-results list (``v`` read as the keypoint's score unless ``keypoint_scores`` is given),
      posetrack's ``coco`` export among them;
    * posetrack's track JSON (``run``'s ``<name>.json``, ``track``'s ``<name>.tracks.json``);
    * a COCO keypoint annotation file, or a PoseTrack 2018 file (posetrack's ``posetrack18``
      export among them): documents whose ``v`` flags say which joints are labelled (0: not
      labelled, a missing joint; 1 or 2: labelled, trusted, score 1, unless the file gives per-joint
      ``scores`` / ``keypoint_scores``); see :func:`_document_rows`;
    * posetrack's CSV (``<name>.csv``).

    A MOTChallenge file (boxes, no joints) is refused with the command that takes it.

    Args:
        path: the file.
        space: the frames the poses belong to (size, count, frame folder names).
        warn: receives the one warning line about poses dropped outside the frame; None: silent.

    Raises PosetrackError (one line, naming the entry) for anything that is not poses of COCO's
    17 keypoints with finite coordinates and scores in [0, 1] on frames the source has.
    """
    path = Path(path)
    kind = sniff(path)
    if kind == "mot":
        raise PosetrackError(f"{path} holds MOTChallenge boxes (frame,id,x,y,w,h,...) without joints; posetrack track "
                             f"needs poses: to estimate poses in these boxes, run `posetrack run VIDEO --detections "
                             f"{path}`")
    if kind == "csv":
        return _group_poses(_csv_rows(path, space), path, space, warn)
    doc, strict = _read(path)
    by_frame = _poses_of(doc, path, space, warn)
    if strict is not None:
        raise strict
    return by_frame


def sniff(path: Path) -> str:
    """What kind of text file ``path`` is by its first line: ``"json"``, ``"csv"`` (posetrack's
    CSV, whose header starts ``frame,time_s,track_id``) or ``"mot"`` (MOTChallenge lines of 9 or
    10 numbers); ``"json"`` for anything else, whose reader then says what is wrong."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline(4096).strip().lstrip("\ufeff")
    except OSError:
        return "json"  # the JSON reader names the problem
    if first.startswith(",".join(CSV_COLUMNS[:3])):
        return "csv"
    fields = first.split(",")
    if len(fields) in (9, 10):
        try:
            [float(v) for v in fields]
        except ValueError:
            return "json"
        return "mot"
    return "json"


def _poses_of(doc: Any, path: Path, space: FrameSpace, warn: Warn | None) -> dict[int, Poses]:
    k = len(COCO_KEYPOINTS)
    if isinstance(doc, list):
        if not doc:
            raise PosetrackError(f"{path} holds an empty list: no poses to track")
        first = doc[0]
        if isinstance(first, dict) and "bbox" in first and "keypoints" not in first:
            raise PosetrackError(f"{path} holds person boxes (COCO results without keypoints); posetrack track needs "
                                 f"poses: to estimate poses in these boxes, run `posetrack run VIDEO --detections "
                                 f"{path}`")
        return _group_poses(pose_rows(doc, path.name, space.frame_index), path, space, warn)
    if isinstance(doc, dict) and {"images", "annotations", "categories"} <= doc.keys():
        if not _is_posetrack_document(doc):
            return _group_poses(_document_rows(doc, path, space), path, space, warn)
        frames, _, names = document_to_frames(doc, path.name, unique_ids=False)  # ids are given afresh
        if tuple(names) != COCO_KEYPOINTS:
            raise PosetrackError(f"{path}: keypoints {len(names)} named {names[:2]}..., expected COCO's {k}")
        rows, n = [], 0
        for f in frames:
            where = f"{path.name} image_id {f.frame_index}"
            frame = space.frame_index(f.frame_index, where)
            p = f.poses
            for i in range(len(p)):
                _check_arrays(f"{path.name} annotation {n}", p.keypoints[i], p.keypoint_scores[i], p.boxes[i],
                              float(p.scores[i]))
                rows.append((n, frame, p.keypoints[i], p.keypoint_scores[i], p.boxes[i], float(p.scores[i])))
                n += 1
        return _group_poses(rows, path, space, warn)
    raise PosetrackError(f"{path} is neither a COCO-results list nor a COCO keypoint, PoseTrack 2018 or posetrack "
                         "track file")


def _is_posetrack_document(doc: dict[str, Any]) -> bool:
    """Whether a COCO-like document is posetrack's own track JSON (``run``'s or ``track``'s): its
    ``info`` records posetrack's settings and version, or (the info aside) every annotation has
    ``keypoint_scores`` and a ``track_id``, and its keypoints are named by the document."""
    info = doc.get("info")
    if isinstance(info, dict) and "settings" in info and "version" in info:
        return True
    annotations = doc.get("annotations")
    return isinstance(annotations, list) and bool(annotations) and all(
        isinstance(a, dict) and "keypoint_scores" in a and "track_id" in a for a in annotations)


# COCO annotation files flag each joint: 0 not labelled, 1 labelled but hidden, 2 labelled and visible.
_FLAGS = (0, 1, 2)


def _document_rows(doc: dict[str, Any], path: Path, space: FrameSpace) -> list[PoseRow]:
    """The poses of a COCO keypoint annotation file or a PoseTrack 2018 document, as rows.

    Joints are matched to COCO's 17 by name (a PoseTrack 2018 file names 15 of them: it has no eyes,
    and its ``head_bottom`` and ``head_top`` are no COCO keypoint; a COCO joint the file does not
    name is missing). A joint's score is its entry in the annotation's ``keypoint_scores`` or
    ``scores`` where the file gives them (predictions), else 1 for a labelled joint (``v`` 1 or 2:
    a joint someone marked is trusted); a joint with ``v`` 0 is missing (score 0) either way. People
    without a labelled joint (crowds, PoseTrack's people without keypoints) are left out. The box is
    ``bbox`` [x, y, w, h] where given, else the labelled joints' extent; the person score ``score``
    where given, else 1. Each image is a frame found by :func:`_image_frame` (a PoseTrack file's,
    whose images have ``vid_id`` or ``nframes``, by its place in the file, as PoseTrack's tools do).
    """
    where = path.name
    categories = doc["categories"]
    names = categories[0].get("keypoints") if categories and isinstance(categories[0], dict) else None
    if names is None:
        names = list(COCO_KEYPOINTS)
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise PosetrackError(f"{where}: categories must begin with the person category, whose 'keypoints' is the list "
                             "of keypoint names")
    source = np.array([names.index(n) if n in names else -1 for n in COCO_KEYPOINTS])  # (17,) file's joint, -1: none
    if (source >= 0).sum() < len(COCO_KEYPOINTS) // 2:
        raise PosetrackError(f"{where} names its keypoints {', '.join(names[:4])}, ...: too few of COCO's 17 "
                             f"({', '.join(COCO_KEYPOINTS[:3])}, ...) for posetrack's tracker, which compares COCO "
                             "keypoints")
    present = source >= 0
    k = len(names)
    if not isinstance(doc["images"], list) or not isinstance(doc["annotations"], list):
        raise PosetrackError(f"{where}: images and annotations must be lists")
    frames: dict[Any, int] = {}
    # PoseTrack's files (and posetrack's posetrack18 export) list every frame of the video in order;
    # its tools match frames by their position in the file (file names count from 0 or from 1).
    sequence = all(isinstance(im, dict) and ("vid_id" in im or "nframes" in im) for im in doc["images"])
    for i, image in enumerate(doc["images"]):
        at = f"{where} image {i}"
        if not isinstance(image, dict) or "id" not in image:
            raise PosetrackError(f"{at} must be an object with an id")
        key = image["id"]
        if not isinstance(key, (int, str)) or isinstance(key, bool) or key in frames:
            raise PosetrackError(f"{at}: id {shown(key)} is not an integer or string of its own")
        frames[key] = _image_frame(image, i if sequence else None, space, at)
    rows: list[PoseRow] = []
    for n, ann in enumerate(doc["annotations"]):
        at = f"{where} annotation {n}"
        if not isinstance(ann, dict):
            raise PosetrackError(f"{at} must be an object, got {shown(ann)}")
        if ann.get("iscrowd") or not ann.get("keypoints"):
            continue  # a crowd region, or a person without keypoints: nothing to track
        image_id = ann.get("image_id")
        if isinstance(image_id, (list, dict)) or image_id not in frames:
            raise PosetrackError(f"{at}: image_id {shown(image_id)} is not the id of any image in 'images'")
        xyv = _numbers(ann["keypoints"], at, f"keypoints [x, y, v] * {k}", 3 * k).reshape(k, 3)
        given = ann.get("keypoint_scores", ann.get("scores"))
        if given is not None and given != []:
            scores = _numbers(given, at, "keypoint_scores" if "keypoint_scores" in ann else "scores", k)
            wrong = np.flatnonzero((scores < 0) | (scores > 1))
            if wrong.size:
                raise PosetrackError(f"{at}: the score of {names[wrong[0]]} is {scores[wrong[0]]:g}, not in [0, 1]")
            scores = np.where(xyv[:, 2] > 0, scores, 0.0)
        else:
            flags = xyv[:, 2]
            wrong = np.flatnonzero(~np.isin(flags, _FLAGS))
            if wrong.size:
                raise PosetrackError(f"{at}: v of {names[wrong[0]]} is {flags[wrong[0]]:g}; a keypoint file's v is a "
                                     "flag, 0 (not labelled), 1 or 2 (labelled): give confidences in "
                                     "keypoint_scores")
            scores = (flags > 0).astype(np.float64)
        if not (scores > 0).any():
            continue
        kps = np.zeros((len(COCO_KEYPOINTS), 2))
        kscores = np.zeros(len(COCO_KEYPOINTS))
        kps[present] = xyv[source[present], :2]
        kscores[present] = scores[source[present]]
        if not (kscores > 0).any():
            continue  # labelled joints, none of them COCO's (a PoseTrack head_top alone)
        box = _bbox(ann, at) if ann.get("bbox") else _keypoint_box(kps, kscores)
        rows.append((n, frames[image_id], kps, kscores, box, _score(ann, at)))
    return rows


def _image_frame(image: dict[str, Any], position: int | None, space: FrameSpace, where: str) -> int:
    """The frame of a document's image: in a frame folder, the frame of its ``file_name`` (the
    folder part aside); else, in a PoseTrack sequence file, its ``position`` in the file (as
    PoseTrack's tools match frames); else the number its file name carries (``000042.jpg`` is frame
    42, frames counted from 0); else its ``frame_id``, else its ``id``, as a frame index."""
    file_name = image.get("file_name")
    name = Path(file_name).name if isinstance(file_name, str) and file_name else None
    if name is not None and space.file_names is not None:
        return space.frame_index(name, where)
    if position is not None:
        return space.frame_index(position, where)
    stem = Path(name).stem if name is not None else ""
    if stem.isascii() and stem.isdigit():
        return space.frame_index(int(stem), where)
    return space.frame_index(image.get("frame_id", image["id"]), where)


def _cell(line: list[str], i: int, header: list[str], where: str) -> float:
    """The number in column ``i`` of a CSV line."""
    try:
        return float(line[i])
    except ValueError:
        raise PosetrackError(f"{where}: {header[i]} is {line[i]!r}, not a number") from None


def _csv_rows(path: Path, space: FrameSpace) -> list[PoseRow]:
    """The poses of posetrack's CSV (``frame, time_s, track_id, x1, y1, x2, y2, score, ...`` then
    ``<name>_x, <name>_y, <name>_score`` for each keypoint): the frame is the ``frame`` column."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PosetrackError(f"cannot read {path}: {exc}") from None
    if not table:
        raise PosetrackError(f"{path} is empty: no poses to track")
    header = table[0]
    columns = {name: i for i, name in enumerate(header)}
    missing = [f"{n}_{c}" for n in COCO_KEYPOINTS for c in ("x", "y", "score") if f"{n}_{c}" not in columns]
    missing += [c for c in CSV_COLUMNS[:8] if c not in columns]
    if missing:
        raise PosetrackError(f"{path} is not posetrack's CSV of COCO's 17 keypoints: it has no column {missing[0]}")
    keypoint_columns = [columns[f"{n}_{c}"] for n in COCO_KEYPOINTS for c in ("x", "y", "score")]
    box_columns = [columns[c] for c in ("x1", "y1", "x2", "y2")]
    rows: list[PoseRow] = []
    for n, line in enumerate(table[1:]):
        at = f"{path.name} line {n + 2}"
        if not line:
            continue
        if len(line) != len(header):
            raise PosetrackError(f"{at} has {len(line)} fields; the header has {len(header)}")
        values = np.array([_cell(line, i, header, at) for i in keypoint_columns]).reshape(len(COCO_KEYPOINTS), 3)
        box = np.array([_cell(line, i, header, at) for i in box_columns])
        try:
            frame_number = int(line[columns["frame"]])
        except ValueError:
            raise PosetrackError(f"{at}: frame is {line[columns['frame']]!r}, not a frame index") from None
        frame = space.frame_index(frame_number, at)
        score = _cell(line, columns["score"], header, at)
        _check_arrays(at, values[:, :2], values[:, 2], box, score)
        rows.append((n, frame, values[:, :2], values[:, 2], box, score))
    return rows


def _check_arrays(where: str, keypoints: np.ndarray, keypoint_scores: np.ndarray, box: np.ndarray,
                  score: float) -> None:
    """The checks of a COCO-results entry, for one pose of a posetrack track file or of tracked
    frames: numbers by the one rule (``io.formats.out_of_range``), scores in [0, 1], a box with size."""
    for what, values in (("keypoints", keypoints), ("keypoint_scores", keypoint_scores), ("bbox", box)):
        bad = np.flatnonzero(out_of_range(np.asarray(values, np.float64).ravel()))
        if bad.size:
            value = float(np.asarray(values).ravel()[bad[0]])
            raise PosetrackError(f"{where}: {what} holds {value} at position {bad[0]}{why_refused(value)}")
    if not (0 <= keypoint_scores).all() or not (keypoint_scores <= 1).all() or not 0 <= score <= 1:
        raise PosetrackError(f"{where}: a score is not in [0, 1]")
    if not (box[2] > box[0] and box[3] > box[1]):
        raise PosetrackError(f"{where}: bbox has no size (width and height must be > 0)")


# ---------------------------------------------------------------------------------------------- boxes


def read_mot(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The boxes of a MOTChallenge file (``frame, id, x, y, w, h, conf, ...``, posetrack's ``mot``
    export among them) as COCO-results box entries, each with where it is (``<file> line <n>``):
    ``image_id`` the 0-based frame (MOTChallenge counts from 1), ``bbox`` in posetrack's 0-based
    pixels (MOTChallenge's ``x, y`` count from 1: motmetrics subtracts the 1 too), ``score`` the
    ``conf`` column. A ground-truth file's rows of another class than pedestrian (the 8th column, 1;
    -1 where unused) are not a person and keep another ``category_id``.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PosetrackError(f"cannot read {path}: {exc}") from None
    entries = []
    for n, line in enumerate(lines):
        where = f"{path.name} line {n + 1}"
        if not line.strip():
            continue
        fields = line.split(",")
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise PosetrackError(f"{where} is not a MOTChallenge line of numbers (frame,id,x,y,w,h,conf,...)") from None
        if len(values) < 7 or not float(values[0]).is_integer() or values[0] < 1:
            raise PosetrackError(f"{where} is not a MOTChallenge line (frame,id,x,y,w,h,conf,... with frames from 1)")
        frame, _, x, y, w, h, conf = values[:7]
        person = len(values) < 8 or values[7] in (-1, 1)
        entries.append((where, {"image_id": int(frame) - 1, "bbox": [x - 1, y - 1, w, h], "score": conf,
                                "category_id": COCO_PERSON if person else 0}))
    return entries


class FileDetections:
    """Person boxes from a COCO-results JSON or a MOTChallenge file (:func:`read_mot`), by frame,
    checked and clipped against a frame space.

    Entries with another ``category_id`` than 1 and boxes scoring below ``score_threshold`` are
    left out; boxes wholly outside the frame are dropped (one warning line with the count).

    Args:
        path: the JSON file.
        space: the frames the boxes belong to.
        score_threshold: boxes scoring below are dropped (paper: 0.5).
        warn: receives the one warning line about dropped boxes; None: silent.

    Attributes:
        last_frame: the highest frame any box of the file refers to (-1 for none).
        dropped: how many boxes lay wholly outside the frame.
    """

    name = "file"

    def __init__(self, path: str | Path, space: FrameSpace, score_threshold: float = DETECTION_THRESHOLD, *,
                 warn: Warn | None = None) -> None:
        self.path = Path(path)
        self.space = space
        strict: PosetrackError | None = None
        if sniff(self.path) == "mot":
            doc = read_mot(self.path)
        else:
            json_doc, strict = _read(self.path)
            doc = [(f"{self.path.name} entry {n}", item)
                   for n, item in enumerate(_list_of_entries(json_doc, self.path, "boxes"))]
        entries, frames, boxes, scores = [], [], [], []
        last = -1
        for n, (where, item) in enumerate(doc):
            if not isinstance(item, dict) or "bbox" not in item or "image_id" not in item:
                raise PosetrackError(f"{where} is not a box (needs image_id and bbox)")
            if item.get("category_id", COCO_PERSON) != COCO_PERSON:
                continue
            box, score = _bbox(item, where), _score(item, where)
            frame = space.frame_index(item["image_id"], where)
            last = max(last, frame)
            if score >= score_threshold:
                entries.append(n)
                frames.append(frame)
                boxes.append(box)
                scores.append(score)
        if strict is not None:
            raise strict
        self.last_frame = last
        grouped: dict[int, list[int]] = {}
        if boxes:
            clipped, keep = _inside(np.stack(boxes), space)
            dropped = [entries[i] for i in np.flatnonzero(~keep)]
            _warn_dropped(warn, self.path, "boxes", dropped, space)
            for i in np.flatnonzero(keep):
                grouped.setdefault(frames[i], []).append(int(i))
        else:
            clipped, dropped = np.zeros((0, 4), np.float32), []
        self.dropped = len(dropped)
        self._boxes = {f: Detections(clipped[idx], np.asarray(scores)[idx]) for f, idx in grouped.items()}

    def get(self, index: int) -> Detections:
        """The boxes of frame ``index`` (none if the file has none for it)."""
        return self._boxes.get(index, Detections.empty())

    def check_decoded(self, frames: int) -> None:
        """Raise PosetrackError if a box refers to a frame past the ``frames`` decoded."""
        check_decoded(self.path, self.last_frame, frames, self.space)


def coco_image_id(file_name: str) -> int | str:
    """The image id ``posetrack run --images`` gives an image, and by which a boxes file names it:
    the number of a COCO-style name (its digits: ``000000000785.jpg`` -> 785, the id COCO's own
    files give it), else the file name itself.

    Example:
        >>> coco_image_id("000000000785.jpg"), coco_image_id("street.png")
        (785, 'street.png')
    """
    stem = Path(file_name).stem
    return int(stem) if stem.isascii() and stem.isdigit() else file_name


def _count(n: int, one: str, many: str | None = None) -> str:
    """``1 box``, ``3 boxes``."""
    return f"{n} {one if n == 1 else many or one + 's'}"


class ImageBoxes:
    """Person boxes of a COCO-results JSON for a folder of independent images (``posetrack run
    --images DIR --detections boxes.json``: a person detector's results, as COCO's evaluation protocol
    hands them out, e.g. a detection file for val2017).

    An entry names its image by ``image_id``: COCO's number of the image (the digits of a COCO file
    name, ``000000000785.jpg`` is 785: :func:`coco_image_id`), or the image's file name (with or
    without its extension). Entries of another ``category_id`` than 1 and boxes scoring below
    ``score_threshold`` are left out, as in a video. Entries naming no image of the folder are not
    used: a detection file of a whole data set serves a folder holding part of it; an image without
    any box has nobody in the results. Both are counted in one warning line; a file none of whose
    entries names an image of the folder is refused (its ids are not this folder's). Boxes are
    clipped to their image when it is read.

    Args:
        path: the JSON file.
        folder: the images' folder, named in messages.
        file_names: the images' file names.
        score_threshold: boxes scoring below are left out (paper: 0.5; COCO's protocol takes them all: 0).
        warn: receives the one warning line; None: silent.

    Raises:
        PosetrackError: one line naming the entry, for an entry that is not a box (``image_id`` and
            ``bbox`` [x, y, w, h] of finite numbers with a positive size, ``score`` in [0, 1]), or a
            file that names none of the images.
    """

    def __init__(self, path: str | Path, folder: Path, file_names: Iterable[str],
                 score_threshold: float = DETECTION_THRESHOLD, *, warn: Warn | None = None) -> None:
        self.path = Path(path)
        names = list(file_names)
        lookup: dict[Any, str] = {}
        for name in names:  # a number, the full name and the name without its extension
            for key in (coco_image_id(name), Path(name).stem, name):
                lookup.setdefault(key, name)
        doc, strict = _read(self.path)
        doc = _list_of_entries(doc, self.path, "boxes")
        boxes: dict[str, list[np.ndarray]] = {}
        scores: dict[str, list[float]] = {}
        people = unknown = 0
        elsewhere: set[Any] = set()
        for n, item in enumerate(doc):
            where = f"{self.path.name} entry {n}"
            if not isinstance(item, dict) or "bbox" not in item or "image_id" not in item:
                raise PosetrackError(f"{where} is not a box (needs image_id and bbox)")
            if item.get("category_id", COCO_PERSON) != COCO_PERSON:
                continue
            box, score = _bbox(item, where), _score(item, where)
            image_id = item["image_id"]
            if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
                raise PosetrackError(f"{where}: image_id must be an image's number or file name, got {image_id!r}")
            people += 1
            image = lookup.get(image_id)
            if image is None:
                unknown += 1
                elsewhere.add(image_id)
                continue
            if score >= score_threshold:
                boxes.setdefault(image, []).append(box)
                scores.setdefault(image, []).append(score)
        if strict is not None:
            raise strict
        if people and unknown == people:
            raise PosetrackError(
                f"none of the {people} person boxes of {self.path.name} is of an image in {folder} (its image ids, "
                f"e.g. {sorted(elsewhere, key=str)[0]!r}, are neither the numbers of its COCO-style file names, as "
                f"{coco_image_id(names[0])!r} for {names[0]}, nor its file names)")
        self._boxes = {name: (np.stack(b), np.asarray(scores[name])) for name, b in boxes.items()}
        self.unused = unknown
        self.without_boxes = [name for name in names if name not in self._boxes]
        if warn is not None and (unknown or self.without_boxes):
            parts = []
            if unknown:
                parts.append(f"{_count(unknown, 'box', 'boxes')} for {_count(len(elsewhere), 'image')} not in "
                             f"{folder}: not used")
            if self.without_boxes:
                parts.append(f"{len(self.without_boxes)} of {_count(len(names), 'image')} without a box scoring "
                             f"{score_threshold:g} or more (first: {self.without_boxes[0]}): nobody in the results "
                             "for them")
            warn(f"{self.path.name}: " + "; ".join(parts))

    def get(self, file_name: str, width: int, height: int) -> Detections:
        """The boxes of image ``file_name`` of ``width`` x ``height`` pixels, clipped to it (those
        with nothing inside it left out); none if the file has none for it."""
        if file_name not in self._boxes:
            return Detections.empty()
        boxes, scores = self._boxes[file_name]
        clipped = clip_boxes(boxes.astype(np.float32), width, height)
        keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
        return Detections(clipped[keep], scores[keep])


def check_input(source: Path, *, poses: Path | None = None, detections: Path | None = None,
                image_fps: float = DEFAULT_IMAGE_FPS, score_threshold: float = DETECTION_THRESHOLD,
                warn: Warn | None = None) -> FrameSpace:
    """The checks of one input to run before any model loads: the source opens (its first frame
    decodes), and the poses or boxes file parses and refers only to frames the source can have.

    Returns the source's frame space. Raises PosetrackError (one line) at the first problem, for
    the caller to report against this input (the other inputs of a batch still run); ``warn``
    receives the dropped-box warning of the file.
    """
    space = FrameSpace.probe(source, image_fps=image_fps)
    if poses is not None:
        load_poses(poses, space, warn=warn)
    if detections is not None:
        FileDetections(detections, space, score_threshold, warn=warn)
    return space
