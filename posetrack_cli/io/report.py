"""Pictures of a track file: one self-contained HTML page per video, and its plots as PNGs.

``write_report(document, out_dir)`` takes posetrack's JSON (parsed) and writes, for ``<name>``:

* ``<name>.report.html``: the page; every picture embedded as a base64 PNG, no scripts, nothing
  fetched, so it opens offline and can be mailed as one file;
* ``<name>.report-timeline.png``: every track's presence frame by frame (one row per id), with the
  frames where a lost track was re-identified (annotations with ``"match": "lost"``) marked;
* ``<name>.report-people.png``: people per frame;
* ``<name>.report-confidence.png``: the spread of each joint's score, with the keypoint threshold;
* ``<name>.report-stages.png``: the seconds each stage took (``info.stage_seconds``), where recorded;
* ``<name>.report-tracks.png``: a contact sheet of each track's first crop, where the video is given
  (or ``info.source`` is still there).

Plots need matplotlib (the ``report`` extra); it draws off-screen (the Agg canvas, no pyplot and no
display). Files are written atomically and never over a file posetrack did not write.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.paper import JOINT_THRESHOLD
from posetrack_cli.io.derived import check_replaceable, html_is_ours, html_marker, mark_png, png_is_ours, write_bytes
from posetrack_cli.io.formats import check_document
from posetrack_cli.io.render import track_colour

if TYPE_CHECKING:
    from matplotlib.figure import Figure  # an optional dependency (the report extra): imported where drawn

INSTALL_HINT = ('the report needs matplotlib: pip install "posetrack[report]" '
                '(from a checkout: pip install -e ".[report]")')
# The sections of the page, in order: (key, title). The titles are the page's headings.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("timeline", "Tracks over time"),
    ("people", "People per frame"),
    ("confidence", "Keypoint confidence per joint"),
    ("stages", "Time per stage"),
    ("tracks", "First sight of each track"),
)
CROP_HEIGHT = 160  # pixels of each contact-sheet crop
_DPI = 100


@dataclass
class _Summary:
    """What the plots need from a track document."""

    name: str
    frames: int
    names: list[str]
    presence: dict[int, list[int]] = field(default_factory=dict)  # track id -> frame positions
    reidentified: dict[int, list[int]] = field(default_factory=dict)  # track id -> positions matched "lost"
    first: dict[int, tuple[int, list[float]]] = field(default_factory=dict)  # track id -> (position, bbox xywh)
    people: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (frames,)
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (annotations, K)


def require_matplotlib() -> None:
    """Raise PosetrackError with how to install matplotlib (the report's one extra) when it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PosetrackError(INSTALL_HINT) from None


def _summarise(document: dict[str, Any], name: str, where: str) -> _Summary:
    """What the plots need from a document ``check_document`` has passed."""
    try:
        names = list(document["categories"][0]["keypoints"])
        position = {im["id"]: i for i, im in enumerate(document["images"])}
        s = _Summary(name, len(position), names, people=np.zeros(len(position), np.int64))
        scores = []
        for ann in document["annotations"]:
            pos, tid = position[ann["image_id"]], int(ann["track_id"])
            s.presence.setdefault(tid, []).append(pos)
            if ann.get("match") == "lost":
                s.reidentified.setdefault(tid, []).append(pos)
            if tid not in s.first or pos < s.first[tid][0]:
                s.first[tid] = (pos, list(ann["bbox"]))
            s.people[pos] += 1
            scores.append(ann.get("keypoint_scores") or ann["keypoints"][2::3])
        s.scores = np.asarray(scores, np.float64).reshape(len(scores), len(names))
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # what check_document let through: a bug
        raise PosetrackError(f"not a posetrack track file: {where} ({type(exc).__name__}: {exc})") from None
    return s


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return mark_png(buffer.getvalue())


def _rgb(track_id: int) -> tuple[float, float, float]:
    b, g, r = track_colour(track_id)
    return r / 255, g / 255, b / 255


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted frame positions as (start, length)."""
    runs: list[tuple[int, int]] = []
    for p in sorted(set(positions)):
        if runs and runs[-1][0] + runs[-1][1] == p:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((p, 1))
    return runs


def timeline_png(s: _Summary) -> bytes:
    """One row per track, in order of first appearance, a bar where it is present."""
    order = sorted(s.presence, key=lambda t: (min(s.presence[t]), t))
    fig = _figure(9, min(2.0 + 0.28 * len(order), 40))
    ax = fig.add_subplot()
    for row, tid in enumerate(order):
        ax.broken_barh([(start - 0.5, n) for start, n in _runs(s.presence[tid])], (row - 0.38, 0.76),
                       facecolors=_rgb(tid), edgecolors="black", linewidth=0.4)
    marked = [(pos, order.index(tid)) for tid, positions in s.reidentified.items() for pos in positions]
    if marked:
        xs, ys = zip(*marked)
        ax.scatter(xs, ys, marker="v", s=60, color="black", zorder=3, label="re-identified after being lost")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_yticks(range(len(order)), [f"id {t}" for t in order], fontsize=8 if len(order) < 40 else 5)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_xlim(-0.5, max(s.frames, 1) - 0.5)
    ax.set_xlabel("frame")
    ax.set_title(f"{len(order)} tracks over {s.frames} frames")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def people_png(s: _Summary) -> bytes:
    from matplotlib.ticker import MaxNLocator

    fig = _figure(9, 2.6)
    ax = fig.add_subplot()
    # one stepped patch, not a bar per frame: a bar each costs seconds for a long video
    ax.stairs(s.people, np.arange(s.frames + 1) - 0.5, fill=True, color="#7fa2e0")
    ax.stairs(s.people, np.arange(s.frames + 1) - 0.5, color="#3060c0", linewidth=1)
    ax.set_xlabel("frame")
    ax.set_ylabel("people")
    ax.set_xlim(-0.5, max(s.frames, 1) - 0.5)
    ax.set_ylim(0, max(1, int(s.people.max(initial=0))) * 1.15)
    locator = ax.yaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):  # a linear axis's AutoLocator is one; Locator has no integer=
        locator.set_params(integer=True)
    ax.set_title(f"mean {s.people.mean() if s.frames else 0:.1f}, most {int(s.people.max(initial=0))}")
    ax.grid(alpha=0.3)
    return _png(fig)


def confidence_png(s: _Summary, threshold: float) -> bytes:
    """Each joint's scores as a box plot (median, quartiles, 5-95 % whiskers)."""
    fig = _figure(9, 1.2 + 0.3 * len(s.names))
    ax = fig.add_subplot()
    ax.boxplot([s.scores[:, j] for j in range(len(s.names))], orientation="horizontal", whis=(5, 95),
               showfliers=False, tick_labels=s.names, patch_artist=True,
               boxprops={"facecolor": "#a8c4f0"}, medianprops={"color": "black"})
    ax.axvline(threshold, color="#c03030", linestyle="--", label=f"keypoint threshold {threshold:g}")
    ax.invert_yaxis()
    ax.set_xlim(0, max(1.0, float(s.scores.max(initial=0))))
    ax.set_xlabel("score")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{len(s.scores)} poses; below the threshold a joint is drawn faded and not tracked on")
    return _png(fig)


def stages_png(stages: dict[str, float], frames: int) -> bytes:
    names = list(stages)
    seconds = np.array([float(stages[n]) for n in names])
    fig = _figure(9, 1.2 + 0.35 * len(names))
    ax = fig.add_subplot()
    ax.barh(names, seconds, color="#70a070")
    for i, value in enumerate(seconds):
        per_frame = f", {1000 * value / frames:.1f} ms/frame" if frames else ""
        ax.text(value, i, f" {value:.2f} s{per_frame}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(seconds.max(initial=0) * 1.35, 1e-3))
    ax.set_xlabel("seconds (with overlapping stages the sum can exceed the wall time)")
    ax.set_title(f"{seconds.sum():.2f} s in all over {frames} frames")
    return _png(fig)


def first_crops(s: _Summary, video: Path) -> dict[int, np.ndarray]:
    """Each track's first box cut from ``video`` (a video file or frame folder): id -> ``(h, w, 3)`` BGR."""
    from posetrack_cli.io.video import open_source

    wanted: dict[int, list[tuple[int, list[float]]]] = {}
    for tid, (pos, box) in s.first.items():
        wanted.setdefault(pos, []).append((tid, box))
    crops: dict[int, np.ndarray] = {}
    source = open_source(video)
    try:
        for position, frame in enumerate(source.frames()):
            for tid, (x, y, w, h) in wanted.pop(position, []):
                height, width = frame.image.shape[:2]
                pad = 0.1 * max(w, h)
                x1, y1 = int(max(0, x - pad)), int(max(0, y - pad))
                x2, y2 = int(min(width, x + w + pad)), int(min(height, y + h + pad))
                if x2 > x1 and y2 > y1:
                    crops[tid] = frame.image[y1:y2, x1:x2].copy()
            if not wanted:
                break
    finally:
        source.close()
    return crops


def contact_sheet_png(crops: dict[int, np.ndarray], columns: int = 8) -> bytes:
    """The crops in rows of ``columns``, each fitted into a ``CROP_HEIGHT``-high tile and labelled with its
    id in its track's colour."""
    from posetrack_cli.io.render import draw_label

    tile_h, tile_w, margin = CROP_HEIGHT, int(0.75 * CROP_HEIGHT), 4
    tiles = []
    for tid in sorted(crops):
        crop = crops[tid]
        scale = min(tile_h / crop.shape[0], tile_w / crop.shape[1])
        resized = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA)
        tile = np.full((tile_h + 2 * margin, tile_w + 2 * margin, 3), 255, np.uint8)
        y, x = margin + (tile_h - resized.shape[0]) // 2, margin + (tile_w - resized.shape[1]) // 2
        tile[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
        draw_label(tile, str(tid), (margin, margin), track_colour(tid), 1.0)
        tiles.append(tile)
    columns = min(columns, len(tiles))
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    sheet = np.concatenate(rows, axis=0)
    ok, png = cv2.imencode(".png", sheet)
    if not ok:
        raise PosetrackError("could not encode the contact sheet")
    return mark_png(png.tobytes())


def report_paths(out_dir: Path, name: str) -> dict[str, Path]:
    """The page and each picture's file."""
    return {"html": out_dir / f"{name}.report.html",
            **{key: out_dir / f"{name}.report-{key}.png" for key, _ in SECTIONS}}


def _page(name: str, facts: list[tuple[str, str]], pictures: dict[str, bytes], notes: dict[str, str]) -> str:
    rows = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    sections = []
    for key, title in SECTIONS:
        if key in pictures:
            data = base64.b64encode(pictures[key]).decode("ascii")
            body = f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        else:
            body = f'<p class="note">{html.escape(notes.get(key, "not available"))}</p>'
        sections.append(f'<section id="{key}">\n<h2>{html.escape(title)}</h2>\n{body}\n</section>')
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{html_marker()}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>posetrack report: {html.escape(name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; padding: 0 1em; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: 0.15em 1em 0.15em 0; vertical-align: top; }}
th {{ font-weight: 600; }} img {{ max-width: 100%; height: auto; }} .note {{ color: #777; font-style: italic; }}
</style>
</head>
<body>
<h1>posetrack report: {html.escape(name)}</h1>
<table>
{rows}
</table>
{chr(10).join(sections)}
</body>
</html>
"""


def _exists(path: str | Path) -> bool:
    """Whether ``path`` exists; False for a name no file can have (a NUL byte, too long)."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def write_report(document: dict[str, Any], out_dir: str | Path, *, name: str | None = None,
                 video: str | Path | None = None, where: str = "track document") -> list[Path]:
    """Write the report of one track document into ``out_dir``; returns the files written, page first.

    Args:
        document: posetrack's JSON, parsed; checked first (``io.formats.check_document``).
        out_dir: the folder to write into (created if missing).
        name: the base name of the files; by default the stem of ``info.source``.
        video: the video file or frame folder the document was made from, for the contact sheet;
            by default ``info.source`` where it still exists. Without either, the page says so.
        where: what messages call the document (its file).

    Raises:
        PosetrackError: matplotlib is missing (with how to install it), the document is not posetrack's
            JSON (one line naming ``where``, the annotation and the field), the video cannot be read,
            or a target file exists that posetrack did not write.

    Example:
        The report of one person (track 0) in two frames, without the video (the page says so):

        >>> import tempfile
        >>> from pathlib import Path
        >>> from posetrack_cli import COCO_KEYPOINTS, write_report
        >>> document = {
        ...     "info": {"source": "walk.mp4"},
        ...     "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS)}],
        ...     "images": [{"id": t, "frame_id": t, "timestamp": t / 30, "width": 64, "height": 48} for t in range(2)],
        ...     "annotations": [{"id": t, "image_id": t, "track_id": 0, "category_id": 1, "score": 0.9,
        ...                      "bbox": [10.0 + t, 4.0, 20.0, 40.0], "keypoints": [20.0 + t, 24.0, 2] * 17,
        ...                      "keypoint_scores": [0.9] * 17} for t in range(2)],
        ... }
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     written = write_report(document, folder)  # named after info.source
        ...     print([path.name for path in written])
        ['walk.report.html', 'walk.report-timeline.png', 'walk.report-confidence.png', 'walk.report-people.png']
    """
    require_matplotlib()
    check_document(document, where)
    info = document.get("info") or {}
    source = info.get("source")
    if name is None:
        name = Path(str(source)).stem if source else "tracks"
    s = _summarise(document, name, where)
    out_dir = Path(out_dir)
    paths = report_paths(out_dir, name)
    check_replaceable([paths["html"]], html_is_ours)
    check_replaceable([p for k, p in paths.items() if k != "html"], png_is_ours)

    settings = info.get("settings") or {}
    threshold = float(settings.get("keypoint_threshold", settings.get("joint_threshold", JOINT_THRESHOLD)))
    pictures: dict[str, bytes] = {}
    notes: dict[str, str] = {}
    if s.presence:
        pictures["timeline"] = timeline_png(s)
        pictures["confidence"] = confidence_png(s, threshold)
    else:
        notes["timeline"] = notes["confidence"] = "no people in this file"
    if s.frames:
        pictures["people"] = people_png(s)
    else:
        notes["people"] = "no frames in this file"
    stages = info.get("stage_seconds")
    if stages:
        pictures["stages"] = stages_png(stages, s.frames)
    else:
        notes["stages"] = f"this file records no stage timings (made by posetrack {info.get('command', '?')})"
    if video is None and source and _exists(source):
        video = source
    if not s.first:
        notes["tracks"] = "no tracks"
    elif video is None:
        notes["tracks"] = "the video is not at hand: give it with --video to see each track's first crop"
    else:
        crops = first_crops(s, Path(video))
        if crops:
            pictures["tracks"] = contact_sheet_png(crops)
        else:
            notes["tracks"] = f"no track's first frame could be read from {video}"

    facts = [("source", str(source or "?")), ("command", str(info.get("command", "?"))),
             ("frames", f"{s.frames}" + (f" (partial: {info.get('partial_reason')})" if info.get("partial") else "")),
             ("tracks", str(len(s.presence))), ("poses", str(int(s.people.sum())))]
    models = info.get("models") or {}
    if models:
        facts.append(("models", ", ".join(f"{k}: {v}" for k, v in models.items())))
    if info.get("version"):
        facts.append(("posetrack", str(info["version"])))
    page = _page(name, facts, pictures, notes).encode("utf-8")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_bytes(paths["html"], page)]
    written += [write_bytes(paths[key], data) for key, data in pictures.items()]
    for key, _ in SECTIONS:  # an earlier report's picture of something this one does not have
        if key not in pictures and png_is_ours(paths[key]):
            paths[key].unlink()
    return written
