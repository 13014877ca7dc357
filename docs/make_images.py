"""Make the README's pictures from the sample video: ``docs/overlay.png`` and ``docs/report.png``.

No model weights can be had where this repository is built, so the poses are not a network's: each
visible person of ``street_5frames.mp4`` got a box by hand in its first and last frame (in between,
interpolated), and a standing figure's 17 joints fitted to the box (seen from behind, so the face
joints score low). ``posetrack track`` then tracks those poses with the real optical flow and
tracker; the overlay is drawn from its JSON with ``OverlayRenderer``, and ``posetrack report``
draws the report, screenshotted with headless Chromium.

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
from posetrack_cli.io.outputs import document_to_frames  # noqa: E402
from posetrack_cli.io.render import OverlayConfig, OverlayRenderer  # noqa: E402

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
    image = None
    for entry in images:
        ok, picture = capture.read()
        assert ok, f"cannot read frame {entry['frame_id']} of {video}"
        image = renderer.draw(picture, by_index.get(entry["frame_id"]))
    capture.release()
    assert image is not None
    _small_png(image[120:540, 380:960], ROOT / "docs" / "overlay.png")  # the people, at full resolution
    report = work / "report"
    subprocess.run([*cli, "report", str(tracks), "--video", str(video), "-o", str(report)],
                   check=True, cwd=ROOT)
    html = report / "street_5frames.tracks.report.html"
    profile = Path(tempfile.mkdtemp(prefix="posetrack-chromium-"))
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                    "--hide-scrollbars", f"--screenshot={work / 'report.png'}", "--window-size=1000,1400",
                    html.resolve().as_uri()], check=True, capture_output=True)
    shutil.rmtree(profile, ignore_errors=True)
    shot = cv2.imread(str(work / "report.png"))
    _small_png(cv2.resize(shot, (700, 980), interpolation=cv2.INTER_AREA), ROOT / "docs" / "report.png")
    print("wrote docs/overlay.png and docs/report.png")


if __name__ == "__main__":
    main()
