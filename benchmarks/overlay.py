"""What the pictures of a result cost: overlay drawing per frame, and a report and the exports of a long video.

Prints (1) ``OverlayRenderer.draw`` ms per frame (wall and CPU) at 640x360, 1280x720 and 1920x1080
for 5 and 20 people, with the default overlay, without fading doubted joints (``dim`` 0, so they
are not drawn), with a 30-frame trail, and with boxes and ids only,
the variants interleaved frame by frame so they meet the same machine load; and (2) the seconds of
``write_report`` (without the video) and of ``write_exports`` (all three formats) for a track file
of ``--frames`` frames with 10 people each. Medians over the frames or repeats.

    python benchmarks/overlay.py [--frames 3000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the shipped-writer helper

from posetrack_cli.core.keypoints import COCO_KEYPOINTS  # noqa: E402
from posetrack_cli.core.types import Poses, TrackedFrame  # noqa: E402
from posetrack_cli.io.exports import write_exports  # noqa: E402
from posetrack_cli.io.render import OverlayConfig, OverlayRenderer  # noqa: E402

from helpers import write_track_document  # noqa: E402

SIZES = ((640, 360), (1280, 720), (1920, 1080))
VARIANTS = {"default": OverlayConfig(), "no fading": OverlayConfig(dim=0.0), "trail 30": OverlayConfig(trail=30),
            "boxes+ids": OverlayConfig(skeleton=False)}


def people_frames(width: int, height: int, people: int, frames: int, rng: np.random.Generator) -> list[TrackedFrame]:
    """People walking about the frame, a quarter of their joints below the threshold."""
    scale = height / 3
    centres = rng.uniform([0.1 * width, 0.3 * height], [0.9 * width, 0.7 * height], (people, 2))
    offsets = rng.normal(0, 0.25, (people, 17, 2)) * scale
    out = []
    for t in range(frames):
        centres += rng.normal(0, 2, centres.shape)
        kps = centres[:, None] + offsets
        boxes = np.concatenate([kps.min(1), kps.max(1)], 1)
        scores = rng.uniform(0.2, 1.0, (people, 17))
        out.append(TrackedFrame(t, t / 25, Poses(kps, scores, boxes, np.ones(people)), np.arange(people)))
    return out


def draw_table(frames: int) -> None:
    rng = np.random.default_rng(0)
    print(f"{'size':>10} {'people':>6} {'overlay':>10} {'ms/frame':>9} {'CPU ms/frame':>13}")
    for width, height in SIZES:
        image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        for people in (5, 20):
            tracked = people_frames(width, height, people, frames, rng)
            renderers = {name: OverlayRenderer(cfg) for name, cfg in VARIANTS.items()}
            wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
            cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
            for frame in tracked:
                for name, renderer in renderers.items():  # interleaved: the same load for each variant
                    w0, c0 = time.perf_counter(), time.process_time()
                    renderer.draw(image, frame)
                    wall[name].append(time.perf_counter() - w0)
                    cpu[name].append(time.process_time() - c0)
            for name in VARIANTS:
                print(f"{f'{width}x{height}':>10} {people:>6} {name:>10} {1000 * statistics.median(wall[name]):>9.2f} "
                      f"{1000 * statistics.median(cpu[name]):>13.2f}")


def files_table(frames: int, repeats: int) -> None:
    rng = np.random.default_rng(1)
    tracked = people_frames(1280, 720, 10, frames, rng)
    with tempfile.TemporaryDirectory() as folder:
        doc = write_track_document(Path(folder) / "run", "clip", tracked, [(1280, 720, None)] * frames, COCO_KEYPOINTS,
                                   {"source": "clip.mp4", "stage_seconds": {"decode": 1.0, "pose": 2.0}})
        from posetrack_cli.io.report import write_report

        times: dict[str, list[float]] = {"report (no video)": [], "exports (3 formats)": []}
        for r in range(repeats):
            start = time.perf_counter()
            write_report(doc, Path(folder) / f"report{r}", name="clip")
            times["report (no video)"].append(time.perf_counter() - start)
            start = time.perf_counter()
            write_exports(doc, Path(folder) / f"exports{r}", "clip")
            times["exports (3 formats)"].append(time.perf_counter() - start)
    print(f"\n{frames} frames x 10 people ({len(doc['annotations'])} poses)")
    print(f"{'file':>20} {'seconds':>8}")
    for name, values in times.items():
        print(f"{name:>20} {statistics.median(values):>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000, help="frames of the track file for (2)")
    parser.add_argument("--draw-frames", type=int, default=60, help="frames drawn per size and people count")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, OpenCV {cv2.__version__}")
    draw_table(args.draw_frames)
    files_table(args.frames, args.repeats)


if __name__ == "__main__":
    main()
