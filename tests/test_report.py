"""``posetrack report``: the HTML page and its pictures, checked in files and in a real headless browser."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import TrackedFrame
from posetrack_cli.io.derived import png_is_ours
from posetrack_cli.io.report import (
    INSTALL_HINT,
    PICTURES,
    SECTIONS,
    TIMELINE_ROWS,
    report_paths,
    score_shares,
    write_report,
)

from helpers import write_track_document, write_video
from synthetic import Person, linear_path, poses_at, render

pytest.importorskip("matplotlib")  # the report extra

FRAMES = 8
TITLES = [title for _, title in SECTIONS]


@pytest.fixture
def clip(tmp_path: Path) -> tuple[dict, Path]:
    """A rendered clip of two walkers and its track document: person 1 lost in frames 3-4 and
    re-identified in frame 5 (``match: lost``), person 0 throughout; stage timings recorded."""
    people = [Person(100, linear_path((60, 20), (8, 0), FRAMES), seed=1),
              Person(90, linear_path((250, 40), (-6, 0), FRAMES), seed=2)]
    video = write_video(tmp_path / "walk.mp4", render(people, FRAMES, size=(320, 240)))
    frames = []
    for t in range(FRAMES):
        present = [True, t not in (3, 4)]
        poses, who = poses_at(people, t, present)
        matches = ["live" if t else "new", "lost" if t == 5 else ("live" if t else "new")][:len(who)]
        frames.append(TrackedFrame(t, t / 10, poses, who, matches=np.array(matches)))
    doc = write_track_document(tmp_path / "run", "walk", frames, [(320, 240, None)] * FRAMES, COCO_KEYPOINTS,
                               {"source": str(video), "stage_seconds": {"decode": 0.05, "detect": 1.2, "flow": 0.3,
                                                                        "pose": 2.1, "track": 0.01}})
    assert [a["match"] for a in doc["annotations"]].count("lost") == 1  # the writer records how ids were given
    return doc, video


def test_report_files(clip: tuple[dict, Path], tmp_path: Path) -> None:
    doc, video = clip
    out = tmp_path / "out"
    written = write_report(doc, out, name="walk")
    paths = report_paths(out, "walk")
    assert written[0] == paths["html"] and sorted(written[1:]) == sorted(paths[k] for k in PICTURES)
    page = paths["html"].read_text()
    for title in TITLES:
        assert f"<h2>{title}</h2>" in page
    assert page.count('src="data:image/png;base64,') == len(PICTURES)
    assert "http://" not in page and "https://" not in page  # nothing fetched
    assert "<script" not in page and "<video" not in page and "posetrack run --render" in page  # no overlay here
    assert page.count('class="tl-row track"') == 2 and page.count("run reid") == 1  # person 1's return marked
    for key in PICTURES:
        image = cv2.imread(str(paths[key]))
        assert image is not None and image.std() > 5, key  # a picture, not a blank
        assert png_is_ours(paths[key])
    sheet = cv2.imread(str(paths["tracks"]))
    assert sheet.shape[1] == 2 * (120 + 8)  # two tracks side by side (both boxes are 48+ pixels high)
    # a rerun replaces its own files; a document without timings or video says so instead of a picture
    bare = {**doc, "info": {"command": "track", "source": str(tmp_path / "gone.mp4")}}
    written = write_report(bare, out, name="walk")
    page = paths["html"].read_text()
    assert "records no stage timings" in page and "give it with --video" in page
    assert not paths["stages"].exists() and not paths["tracks"].exists()  # stale pictures of ours removed
    assert write_report(bare, out, name="walk", video=video)[-1] == paths["tracks"]
    # an overlay a browser cannot play (MPEG-4 part 2, OpenCV's mp4v, as older posetrack wrote) is not put on the page
    write_report(doc, out, name="walk", overlay=video)
    page = paths["html"].read_text()
    assert "<video" not in page and "walk.mp4 is mpeg4, which browsers do not play" in page


def test_report_never_replaces_a_file_posetrack_did_not_write(clip: tuple[dict, Path], tmp_path: Path) -> None:
    doc, _ = clip
    out = tmp_path / "out"
    out.mkdir()
    theirs = report_paths(out, "walk")["people"]
    cv2.imwrite(str(theirs), np.zeros((4, 4, 3), np.uint8))
    before = theirs.read_bytes()
    with pytest.raises(PosetrackError, match="posetrack did not write it"):
        write_report(doc, out, name="walk")
    assert theirs.read_bytes() == before and sorted(p.name for p in out.iterdir()) == [theirs.name]


def test_cli_report_and_missing_matplotlib(clip: tuple[dict, Path], tmp_path: Path) -> None:
    doc, _ = clip
    track = tmp_path / "walk.json"
    track.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["report", str(track)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "walk.report.html").is_file() and "(4 pictures)" in result.stdout
    # without matplotlib: one line saying how to install it (a fresh interpreter, matplotlib blocked)
    code = ("import sys; sys.modules['matplotlib'] = None; from posetrack_cli.cli import main; "
            f"main(['report', {str(track)!r}, '-o', {str(tmp_path / 'x')!r}])")
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == ["posetrack: error: " + INSTALL_HINT]
    assert 'pip install "posetrack[report]"' in INSTALL_HINT
    assert not (tmp_path / "x").exists()


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                           f"--user-data-dir={profile}", *args], check=False, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_in_a_headless_browser(clip: tuple[dict, Path], tmp_path: Path) -> None:
    """Chromium renders the page offline: the headings and five decoded pictures are in its DOM, and a
    screenshot shows more than a blank page."""
    doc, _ = clip
    page = write_report(doc, tmp_path / "out", name="walk")[0]
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom", page.as_uri(), profile=tmp_path / "profile1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>posetrack report: walk</title>" in dom.stdout
    for title in TITLES:
        assert f"<h2>{title}</h2>" in dom.stdout
    assert dom.stdout.count("<img ") == len(PICTURES)
    shot = tmp_path / "shot.png"
    taken = _chromium(f"--screenshot={shot}", "--window-size=1000,2400", page.as_uri(), profile=tmp_path / "profile2")
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image.shape[:2] == (2400, 1000)
    ink = (image < 200).any(axis=2)  # text, plot lines and bars
    assert ink.mean() > 0.02, "the screenshot is (nearly) blank"
    rows = np.flatnonzero(ink.any(axis=1))
    assert rows.max() - rows.min() > 1500  # the pictures are laid out down the page, not one broken icon
    colour = (np.ptp(image.astype(int), axis=2) > 60).mean()
    assert colour > 0.01  # the coloured track bars and crops are drawn


# ---- a crowd: 75 tracks, the page in Chromium driven by Playwright ----------------------------------------

CROWD_FRAMES, CROWD_FPS, CROWD_SIZE = 120, 12.5, (320, 180)


def crowd_frames(tracks: int = 75, seed: int = 7) -> list[TrackedFrame]:
    """A street scene's tracks as posetrack would give them: 8 people through most of the clip, 22 for
    a few seconds, 45 glimpsed for 2-8 frames (entering or leaving at an edge, passing behind
    someone); 4 long tracks lost for 6 frames and re-identified (``match: lost``). People walk
    across, 20-150 pixels high; joint scores pile at 1 (the body) and near 0 (the face, from behind)."""
    from posetrack_cli.core.types import Poses

    rng = np.random.default_rng(seed)
    width, height = CROWD_SIZE
    lengths = [int(rng.integers(CROWD_FRAMES * 2 // 3, CROWD_FRAMES + 1)) for _ in range(8)]
    lengths += [int(rng.integers(15, 50)) for _ in range(22)]
    lengths += [int(rng.integers(2, 9)) for _ in range(tracks - 30)]
    starts = [int(rng.integers(0, CROWD_FRAMES - n + 1)) for n in lengths]
    people: dict[int, list] = {t: [] for t in range(CROWD_FRAMES)}
    for tid, (start, n) in enumerate(sorted(zip(starts, lengths))):  # ids in order of first appearance
        tall = rng.uniform(70, 150) if n > 10 else rng.uniform(20, 60)
        x0, speed = rng.uniform(-20, width), rng.choice([-1, 1]) * rng.uniform(0.5, 2.5)
        gap = range(start + n // 2, start + n // 2 + 6) if tid % 19 == 3 and n > 40 else range(0)
        for t in range(start, start + n):
            if t in gap:
                continue
            x = x0 + speed * (t - start)
            box = np.clip([x, height - tall - 10, x + tall * 0.4, height - 10], 0, [width, height, width, height])
            if box[2] - box[0] < 2:
                continue
            match = "new" if t == start else ("lost" if gap and t == gap[-1] + 1 else "live")
            people[t].append((tid, box, match))
    frames = []
    k = len(COCO_KEYPOINTS)
    for t in range(CROWD_FRAMES):
        here = people[t]
        boxes = np.array([b for _, b, _ in here], np.float32).reshape(-1, 4)
        kps = np.stack([np.stack([np.linspace(b[0], b[2], k), np.linspace(b[1], b[3], k)], axis=1) for b in boxes]) \
            if here else np.zeros((0, k, 2))
        scores = np.clip(rng.normal(0.995, 0.01, (len(here), k)), 0, 1)
        scores[:, :5] = rng.uniform(0, 0.04, (len(here), 5))
        frames.append(TrackedFrame(t, t / CROWD_FPS, Poses(keypoints=kps, keypoint_scores=scores, boxes=boxes,
                                                           scores=np.full(len(here), 0.9)),
                                   np.array([tid for tid, _, _ in here], np.int64),
                                   sources=np.array(["detector"] * len(here)),
                                   matches=np.array([m for _, _, m in here])))
    return frames


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The crowd's JSON and overlay video written by posetrack's own writers (as ``run --render``
    writes them: ``crowd.json`` and ``crowd.mp4`` side by side), and its report page."""
    from posetrack_cli.core.types import Frame
    from posetrack_cli.io.outputs import OutputSet
    from posetrack_cli.io.render import OverlayConfig, OverlayRenderer

    out = tmp_path_factory.mktemp("crowd")
    street = np.full((CROWD_SIZE[1], CROWD_SIZE[0], 3), 90, np.uint8)
    (out / "work").mkdir()
    with OutputSet(out, "crowd", render=True).open(COCO_KEYPOINTS, fps=CROWD_FPS, work=out / "work",
                                                   draw=OverlayRenderer(OverlayConfig()).draw) as writers:
        for tracked in crowd_frames():
            writers.add(Frame(tracked.frame_index, tracked.timestamp, street), tracked)
            if tracked.frame_index in (0, 1, 50):  # checkpoints: the overlay in segments, joined at the end
                writers.position()
        writers.commit({"command": "run", "frames": CROWD_FRAMES, "source": str(out / "street.mp4"),
                        "stage_seconds": {"decode": 0.4, "detect": 9.1, "flow": 2.2, "pose": 7.5, "track": 0.2}})
    document = json.loads((out / "crowd.json").read_text())
    assert len({a["track_id"] for a in document["annotations"]}) == 75
    with av.open(str(out / "crowd.mp4")) as video:  # frame k at k / fps, across the joined segments
        times = [float(frame.time) for frame in video.decode(video=0)]
    assert times == pytest.approx([k / CROWD_FPS for k in range(CROWD_FRAMES)], abs=1e-3)
    write_report(document, out, name="crowd")  # finds crowd.mp4 in info.outputs
    return document, out / "crowd.report.html"


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201 - playwright's Browser
    """Debian's Chromium, driven by Playwright (no browser of Playwright's own is downloaded)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


def _open(browser, page_file: Path, width: int = 1400):  # noqa: ANN001, ANN202
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(page_file.as_uri())
    return page


# Every text line (a Range's rectangles) and every leaf element (bars, pictures, the video) that is
# rendered (not in a closed <details>): its font size where it holds text, and each pair of boxes that
# overlap by more than a pixel both ways, less a box and what it contains.
_MEASURE = """() => {
  const items = [], small = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim() || !node.parentElement.checkVisibility()) continue;  // closed <details>
    const range = document.createRange(); range.selectNodeContents(node);
    const rects = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0);
    if (!rects.length) continue;
    const size = parseFloat(getComputedStyle(node.parentElement).fontSize);
    if (size < 10) small.push(node.textContent.trim().slice(0, 40) + " " + size + "px");
    rects.forEach(r => items.push({node, r, what: "text '" + node.textContent.trim().slice(0, 30) + "'"}));
  }
  for (const el of document.body.querySelectorAll("*")) {
    if (el.children.length || !el.checkVisibility() || ["BR", "SUMMARY"].includes(el.tagName)) continue;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) items.push({node: el, r, what: el.tagName + "." + el.className});
  }
  const overlaps = [];
  for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {
    const a = items[i], b = items[j];
    if (a.node === b.node || a.node.contains(b.node) || b.node.contains(a.node)) continue;
    const w = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
    const h = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
    if (w > 1 && h > 1) overlaps.push(a.what + " / " + b.what);
  }
  const images = [...document.images].map(im => [im.alt, im.getBoundingClientRect().width, im.naturalWidth]);
  const left = Math.min(...items.map(x => x.r.left)), right = Math.max(...items.map(x => x.r.right));
  return {small, overlaps, images, used: right - left, count: items.length};
}"""


def test_crowd_report_is_legible_at_1400_px(crowd: tuple[dict, Path], browser) -> None:  # noqa: ANN001
    """75 tracks, at 1400 px: every text at 10 px or more, nothing drawn over anything else, the page
    wide (not a 770-pixel column), pictures unshrunk (their 10-point text stays 14 px), the 40 longest
    tracks labelled and the 35 others summarised in one row."""
    document, page_file = crowd
    page = _open(browser, page_file)
    page.wait_for_function("document.getElementById('overlay').readyState >= 1")  # the video's size is known
    found = page.evaluate(_MEASURE)
    assert found["small"] == [], found["small"]
    assert found["overlaps"] == [], found["overlaps"][:20]
    assert found["count"] > 120  # bars and labels were measured, not an empty page
    page.locator("details summary").click()  # the short tracks' list, open
    opened = page.evaluate(_MEASURE)
    assert opened["small"] == [] and opened["overlaps"] == [], opened["overlaps"][:20]
    assert opened["count"] >= found["count"] + 35
    assert found["used"] > 1300, found["used"]
    assert len(found["images"]) == 3 and all(shown >= natural for _, shown, natural in found["images"])  # no video
    assert page.locator(".tl-row.track").count() == TIMELINE_ROWS
    assert page.locator(".tl-row.group .tl-label").inner_text() == "+35 short"
    longest = sorted((len([a for a in document["annotations"] if a["track_id"] == t]), t)
                     for t in {a["track_id"] for a in document["annotations"]})
    labelled = {int(x) for x in page.locator(".tl-row.track").evaluate_all("rows => rows.map(r => r.dataset.track)")}
    assert {t for _, t in longest[-10:]} <= labelled and longest[0][1] not in labelled  # longest in, shortest out
    assert page.locator(".run.reid").count() >= 1
    page.close()


def test_click_on_a_track_seeks_the_overlay_to_its_first_frame(crowd: tuple[dict, Path], browser) -> None:  # noqa: ANN001
    """A click on a track row, and on a short track's chip, sets the overlay video (H.264, written by
    posetrack) to the track's first frame / fps; the page moved without the video says so."""
    document, page_file = crowd
    position = {im["id"]: i for i, im in enumerate(document["images"])}
    first: dict[int, int] = {}
    for a in document["annotations"]:
        first[a["track_id"]] = min(first.get(a["track_id"], CROWD_FRAMES), position[a["image_id"]])
    page = _open(browser, page_file)
    page.wait_for_function("document.getElementById('overlay').readyState >= 1")
    assert page.evaluate("document.getElementById('overlay').duration") == pytest.approx(CROWD_FRAMES / CROWD_FPS,
                                                                                        abs=1 / CROWD_FPS)
    rows = page.locator(".tl-row.track")
    for row in (rows.nth(TIMELINE_ROWS - 1), rows.nth(TIMELINE_ROWS // 2)):
        track = int(row.get_attribute("data-track") or -1)
        assert first[track] > 0
        row.click()
        page.wait_for_function("v => !v.seeking", arg=page.locator("#overlay").element_handle())
        seconds = page.evaluate("document.getElementById('overlay').currentTime")
        assert abs(seconds - first[track] / CROWD_FPS) < 1 / CROWD_FPS, (track, seconds)
        assert page.locator("#now").inner_text().startswith(f"frame {first[track]} ")
    page.locator("details summary").click()
    chip = page.locator(".chip").last
    chip.click()
    page.wait_for_function("v => !v.seeking", arg=page.locator("#overlay").element_handle())
    track = int(chip.get_attribute("data-track") or -1)
    assert abs(page.evaluate("document.getElementById('overlay').currentTime") - first[track] / CROWD_FPS) \
        < 1 / CROWD_FPS
    page.close()
    # the page written to another folder refers to the overlay beside the track file
    result = CliRunner().invoke(main, ["report", str(page_file.parent / "crowd.json"), "-o",
                                       str(page_file.parent / "pages")])
    assert result.exit_code == 0, result.output
    assert '<video id="overlay" src="../crowd.mp4"' in (page_file.parent / "pages" / "crowd.report.html").read_text()
    # the page alone, elsewhere: no video, and a note saying which file it looked for
    moved = page_file.parent.parent / "moved.report.html"
    shutil.copyfile(page_file, moved)
    page = _open(browser, moved)
    page.wait_for_selector(".problem")
    assert page.locator("video").count() == 0 and "crowd.mp4 could not be played" in page.inner_text(".problem")
    page.close()


def test_saturated_scores_fill_the_edge_bins(crowd: tuple[dict, Path]) -> None:
    """Scores piled at 1 and near 0 are the share of poses in the last and first bin, not a line at
    the edge; the confidence picture shows them as its darkest cells, at both ends."""
    document, page_file = crowd
    scores = np.array([a["keypoint_scores"] for a in document["annotations"]])
    shares = score_shares(scores)
    assert shares.shape == (17, 20) and np.allclose(shares.sum(axis=1), 1)
    assert (shares[:5, 0] == 1).all() and (shares[5:, -1] > 0.6).all()
    picture = cv2.imread(str(page_file.parent / "crowd.report-confidence.png"))
    dark = (picture.astype(int).sum(axis=2) < 250).nonzero()[1]  # the saturated cells' deep blue
    assert dark.size and dark.min() < 0.25 * picture.shape[1] and dark.max() > 0.75 * picture.shape[1]
