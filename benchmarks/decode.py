"""Video decoding: posetrack's PyAV source against OpenCV's FFmpeg capture, per frame.

posetrack decodes video files with PyAV (it reports each frame's own size, which OpenCV's capture
hides by stretching). This measures what that costs: both decode the same files to BGR arrays,
interleaved round by round, each with FFmpeg's own decoder threads (as posetrack runs them);
medians of the rounds, process CPU time beside wall time.

    python benchmarks/decode.py [--rounds 5] [--frames 150]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test renderer

from posetrack_cli.io.video import open_source  # noqa: E402

from helpers import walkers, write_video  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "street_5frames.mp4"


def opencv_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def posetrack_frames(path: Path) -> int:
    source = open_source(path)
    try:
        return sum(1 for _ in source.frames())
    finally:
        source.close()


def timed(decode: Callable[[Path], int], path: Path) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    frames = decode(path)
    return time.perf_counter() - wall, time.process_time() - cpu, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = {}
        frames = walkers(frames=args.frames)
        clips["320x240 mp4v"] = write_video(Path(tmp) / "walk.mp4", frames, fps=25)
        big = [cv2.resize(f, (1280, 720)) for f in frames]
        clips["1280x720 mp4v"] = write_video(Path(tmp) / "walk720.mp4", big, fps=25)
        clips["1280x720 MJPG"] = write_video(Path(tmp) / "walk720.avi", big, fps=25, fourcc="MJPG")
        if SAMPLE.is_file():
            clips["960x540 h264 (sample)"] = SAMPLE
        print(f"{'clip':24s} {'decoder':10s} {'frames':>6s} {'wall ms/frame':>14s} {'cpu ms/frame':>13s}")
        for name, path in clips.items():
            results: dict[str, list[tuple[float, float, int]]] = {"opencv": [], "posetrack": []}
            for _ in range(args.rounds):
                for decoder, fn in (("opencv", opencv_frames), ("posetrack", posetrack_frames)):
                    results[decoder].append(timed(fn, path))
            for decoder, runs in results.items():
                n = runs[0][2]
                wall = statistics.median(r[0] for r in runs) / n * 1000
                cpu = statistics.median(r[1] for r in runs) / n * 1000
                print(f"{name:24s} {decoder:10s} {n:6d} {wall:14.2f} {cpu:13.2f}")


if __name__ == "__main__":
    main()
