"""Cutting the pose network's input crops: one cv2.warpAffine per person against one batched grid_sample.

``posetrack_cli.models.crops`` has both (the tests check they sample the same pixels); the estimator uses
warpAffine on a CPU and grid_sample on a GPU. This prints the time per frame of each, up to the
float32 ``(N, 3, 256, 192)`` batch on the device, for 1, 5 and 20 people on 640x360 and 1920x1080
frames. Medians over the repeats.

    python benchmarks/crops.py [--repeats 30] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import cv2
import numpy as np
import torch

from posetrack_cli.core.geometry import boxes_to_windows, crop_transforms, invert_affine
from posetrack_cli.core.paper import CROP_PADDING
from posetrack_cli.models.crops import warp_crops_cv2, warp_crops_torch

SIZE = (192, 256)  # crop width, height


def median_ms(fn: Callable[..., object], *fn_args: object, repeats: int) -> float:
    """Median milliseconds of ``fn(*fn_args)`` after one warm-up call."""
    fn(*fn_args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*fn_args)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    print(f"# crops: 256x192, {device}, {platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, OpenCV {cv2.__version__}, median of {args.repeats}")
    print(f"{'frame':>10} {'people':>6} {'warpAffine each ms':>19} {'grid_sample ms':>15} "
          f"{'grid_sample / warpAffine':>25}")
    for width, height in ((640, 360), (1920, 1080)):
        frame = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        for people in (1, 5, 20):
            xy = rng.uniform([0, 0], [width * 0.8, height * 0.5], (people, 2))
            boxes = np.concatenate([xy, xy + [width * 0.1, height * 0.4]], axis=1).astype(np.float32)
            to_crop = crop_transforms(*boxes_to_windows(boxes, SIZE[0] / SIZE[1], CROP_PADDING), SIZE)
            to_frame = invert_affine(to_crop)
            each = median_ms(lambda f, t: warp_crops_cv2(f, t, SIZE).to(device).float(), frame, to_crop,
                             repeats=args.repeats)
            batched = median_ms(warp_crops_torch, frame, to_frame, SIZE, device, repeats=args.repeats)
            print(f"{f'{width}x{height}':>10} {people:>6} {each:>19.2f} {batched:>15.2f} {batched / each:>24.2f}x")


if __name__ == "__main__":
    main()
