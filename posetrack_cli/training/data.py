"""Person keypoint annotations -> top-down training samples, one per annotated person.

Reads COCO person-keypoint files (``person_keypoints_train2017.json``: ``images``, ``annotations``
with ``bbox`` [x, y, w, h] and ``keypoints`` [x, y, v] * K, ``categories`` with the keypoint names)
and PoseTrack 2018 files, which use the same layout one video per file (``file_name`` relative to the
dataset root, ``head_bottom`` and ``head_top`` in place of the eyes, ears never labelled). A joint is
labelled where ``v > 0`` (COCO's "labelled but hidden" 1 and "visible" 2 both count, as in the
released training code).

A file that is not keypoint annotations at all is an error, reported in one line. Annotations that
cannot be trained on (crowd regions, no labelled joint, no usable box, an image that is missing)
are skipped and counted, so one bad record never stops a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import read_json

# Why an annotation was skipped: key -> how the summary line says it.
SKIP_REASONS: dict[str, str] = {
    "crowd": "crowd regions",
    "no_keypoints": "without labelled keypoints",
    "bad_keypoints": "with a malformed keypoint list",
    "bad_box": "without a usable box",
    "no_image_entry": "whose image_id is not among the file's images",
    "missing_image": "whose image file is missing",
}


@dataclass(frozen=True, eq=False)
class PersonSamples:
    """Annotated people, the unit of top-down training.

    Attributes:
        image_paths: ``(I,)`` image files the samples come from.
        image_ids: ``(I,)`` each image's ``id`` in its annotation file (results are keyed by it).
        image_index: ``(N,)`` int64, each sample's entry in ``image_paths``.
        boxes: ``(N, 4)`` float32 person boxes ``x1, y1, x2, y2`` in image pixels.
        keypoints: ``(N, K, 2)`` float32 joint positions in image pixels (0 where unlabelled).
        labelled: ``(N, K)`` bool, whether each joint is annotated.
        keypoint_names: ``(K,)`` joint names, in channel order.
    """

    image_paths: tuple[Path, ...]
    image_ids: tuple[Any, ...]
    image_index: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    labelled: np.ndarray
    keypoint_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n, k = len(self.image_index), len(self.keypoint_names)
        expected = {"image_index": (n,), "boxes": (n, 4), "keypoints": (n, k, 2), "labelled": (n, k)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {getattr(self, name).shape}")
        if len(self.image_ids) != len(self.image_paths):
            raise ValueError(f"{len(self.image_ids)} image ids for {len(self.image_paths)} image paths")
        if n and (self.image_index.min() < 0 or self.image_index.max() >= len(self.image_paths)):
            raise ValueError("image_index points outside image_paths")

    def __len__(self) -> int:
        return len(self.image_index)

    def image_path(self, i: int) -> Path:
        return self.image_paths[int(self.image_index[i])]


@dataclass(frozen=True)
class SkipReport:
    """What loading left out, per reason of ``SKIP_REASONS``.

    Attributes:
        counts: reason -> number of annotations skipped.
        examples: reason -> the first skipped item, to show the user where to look.
    """

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line: ``skipped 3 annotations: 2 without labelled keypoints (e.g. ...), 1 ...``."""
        parts = [f"{n} {SKIP_REASONS[r]} (first: {self.examples[r]})" for r, n in self.counts.items() if n]
        return f"skipped {self.total} annotation{'s' * (self.total != 1)}: " + "; ".join(parts)


def annotation_files(sources: Sequence[str | Path]) -> list[Path]:
    """JSON files named directly, and every ``*.json`` in named folders (PoseTrack: one per video)."""
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                raise PosetrackError(f"{path} has no .json annotation files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise PosetrackError(f"annotation file not found: {path}")
    return files


def read_keypoint_document(path: Path) -> tuple[dict[str, Any], set[Any], tuple[str, ...]]:
    """Parse and check one COCO/PoseTrack keypoint file.

    Returns:
        the document, the ids of its person-keypoint categories, and their keypoint names.

    Raises:
        PosetrackError: not JSON, not a COCO-style document, or no category with keypoint names.
    """
    doc = read_json(path)  # one line for a file that is not JSON, too deep, or unreadable
    what = f"{path} is not a COCO person-keypoint annotation file"
    if isinstance(doc, list):
        raise PosetrackError(f"{what}: it is a list (a COCO results file?), not a document with images and annotations")
    if not (isinstance(doc, dict) and isinstance(doc.get("images"), list) and isinstance(doc.get("annotations"), list)):
        raise PosetrackError(f"{what}: it has no 'images' and 'annotations' lists")
    categories = [c for c in doc.get("categories") or []
                  if isinstance(c, dict) and isinstance(c.get("keypoints"), list)]
    if not categories:
        raise PosetrackError(f"{what}: no category lists 'keypoints' names (a detection or caption file?)")
    persons = [c for c in categories if c.get("name") == "person"] or categories
    names = tuple(str(n) for n in persons[0]["keypoints"])
    if not names or any(tuple(str(n) for n in c["keypoints"]) != names for c in persons):
        raise PosetrackError(f"{what}: its person categories disagree on the keypoint names")
    return doc, {c.get("id") for c in persons}, names


class _Collector:
    """Accumulates samples and skips across files."""

    def __init__(self) -> None:
        self.paths: dict[Path, int] = {}
        self.ids: list[Any] = []
        self.exists: dict[Path, bool] = {}
        self.rows: list[tuple[int, list[float], np.ndarray]] = []  # image index, box, (K, 3) keypoints
        self.counts: dict[str, int] = {r: 0 for r in SKIP_REASONS}
        self.examples: dict[str, str] = {}

    def skip(self, reason: str, example: str) -> None:
        self.counts[reason] += 1
        self.examples.setdefault(reason, example)

    def image(self, path: Path, image_id: Any) -> int | None:
        if path not in self.exists:
            self.exists[path] = path.is_file()
        if not self.exists[path]:
            return None
        if path not in self.paths:
            self.paths[path] = len(self.paths)
            self.ids.append(image_id)
        return self.paths[path]


def _box(bbox: Any, size: tuple[float, float] | None) -> list[float] | None:
    """``[x1, y1, x2, y2]`` from COCO ``[x, y, w, h]``, clipped to the image when its size is known."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return None
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    x1, y1, x2, y2 = x, y, x + w, y + h
    if size is not None:
        x1, y1 = max(x1, 0.0), max(y1, 0.0)
        x2, y2 = min(x2, size[0] - 1.0), min(y2, size[1] - 1.0)
    return [x1, y1, x2, y2] if x2 > x1 and y2 > y1 else None


def _add_document(doc: dict[str, Any], categories: set[Any], k: int, images_root: Path, label: str,
                  out: _Collector) -> None:
    images: dict[Any, tuple[Path, tuple[float, float] | None]] = {}
    for im in doc["images"]:
        if isinstance(im, dict) and "id" in im and isinstance(im.get("file_name"), str):
            size = (float(im["width"]), float(im["height"])) if "width" in im and "height" in im else None
            images[im["id"]] = (images_root / im["file_name"], size)
    for i, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict) or ann.get("category_id", next(iter(categories))) not in categories:
            continue  # other object classes are not people: not a skip, just not ours
        where = f"{label} annotation {ann.get('id', f'#{i}')}"
        if ann.get("iscrowd"):
            out.skip("crowd", where)
            continue
        kps = ann.get("keypoints")
        if not isinstance(kps, list) or not kps or not any(kps):
            out.skip("no_keypoints", where)
            continue
        try:
            joints = np.asarray(kps, dtype=np.float64).reshape(k, 3)
        except (TypeError, ValueError):
            out.skip("bad_keypoints", where)
            continue
        if not np.isfinite(joints).all():
            out.skip("bad_keypoints", where)
            continue
        if not (joints[:, 2] > 0).any():
            out.skip("no_keypoints", where)
            continue
        if ann.get("image_id") not in images:
            out.skip("no_image_entry", where)
            continue
        path, size = images[ann["image_id"]]
        box = _box(ann.get("bbox"), size)
        if box is None:
            out.skip("bad_box", where)
            continue
        index = out.image(path, ann["image_id"])
        if index is None:
            out.skip("missing_image", str(path))
            continue
        out.rows.append((index, box, joints))


def load_keypoint_annotations(
    sources: Sequence[str | Path], images: str | Path | None = None
) -> tuple[PersonSamples, SkipReport]:
    """Training samples from COCO or PoseTrack 2018 keypoint files.

    Args:
        sources: JSON files, or folders whose ``*.json`` files are all read (PoseTrack's per-video
            files). All must name the same keypoints.
        images: folder that the images' ``file_name`` is relative to; by default each file's own
            folder.

    Returns:
        the samples and what was skipped.

    Raises:
        PosetrackError: a file is not keypoint annotations, files disagree on keypoint names, none
            of the images exist where the annotations say, or no annotation is usable.
    """
    out = _Collector()
    names: tuple[str, ...] | None = None
    files = annotation_files(sources)
    for path in files:
        doc, categories, file_names = read_keypoint_document(path)
        if names is not None and file_names != names:
            raise PosetrackError(
                f"{path} names keypoints {', '.join(file_names[:3])}, ... "
                f"but {files[0]} names {', '.join(names[:3])}, ...; one training run needs one keypoint set"
            )
        names = file_names
        root = Path(images) if images is not None else path.parent
        _add_document(doc, categories, len(names), root, path.name, out)
    assert names is not None
    report = SkipReport({r: n for r, n in out.counts.items() if n}, out.examples)
    if out.exists and not any(out.exists.values()):
        first = next(iter(out.exists))
        hint = "" if images is not None else "; pass --images with the folder the file names are relative to"
        raise PosetrackError(f"none of the {len(out.exists)} images the annotations name exist (first: {first}){hint}")
    if not out.rows:
        reason = f" ({report.summary()})" if report.total else ""
        raise PosetrackError(f"no trainable person annotations in {', '.join(str(f) for f in files[:3])}{reason}")
    k = len(names)
    joints = np.stack([row[2] for row in out.rows])  # (N, K, 3)
    labelled = joints[:, :, 2] > 0
    samples = PersonSamples(
        image_paths=tuple(out.paths),
        image_ids=tuple(out.ids),
        image_index=np.array([row[0] for row in out.rows], dtype=np.int64),
        boxes=np.array([row[1] for row in out.rows], dtype=np.float32).reshape(-1, 4),
        keypoints=np.where(labelled[..., None], joints[:, :, :2], 0.0).astype(np.float32).reshape(-1, k, 2),
        labelled=labelled,
        keypoint_names=names,
    )
    return samples, report
