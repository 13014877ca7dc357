"""Make the README's pictures from the sample video: ``docs/overlay.png`` and ``docs/report.png``.

No model weights can be had where this repository is built, so the poses are not a network's: each
visible person of ``street_5frames.mp4`` got a box by hand in its first and last frame (in between,
interpolated), and a standing figure's 17 joints fitted to the box (seen from behind, so the face
joints score low). ``posetrack track`` then tracks those poses with the real optical flow and
tracker; the overlay is drawn from its JSON with ``OverlayRenderer`` (its last frame is
``docs/overlay.png``) and written as the overlay video with posetrack's own writer, and
``posetrack report --overlay`` draws the report that plays it. ``docs/report.png`` is the whole
page, screenshotted by Playwright in the system Chromium at 1400 pixels wide (the width the page is
laid out for), with the video stopped at the last frame; nothing is cut off (the script checks the
picture's height against the page's).

    python docs/make_images.py [--data ../shared/data] [--work /tmp/posetrack-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from posetrack_cli.core.files import read_json  # noqa: E402
from posetrack_cli.core.types import Frame  # noqa: E402
from posetrack_cli.io.outputs import OverlayWriter, document_to_frames  # noqa: E402
from posetrack_cli.io.render import OverlayConfig, OverlayRenderer  # noqa: E402

PAGE_WIDTH = 1400  # pixels: the report's design width
REPORT_WIDTH = 1000  # pixels of docs/report.png: the page scaled down whole, not cropped

# COCO-17 joints of a person seen from behind, in units of body height, origin at the head top
# centre, x right / y down: the person's left side is on the image's left.
BACK_VIEW = np.array([
    (0.00, 0.07), (-0.025, 0.05), (0.025, 0.05), (-0.05, 0.06), (0.05, 0.06),
    (-0.12, 0.19), (0.12, 0.19), (-0.16, 0.34), (0.16, 0.34), (-0.18, 0.48), (0.18, 0.48),
    (-0.08, 0.53), (0.08, 0.53), (-0.09, 0.74), (0.09, 0.74), (-0.10, 0.96), (0.10, 0.96),
])
FACE = [0, 1, 2]  # hidden from behind: scored low, drawn faded

# Boxes x1, y1, x2, y2 drawn by hand on frames 0 and 4 (960x540); None where the person is gone.
PEOPLE = [
    ((452, 163, 500, 290), (442, 165, 492, 290)),  # man with a backpack
    ((497, 160, 560, 330), (489, 166, 557, 335)),  # woman in black
    ((590, 170, 665, 342), (592, 172, 668, 345)),  # woman with a blue bag
    ((765, 182, 905, 515), (802, 180, 945, 520)),  # woman in white, nearest
    ((872, 172, 915, 352), None),                  # man in purple, leaving on the right
]


def placed_poses(frames: int = 5) -> list[dict]:
    """The people above as COCO results, one per person per frame they are in."""
    results = []
    for first, last in PEOPLE:
        for t in range(frames):
            if last is None and t >= 2:
                continue
            end = last if last is not None else first
            box = np.array(first, float) + (np.array(end, float) - np.array(first, float)) * t / (frames - 1)
            x1, y1, x2, y2 = box
            height = (y2 - y1) / 0.99
            kps = np.empty((17, 3))
            kps[:, 0] = (x1 + x2) / 2 + BACK_VIEW[:, 0] * (x2 - x1) / 0.40
            kps[:, 1] = y1 + BACK_VIEW[:, 1] * height
            scores = np.full(17, 0.85)
            scores[FACE] = 0.2
            kps[:, 2] = scores
            results.append({"image_id": t, "category_id": 1, "keypoints": kps.ravel().round(1).tolist(),
                            "keypoint_scores": scores.tolist(), "score": 0.9,
                            "bbox": [x1, y1, x2 - x1, y2 - y1]})
    return results


def _small_png(image: np.ndarray, path: Path) -> None:
    """``image`` (BGR) as a 256-colour PNG: a third of the bytes, no visible loss for a README."""
    from PIL import Image  # pillow comes with matplotlib (the report extra)

    Image.fromarray(image[..., ::-1]).quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def _screenshot(html: Path, shot: Path, seconds: float) -> None:
    """The whole report page at ``html``, ``PAGE_WIDTH`` wide, its overlay video shown at ``seconds``."""
    from playwright.sync_api import sync_playwright  # the test extra

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("make_images.py needs Chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": PAGE_WIDTH, "height": 900})
        page.goto(html.resolve().as_uri())
        page.wait_for_function("document.getElementById('overlay').readyState >= 2")
        page.evaluate("s => { const v = document.getElementById('overlay'); v.removeAttribute('controls'); "
                      "v.currentTime = s; }", seconds)
        page.wait_for_function("() => { const v = document.getElementById('overlay'); "
                               "return !v.seeking && v.readyState >= 2; }")
        page.wait_for_timeout(300)  # the decoded frame painted
        height = page.evaluate("document.documentElement.scrollHeight")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    taken = cv2.imread(str(shot))
    assert taken.shape[:2] == (height, PAGE_WIDTH), (taken.shape, height)  # the whole page, nothing cut off


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "posetrack-docs")
    args = parser.parse_args()
    video = Path(os.path.relpath(args.data / "video" / "street_5frames.mp4", ROOT))  # as the README's examples
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    poses = work / "hand_poses.json"
    poses.write_text(json.dumps(placed_poses()))
    cli = [sys.executable, "-m", "posetrack_cli"]
    subprocess.run([*cli, "track", str(poses), "--video", str(video), "-o", str(work), "--no-progress"],
                   check=True, cwd=ROOT)
    tracks = work / "street_5frames.tracks.json"  # `posetrack track` names its outputs <name>.tracks.*
    document = read_json(tracks)
    frames, images, _ = document_to_frames(document)
    by_index = {f.frame_index: f for f in frames}
    renderer = OverlayRenderer(OverlayConfig(trail=5))
    capture = cv2.VideoCapture(str(ROOT / video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    overlay = work / "street_5frames.tracks.mp4"  # where `posetrack run --render` would put it
    drawn: list[np.ndarray] = []

    def draw(picture: np.ndarray, tracked: object) -> np.ndarray:
        drawn.append(renderer.draw(picture, by_index.get(len(drawn))))  # None where nobody was tracked
        return drawn[-1]

    writer = OverlayWriter(overlay, fps, draw)
    for entry in images:
        ok, picture = capture.read()
        assert ok, f"cannot read frame {entry['frame_id']} of {video}"
        writer.add(Frame(entry["frame_id"], entry["timestamp"], picture), by_index.get(entry["frame_id"]))
    capture.release()
    writer.finish({})
    writer.close()
    os.replace(writer.temp, overlay)
    image = drawn[-1]
    _small_png(image[120:540, 380:960], ROOT / "docs" / "overlay.png")  # the people, at full resolution
    report = work / "report"
    subprocess.run([*cli, "report", str(tracks), "--video", str(video), "--overlay", str(overlay), "-o", str(report)],
                   check=True, cwd=ROOT)
    html = report / "street_5frames.tracks.report.html"
    shot = work / "report.png"
    _screenshot(html, shot, seconds=(len(images) - 1) / fps)
    page = cv2.imread(str(shot))
    height = round(page.shape[0] * REPORT_WIDTH / page.shape[1])
    _small_png(cv2.resize(page, (REPORT_WIDTH, height), interpolation=cv2.INTER_AREA), ROOT / "docs" / "report.png")
    print("wrote docs/overlay.png and docs/report.png")


if __name__ == "__main__":
    main()
