"""Ground truth and predictions read from their files: PoseTrack sequences into one representation,
and COCO keypoint files into what pycocotools takes.

PoseTrack files (one JSON per sequence; a folder holds many, matched by file name):

* PoseTrack 2017: ``{"annolist": [frame, ...]}``; a frame has ``annorect`` (people: head box
  ``x1, y1, x2, y2``, ``track_id``, ``annopoints[0].point`` with joint ``id`` 0-14, ``x``, ``y``
  and, for predictions, ``score``) and may have ``ignore_regions`` (polygons of ``point``).
* PoseTrack 2018: COCO-like ``images`` / ``annotations`` / ``categories``; an annotation has
  ``track_id``, ``bbox_head`` [x, y, w, h], ``keypoints`` [x, y, v] * K named by the category and,
  for predictions, ``scores`` [K]; an image may have ``ignore_regions_x`` / ``ignore_regions_y``.
* posetrack's own track JSON (``posetrack run``), which is PoseTrack-2018-like with
  ``keypoint_scores`` and no head boxes.

Frames are matched by their position in the file, as the PoseTrack tools do; a joint stored as
(0, 0) with v = 0 is absent, as in their 2018-to-2017 conversion. Values of the 2017 format may be
wrapped in one-element lists (``"x": [394]``) or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import read_json
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import _as_array

# Joint ids 0-14 of PoseTrack 2017. Id 12 is "neck" in poseval and "head_bottom" in the 2018
# files; the 2018 name is used so the two formats match by name.
POSETRACK17_JOINTS: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
    "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "head_bottom",
    "nose", "head_top",
)

# The 17 keypoints of PoseTrack 2018 files: COCO's order, with head_bottom and head_top where COCO has
# the eyes; the ears are named but never annotated.
POSETRACK18_KEYPOINTS: tuple[str, ...] = (
    "nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)


@dataclass(frozen=True, eq=False)
class PoseFrame:
    """The people of one frame, annotated or predicted.

    Attributes:
        keypoints: ``(N, K, 2)`` float64, x, y in frame pixels.
        labelled: ``(N, K)`` bool, whether the joint is annotated (ground truth) or predicted.
        scores: ``(N, K)`` float64, each predicted joint's confidence; NaN where the file has none.
        track_ids: ``(N,)`` int64, unique within the frame.
        head_boxes: ``(N, 4)`` float64 head boxes x1, y1, x2, y2; NaN where the file has none.
        ignore_regions: polygons ``(V, 2)`` whose inside is not evaluated (ground truth only).
        boxes: ``(N, 4)`` float64 person boxes x1, y1, x2, y2 (``bbox``); NaN where the file has none
            (None at construction means none at all).
    """

    keypoints: np.ndarray
    labelled: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray
    head_boxes: np.ndarray
    ignore_regions: tuple[np.ndarray, ...] = ()
    boxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        kps = _as_array("keypoints", self.keypoints, np.float64, ("N", "K", 2))
        n, k = kps.shape[:2]
        object.__setattr__(self, "keypoints", kps)
        object.__setattr__(self, "labelled", _as_array("labelled", self.labelled, bool, (n, k)))
        object.__setattr__(self, "scores", _as_array("scores", self.scores, np.float64, (n, k)))
        object.__setattr__(self, "track_ids", _as_array("track_ids", self.track_ids, np.int64, (n,)))
        object.__setattr__(self, "head_boxes", _as_array("head_boxes", self.head_boxes, np.float64, (n, 4)))
        regions = tuple(_as_array("ignore region", r, np.float64, ("V", 2)) for r in self.ignore_regions)
        object.__setattr__(self, "ignore_regions", regions)
        boxes = np.full((n, 4), np.nan) if self.boxes is None else self.boxes
        object.__setattr__(self, "boxes", _as_array("boxes", boxes, np.float64, (n, 4)))

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @classmethod
    def empty(cls, num_keypoints: int, ignore_regions: tuple[np.ndarray, ...] = ()) -> PoseFrame:
        k = num_keypoints
        return cls(np.zeros((0, k, 2)), np.zeros((0, k), bool), np.zeros((0, k)), np.zeros(0, np.int64),
                   np.zeros((0, 4)), ignore_regions)

    def select(self, people: np.ndarray | slice = slice(None), joints: np.ndarray | None = None) -> PoseFrame:
        """The people ``people`` (bool mask or indices), optionally only the joints ``joints`` (indices)."""
        j = slice(None) if joints is None else joints
        assert self.boxes is not None  # set in __post_init__
        return PoseFrame(self.keypoints[people][:, j], self.labelled[people][:, j], self.scores[people][:, j],
                         self.track_ids[people], self.head_boxes[people], self.ignore_regions, self.boxes[people])


@dataclass(frozen=True, eq=False)
class PoseSequence:
    """One video's frames in order, with the names of the K joints and where they came from.

    Attributes:
        name: the sequence name (the file name without ``.json``); GT and predictions pair by it.
        keypoint_names: the K joint names, in the order of the frames' joint axis.
        frames: every frame of the sequence, in order (frames without people included).
        source: the file it was read from, for messages.
        format: ``"PoseTrack17"``, ``"PoseTrack18"`` or ``"posetrack"``.
    """

    name: str
    keypoint_names: tuple[str, ...]
    frames: tuple[PoseFrame, ...]
    source: str = ""
    format: str = ""

    def __post_init__(self) -> None:
        for i, frame in enumerate(self.frames):
            if frame.keypoints.shape[1] != len(self.keypoint_names):
                raise ValueError(f"frame {i} has {frame.keypoints.shape[1]} joints, "
                                 f"but {len(self.keypoint_names)} keypoint names are given")


def _one(value: Any) -> Any:
    """A 2017-format value, unwrapped from its one-element list."""
    return value[0] if isinstance(value, list) else value


def _frame(people: list[tuple[Any, ...]], k: int, regions: tuple[np.ndarray, ...], where: str) -> PoseFrame:
    """A frame from per-person ``(keypoints (K,2), labelled (K,), scores (K,), track_id, head_box (4,)[, box (4,)])``.

    People without any labelled joint are left out: they can be neither matched nor missed.
    """
    people = [p for p in people if p[1].any()]
    if not people:
        return PoseFrame.empty(k, regions)
    ids = [p[3] for p in people]
    if len(set(ids)) != len(ids):
        dup = next(t for t in ids if ids.count(t) > 1)
        raise PosetrackError(f"{where}: track id {dup} is used by two people in the same frame")
    kps, labelled, scores, track_ids, heads = (np.stack([p[i] for p in people]) for i in range(5))
    boxes = np.stack([p[5] if len(p) > 5 else np.full(4, np.nan) for p in people])
    return PoseFrame(kps, labelled, scores, track_ids, heads, regions, boxes)


def _read_posetrack17(doc: dict[str, Any], name: str, where: str) -> PoseSequence:
    k = len(POSETRACK17_JOINTS)
    frames = []
    for f_idx, entry in enumerate(doc["annolist"]):
        at = f"{where}, frame {f_idx}"
        regions = tuple(
            np.array([[_one(p["x"]), _one(p["y"])] for p in region["point"]], np.float64).reshape(-1, 2)
            for region in entry.get("ignore_regions") or []
        )
        people = []
        for rect in entry.get("annorect") or []:
            annopoints = rect.get("annopoints") or []
            points = (annopoints[0].get("point") or []) if annopoints else []
            kps, labelled, scores = np.zeros((k, 2)), np.zeros(k, bool), np.full(k, np.nan)
            for point in points:
                j = _one(point["id"])
                if 0 <= j < k:
                    kps[j] = _one(point["x"]), _one(point["y"])
                    labelled[j] = True
                    if "score" in point:
                        scores[j] = _one(point["score"])
            if labelled.any() and "track_id" not in rect:
                raise PosetrackError(f"{at}: a person has no track_id; the PoseTrack evaluation needs one")
            head = [_one(rect[c]) if c in rect else np.nan for c in ("x1", "y1", "x2", "y2")]
            people.append((kps, labelled, scores, int(_one(rect.get("track_id", -1))), np.array(head, np.float64)))
        frames.append(_frame(people, k, regions, at))
    return PoseSequence(name, POSETRACK17_JOINTS, tuple(frames), where, "PoseTrack17")


def _read_posetrack18(doc: dict[str, Any], name: str, where: str) -> PoseSequence:
    """PoseTrack 2018 and posetrack's own JSON: the same COCO-like layout."""
    categories = doc["categories"]
    if len(categories) != 1:
        raise PosetrackError(f"{where}: expected one 'person' category, found {len(categories)}")
    names = tuple(categories[0]["keypoints"])
    k = len(names)
    images = doc["images"]
    position = {im["id"]: i for i, im in enumerate(images)}
    people: list[list[Any]] = [[] for _ in images]
    for ann in doc["annotations"]:
        if ann["image_id"] not in position:
            raise PosetrackError(f"{where}: annotation {ann.get('id', '?')} is for image_id {ann['image_id']}, "
                                 "which is not in 'images'")
        values = ann.get("keypoints") or []
        if not values:  # 2018 ground truth lists some people without keypoints
            continue
        if len(values) != 3 * k:
            raise PosetrackError(f"{where}: annotation {ann.get('id', '?')} has {len(values) // 3} keypoints, "
                                 f"the category names {k}")
        if "track_id" not in ann:
            raise PosetrackError(f"{where}: annotation {ann.get('id', '?')} has no track_id; the PoseTrack "
                                 "evaluation needs one (for COCO keypoint AP use --metric coco)")
        xyv = np.asarray(values, np.float64).reshape(k, 3)
        labelled = ~((xyv[:, 0] == 0) & (xyv[:, 1] == 0) & (xyv[:, 2] == 0))
        given = ann.get("keypoint_scores") or ann.get("scores") or []
        scores = np.asarray(given, np.float64) if len(given) == k else np.full(k, np.nan)
        x, y, w, h = ann.get("bbox_head") or [np.nan] * 4
        bx, by, bw, bh = ann.get("bbox") or [np.nan] * 4
        people[position[ann["image_id"]]].append(
            (xyv[:, :2], labelled, scores, int(ann["track_id"]), np.array([x, y, x + w, y + h], np.float64),
             np.array([bx, by, bx + bw, by + bh], np.float64)))
    frames = []
    for i, im in enumerate(images):
        xs, ys = im.get("ignore_regions_x") or [], im.get("ignore_regions_y") or []
        regions = tuple(np.stack([np.asarray(rx, np.float64), np.asarray(ry, np.float64)], 1) for rx, ry in zip(xs, ys))
        frames.append(_frame(people[i], k, regions, f"{where}, frame {i}"))
    info = doc.get("info") or {}
    fmt = "posetrack" if isinstance(info, dict) and "settings" in info and "version" in info else "PoseTrack18"
    return PoseSequence(name, names, tuple(frames), where, fmt)


def is_coco_like(doc: Any) -> bool:
    """Whether ``doc`` has COCO's ``images``, ``annotations`` and ``categories`` lists."""
    keys = ("images", "annotations", "categories")
    return isinstance(doc, dict) and all(isinstance(doc.get(key), list) for key in keys)


def read_sequence(path: str | Path) -> PoseSequence:
    """One sequence file in any accepted format, named by its file name without ``.json``.

    Raises:
        PosetrackError: the file is missing or not JSON, is none of the formats, or breaks one.
    """
    path = Path(path)
    doc = read_json(path)
    if isinstance(doc, dict) and "annolist" in doc:
        reader, label = _read_posetrack17, "PoseTrack 2017"
    elif is_coco_like(doc):
        reader, label = _read_posetrack18, "PoseTrack 2018"
    else:
        what = "COCO results (a list), which has no sequences; use --metric coco" if isinstance(doc, list) else \
            ("neither PoseTrack 2017 ('annolist') nor PoseTrack 2018 / posetrack JSON "
             "('images', 'annotations', 'categories')")
        raise PosetrackError(f"{path} is {what}")
    try:
        return reader(doc, path.stem, str(path))
    except PosetrackError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PosetrackError(f"{path} is not a valid {label} file ({type(exc).__name__}: {exc})") from None


def sequence_files(path: str | Path) -> list[Path]:
    """The JSON files a GT or PRED argument names: the file itself, or a folder's ``*.json`` sorted."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            raise PosetrackError(f"{path} holds no .json files")
        return files
    if not path.is_file():
        raise PosetrackError(f"file not found: {path}")
    return [path]


def read_sequences(path: str | Path) -> list[PoseSequence]:
    """Every sequence of a file or folder (see ``sequence_files``)."""
    return [read_sequence(p) for p in sequence_files(path)]


def _coco_names(doc: dict[str, Any], where: str) -> None:
    """Refuse a COCO-like document whose keypoints are named otherwise than COCO's 17."""
    categories = doc.get("categories") or [{}]
    names = tuple(categories[0].get("keypoints", COCO_KEYPOINTS))
    if names != COCO_KEYPOINTS:
        raise PosetrackError(f"{where} names its keypoints {', '.join(names)}; COCO keypoint AP needs the 17 COCO "
                             f"keypoints in COCO order ({', '.join(COCO_KEYPOINTS)})")


def _document_results(doc: dict[str, Any], gt: dict[str, Any], where: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """A COCO-like document's people as COCO results, and the ground-truth ids of its images, found by file name.

    This takes posetrack's output for a folder of images (a video's frames have no file names to
    match) and COCO keypoint documents, ground truth included: a person without ``score`` scores 1,
    and one without any labelled keypoint (v all 0) predicts nothing and is left out.
    """
    by_name = {Path(str(im.get("file_name", ""))).name: im["id"] for im in gt["images"]}
    image_ids = {}
    for im in doc["images"]:
        name = Path(str(im.get("file_name", ""))).name
        if not name:
            raise PosetrackError(f"{where}: frame {im.get('id')} has no file_name to find it among the COCO images "
                                 "(run posetrack on a folder of the images, not on a video)")
        if name not in by_name:
            raise PosetrackError(f"{where}: image {name} is not in the ground truth")
        image_ids[im["id"]] = by_name[name]
    results = [{"image_id": image_ids[a["image_id"]], "category_id": 1, "keypoints": a["keypoints"],
                "score": a.get("score", 1.0)}
               for a in doc["annotations"] if any(v > 0 for v in a["keypoints"][2::3])]
    return results, list(image_ids.values())


@dataclass(frozen=True)
class CocoInputs:
    """COCO keypoint ground truth and predictions, ready for ``coco_keypoint_ap``.

    Attributes:
        gt: the ground-truth document.
        results: the predictions as COCO results.
        images: the ground-truth image ids the predictions cover: those the results name, and for a
            document (posetrack's output) every image it lists, people or not.
    """

    gt: dict[str, Any]
    results: list[dict[str, Any]]
    images: frozenset[Any]

    @property
    def images_with_people(self) -> set[Any]:
        """Ground-truth images with at least one annotated person (the ones AP is computed on)."""
        return {a["image_id"] for a in self.gt["annotations"] if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd")}

    @property
    def uncovered(self) -> list[Any]:
        """Ground-truth images with annotated people that the predictions do not cover."""
        return sorted((i for i in self.images_with_people if i not in self.images), key=str)


def read_coco_predictions(gt_path: str | Path, pred_path: str | Path) -> CocoInputs:
    """COCO keypoint ground truth and predictions as COCO results, and the images they cover.

    Predictions are a COCO results file (a list), posetrack's output for a folder of the images, or
    a COCO keypoint document (see ``_document_results``).

    Raises:
        PosetrackError: a folder, a file of another kind, or keypoints other than COCO's 17.
    """
    gt_path, pred_path = Path(gt_path), Path(pred_path)
    for path in (gt_path, pred_path):
        if path.is_dir():
            raise PosetrackError(f"{path} is a folder; --metric coco compares one ground-truth file with one "
                                 "prediction file")
    gt = read_json(gt_path)
    if isinstance(gt, dict) and "annolist" in gt:
        raise PosetrackError(f"{gt_path} is PoseTrack 2017 ground truth; use --metric posetrack")
    if not (isinstance(gt, dict) and isinstance(gt.get("images"), list) and isinstance(gt.get("annotations"), list)):
        raise PosetrackError(f"{gt_path} is not COCO keypoint ground truth ('images', 'annotations', 'categories')")
    _coco_names(gt, str(gt_path))
    pred = read_json(pred_path)
    if isinstance(pred, list):
        if not all(isinstance(r, dict) for r in pred):
            raise PosetrackError(f"{pred_path} is a list but not of COCO results "
                                 "(objects with image_id, keypoints, score)")
        # `posetrack run --images` names an image it cannot number by its file name.
        by_name = {im.get("file_name"): im["id"] for im in gt["images"]}
        results = [{**r, "image_id": by_name[r["image_id"]]} if isinstance(r.get("image_id"), str)
                   and r["image_id"] in by_name else r for r in pred]
        return CocoInputs(gt, results, frozenset(r.get("image_id") for r in results))
    if is_coco_like(pred):
        _coco_names(pred, str(pred_path))
        try:
            results, images = _document_results(pred, gt, str(pred_path))
        except (KeyError, TypeError) as exc:
            raise PosetrackError(f"{pred_path} is not a valid COCO keypoint document "
                                 f"({type(exc).__name__}: {exc})") from None
        return CocoInputs(gt, results, frozenset(images))
    raise PosetrackError(f"{pred_path} is neither COCO results (a list) nor a COCO keypoint / posetrack JSON")
