"""Tracker and optical-flow cost per frame on this machine.

Prints (1) the tracker's time per frame -- propagating the queue by a given flow field, flow-OKS
against the queue, greedy matching, the lost memory, torso colours, bookkeeping; the flow
computation itself excluded, the duplicate suppression before it and the confirmation of new
tracks after it (what the frame loop holds back) included -- for 5, 20 and 50
people with a full queue, for the paper's tracker and with each addition, and (2) DIS flow time
per frame (grey conversion, downscale to 640 px wide, flow) for each preset at 640x360 and
1280x720. Medians over the repeats.

    python benchmarks/tracker.py [--frames 200] [--repeats 20]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import cv2
import numpy as np
from machine import cpu_line  # beside this script

from posetrack_cli.core.flow_field import FlowField
from posetrack_cli.core.types import Poses
from posetrack_cli.models.flow import DIS_PRESETS, DISFlow
from posetrack_cli.tracking.confirmation import Confirmation
from posetrack_cli.tracking.duplicates import distinct_poses
from posetrack_cli.tracking.tracker import PoseTracker, TrackerConfig

VARIANTS = {
    "paper (TrackerConfig.paper())": (TrackerConfig.paper(), False),
    "+ duplicates, own motion, lost memory": (TrackerConfig(appearance=False), False),
    "+ torso colours (default)": (TrackerConfig(), True),
}


def tracker_ms(people: int, frames: int, rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    """Median wall and CPU ms per ``update`` for each variant, on one sequence of people drifting a
    few pixels per frame, each missed by the estimator in 10 % of frames (so tracks go lost and are
    re-found). The variants take turns on every frame, in a rotating order (on a loaded machine the
    one that always went last was preempted most)."""
    centres = rng.uniform([100, 100], [1180, 620], (people, 2))
    offsets = rng.normal(0, 40, (people, 17, 2))
    field = FlowField(rng.normal(0, 2, (360, 640, 2)).astype(np.float32), (2.0, 2.0))
    image = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    trackers = {name: (PoseTracker(config), with_image) for name, (config, with_image) in VARIANTS.items()}
    confirms: dict[str, Confirmation[int]] = {name: Confirmation(config.confirm_frames)
                                              for name, (config, _) in VARIANTS.items()}
    wall: dict[str, list[float]] = {name: [] for name in trackers}
    cpu: dict[str, list[float]] = {name: [] for name in trackers}
    for t in range(frames):
        centres += rng.normal(0, 3, centres.shape)
        seen = rng.random(people) >= 0.1
        kps = (centres[:, None] + offsets)[seen]
        boxes = np.concatenate([kps.min(1), kps.max(1)], 1)
        poses = Poses(kps, rng.uniform(0.3, 1, (len(kps), 17)), boxes, np.ones(len(kps)))
        turn = list(trackers.items())
        for name, (tracker, with_image) in turn[t % len(turn):] + turn[:t % len(turn)]:  # who goes first rotates
            start, start_cpu = time.perf_counter(), time.process_time()
            keep = distinct_poses(poses, tracker.sigmas, max_oks=tracker.config.duplicate_oks,
                                  joint_threshold=tracker.config.joint_threshold)  # as FrameTracker does
            ids = tracker.update(poses[keep], field, timestamp=t / 30, image=image if with_image else None)
            confirms[name].push(t, ids[ids >= 0])  # as the frame loop does
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: (statistics.median(wall[name][10:]) * 1e3, statistics.median(cpu[name][10:]) * 1e3)
            for name in trackers}  # skip the queue filling up


def flow_ms(preset: str, size: tuple[int, int], repeats: int, rng: np.random.Generator) -> float:
    w, h = size
    scene = cv2.GaussianBlur(rng.integers(0, 255, (h + 40, w + 40, 3), dtype=np.uint8), (0, 0), 2)
    a, b = scene[20:20 + h, 20:20 + w].copy(), scene[14:14 + h, 11:11 + w].copy()
    flow = DISFlow(preset)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        flow.compute(flow.prepare(a), flow.prepare(b))
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cv2.setNumThreads(1)  # per-frame cost on one core, as the pipeline's tracking step runs
    print(f"# CPU: {cpu_line()}; one thread (torch, OpenCV)")
    print(f"# tracker: {platform.machine()}, OpenCV {cv2.__version__}, "
          f"L_Q={TrackerConfig().queue_length}, flow-oks, 10 % of poses missed per frame, "
          f"median of {args.frames - 10} frames")
    print(f"{'people':>6} {'variant':<37} {'ms/frame':>9} {'CPU ms/frame':>13}")
    for people in (5, 20, 50):
        for name, (ms, cpu_ms) in tracker_ms(people, args.frames, rng).items():
            print(f"{people:>6} {name:<37} {ms:>9.3f} {cpu_ms:>13.3f}")
    print()
    print(f"# DIS flow per frame (grey, downscale to <=640 wide, flow), median of {args.repeats}")
    print(f"{'preset':<10} {'640x360 ms':>11} {'1280x720 ms':>12}")
    for preset in DIS_PRESETS:
        small = flow_ms(preset, (640, 360), args.repeats, rng)
        large = flow_ms(preset, (1280, 720), args.repeats, rng)
        print(f"{preset:<10} {small:>11.1f} {large:>12.1f}")


if __name__ == "__main__":
    main()
