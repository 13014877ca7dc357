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

The checks every reader of pose files shares live here too, so that what one reader refuses all
refuse, in the same words: the rule for numbers (``out_of_range``: finite and within
±``MAX_COORDINATE`` pixels; ``io.coco_results`` and ``io.interop`` use it for what they take in),
track ids (``track_id``: a JSON integer from 0) and the shape of a track document
(``check_document``: the exports, the report, ``posetrack track`` and this evaluation read
posetrack's JSON through it).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Callable

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


# ------------------------------------------------------------------ the checks every reader shares

# The largest coordinate (in pixels, either sign) a pose, a box or a region may have. No frame
# comes near it (a JPEG is at most 65,535 pixels a side; videos stop at 16K), so a pose that far out
# lies wholly outside any frame, and every sum, product and square posetrack forms of numbers this
# size (box corners, areas, squared distances for OKS) stays finite even in float32 (3.4e38).
# A file's number past it is refused where it enters, naming the entry and the field.
MAX_COORDINATE = 1e6
_RANGE = f", beyond ±{MAX_COORDINATE:,.0f} (no frame is that large)"
# The largest track id: ids are held as int64 (PoseFrame, TrackedFrame).
_MAX_TRACK_ID = 2**63 - 1
# The most seconds a stage may have taken (info.stage_seconds): 30 years.
_MAX_SECONDS = 1e9


def is_number(value: Any) -> bool:
    """Whether ``value`` is a number as JSON has them (int or float; a bool is not one)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def shown(value: Any) -> str:
    """``value`` as a message shows it: a number or a short string as it is, a list or an object by its kind."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, np.integer)):
        digits = len(str(abs(int(value))))
        return str(value) if digits <= 20 else f"an integer of {digits} digits"
    if isinstance(value, (float, np.floating)):
        return str(float(value))
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


def out_of_range(values: np.ndarray) -> np.ndarray:
    """The mask of ``values`` that are not finite or lie beyond ±``MAX_COORDINATE``: the one rule for the
    numbers of poses, boxes and regions, wherever they enter (files, the evaluation, in-memory results)."""
    with np.errstate(invalid="ignore"):
        inside: np.ndarray = np.abs(values) <= MAX_COORDINATE  # NaN compares False: flagged too
    return ~inside


def why_refused(value: Any) -> str:
    """Why ``out_of_range`` flags ``value``, to follow it in a message: ``"; every number must be
    finite"`` or ``", beyond ±1,000,000 (no frame is that large)"``."""
    try:
        finite = bool(np.isfinite(value))
    except (OverflowError, TypeError):  # an integer past float's range
        finite = True
    return _RANGE if finite else "; every number must be finite"


def as_numbers(values: Any, what: str, count: int | None = None) -> np.ndarray:
    """A list of JSON numbers as float64, each finite and within ±``MAX_COORDINATE``.

    Raises PosetrackError reading ``<what> must be a list of numbers`` / ``... must have N numbers,
    got M`` / ``<what> holds <value> at position <i>`` and why (``why_refused``): the caller puts where it is first.
    """
    if not isinstance(values, list):
        raise PosetrackError(f"{what} must be a list of numbers, got {shown(values)}")
    if not set(map(type, values)) <= {int, float} and not all(is_number(v) for v in values):
        wrong = next(i for i, v in enumerate(values) if not is_number(v))
        raise PosetrackError(f"{what} must be a list of numbers; position {wrong} is {shown(values[wrong])}")
    if count is not None and len(values) != count:
        raise PosetrackError(f"{what} must have {count} numbers, got {len(values)}")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except OverflowError:  # an integer past float's range
        arr = np.array([v if abs(v) <= MAX_COORDINATE else np.inf for v in values], np.float64)
    bad = np.flatnonzero(out_of_range(arr))
    if bad.size:
        i = int(bad[0])
        raise PosetrackError(f"{what} holds {shown(values[i])} at position {i}{why_refused(values[i])}")
    return arr


def _number(value: Any, what: str, low: float = -MAX_COORDINATE, high: float = MAX_COORDINATE) -> float:
    """One JSON number in ``[low, high]`` (finite), as a float."""
    if not is_number(value):
        raise PosetrackError(f"{what} must be a number, got {shown(value)}")
    if not low <= value <= high:  # NaN fails too
        rule = why_refused(value) if (low, high) == (-MAX_COORDINATE, MAX_COORDINATE) else \
            f"; it must be a number in [{low:g}, {high:g}]"
        raise PosetrackError(f"{what} is {shown(value)}{rule}")
    return float(value)


def track_id(value: Any, what: str = "track_id") -> int:
    """A track id: a JSON integer from 0 (not 1.5, not 1.0, not true: an id is never rounded into another).

    Raises PosetrackError reading ``<what> must be an integer from 0, got <value>``.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) \
            and 0 <= value <= _MAX_TRACK_ID:
        return int(value)
    raise PosetrackError(f"{what} must be an integer from 0, got {shown(value)}")


def _frame_number(value: Any, what: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and 0 <= value <= 2**62:
        return int(value)
    raise PosetrackError(f"{what} must be an integer from 0 (a frame index), got {shown(value)}")


def _field(at: str, check: Callable[..., Any], *args: Any) -> Any:
    """``check(*args)`` with its message put after ``at`` (``<file> annotation 3: ...``)."""
    try:
        return check(*args)
    except PosetrackError as exc:
        raise PosetrackError(f"{at}: {exc}") from None


def _check_info(info: dict[str, Any], where: str) -> None:
    """The fields of posetrack's ``info`` that its readers use (the report shows them)."""
    for key in ("source", "command", "version", "partial_reason"):
        if info.get(key) is not None and not isinstance(info[key], str):
            raise PosetrackError(f"{where}: info.{key} must be a string, got {shown(info[key])}")
    models = info.get("models")
    if models is not None and not (isinstance(models, dict) and all(isinstance(v, str) for v in models.values())):
        raise PosetrackError(f"{where}: info.models must be an object of model names, got {shown(models)}")
    settings = info.get("settings")
    if settings is not None:
        if not isinstance(settings, dict):
            raise PosetrackError(f"{where}: info.settings must be an object, got {shown(settings)}")
        for key in ("keypoint_threshold", "joint_threshold"):
            if key in settings:
                _field(where, _number, settings[key], f"info.settings.{key}", 0.0, 1.0)
    stages = info.get("stage_seconds")
    if stages is not None:
        if not isinstance(stages, dict):
            raise PosetrackError(f"{where}: info.stage_seconds must be an object, got {shown(stages)}")
        for key, value in stages.items():
            _field(where, _number, value, f"info.stage_seconds.{key}", 0.0, _MAX_SECONDS)


class _NumberLists:
    """The lists of numbers of one field of many annotations, checked a batch at a time (one type
    test and one array for thousands of lists: a long video's track file has millions of numbers),
    with the message ``as_numbers`` gives for the first bad one.

    ``names``: the fields are scores of these keypoints, in [0, 1]; ``box``: ``[x, y, w, h]`` with
    ``w, h >= 0``.
    """

    BATCH = 4096

    def __init__(self, at: Callable[[int], str], what: str, count: int, *, names: Any = None,
                 box: bool = False) -> None:
        self.at, self.what, self.count, self.names, self.box = at, what, count, names, box
        self.rows: list[Any] = []
        self.owners: list[int] = []

    def add(self, owner: int, values: Any) -> None:
        self.rows.append(values)
        self.owners.append(owner)
        if len(self.rows) >= self.BATCH:
            self.check()

    def check(self) -> None:
        rows, owners = self.rows, self.owners
        self.rows, self.owners = [], []
        arr = None
        if all(type(row) is list and len(row) == self.count for row in rows):
            flat = list(chain.from_iterable(rows))
            if set(map(type, flat)) <= {int, float}:
                try:
                    arr = np.asarray(flat, np.float64).reshape(len(rows), self.count)
                except OverflowError:  # an integer past float's range
                    arr = None
        if arr is None or out_of_range(arr).any():
            for owner, row in zip(owners, rows):  # the first bad one, named as as_numbers names it
                _field(self.at(owner), as_numbers, row, self.what, self.count)
            return
        if self.names is not None:
            bad = np.argwhere((arr < 0) | (arr > 1))
            if bad.size:
                r, j = (int(v) for v in bad[0])
                raise PosetrackError(f"{self.at(owners[r])}: {self.what} of {self.names[j]} is {arr[r, j]:g}; "
                                     "scores are in [0, 1]")
        if self.box:
            negative = np.flatnonzero((arr[:, 2] < 0) | (arr[:, 3] < 0))
            if negative.size:
                r = int(negative[0])
                raise PosetrackError(f"{self.at(owners[r])}: bbox [x, y, w, h] is {rows[r]}: its width and height "
                                     "cannot be negative")


def check_document(doc: Any, where: str = "track document", *, evaluation: bool = False,
                   unique_ids: bool = True) -> tuple[str, ...]:
    """Check the shape of a COCO-like track document and return its keypoint names: the one check
    of posetrack's track JSON shared by every reader (exports, report, ``posetrack track``, the
    evaluation), so that what one refuses, all refuse, in the same words.

    Checked: the document is an object whose ``info`` (if any) is an object and whose ``images``,
    ``annotations`` and ``categories`` are lists; the first category names its keypoints; each
    image is an object with a unique ``id``; each annotation is an object on one of those images,
    with a ``track_id`` that is an integer from 0 (never 1.5, 1.0 or true: ids are not rounded into
    one another), ``keypoints`` ``[x, y, v] * K`` and ``bbox`` ``[x, y, w, h]`` of numbers that are
    finite and within ±``MAX_COORDINATE``, scores of K numbers.

    Args:
        doc: the parsed document.
        where: what messages call it (its file).
        evaluation: PoseTrack 2018 ground truth or predictions, as the evaluation reads them: people
            without keypoints may be listed (and need no track id), ``bbox`` is optional, scores
            need not be in [0, 1], image ids may be strings, and a track id may repeat in a frame
            among people without keypoints (the reader refuses it among the others). Otherwise the
            document is posetrack's own: ``bbox`` (width and height >= 0) and ``track_id`` on every
            annotation, scores in [0, 1], image ids frame
            indices, and the ``info`` fields the report shows of their types.
        unique_ids: refuse a track id given to two people of one frame (posetrack's own documents;
            ``posetrack track``, which gives ids afresh, reads any).

    Raises:
        PosetrackError: one line naming ``where``, the image or annotation (by position) and the field.
    """
    if not isinstance(doc, dict):
        raise PosetrackError(f"not a posetrack track file: {where} holds {shown(doc)}, not an object with "
                             "'images', 'annotations' and 'categories'")
    missing = [key for key in ("images", "annotations", "categories") if key not in doc]
    if missing:
        raise PosetrackError(f"not a posetrack track file: {where} has no {' or '.join(repr(m) for m in missing)}")
    info = doc.get("info")
    if info is not None and not isinstance(info, dict):
        raise PosetrackError(f"{where}: info must be an object, got {shown(info)}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc[key], list):
            raise PosetrackError(f"{where}: {key} must be a list, got {shown(doc[key])}")
    categories = doc["categories"]
    category = categories[0] if categories else None
    names = category.get("keypoints") if isinstance(category, dict) else None
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise PosetrackError(f"{where}: categories must begin with the person category, whose 'keypoints' "
                             "is the list of keypoint names")
    k = len(names)
    if not evaluation and info is not None:
        _check_info(info, where)

    positions: dict[Any, int] = {}
    for i, image in enumerate(doc["images"]):
        at = f"{where} image {i}"
        if not isinstance(image, dict):
            raise PosetrackError(f"{at} must be an object, got {shown(image)}")
        if "id" not in image:
            raise PosetrackError(f"{at} has no id")
        key = image["id"]
        if evaluation and not (isinstance(key, (str, int)) and not isinstance(key, bool)):
            raise PosetrackError(f"{at}: id must be an integer or a string, got {shown(key)}")
        if not evaluation:
            _field(at, _frame_number, key, "id")
            if "frame_id" in image:
                _field(at, _frame_number, image["frame_id"], "frame_id")
        if key in positions:
            raise PosetrackError(f"{at}: id {shown(key)} is also the id of image {positions[key]}")
        positions[key] = i
        if image.get("file_name") is not None and not isinstance(image["file_name"], str):
            raise PosetrackError(f"{at}: file_name must be a string, got {shown(image['file_name'])}")
        for field in ("width", "height"):
            if image.get(field) is not None:
                _field(at, _number, image[field], field, 0.0, MAX_COORDINATE)
        if image.get("timestamp") is not None:
            value = image["timestamp"]
            if not is_number(value) or not np.isfinite(value):
                raise PosetrackError(f"{at}: timestamp must be a finite number, got {shown(value)}")

    def ann_at(i: int) -> str:
        return f"{where} annotation {i}"

    keypoints = _NumberLists(ann_at, "keypoints", 3 * k)
    scores = {field: _NumberLists(ann_at, field, k, names=None if evaluation else names)
              for field in ("keypoint_scores", "scores")}
    boxes = {field: _NumberLists(ann_at, f"{field} [x, y, w, h]", 4, box=not evaluation)
             for field in ("bbox", "bbox_head")}
    score_range = (-MAX_COORDINATE, MAX_COORDINATE) if evaluation else (0.0, 1.0)
    seen: dict[tuple[Any, int], int] = {}
    for i, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict):
            raise PosetrackError(f"{ann_at(i)} must be an object, got {shown(ann)}")
        if "image_id" not in ann:
            raise PosetrackError(f"{ann_at(i)} has no image_id")
        image_id = ann["image_id"]
        if isinstance(image_id, (list, dict)) or image_id not in positions:
            raise PosetrackError(f"{ann_at(i)}: image_id {shown(image_id)} is not the id of any image in 'images'")
        values = ann.get("keypoints")
        empty = evaluation and (values is None or values == [])  # 2018 ground truth lists people without keypoints
        if not empty:
            if not isinstance(values, list):
                raise PosetrackError(f"{ann_at(i)}: keypoints must be a list of {3 * k} numbers ([x, y, v] for each of "
                                     f"the {k} keypoints the category names), got {shown(values)}")
            if len(values) % 3:
                raise PosetrackError(f"{ann_at(i)}: keypoints has {len(values)} numbers, not [x, y, v] for each of the "
                                     f"{k} keypoints the category names")
            if len(values) != 3 * k:
                raise PosetrackError(f"{ann_at(i)} has {len(values) // 3} keypoints; the category names {k}")
            keypoints.add(i, values)
        if "track_id" in ann:
            tid = ann["track_id"]
            if type(tid) is not int or not 0 <= tid <= _MAX_TRACK_ID:
                tid = _field(ann_at(i), track_id, tid)
            if unique_ids and not evaluation:
                if (image_id, tid) in seen:
                    raise PosetrackError(f"{ann_at(i)}: track_id {tid} is also annotation {seen[image_id, tid]}'s "
                                         f"in the same image ({shown(image_id)}); a track id names one person in a "
                                         "frame")
                seen[image_id, tid] = i
        elif not empty:
            raise PosetrackError(f"{ann_at(i)} has no track_id" + ("; the PoseTrack evaluation needs one (for COCO "
                                                                "keypoint AP use --metric coco)" if evaluation else ""))
        for field, lists in scores.items():
            if field in ann:
                given = ann[field]
                if evaluation and (given is None or isinstance(given, list) and len(given) != k):
                    continue  # the evaluation ignores scores of another count, as it always has
                lists.add(i, given)
        if "score" in ann:
            score = ann["score"]
            if not (evaluation and score is None) and not (type(score) is float and 0.0 <= score <= 1.0):
                _field(ann_at(i), _number, score, "score", *score_range)
        for field, lists in boxes.items():
            box = ann.get(field)
            if evaluation and (box is None or box == []):
                continue
            if field == "bbox_head" and not evaluation:
                continue
            if field not in ann:  # posetrack's own documents always have one
                raise PosetrackError(f"{ann_at(i)} has no bbox")
            lists.add(i, box)
    for lists in (keypoints, *scores.values(), *boxes.values()):
        lists.check()
    return tuple(names)


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


def _value(value: Any, at: str, what: str) -> float:
    """A 2017-format number (unwrapped from its one-element list), finite and within ±``MAX_COORDINATE``."""
    return float(_field(at, _number, _one(value), what))


def _read_posetrack17(doc: dict[str, Any], name: str, where: str) -> PoseSequence:
    k = len(POSETRACK17_JOINTS)
    if not isinstance(doc["annolist"], list):
        raise PosetrackError(f"{where}: annolist must be a list of frames, got {shown(doc['annolist'])}")
    frames = []
    for f_idx, entry in enumerate(doc["annolist"]):
        at = f"{where}, frame {f_idx}"
        if not isinstance(entry, dict):
            raise PosetrackError(f"{at} must be an object, got {shown(entry)}")
        regions = tuple(
            np.array([[_value(p["x"], at, "ignore region x"), _value(p["y"], at, "ignore region y")]
                      for p in region["point"]], np.float64).reshape(-1, 2)
            for region in entry.get("ignore_regions") or []
        )
        if not isinstance(entry.get("annorect") or [], list):
            raise PosetrackError(f"{at}: annorect must be a list of people, got {shown(entry['annorect'])}")
        people = []
        for r_idx, rect in enumerate(entry.get("annorect") or []):
            person = f"{at}, person {r_idx}"
            if not isinstance(rect, dict):
                raise PosetrackError(f"{person} must be an object, got {shown(rect)}")
            annopoints = rect.get("annopoints") or []
            points = (annopoints[0].get("point") or []) if annopoints else []
            kps, labelled, scores = np.zeros((k, 2)), np.zeros(k, bool), np.full(k, np.nan)
            for point in points:
                j = _one(point["id"])
                if not isinstance(j, int) or isinstance(j, bool):
                    raise PosetrackError(f"{person}: a point's id must be a joint id 0-{k - 1}, got {shown(j)}")
                if 0 <= j < k:
                    kps[j] = _value(point["x"], person, "x"), _value(point["y"], person, "y")
                    labelled[j] = True
                    if "score" in point:
                        scores[j] = _value(point["score"], person, "score")
            if labelled.any() and "track_id" not in rect:
                raise PosetrackError(f"{at}: a person has no track_id; the PoseTrack evaluation needs one")
            head = [_value(rect[c], person, c) if c in rect else np.nan for c in ("x1", "y1", "x2", "y2")]
            tid = _field(person, track_id, _one(rect["track_id"])) if "track_id" in rect else -1
            people.append((kps, labelled, scores, tid, np.array(head, np.float64)))
        frames.append(_frame(people, k, regions, at))
    return PoseSequence(name, POSETRACK17_JOINTS, tuple(frames), where, "PoseTrack17")


def _read_posetrack18(doc: dict[str, Any], name: str, where: str) -> PoseSequence:
    """PoseTrack 2018 and posetrack's own JSON: the same COCO-like layout, checked by ``check_document``."""
    names = check_document(doc, where, evaluation=True)
    categories = doc["categories"]
    if len(categories) != 1:
        raise PosetrackError(f"{where}: expected one 'person' category, found {len(categories)}")
    k = len(names)
    images = doc["images"]
    position = {im["id"]: i for i, im in enumerate(images)}
    people: list[list[Any]] = [[] for _ in images]
    for ann in doc["annotations"]:
        values = ann.get("keypoints") or []
        if not values:  # 2018 ground truth lists some people without keypoints
            continue
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
        at = f"{where} image {i}"
        regions = tuple(np.stack([_field(at, as_numbers, rx, "ignore_regions_x"),
                                  _field(at, as_numbers, ry, "ignore_regions_y", len(rx) if isinstance(rx, list)
                                         else None)], 1)
                        for rx, ry in zip(xs, ys))
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
    table = {".txt": "MOTChallenge boxes (posetrack's mot export), which MOTChallenge's tools (TrackEval, "
                     "motmetrics) score", ".csv": "posetrack's CSV"}.get(path.suffix.lower())
    if table is not None and path.is_file():
        raise PosetrackError(f"{path} is not a JSON sequence file; if it is {table}, evaluate the posetrack JSON it "
                             "was written from (OUT/<name>.json)")
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
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
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


def _check_coco(entries: list[Any], where: str, what: str) -> None:
    """The fields COCO's evaluation reads of each of ``entries`` (images, annotations or results),
    of their types where present: ``id`` and ``image_id`` integers or strings, ``keypoints`` and
    ``bbox`` lists of numbers finite and within ±``MAX_COORDINATE``, ``score`` and ``area`` numbers.
    One line naming ``where``, the entry (by position) and the field, as ``check_document``'s."""
    for i, entry in enumerate(entries):
        at = f"{where} {what} {i}"
        if not isinstance(entry, dict):
            raise PosetrackError(f"{at} must be an object, got {shown(entry)}")
        for key in ("id", "image_id"):
            value = entry.get(key)
            if key in entry and not (isinstance(value, (int, str)) and not isinstance(value, bool)):
                raise PosetrackError(f"{at}: {key} must be an integer or a string, got {shown(value)}")
        for key in ("keypoints", "bbox"):
            if key in entry:
                _field(at, as_numbers, entry[key], key)
        if "score" in entry:
            _field(at, _number, entry["score"], "score")
        if "area" in entry:
            _field(at, _number, entry["area"], "area", 0.0, 4 * MAX_COORDINATE**2)
        for key in ("num_keypoints", "iscrowd", "category_id"):
            value = entry.get(key)
            if key in entry and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise PosetrackError(f"{at}: {key} must be an integer from 0, got {shown(value)}")


def _coco_names(doc: dict[str, Any], where: str) -> None:
    """Refuse a COCO-like document whose keypoints are named otherwise than COCO's 17."""
    categories = doc.get("categories") or [{}]
    if not isinstance(categories, list) or not isinstance(categories[0], dict) \
            or not isinstance(categories[0].get("keypoints", []), list) \
            or not all(isinstance(n, str) for n in categories[0].get("keypoints", [])):
        raise PosetrackError(f"{where}: categories must begin with the person category, whose 'keypoints' is the "
                             "list of keypoint names")
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
    _check_coco(gt["images"], str(gt_path), "image")
    _check_coco(gt["annotations"], str(gt_path), "annotation")
    pred = read_json(pred_path)
    if isinstance(pred, list):
        if not all(isinstance(r, dict) for r in pred):
            raise PosetrackError(f"{pred_path} is a list but not of COCO results "
                                 "(objects with image_id, keypoints, score)")
        _check_coco(pred, str(pred_path), "result")
        # `posetrack run --images` names an image it cannot number by its file name.
        by_name = {im.get("file_name"): im["id"] for im in gt["images"]}
        results = [{**r, "image_id": by_name[r["image_id"]]} if isinstance(r.get("image_id"), str)
                   and r["image_id"] in by_name else r for r in pred]
        return CocoInputs(gt, results, frozenset(r.get("image_id") for r in results))
    if is_coco_like(pred):
        _coco_names(pred, str(pred_path))
        _check_coco(pred["images"], str(pred_path), "image")
        _check_coco(pred["annotations"], str(pred_path), "annotation")
        try:
            results, images = _document_results(pred, gt, str(pred_path))
        except (KeyError, TypeError) as exc:
            raise PosetrackError(f"{pred_path} is not a valid COCO keypoint document "
                                 f"({type(exc).__name__}: {exc})") from None
        return CocoInputs(gt, results, frozenset(images))
    raise PosetrackError(f"{pred_path} is neither COCO results (a list) nor a COCO keypoint / posetrack JSON")
