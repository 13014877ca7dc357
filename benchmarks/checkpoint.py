"""What checkpoints cost a run of a video, and what resuming costs.

Prints (1) the time of one checkpoint -- the frame loop's state (a tracker with its queue and
lost memory, smoothing filters, the people carried by flow), the writers' parts flushed to disk,
the source's position, the overlay's trails, saved as ``state.json`` + ``state.npz`` -- after 1k,
10k and 50k frames of 20 people (the state and the parts grow with the video), with its share of
a run at the default interval (``--checkpoint-every 60``) and at 1 s, against the per-frame cost
of posetrack's presets on this machine from benchmarks/README.md; and (2) the cost of reading a
video again up to the frame a resumed run goes on after (decoding only), per frame at 1280x720.
Interleaved repeats, medians, wall and CPU time; one thread.

    python benchmarks/checkpoint.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import Frame, Poses
from posetrack_cli.io.outputs import OutputSet
from posetrack_cli.io.render import OverlayRenderer
from posetrack_cli.io.video import open_source
from posetrack_cli.run.checkpoints import save_checkpoint, work_folder
from posetrack_cli.run.frame_tracker import FrameTracker
from posetrack_cli.run.pipeline import LoopState
from posetrack_cli.run.settings import DEFAULT_CHECKPOINT_EVERY
from posetrack_cli.tracking.smoothing import SmoothingConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test video writer

from machine import cpu_line  # noqa: E402  (beside this script)

from helpers import write_video  # noqa: E402

PEOPLE = 20
LENGTHS = (1_000, 10_000, 50_000)


def loop_after(frames: int, out: Path, rng: np.random.Generator) -> tuple[LoopState, object, OverlayRenderer]:
    """A frame loop ``frames`` frames into a video of 20 people drifting about (10 % of them missed
    in each frame, so tracks go lost and come back), with writers that have written every frame."""
    tracker = FrameTracker(flow=None, smoothing=SmoothingConfig("one-euro"))
    loop = LoopState(tracker, Poses.empty(17))
    renderer = OverlayRenderer()
    work = work_folder(out, "clip")
    work.mkdir(parents=True)
    writers = OutputSet(out, "clip").open(COCO_KEYPOINTS, work=work)
    centres = rng.uniform([100, 100], [1180, 620], (PEOPLE, 2))
    offsets = rng.normal(0, 40, (PEOPLE, 17, 2))
    image = np.zeros((720, 1280, 3), np.uint8)
    for t in range(frames):
        centres += rng.normal(0, 3, centres.shape)
        seen = rng.random(PEOPLE) >= 0.1
        kps = (centres[:, None] + offsets)[seen]
        poses = Poses.from_keypoints(kps, rng.uniform(0.3, 1, (len(kps), 17)))
        tracked = tracker.update(None, poses, timestamp=t / 30)
        writers.add(Frame(t, t / 30, image), tracked)
        loop.carried, loop.frames, loop.last_index = poses, loop.frames + 1, t
        loop.ids.update(tracked.track_ids.tolist())
    return loop, writers, renderer


def checkpoint_ms(repeats: int) -> dict[int, tuple[float, float, int]]:
    """Median wall and CPU ms of one checkpoint, and the state's size in bytes, after each length."""
    rng = np.random.default_rng(0)
    results: dict[int, tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        states = {n: loop_after(n, Path(folder) / str(n), rng) for n in LENGTHS}
        wall: dict[int, list[float]] = {n: [] for n in LENGTHS}
        cpu: dict[int, list[float]] = {n: [] for n in LENGTHS}
        for r in range(repeats):
            for n in LENGTHS[r % len(LENGTHS):] + LENGTHS[:r % len(LENGTHS)]:  # who goes first rotates
                loop, writers, renderer = states[n]
                work = work_folder(Path(folder) / str(n), "clip")
                start, start_cpu = time.perf_counter(), time.process_time()
                save_checkpoint(work, {"key": "k", "fingerprint": "f"}, {
                    "source": {"index": loop.last_index, "pts": loop.last_index * 512}, "loop": loop.state(),
                    "writers": writers.position(), "renderer": renderer.state(), "runtime": None})  # type: ignore[attr-defined]
                wall[n].append(time.perf_counter() - start)
                cpu[n].append(time.process_time() - start_cpu)
        for n in LENGTHS:
            work = work_folder(Path(folder) / str(n), "clip")
            size = sum(p.stat().st_size for p in work.glob("state*"))
            results[n] = (statistics.median(wall[n]) * 1e3, statistics.median(cpu[n]) * 1e3, size)
            states[n][1].abort()  # type: ignore[attr-defined]
    return results


def reread_ms(repeats: int) -> tuple[float, float]:
    """Median wall and CPU ms per frame of reading a 1280x720 mp4 up to a frame (decoding only)."""
    frames = [np.random.default_rng(i).integers(0, 256, (720, 1280, 3), dtype=np.uint8) for i in range(4)]
    clip = [cv2.GaussianBlur(frames[i % 4], (0, 0), 3) for i in range(120)]
    with tempfile.TemporaryDirectory() as folder:
        video = write_video(Path(folder) / "clip.mp4", clip, fps=30)
        wall, cpu = [], []
        for _ in range(repeats):
            source = open_source(video)
            position = None
            for frame in source.frames():
                position = source.position(frame.index)
            source.close()
            source = open_source(video)
            start, start_cpu = time.perf_counter(), time.process_time()
            source.resume_after(position)  # type: ignore[arg-type]
            wall.append((time.perf_counter() - start) / len(clip))
            cpu.append((time.process_time() - start_cpu) / len(clip))
            source.close()
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--frame-ms", type=float, default=None,
                        help="a run's ms per frame to weigh the checkpoints against (default: the lowest preset "
                             "figure of benchmarks/README.md's table for this kind of CPU, passed by hand)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    print(f"CPU: {cpu_line()}; one thread")
    print()
    print(f"One checkpoint, {PEOPLE} people, state + writers flushed to disk (median of {args.repeats})")
    print("| frames into the video | wall ms | CPU ms | state size | share of a run, every 60 s | every 1 s |")
    print("|---|---|---|---|---|---|")
    for n, (wall, cpu, size) in checkpoint_ms(args.repeats).items():
        print(f"| {n:,} | {wall:.1f} | {cpu:.1f} | {size / 1e6:.2f} MB | {wall / (DEFAULT_CHECKPOINT_EVERY * 1e3):.3%} "
              f"| {wall / 1e3:.2%} |")
    wall, cpu = reread_ms(max(3, args.repeats // 3))
    print()
    print("Resuming: reading the video again up to the frame saved (decoding only), 1280x720 mp4")
    print(f"| per frame | wall {wall:.2f} ms | CPU {cpu:.2f} ms |")
    if args.frame_ms:
        print(f"| share of processing that frame ({args.frame_ms:g} ms) | {wall / args.frame_ms:.1%} | |")


if __name__ == "__main__":
    main()
