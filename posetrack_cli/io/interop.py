"""Converters between posetrack's core types and what other pose tools hand out and take in.

Poses from any estimator can be tracked by posetrack (``PoseTracker().update(poses)``), and its
tracked frames handed back in the other tool's terms:

* Ultralytics (YOLO-pose): ``poses_from_ultralytics(model(frame)[0])``.
* supervision: ``poses_from_supervision(key_points, detections)`` and ``to_supervision(tracked)``
  (the track ids in ``data["tracker_id"]``).
* COCO keypoint results in memory: ``poses_from_coco_results(entries)`` by frame, parsed and
  checked by the parser of COCO-results files (``io.coco_results.pose_rows``), and
  ``coco_results_from_tracked(frames)``.

Neither library is imported to read its objects (their attributes are read: torch tensors on any
device, or numpy arrays), so these work, and their examples run, without either installed; only
``to_supervision`` needs supervision, to build its object. Coordinates pass through unchanged, in
frame pixels.

posetrack's tracker compares poses by COCO's per-keypoint OKS sigmas, so poses come in with COCO's
17 keypoints in COCO's order, or not at all. Numbers are checked where they enter (a PosetrackError
line naming the person and the keypoint): coordinates and boxes finite and within ±1,000,000 pixels
(``io.formats.MAX_COORDINATE``, the rule of every reader), boxes ``x1 <= x2`` and ``y1 <= y2``,
scores finite and in [0, 1]. A point at exactly (0, 0) is how Ultralytics and
supervision mark a missing keypoint (Ultralytics' drawing skips it when there is no confidence,
and Ultralytics from late 2023 to 2025 moved every point under 0.5 confidence there), so it gets
score 0: the tracker leaves it out.
"""

from __future__ import annotations

import importlib
import inspect
import math
from typing import Any, Iterable

import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_KEYPOINTS, COCO_PERSON
from posetrack_cli.core.types import Poses, TrackedFrame
from posetrack_cli.io.coco_results import _check_arrays, _keypoint_box, pose_rows
from posetrack_cli.io.formats import out_of_range, why_refused

_K = len(COCO_KEYPOINTS)


def _array(value: Any, where: str, what: str) -> np.ndarray:
    """``value`` (a torch tensor on any device and in any precision, or anything numpy reads) as float32."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch: leave the graph and the GPU first
        value = value.detach().cpu()
        if hasattr(value, "float"):  # bfloat16 has no numpy type
            value = value.float()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    try:
        with np.errstate(over="ignore"):  # past float32's range is inf, refused below
            return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise PosetrackError(f"{where}: {what} is not an array of numbers (got {type(value).__name__})") from None


def _point(person: int, keypoint: int) -> str:
    return f"person {person}'s {COCO_KEYPOINTS[keypoint]}"


def _poses(where: str, xy: Any, keypoint_scores: Any, boxes: Any, scores: Any, *, names: tuple[str, str],
           hidden: Any = None) -> Poses:
    """Checked Poses from arrays: ``xy (N, K, 2)``, ``keypoint_scores (N, K)`` or None (1 for every
    point), ``boxes (N, 4)`` xyxy or None (the scored keypoints' extent), ``scores (N,)`` or None
    (1), ``hidden (N, K)`` bool or None (points to score 0). Points at (0, 0) score 0. ``names``:
    what the caller's library calls the keypoint scores and the person scores, for messages."""
    kps = _array(xy, where, "keypoints xy")
    if kps.ndim != 3 or kps.shape[2] != 2:
        raise PosetrackError(f"{where}: keypoints xy must have shape (N, K, 2), got {tuple(kps.shape)}")
    n, k = kps.shape[:2]
    if n == 0 and k in (0, _K):  # nobody in the frame (supervision's empty KeyPoints has K = 0)
        return Poses.empty(_K)
    if k != _K:
        raise PosetrackError(f"{where}: {k} keypoints per person, but posetrack tracks COCO's {_K} "
                             f"({', '.join(COCO_KEYPOINTS[:2])}, ..., {COCO_KEYPOINTS[-1]}) and compares "
                             "them with COCO's OKS sigmas: use a COCO-17 pose model")

    def check(name: str, value: Any, shape: tuple[int, ...], *, score: bool = False) -> np.ndarray:
        """``value`` as float32 of ``shape``, finite (and in [0, 1] for a score)."""
        arr = _array(value, where, name)
        if arr.shape != shape:
            raise PosetrackError(f"{where}: {name} must have shape {shape}, got {tuple(arr.shape)}")
        bad = ~((arr >= 0) & (arr <= 1)) if score else out_of_range(arr)  # NaN is outside [0, 1] too
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            label = _point(at[0], at[1]) if len(shape) > 1 and shape[1] == k else f"person {at[0]}"
            what = "; it must be a finite number in [0, 1]" if score else why_refused(arr[at])
            raise PosetrackError(f"{where}: {name} of {label} is {arr[at]:g}{what}")
        return arr

    kps = check("keypoints xy", kps, (n, k, 2))
    kscores = np.ones((n, k), np.float32) if keypoint_scores is None else \
        check(names[0], keypoint_scores, (n, k), score=True)
    kscores = np.where((kps == 0).all(-1), np.float32(0), kscores)  # (0, 0): missing
    if hidden is not None:
        mask = np.asarray(hidden)
        if mask.shape != (n, k):
            raise PosetrackError(f"{where}: visible must have shape {(n, k)}, got {tuple(mask.shape)}")
        kscores = np.where(mask.astype(bool), np.float32(0), kscores)
    if boxes is None:
        box = np.stack([_keypoint_box(kps[i], kscores[i]) for i in range(n)])
    else:
        box = check("boxes xyxy", boxes, (n, 4))
        wrong = np.flatnonzero((box[:, 2] < box[:, 0]) | (box[:, 3] < box[:, 1]))
        if wrong.size:
            raise PosetrackError(f"{where}: box of person {wrong[0]} is {box[wrong[0]].tolist()}, not x1, y1, x2, y2 "
                                 "with x1 <= x2 and y1 <= y2 (xyxy, not xywh)")
    person = np.ones(n, np.float32) if scores is None else check(names[1], scores, (n,), score=True)
    return Poses(kps, kscores, box, person)


def poses_from_ultralytics(result: Any) -> Poses:
    """Poses of one frame's Ultralytics pose result (YOLO-pose), to track with posetrack.

    ``result`` is one ``ultralytics.engine.results.Results`` (``model(frame)[0]``), or anything
    with its attributes: ``keypoints.xy`` ``(N, 17, 2)``, ``keypoints.conf`` ``(N, 17)`` or None
    (a model trained without visibility), ``boxes.xyxy`` ``(N, 4)`` and ``boxes.conf`` ``(N,)``
    (torch tensors on any device, or numpy arrays after ``result.numpy()``). Ultralytics is not
    imported.

    Returns ``Poses`` with keypoints ``(N, 17, 2)``, keypoint scores ``(N, 17)`` (the keypoint
    confidence; without one, 1 for every point), the boxes and the box confidences as person
    scores. A point at (0, 0), Ultralytics' mark of a missing keypoint, scores 0. Without boxes,
    a pose's box is the extent of its scored keypoints, and its score 1.

    Raises PosetrackError (one line) for a result without keypoints (a detection model), a list
    of results, keypoints other than COCO's 17, or numbers that are not finite or scores outside
    [0, 1].

    Example:
        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> xy = np.zeros((1, 17, 2)); xy[0, :, 0] = np.arange(17) + 10; xy[0, :, 1] = 40
        >>> xy[0, 3] = 0  # left_ear not found: Ultralytics puts it at (0, 0)
        >>> result = SimpleNamespace(
        ...     keypoints=SimpleNamespace(xy=xy, conf=None),
        ...     boxes=SimpleNamespace(xyxy=np.array([[5.0, 20.0, 30.0, 90.0]]), conf=np.array([0.9])))
        >>> poses = poses_from_ultralytics(result)
        >>> len(poses), poses.keypoints.shape, poses.keypoint_scores[0, :5].tolist()
        (1, (1, 17, 2), [1.0, 1.0, 1.0, 0.0, 1.0])
        >>> poses.boxes.tolist(), round(float(poses.scores[0]), 2)
        ([[5.0, 20.0, 30.0, 90.0]], 0.9)
    """
    where = "ultralytics result"
    if isinstance(result, (list, tuple)):
        raise PosetrackError(f"{where}: got a {type(result).__name__} of {len(result)} results; pass one "
                             "frame's result, e.g. model(frame)[0]")
    keypoints = getattr(result, "keypoints", None)
    if keypoints is None:
        raise PosetrackError(f"{where} has no keypoints: it is not a pose model's result (use a -pose model)")
    boxes = getattr(result, "boxes", None)
    return _poses(where, keypoints.xy, getattr(keypoints, "conf", None), None if boxes is None else boxes.xyxy,
                  None if boxes is None else boxes.conf, names=("keypoints conf", "boxes conf"))


def poses_from_supervision(keypoints: Any, detections: Any = None) -> Poses:
    """Poses of one frame's ``supervision.KeyPoints``, to track with posetrack.

    ``keypoints`` is an ``sv.KeyPoints`` (or anything with its attributes): ``xy`` ``(N, 17, 2)``,
    ``keypoint_confidence`` ``(N, 17)`` or None (``confidence`` before supervision 0.29), and where
    present ``visible`` ``(N, 17)`` bool or None and ``detection_confidence`` ``(N,)`` or None.
    ``detections``, an ``sv.Detections`` of the same ``N`` people in the same order, gives the
    boxes (``xyxy`` ``(N, 4)``) and person scores (``confidence`` ``(N,)``, if not None);
    without it a pose's box is the extent of its scored keypoints. supervision is not imported.

    Returns ``Poses`` with keypoints ``(N, 17, 2)``, keypoint scores ``(N, 17)`` (the keypoint
    confidence, 1 without one; 0 where ``visible`` is False or the point is at (0, 0), supervision's
    mark of a missing keypoint), boxes ``(N, 4)`` and person scores ``(N,)`` (the detections'
    confidence, else the keypoints' detection confidence, else 1).

    Raises PosetrackError (one line) for keypoints other than COCO's 17, detections of another
    count, or numbers that are not finite or scores outside [0, 1].

    Example:
        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> xy = np.zeros((1, 17, 2)); xy[0, :, 0] = np.arange(17) + 10; xy[0, :, 1] = np.arange(17) + 40
        >>> conf = np.full((1, 17), 0.8); conf[0, 16] = 0.0  # right_ankle unseen: left out of the box
        >>> key_points = SimpleNamespace(xy=xy, keypoint_confidence=conf, data={})
        >>> poses = poses_from_supervision(key_points)
        >>> poses.boxes.tolist(), poses.scores.tolist()
        ([[10.0, 40.0, 25.0, 55.0]], [1.0])
        >>> detections = SimpleNamespace(xyxy=np.array([[0.0, 30.0, 40.0, 70.0]]), confidence=np.array([0.5]))
        >>> poses_from_supervision(key_points, detections).boxes.tolist()
        [[0.0, 30.0, 40.0, 70.0]]
    """
    where = "supervision KeyPoints"
    if hasattr(keypoints, "keypoint_confidence"):
        confidence = keypoints.keypoint_confidence
    else:
        confidence = getattr(keypoints, "confidence", None)
    visible = getattr(keypoints, "visible", None)
    hidden = None if visible is None else ~np.asarray(visible).astype(bool)
    scores, score_name = getattr(keypoints, "detection_confidence", None), "detection_confidence"
    boxes = None
    if detections is not None:
        boxes = detections.xyxy
        n, m = len(_array(keypoints.xy, where, "keypoints xy")), len(_array(boxes, where, "detections xyxy"))
        if n != m:
            raise PosetrackError(f"{where}: {n} people but the detections have {m} boxes; pass the detections "
                                 "of the same people, in the same order")
        if getattr(detections, "confidence", None) is not None:
            scores, score_name = detections.confidence, "detections confidence"
    return _poses(where, keypoints.xy, confidence, boxes, scores, hidden=hidden,
                  names=("keypoint_confidence", score_name))


def to_supervision(tracked: TrackedFrame) -> Any:
    """One tracked frame as a ``supervision.KeyPoints``, for supervision's annotators and tools.

    Returns an ``sv.KeyPoints`` with ``xy`` ``(N, K, 2)`` float32, ``keypoint_confidence``
    ``(N, K)``, ``detection_confidence`` ``(N,)`` (the person scores), ``class_id`` ``(N,)`` all 0
    (person, in Ultralytics' and supervision's 0-based COCO classes), and in ``data``:
    ``"tracker_id"`` ``(N,)`` int64, the track ids, and ``"class_name"`` ``(N,)``, "person".
    The boxes are not kept (``sv.KeyPoints`` has none): ``tracked.poses.boxes`` has them.

    Raises PosetrackError (one line, saying ``pip install supervision``) without supervision.

    Example:
        >>> import numpy as np
        >>> from posetrack_cli.core.types import Poses, TrackedFrame
        >>> poses = Poses(np.full((1, 17, 2), 5.0), np.ones((1, 17)), [[0, 0, 10, 10]], [0.9])
        >>> tracked = TrackedFrame(frame_index=0, timestamp=0.0, poses=poses, track_ids=[7])
        >>> try:
        ...     key_points = to_supervision(tracked)
        ... except PosetrackError as exc:  # supervision is not installed; the message says how
        ...     assert "pip install supervision" in str(exc)
        ...     key_points = None
        >>> key_points is None or key_points.data["tracker_id"].tolist() == [7]
        True
    """
    try:  # imported by name: mypy then checks this module the same with and without supervision
        sv = importlib.import_module("supervision")
    except ImportError:
        raise PosetrackError("to_supervision needs supervision: pip install supervision") from None
    poses = tracked.poses
    n = len(poses)
    arrays: dict[str, Any] = {"xy": poses.keypoints.copy(), "class_id": np.zeros(n, dtype=int)}
    parameters = inspect.signature(sv.KeyPoints).parameters
    if "keypoint_confidence" in parameters:  # supervision >= 0.29
        arrays["keypoint_confidence"] = poses.keypoint_scores.copy()
    else:
        arrays["confidence"] = poses.keypoint_scores.copy()
    if "detection_confidence" in parameters:
        arrays["detection_confidence"] = poses.scores.copy()
    data = {"tracker_id": tracked.track_ids.copy(), "class_name": np.full(n, "person")}
    return sv.KeyPoints(**arrays, data=data)


def poses_from_coco_results(entries: Iterable[Any]) -> dict[int, Poses]:
    """Poses by frame index of COCO keypoint results held in memory (what a COCO evaluation or
    another estimator's results file holds, already parsed), to track with posetrack.

    Each entry is ``{"image_id": frame index, "keypoints": [x, y, v] * 17, "score": ..., "bbox":
    [x, y, w, h] (optional)}``; ``v`` is read as the keypoint's score unless the entry has
    ``keypoint_scores`` ``[17]``, a missing ``score`` is 1 and a missing ``bbox`` the extent of the
    scored keypoints. Entries are read and checked by the parser of COCO-results files
    (``io.coco_results.pose_rows``; ``load_poses`` reads files, against a video); ``image_id`` must
    be a frame index here (file names need the frame folder: ``load_poses``).

    Returns ``{frame: Poses}`` in frame order, keypoints ``(N, 17, 2)``, keypoint scores
    ``(N, 17)``, boxes ``(N, 4)`` xyxy, scores ``(N,)``, people in entry order; frames without an
    entry are absent (an empty list gives ``{}``).

    Raises PosetrackError (one line, naming the entry) for an entry that is not 17 COCO keypoints
    with finite numbers, scores in [0, 1] and a box of positive size, or an ``image_id`` that is
    not a frame index from 0.

    Example:
        >>> entries = [{"image_id": 1, "category_id": 1, "keypoints": [20.0, 30.0, 0.9] * 17, "score": 0.8,
        ...             "bbox": [10.0, 20.0, 30.0, 60.0]},
        ...            {"image_id": 0, "category_id": 1, "keypoints": [5.0, 6.0, 1.0] * 17}]
        >>> by_frame = poses_from_coco_results(entries)
        >>> sorted(by_frame), by_frame[1].boxes.tolist(), by_frame[0].scores.tolist()
        ([0, 1], [[10.0, 20.0, 40.0, 80.0]], [1.0])
    """
    entries = list(entries)
    rows = pose_rows(entries, "COCO results", _frame_index)
    grouped: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        grouped.setdefault(row[1], []).append(i)
    return {
        frame: Poses(np.stack([rows[i][2] for i in idx]), np.stack([rows[i][3] for i in idx]),
                     np.stack([rows[i][4] for i in idx]), np.array([rows[i][5] for i in idx]))
        for frame, idx in sorted(grouped.items())
    }


def _frame_index(image_id: Any, where: str) -> int:
    """The frame index an in-memory entry's ``image_id`` is: an integer from 0 (3.0 counts)."""
    if isinstance(image_id, (int, float, np.integer, np.floating)) and not isinstance(image_id, bool) \
            and math.isfinite(image_id) and float(image_id).is_integer() and image_id >= 0:
        return int(image_id)
    raise PosetrackError(f"{where}: image_id must be a frame index (an integer from 0), got {image_id!r}"
                         + ("; a frame file name needs load_poses with the frame folder"
                            if isinstance(image_id, str) else ""))


def coco_results_from_tracked(frames: Iterable[TrackedFrame]) -> list[dict[str, Any]]:
    """COCO keypoint results of tracked frames, one entry per person per frame, with the track id.

    Each entry is ``{"image_id": frame index, "category_id": 1, "keypoints": [x, y, score] * 17,
    "score": person score, "bbox": [x, y, w, h], "track_id": id}`` (the fields of posetrack's
    ``coco`` export), numbers unrounded; the third value of each keypoint is its score, which COCO's
    evaluation ignores and ``poses_from_coco_results`` reads back, so the two round-trip.
    For ``json.dump``, ``pycocotools``' ``loadRes`` or another tool that reads COCO results.

    Raises PosetrackError (one line, naming the frame and person) for poses other than COCO's 17
    keypoints, numbers that are not finite, scores outside [0, 1] or a box of no size: what the
    readers of COCO results refuse.

    Example:
        >>> import numpy as np
        >>> from posetrack_cli.core.types import Poses, TrackedFrame
        >>> poses = Poses(np.full((1, 17, 2), 5.0), np.full((1, 17), 0.5), [[0, 0, 10, 20]], [0.75])
        >>> entries = coco_results_from_tracked([TrackedFrame(3, 0.1, poses, [7])])
        >>> entries[0]["image_id"], entries[0]["track_id"], entries[0]["bbox"], entries[0]["keypoints"][:3]
        (3, 7, [0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 0.5])
        >>> poses_from_coco_results(entries)[3].keypoints.shape
        (1, 17, 2)
    """
    out: list[dict[str, Any]] = []
    for frame in frames:
        poses = frame.poses
        if len(poses) and poses.num_keypoints != _K:
            raise PosetrackError(f"COCO results need COCO's {_K} keypoints; frame {frame.frame_index}'s poses have "
                                 f"{poses.num_keypoints}")
        for i in range(len(poses)):
            kps, kscores, box = poses.keypoints[i], poses.keypoint_scores[i], poses.boxes[i]
            _check_arrays(f"frame {frame.frame_index} person {i} (track {frame.track_ids[i]})", kps, kscores, box,
                          float(poses.scores[i]))
            flat = np.concatenate([kps, kscores[:, None]], axis=1).ravel()
            x1, y1, x2, y2 = (float(v) for v in box)
            out.append({"image_id": frame.frame_index, "category_id": COCO_PERSON, "keypoints": flat.tolist(),
                        "score": float(poses.scores[i]), "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "track_id": int(frame.track_ids[i])})
    return out
