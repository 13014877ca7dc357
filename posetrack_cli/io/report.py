"""Pictures of a track file: one self-contained HTML page per video, and its plots as PNGs.

``write_report(document, out_dir)`` takes posetrack's JSON (parsed) and writes, for ``<name>``:

* ``<name>.report.html``: the page, laid out for a window about 1400 pixels wide (and fluid). Its
  "tracks over time" chart is HTML, one row per track: the ``TIMELINE_ROWS`` longest tracks each
  labelled with its id, the shorter ones summarised in one row (how many are present in each
  stretch of frames) and listed by id under it; a run of frames that begins with a
  re-identification (``"match": "lost"``) has a black edge at its start. Where the overlay video of
  the result is at hand (``posetrack run --render`` writes ``<name>.mp4`` beside the JSON), the
  page plays it, referenced by a relative path rather than embedded, and a click on a track seeks it
  to the track's first frame. Pictures are embedded as base64 PNGs and the one small script is
  inline: nothing is fetched, so the page opens offline and, without a video, mails as one file;
* ``<name>.report-people.png``: people per frame;
* ``<name>.report-confidence.png``: where each joint's scores fall (a heat map of 20 score bins
  with each bin's share of poses, so scores piled at 1 or at 0 show), with the keypoint threshold;
* ``<name>.report-stages.png``: the seconds each stage took (``info.stage_seconds``), where recorded;
* ``<name>.report-tracks.png``: a contact sheet of the first good sight of each labelled track that
  lasts long enough to matter (the first box at least ``SIGHT_MIN_HEIGHT`` pixels high), where the
  video is given (or ``info.source`` is still there).

Plots need matplotlib (the ``report`` extra); it draws off-screen (the Agg canvas, no pyplot and no
display). Files are written atomically and never over a file posetrack did not write.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

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
    ("tracks", "First sight of each main track"),
)
PICTURES = ("people", "confidence", "stages", "tracks")  # the sections drawn as PNG files
TIMELINE_ROWS = 40  # tracks labelled in the timeline, the longest; the others share one summary row
SIGHT_MIN_HEIGHT = 48  # pixels: a smaller first box makes no readable thumbnail; a later, larger one is used
SIGHT_COLUMNS = 10  # contact-sheet tiles a row: 10 x 128 pixels fill a 1400-pixel window
CROP_HEIGHT = 160  # pixels of each contact-sheet crop
CONFIDENCE_BINS = 20  # score bins of the confidence heat map, over 0..1
PLAYABLE_CODECS = frozenset({"h264", "vp8", "vp9", "av1"})  # video codecs browsers play in a <video>
_FIGURE_WIDTH = 12.8  # inches at _DPI: 1280 pixels, shown unscaled in a 1400-pixel window
_DPI = 100
_FONT = 10  # points of the plots' smallest text: 14 pixels at _DPI, shown unscaled


@dataclass
class _Summary:
    """What the plots need from a track document."""

    name: str
    frames: int
    names: list[str]
    presence: dict[int, list[int]] = field(default_factory=dict)  # track id -> frame positions
    reidentified: dict[int, list[int]] = field(default_factory=dict)  # track id -> positions matched "lost"
    first: dict[int, tuple[int, list[float]]] = field(default_factory=dict)  # track id -> (position, bbox xywh)
    sight: dict[int, tuple[int, list[float]]] = field(default_factory=dict)  # first box >= SIGHT_MIN_HEIGHT
    people: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (frames,)
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (annotations, K)


@dataclass(frozen=True)
class OverlayVideo:
    """The overlay video a page plays: ``src`` relative to the page (a URL path), its frame rate,
    and why it cannot be played (``None`` when it can)."""

    path: Path
    src: str
    fps: float
    problem: str | None = None


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
        size = {im["id"]: (im.get("width"), im.get("height")) for im in document["images"]}
        s = _Summary(name, len(position), names, people=np.zeros(len(position), np.int64))
        scores = []
        for ann in document["annotations"]:
            pos, tid = position[ann["image_id"]], int(ann["track_id"])
            s.presence.setdefault(tid, []).append(pos)
            if ann.get("match") == "lost":
                s.reidentified.setdefault(tid, []).append(pos)
            box = [float(v) for v in ann["bbox"]]
            if tid not in s.first or pos < s.first[tid][0]:
                s.first[tid] = (pos, box)
            if box[3] >= SIGHT_MIN_HEIGHT and (tid not in s.sight or pos < s.sight[tid][0]):
                s.sight[tid] = (pos, _inside(box, size[ann["image_id"]]))
            s.people[pos] += 1
            scores.append(ann.get("keypoint_scores") or ann["keypoints"][2::3])
        s.scores = np.asarray(scores, np.float64).reshape(len(scores), len(names))
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # what check_document let through: a bug
        raise PosetrackError(f"not a posetrack track file: {where} ({type(exc).__name__}: {exc})") from None
    return s


def _inside(box: list[float], size: tuple[Any, Any]) -> list[float]:
    """``box`` (xywh) cut to the image of ``size`` (width, height; either may be unknown)."""
    x, y, w, h = box
    width, height = size
    x2 = x + w if not isinstance(width, (int, float)) else min(x + w, float(width))
    y2 = y + h if not isinstance(height, (int, float)) else min(y + h, float(height))
    x, y = max(0.0, x), max(0.0, y)
    return [x, y, max(0.0, x2 - x), max(0.0, y2 - y)]


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


def _hex(track_id: int) -> str:
    b, g, r = track_colour(track_id)
    return f"#{r:02x}{g:02x}{b:02x}"


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted frame positions as (start, length)."""
    runs: list[tuple[int, int]] = []
    for p in sorted(set(positions)):
        if runs and runs[-1][0] + runs[-1][1] == p:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((p, 1))
    return runs


def main_tracks(s: _Summary, rows: int = TIMELINE_ROWS) -> list[int]:
    """The ``rows`` tracks present in the most frames (ties: the earlier first), in order of first
    appearance: the timeline's labelled rows."""
    longest = sorted(s.presence, key=lambda t: (-len(set(s.presence[t])), min(s.presence[t]), t))[:rows]
    return sorted(longest, key=lambda t: (min(s.presence[t]), t))


def _ticks(frames: int, most: int = 10) -> list[int]:
    """Frame positions for the axis: a round step (1, 2, 5 x 10^n) giving at most ``most`` ticks."""
    if frames <= 1:
        return [0]
    step = 1
    for power in range(0, 12):
        for unit in (1, 2, 5):
            step = unit * 10 ** power
            if (frames - 1) // step + 1 <= most:
                return list(range(0, frames, step))
    return [0]


def _percent(value: float) -> str:
    return f"{100 * value:.4f}".rstrip("0").rstrip(".") + "%"


def timeline_html(s: _Summary, seekable: bool) -> str:
    """The tracks chart as HTML: a frame axis, one row per main track (its runs of frames as
    coloured bars), a summary row and a list for the others. Each row carries ``data-start``, the
    track's first frame position, for the page's script to seek the overlay video to."""
    frames = max(s.frames, 1)
    shown = main_tracks(s)
    others = sorted((t for t in s.presence if t not in set(shown)), key=lambda t: (min(s.presence[t]), t))
    click = ' role="button" tabindex="0"' if seekable else ""

    def left(position: float) -> str:
        return _percent(position / frames)

    ticks = []
    for t in _ticks(frames):
        align = "start" if t == 0 else ("end" if t / frames > 0.93 else "mid")
        ticks.append(f'<span class="tick {align}" style="left:{left(t + 0.5)}">{t}</span>')
    lines = ['<div class="timeline">',
             f'<div class="tl-row axis"><span class="tl-label">frame</span><span class="lane">{"".join(ticks)}</span>'
             "</div>"]
    for tid in shown:
        positions = s.presence[tid]
        lost = set(s.reidentified.get(tid, []))
        spans = []
        for start, n in _runs(positions):
            kind = "run reid" if start in lost else "run"
            spans.append(f'<span class="{kind}" style="left:{left(start)};width:{left(n)};background:{_hex(tid)}">'
                         "</span>")
        first, last = min(positions), max(positions)
        again = f"; re-identified at frame {', '.join(map(str, sorted(lost)))}" if lost else ""
        title = f"id {tid}: frames {first}-{last}, present in {len(set(positions))}{again}"
        lines.append(f'<div class="tl-row track" data-start="{first}" data-track="{tid}"{click} '
                     f'title="{html.escape(title)}"><span class="tl-label">id {tid}</span>'
                     f'<span class="lane">{"".join(spans)}</span></div>')
    if others:
        bins = min(frames, 200)
        count = np.zeros(bins)
        for tid in others:
            for p in set(s.presence[tid]):
                count[p * bins // frames] += 1
        peak = max(count.max(), 1.0)
        stops = ", ".join(f"rgba(40,40,40,{0.08 + 0.92 * c / peak if c else 0:.3f}) {_percent(i / bins)} "
                          f"{_percent((i + 1) / bins)}" for i, c in enumerate(count))
        longest = max(len(set(s.presence[t])) for t in others)
        lines.append(f'<div class="tl-row group" title="{len(others)} shorter tracks: darker where more of them '
                     f'are present (at most {int(count.max())} in one stretch)"><span class="tl-label">'
                     f'+{len(others)} short</span><span class="lane density" '
                     f'style="background:linear-gradient(to right, {stops})"></span></div>')
        chips = "".join(f'<span class="chip" data-start="{min(s.presence[t])}" data-track="{t}"{click} '
                        f'style="border-color:{_hex(t)}">id {t} · {len(set(s.presence[t]))} f</span>'
                        for t in others)
        lines.append(f"<details><summary>{len(others)} shorter tracks, each in at most {longest} frames "
                     f"(the {len(shown)} longest have rows above)</summary><div class=\"chips\">{chips}</div>"
                     "</details>")
    lines.append("</div>")
    key = ('<p class="key"><span class="swatch"></span> frames a track is present in '
           '<span class="swatch reid"></span> re-identified after being lost'
           + ("; click a track to play the overlay from its first frame" if seekable else "") + "</p>")
    return key + "\n".join(lines)


def people_png(s: _Summary) -> bytes:
    from matplotlib.ticker import MaxNLocator

    fig = _figure(_FIGURE_WIDTH, 2.8)
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


def score_shares(scores: np.ndarray, bins: int = CONFIDENCE_BINS) -> np.ndarray:
    """``(K, bins)``: the share of poses whose score of each joint falls in each of ``bins`` equal
    bins over 0..1 (a score above 1 counts in the last bin, below 0 in the first); ``scores`` (N, K)."""
    n, k = scores.shape
    index = np.clip((np.clip(scores, 0.0, 1.0) * bins).astype(np.int64), 0, bins - 1)
    counts = np.stack([np.bincount(index[:, j], minlength=bins) for j in range(k)]) if k else np.zeros((0, bins))
    shares: np.ndarray = counts / max(n, 1)
    return shares


def confidence_png(s: _Summary, threshold: float) -> bytes:
    """Each joint's scores as a row of 20 bins over 0..1, shaded by the share of poses in each
    (written where it is 3 % or more): a pile at 1 or at 0 is a dark cell at the edge, where a box
    plot would collapse to a line."""
    shares = score_shares(s.scores)
    k, bins = shares.shape
    fig = _figure(_FIGURE_WIDTH, 1.5 + 0.32 * k)
    ax = fig.add_subplot()
    top = max(float(shares.max(initial=0)), 1e-9)
    ax.imshow(shares, aspect="auto", cmap="Blues", vmin=0, vmax=top, extent=(0, 1, k - 0.5, -0.5),
              interpolation="nearest")
    for j in range(k):
        for i in range(bins):
            if shares[j, i] >= 0.03:
                ax.text((i + 0.5) / bins, j, f"{100 * shares[j, i]:.0f}%", ha="center", va="center",
                        fontsize=_FONT, color="white" if shares[j, i] > 0.55 * top else "black")
    ax.axvline(threshold, color="#c03030", linestyle="--", linewidth=1.5)
    ax.set_yticks(range(k), s.names, fontsize=_FONT)
    ax.set_xticks(np.linspace(0, 1, 11))
    ax.set_xlim(0, 1)
    beyond = " (scores above 1 count in the last bin)" if (s.scores > 1).any() else ""
    ax.set_xlabel(f"score, in {bins} bins{beyond}; the dashed line is the keypoint threshold {threshold:g}")
    below = (s.scores < threshold).mean(axis=0) if len(s.scores) else np.zeros(k)
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(range(k), [f"{100 * b:.0f}% below" for b in below], fontsize=_FONT)
    ax.set_title(f"{len(s.scores)} poses: the share of poses in each score bin, per joint; below the threshold "
                 "a joint is drawn faded and not tracked on", fontsize=_FONT + 1)
    return _png(fig)


def stages_png(stages: dict[str, float], frames: int) -> bytes:
    names = list(stages)
    seconds = np.array([float(stages[n]) for n in names])
    fig = _figure(_FIGURE_WIDTH, 1.3 + 0.35 * len(names))
    ax = fig.add_subplot()
    ax.barh(names, seconds, color="#70a070")
    for i, value in enumerate(seconds):
        per_frame = f", {1000 * value / frames:.1f} ms/frame" if frames else ""
        ax.text(value, i, f" {value:.2f} s{per_frame}", va="center", fontsize=_FONT)
    ax.invert_yaxis()
    ax.set_xlim(0, max(seconds.max(initial=0) * 1.35, 1e-3))
    ax.set_xlabel("seconds (with overlapping stages the sum can exceed the wall time)")
    ax.set_title(f"{seconds.sum():.2f} s in all over {frames} frames")
    return _png(fig)


def sight_tracks(s: _Summary) -> list[int]:
    """The tracks the contact sheet shows: the timeline's labelled tracks present in at least
    ``min(10, frames // 10)`` frames (at least 1) with a box at least ``SIGHT_MIN_HEIGHT`` high."""
    least = max(1, min(10, s.frames // 10))
    return [t for t in main_tracks(s) if len(set(s.presence[t])) >= least and t in s.sight]


def first_crops(s: _Summary, video: Path, tracks: list[int] | None = None) -> dict[int, np.ndarray]:
    """Each track's first good sight (``_Summary.sight``, for ``tracks``: by default all) cut from
    ``video`` (a video file or frame folder): id -> ``(h, w, 3)`` BGR."""
    from posetrack_cli.io.video import open_source

    wanted: dict[int, list[tuple[int, list[float]]]] = {}
    for tid in s.sight if tracks is None else tracks:
        pos, box = s.sight[tid]
        wanted.setdefault(pos, []).append((tid, box))
    crops: dict[int, np.ndarray] = {}
    if not wanted:
        return crops
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


def contact_sheet_png(crops: dict[int, np.ndarray], columns: int = SIGHT_COLUMNS) -> bytes:
    """The crops in rows of ``columns``, each fitted into a ``CROP_HEIGHT``-high tile and labelled with its
    id in its track's colour."""
    from posetrack_cli.io.render import draw_label

    tile_h, tile_w, margin = CROP_HEIGHT, int(0.75 * CROP_HEIGHT), 4
    tiles = []
    for tid in sorted(crops):
        crop = crops[tid]
        scale = min(tile_h / crop.shape[0], tile_w / crop.shape[1])
        resized = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
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
    return {"html": out_dir / f"{name}.report.html", **{key: out_dir / f"{name}.report-{key}.png" for key in PICTURES}}


def overlay_beside(document: Any, folder: Path) -> Path | None:
    """The overlay video ``document`` lists among its outputs (``info.outputs``, an ``.mp4``: what
    ``--render`` wrote beside the JSON), in ``folder`` (the JSON's), where it exists. A document of
    another shape has none here: :func:`write_report` says what is wrong with it."""
    info = document.get("info") if isinstance(document, dict) else None
    outputs = info.get("outputs") if isinstance(info, dict) else None
    for name in outputs if isinstance(outputs, list) else []:
        if isinstance(name, str) and name.endswith(".mp4") and "/" not in name and (folder / name).is_file():
            return folder / name
    return None


def probe_overlay(video: Path, page_dir: Path, frames: int) -> OverlayVideo:
    """``video`` as the page at ``page_dir`` plays it: its path relative to the page, its frame rate,
    and a problem when a browser cannot play it (its codec) or it is not this result's (its frames)."""
    import av

    try:
        where = os.path.relpath(video.resolve(), page_dir.resolve())
        src = quote(Path(where).as_posix())
    except ValueError:  # another drive (Windows): an absolute file URL
        src = video.resolve().as_uri()
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            codec, count = stream.codec_context.name, stream.frames
    except (av.FFmpegError, OSError, IndexError) as exc:
        return OverlayVideo(video, src, 0.0, f"{video} cannot be read ({exc})")
    problem = None
    if codec not in PLAYABLE_CODECS:
        problem = (f"{video.name} is {codec}, which browsers do not play (an overlay from an older posetrack: "
                   "run posetrack run --render again for an H.264 one)")
    elif fps <= 0:
        problem = f"{video.name} records no frame rate"
    elif count and count != frames:
        problem = f"{video.name} has {count} frames and this result {frames}: it is not this result's overlay"
    return OverlayVideo(video, src, fps, problem)


def _player(overlay: OverlayVideo | None) -> str:
    """The video panel: the overlay and the frame it shows, or why there is none."""
    if overlay is None:
        return ('<p class="note">No overlay video beside this result: <code>posetrack run --render</code> '
                "writes one, and this page then plays it.</p>")
    if overlay.problem is not None:
        return f'<p class="note">{html.escape(overlay.problem)}</p>'
    name = html.escape(overlay.path.name)
    return (f'<video id="overlay" src="{html.escape(overlay.src)}" controls muted playsinline preload="auto" '
            f'data-fps="{overlay.fps!r}"></video>\n'
            '<p class="now" id="now">frame 0 · 0.00 s</p>\n'
            f'<p class="note" id="video-note">Plays <code>{name}</code> from beside this page '
            f'(<code>{html.escape(overlay.src)}</code>, not embedded): keep the two together. Moved '
            "without it, the page says so here.</p>")


# The page's one script: a click (or Enter) on a track seeks the overlay to its first frame
# (position / fps); the frame shown is written under the video; a video that cannot be loaded
# (the page moved without it) is replaced by a note naming the file.
_SCRIPT = """
(function () {
  var video = document.getElementById("overlay");
  if (!video) return;
  var fps = Number(video.dataset.fps), now = document.getElementById("now");
  function seek(el) {
    video.pause();
    video.currentTime = Number(el.dataset.start) / fps;
    document.querySelectorAll(".current").forEach(function (c) { c.classList.remove("current"); });
    el.classList.add("current");
  }
  document.querySelectorAll("[data-start]").forEach(function (el) {
    el.addEventListener("click", function () { seek(el); });
    el.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); seek(el); }
    });
  });
  function show() {
    now.textContent = "frame " + Math.floor(video.currentTime * fps + 1e-6) + " \\u00b7 " +
      video.currentTime.toFixed(2) + " s";
  }
  video.addEventListener("timeupdate", show);
  video.addEventListener("seeked", show);
  video.addEventListener("error", function () {
    var note = document.getElementById("video-note");
    note.textContent = "The overlay video " + video.getAttribute("src") + " could not be played: it is not " +
      "beside this page (moved without it?) or this browser cannot decode it.";
    note.className = "note problem";
    video.remove();
    now.remove();
  });
})();
"""


def _page(name: str, facts: list[tuple[str, str]], timeline: str | None, overlay: OverlayVideo | None,
          pictures: dict[str, bytes], notes: dict[str, str]) -> str:
    rows = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    sections = []
    for key, title in SECTIONS:
        if key == "timeline":
            chart = timeline if timeline is not None else f'<p class="note">{html.escape(notes["timeline"])}</p>'
            body = f'<div class="with-video">\n<div class="chart">{chart}</div>\n' \
                   f'<div class="player">{_player(overlay)}</div>\n</div>'
        elif key in pictures:
            data = base64.b64encode(pictures[key]).decode("ascii")
            body = f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
            if key in notes:
                body += f'\n<p class="note">{html.escape(notes[key])}</p>'
        else:
            body = f'<p class="note">{html.escape(notes.get(key, "not available"))}</p>'
        sections.append(f'<section id="{key}">\n<h2>{html.escape(title)}</h2>\n{body}\n</section>')
    script = f"<script>{_SCRIPT}</script>" if overlay is not None and overlay.problem is None else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{html_marker()}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>posetrack report: {html.escape(name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; font-size: 15px; margin: 1.2em auto; max-width: 1800px;
       padding: 0 24px; color: #222; }}
h1 {{ font-size: 1.5em; margin: 0 0 0.4em; }}
h2 {{ font-size: 1.15em; margin: 1.4em 0 0.6em; border-bottom: 1px solid #ddd; }}
table {{ border-collapse: collapse; }}
th, td {{ text-align: left; padding: 0.1em 1em 0.1em 0; vertical-align: top; }}
th {{ font-weight: 600; }}
img {{ display: block; max-width: 100%; height: auto; }}
code {{ font-size: 13px; }}
.note {{ color: #666; font-style: italic; margin: 0.4em 0; }}
.problem {{ color: #a02020; }}
.with-video {{ display: grid; grid-template-columns: minmax(0, 3fr) minmax(300px, 2fr); gap: 24px;
              align-items: start; }}
.player {{ position: sticky; top: 8px; }}
@media (max-width: 1000px) {{ .with-video {{ grid-template-columns: minmax(0, 1fr); }}
                              .player {{ order: -1; position: static; }}
                              .player video {{ max-height: 60vh; }} }}
.player video {{ display: block; width: 100%; background: #000; }}
.now {{ font-size: 13px; margin: 4px 0; font-variant-numeric: tabular-nums; }}
.key {{ font-size: 13px; margin: 0 0 6px; }}
.swatch {{ display: inline-block; width: 22px; height: 11px; background: #7fa2e0; vertical-align: -1px;
          box-sizing: border-box; margin-left: 6px; }}
.swatch.reid {{ border-left: 4px solid #000; }}
.timeline {{ font-size: 12px; }}
.tl-row {{ display: flex; align-items: center; height: 18px; }}
.tl-row.track:hover, .tl-row.current {{ background: #eef3fb; }}
.tl-row[role=button] {{ cursor: pointer; }}
.tl-label {{ flex: 0 0 84px; white-space: nowrap; overflow: hidden; font-variant-numeric: tabular-nums; }}
.lane {{ position: relative; flex: 1 1 auto; height: 12px; }}
.axis {{ height: 20px; color: #555; font-size: 11px; }}
.axis .lane {{ height: 16px; border-bottom: 1px solid #bbb; }}
.tick {{ position: absolute; top: 0; white-space: nowrap; line-height: 14px; }}
.tick.mid {{ transform: translateX(-50%); }}
.tick.end {{ transform: translateX(-100%); }}
.run {{ position: absolute; top: 0; height: 12px; min-width: 2px; box-sizing: border-box; }}
.run.reid {{ border-left: 4px solid #000; }}
.density {{ border: 1px solid #bbb; box-sizing: border-box; }}
details {{ margin: 6px 0 0 84px; font-size: 13px; }}
.chips {{ display: flex; flex-wrap: wrap; gap: 4px; margin-top: 4px; }}
.chip {{ border-left: 6px solid; padding: 1px 6px; background: #f4f4f4; font-size: 12px; }}
.chip[role=button] {{ cursor: pointer; }}
.chip.current {{ background: #dce7f8; }}
</style>
</head>
<body>
<h1>posetrack report: {html.escape(name)}</h1>
<table>
{rows}
</table>
{chr(10).join(sections)}
{script}
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
                 video: str | Path | None = None, overlay: str | Path | None = None,
                 where: str = "track document") -> list[Path]:
    """Write the report of one track document into ``out_dir``; returns the files written, page first.

    Args:
        document: posetrack's JSON, parsed; checked first (``io.formats.check_document``).
        out_dir: the folder to write into (created if missing).
        name: the base name of the files; by default the stem of ``info.source``.
        video: the video file or frame folder the document was made from, for the contact sheet;
            by default ``info.source`` where it still exists. Without either, the page says so.
        overlay: the overlay video of this result, for the page to play (by a path relative to the
            page); by default the ``.mp4`` that ``info.outputs`` lists, where it is in ``out_dir``.
            One that a browser cannot play (MPEG-4 part 2 from an older posetrack) or with another
            number of frames is not played; the page says why.
        where: what messages call the document (its file).

    Raises:
        PosetrackError: matplotlib is missing (with how to install it), the document is not posetrack's
            JSON (one line naming ``where``, the annotation and the field), the video cannot be read,
            the overlay is not a file, or a target file exists that posetrack did not write.

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
        ['walk.report.html', 'walk.report-confidence.png', 'walk.report-people.png']
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
    stale_timeline = out_dir / f"{name}.report-timeline.png"  # earlier posetrack drew the timeline as a PNG
    check_replaceable([paths["html"]], html_is_ours)
    check_replaceable([p for k, p in paths.items() if k != "html"], png_is_ours)
    if overlay is not None and not Path(overlay).is_file():
        raise PosetrackError(f"the overlay video {overlay} is not a file")
    overlay_path = Path(overlay) if overlay is not None else overlay_beside(document, out_dir)
    played = probe_overlay(overlay_path, out_dir, s.frames) if overlay_path is not None else None

    settings = info.get("settings") or {}
    threshold = float(settings.get("keypoint_threshold", settings.get("joint_threshold", JOINT_THRESHOLD)))
    pictures: dict[str, bytes] = {}
    notes: dict[str, str] = {}
    timeline = None
    if s.presence:
        timeline = timeline_html(s, seekable=played is not None and played.problem is None)
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
    chosen = sight_tracks(s)
    if not s.first:
        notes["tracks"] = "no tracks"
    elif video is None:
        notes["tracks"] = "the video is not at hand: give it with --video to see each track's first crop"
    elif not chosen:
        notes["tracks"] = (f"no track lasts long enough with a box at least {SIGHT_MIN_HEIGHT} pixels high "
                           "to make a readable picture")
    else:
        crops = first_crops(s, Path(video), chosen)
        if crops:
            pictures["tracks"] = contact_sheet_png(crops)
            left_out = len(s.presence) - len(crops)
            if left_out:
                notes["tracks"] = (f"{len(crops)} tracks, each at its first box at least {SIGHT_MIN_HEIGHT} pixels "
                                   f"high; {left_out} shorter or smaller tracks are not shown")
        else:
            notes["tracks"] = f"no track's first frame could be read from {video}"

    facts = [("source", str(source or "?")), ("command", str(info.get("command", "?"))),
             ("frames", f"{s.frames}" + (f" (partial: {info.get('partial_reason')})" if info.get("partial") else "")),
             ("tracks", str(len(s.presence))), ("poses", str(int(s.people.sum())))]
    if played is not None:
        facts.append(("overlay", f"{played.path.name}" + (f" ({played.fps:.6g} fps)" if played.fps else "")))
    models = info.get("models") or {}
    if models:
        facts.append(("models", ", ".join(f"{k}: {v}" for k, v in models.items())))
    if info.get("version"):
        facts.append(("posetrack", str(info["version"])))
    page = _page(name, facts, timeline, played, pictures, notes).encode("utf-8")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_bytes(paths["html"], page)]
    written += [write_bytes(paths[key], data) for key, data in pictures.items()]
    for stale in [*(paths[key] for key in PICTURES if key not in pictures), stale_timeline]:
        if png_is_ours(stale):  # an earlier report's picture of something this one does not have
            stale.unlink()
    return written
