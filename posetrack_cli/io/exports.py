"""posetrack's JSON in the formats of the tools people use next.

``write_exports(document, out_dir, name, formats)`` writes one file per format into a folder of
that format's name, named by the sequence as the tools expect (poseval pairs a prediction file with
the ground truth of the same name, MOTChallenge toolkits read ``<sequence>.txt``):

* ``posetrack18/<name>.json`` (``posetrack18``): a PoseTrack 2018 sequence file, what the official
  evaluation (poseval) reads for predictions: ``images`` (``file_name``, ``id``, ``frame_id``,
  ``vid_id``, ``nframes``), ``annotations`` (``keypoints`` [x, y, v] * 17 in PoseTrack 2018's order,
  ``scores`` [17], ``track_id``, ``image_id``, ``bbox``, ``bbox_head`` where the joints give one,
  ``score``, ``id``) and the one ``person`` category with PoseTrack 2018's keypoint names.
  A joint the document does not have (a COCO model has no ``head_bottom``/``head_top``) is written
  ``0, 0, 0`` with score 0, which poseval reads as not predicted. For a sequence named like
  PoseTrack's (``000342_mpii_test``), image ids are PoseTrack's (``10003420000`` + frame) and
  ``file_name`` keeps the path from ``images/`` on, as poseval parses it.
* ``coco/<name>.json`` (``coco``): COCO keypoint results, a list of ``{"image_id", "category_id",
  "keypoints", "score", "bbox", "track_id"}``; ``image_id`` is posetrack's (the frame index) and
  ``keypoints`` are ``[x, y, score] * 17``, each keypoint's score where COCO's results have it
  (what ``posetrack track`` and ``poses_from_coco_results`` read back as the score).
* ``mot/<name>.txt`` (``mot``): MOTChallenge boxes, ``frame,id,x,y,w,h,conf,-1,-1,-1``, frames
  from 1, ids ``track_id + 1`` (MOTChallenge's start at 1), ``x, y`` the box's top left in
  MOTChallenge's 1-based pixels (posetrack's plus 1; motmetrics subtracts the 1 when reading),
  ``conf`` the person score.

Being in folders of their own, these never collide with ``run``'s ``<name>.json``, ``.csv``, ``.mp4``
or ``--images``' ``<name>.coco.json``, and a folder of exports is what the tools take whole. A file
already at a target path is replaced only when it is recognisably posetrack's export of that kind
(the PoseTrack file's ``info.generator``; for the COCO list, entries with exactly the fields above;
for MOT, only lines of ten numbers ending ``-1,-1,-1``); otherwise nothing is written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import read_json
from posetrack_cli.core.keypoints import COCO_KEYPOINTS, COCO_SKELETON
from posetrack_cli.io.derived import GENERATOR, check_replaceable, write_bytes
from posetrack_cli.io.formats import POSETRACK18_KEYPOINTS, check_document

FORMATS: tuple[str, ...] = ("posetrack18", "coco", "mot")
EXTENSIONS: dict[str, str] = {"posetrack18": ".json", "coco": ".json", "mot": ".txt"}
COCO_RESULT_FIELDS = frozenset({"image_id", "category_id", "keypoints", "score", "bbox", "track_id"})
# poseval's image id of a PoseTrack frame: source * 10^10 + sequence * 10^4 + frame (posetrack18_fname2id).
_POSETRACK_SOURCES = {"mpii": 1, "bonn": 2, "mpiinew": 3}
_POSETRACK_NAME = re.compile(r"^(\d+)_(mpiinew|mpii|bonn)(_|$)")


def export_paths(out_dir: Path, name: str, formats: Sequence[str]) -> dict[str, Path]:
    """The file each format is written to: ``out_dir/<format>/<name><extension>``."""
    return {fmt: out_dir / fmt / f"{name}{EXTENSIONS[fmt]}" for fmt in formats}


def _names(document: dict[str, Any]) -> list[str]:
    """The keypoint names of a document ``check_document`` has passed."""
    return list(document["categories"][0]["keypoints"])


def _frame_numbers(document: dict[str, Any]) -> dict[Any, int]:
    """Each image id's frame number in its video (0-based): ``frame_id``, the container's frame
    index, so frames a damaged video could not give keep their places in every export too."""
    return {im["id"]: int(im.get("frame_id", im["id"])) for im in document["images"]}


def _frame_prefix(document: dict[str, Any], name: str) -> str:
    """The folder part of PoseTrack ``file_name``s: from ``images/`` on when the source is a frame
    folder under one (PoseTrack's layout), else ``images/<name>``."""
    source = Path(str((document.get("info") or {}).get("source") or ""))
    parts = source.parts
    if "images" in parts and not source.suffix:  # a frame folder, not a video file
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("images"):])
    return f"images/{name}"


def posetrack18_document(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A PoseTrack 2018 sequence document of posetrack's JSON (see the module docstring)."""
    names = _names(document)
    index = [names.index(n) if n in names else None for n in POSETRACK18_KEYPOINTS]
    if all(i is None for i in index):
        raise PosetrackError(f"no keypoint of this file ({', '.join(names)}) is one of PoseTrack 2018's")
    match = _POSETRACK_NAME.match(name)
    prefix = _frame_prefix(document, name)
    images, image_ids = [], {}
    numbers = _frame_numbers(document)
    nframes = max(numbers.values(), default=-1) + 1  # the video's frames, those it could not give included
    for im in document["images"]:
        pos = numbers[im["id"]]
        file_name = Path(str(im["file_name"])).name if im.get("file_name") else f"{pos:06d}.jpg"
        stem = file_name.split(".")[0]
        frame = int(stem) if stem.isascii() and stem.isdigit() and len(stem) <= 12 else pos
        if match:
            image_id = _POSETRACK_SOURCES[match.group(2)] * 10_000_000_000 + int(match.group(1)) * 10_000 + frame
            vid_id = match.group(1)
        else:
            image_id, vid_id = int(im["id"]), name
        image_ids[im["id"]] = image_id
        images.append({"file_name": f"{prefix}/{file_name}", "id": image_id, "frame_id": image_id, "vid_id": vid_id,
                       "nframes": nframes,
                       **{key: im[key] for key in ("width", "height", "timestamp") if key in im}})
    source_joint = np.array([-1 if i is None else i for i in index])  # (17,) the document's joint, -1: none
    present = source_joint >= 0
    annotations: list[dict[str, Any]] = []
    for ann in document["annotations"]:
        kps = np.asarray(ann["keypoints"], np.float64).reshape(len(names), 3)
        scores = np.asarray(ann.get("keypoint_scores", kps[:, 2]), np.float64)
        xyv = np.zeros((len(index), 3))  # absent joints stay 0, 0, 0: not predicted
        xyv[present, :2] = kps[source_joint[present], :2].round(2)
        xyv[present, 2] = 1
        out_scores = np.zeros(len(index))
        out_scores[present] = scores[source_joint[present]].round(4)
        out_kps: list[Any] = xyv.ravel().tolist()
        out_kps[2::3] = [int(v) for v in out_kps[2::3]]  # visibility flags are integers, as PoseTrack's
        entry = {"id": len(annotations), "image_id": image_ids[ann["image_id"]], "category_id": 1,
                 "track_id": int(ann["track_id"]), "bbox": list(ann["bbox"]), "score": ann.get("score", 1.0),
                 "keypoints": out_kps, "scores": out_scores.tolist()}
        head = head_box(kps[:, :2], names)
        if head is not None:
            entry["bbox_head"] = head
        annotations.append(entry)
    category = {"supercategory": "person", "id": 1, "name": "person", "keypoints": list(POSETRACK18_KEYPOINTS),
                "skeleton": [[a + 1, b + 1] for a, b in COCO_SKELETON]}  # 1-based, as PoseTrack's files
    source = (document.get("info") or {}).get("source")
    return {"info": {"generator": GENERATOR, "source": source}, "images": images, "annotations": annotations,
            "categories": [category]}


def head_box(keypoints: np.ndarray, names: Sequence[str]) -> list[float] | None:
    """A head box ``[x, y, w, h]`` from ``head_top`` and ``head_bottom`` (``(K, 2)`` keypoints named by
    ``names``): the square centred between them whose side is their distance; None without both.

    PoseTrack's annotated head boxes span the head from its top to its bottom, so this is their
    size; a COCO model has neither joint, and no head box is made up for it.
    """
    if "head_top" not in names or "head_bottom" not in names:
        return None
    top, bottom = keypoints[names.index("head_top")], keypoints[names.index("head_bottom")]
    side = float(np.hypot(*(top - bottom)))
    if not side > 0:
        return None
    cx, cy = (top + bottom) / 2
    return [round(float(cx - side / 2), 2), round(float(cy - side / 2), 2), round(side, 2), round(side, 2)]


def coco_results(document: dict[str, Any]) -> list[dict[str, Any]]:
    """COCO keypoint results of posetrack's JSON: one entry per person per frame."""
    names = _names(document)
    if tuple(names) != COCO_KEYPOINTS:
        raise PosetrackError("COCO results need the 17 COCO keypoints in COCO order; this file's are "
                             + ", ".join(names))
    out = []
    for ann in document["annotations"]:
        keypoints = list(ann["keypoints"])
        if "keypoint_scores" in ann:  # COCO's results carry the keypoint's score where annotations have v
            keypoints[2::3] = list(ann["keypoint_scores"])
        out.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": keypoints,
                    "score": ann.get("score", 1.0), "bbox": list(ann["bbox"]), "track_id": int(ann["track_id"])})
    return out


def mot_text(document: dict[str, Any]) -> str:
    """MOTChallenge boxes of posetrack's JSON, one line per person per frame, by frame then id."""
    numbers = _frame_numbers(document)
    rows = sorted((numbers[ann["image_id"]] + 1, int(ann["track_id"]) + 1, ann["bbox"], ann.get("score", 1.0))
                  for ann in document["annotations"])
    return "".join(f"{frame},{tid},{x + 1:.2f},{y + 1:.2f},{w:.2f},{h:.2f},{score:.4f},-1,-1,-1\n"
                   for frame, tid, (x, y, w, h), score in rows)


def _json_is(path: Path, test: Callable[[Any], bool]) -> bool:
    try:
        return bool(test(read_json(path)))
    except (PosetrackError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return False


def _mot_is_ours(path: Path) -> bool:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    for line in lines:
        fields = line.split(",")
        if len(fields) != 10 or fields[7:] != ["-1", "-1", "-1"]:
            return False
        try:
            [float(v) for v in fields]
        except ValueError:
            return False
    return True


IS_OURS: dict[str, Callable[[Path], bool]] = {
    "posetrack18": lambda p: _json_is(p, lambda d: isinstance(d, dict) and isinstance(d.get("info"), dict)
                                      and str(d["info"].get("generator")).startswith("posetrack ")),
    "coco": lambda p: _json_is(p, lambda d: isinstance(d, list)
                               and all(isinstance(r, dict) and set(r) == COCO_RESULT_FIELDS for r in d)),
    "mot": _mot_is_ours,
}


def write_exports(document: dict[str, Any], out_dir: str | Path, name: str,
                  formats: Sequence[str] = FORMATS, *, where: str = "track document") -> list[Path]:
    """Write ``document`` (posetrack's JSON, parsed) in each of ``formats`` into ``out_dir``; the paths written.

    The document is checked first (``io.formats.check_document``: track ids are integers, numbers
    finite and of sizes a frame has, every field of its type), and every file is made in memory
    before any is written atomically, so a bad document or a file posetrack did not write at a
    target path stops the export before anything is written. ``where`` names the document in
    messages (its file).

    Raises:
        PosetrackError: an unknown format, a document that is not posetrack's JSON (one line naming
            ``where``, the annotation and the field), keypoints the format cannot take, or a target
            file that posetrack did not write.

    Example:
        One person (track 0) in two frames, in every format; the MOTChallenge file's frames and ids count from 1:

        >>> import tempfile
        >>> from pathlib import Path
        >>> from posetrack_cli import COCO_KEYPOINTS, write_exports
        >>> document = {
        ...     "info": {"source": "walk.mp4"},
        ...     "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS)}],
        ...     "images": [{"id": t, "frame_id": t, "timestamp": t / 30, "width": 64, "height": 48} for t in range(2)],
        ...     "annotations": [{"id": t, "image_id": t, "track_id": 0, "category_id": 1, "score": 0.9,
        ...                      "bbox": [10.0 + t, 4.0, 20.0, 40.0], "keypoints": [20.0 + t, 24.0, 2] * 17,
        ...                      "keypoint_scores": [0.9] * 17} for t in range(2)],
        ... }
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     written = write_exports(document, folder, "walk")
        ...     print([path.relative_to(folder).as_posix() for path in written])
        ...     print((Path(folder) / "mot" / "walk.txt").read_text(), end="")
        ['posetrack18/walk.json', 'coco/walk.json', 'mot/walk.txt']
        1,1,11.00,5.00,20.00,40.00,0.9000,-1,-1,-1
        2,1,12.00,5.00,20.00,40.00,0.9000,-1,-1,-1
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise PosetrackError(f"unknown export format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    check_document(document, where)
    try:
        contents = {}
        for fmt in dict.fromkeys(formats):
            if fmt == "posetrack18":
                text = json.dumps(posetrack18_document(document, name), separators=(",", ":"), allow_nan=False)
            elif fmt == "coco":
                text = json.dumps(coco_results(document), separators=(",", ":"), allow_nan=False)
            else:
                text = mot_text(document)
            contents[fmt] = text.encode()
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # what check_document let through: a bug
        raise PosetrackError(f"not a posetrack track file: {where} ({type(exc).__name__}: {exc})") from None
    paths = export_paths(out_dir, name, list(contents))
    for fmt, path in paths.items():
        check_replaceable([path], IS_OURS[fmt])
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    return [write_bytes(paths[fmt], data) for fmt, data in contents.items()]
