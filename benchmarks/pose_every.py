"""What running the pose network on a person only every N-th frame costs in accuracy, and saves in crops.

``--pose-every N`` lets flow carry a person's joints between pose-network passes (the paper's own
joint propagation, step 2, used for the pose and not only for the box), refreshing sooner after a
large step or on a weak pose (posetrack_cli/tracking/carry.py). Its cost is measured here where
the truth is known: a ResNet-18 at 64x64 is trained from scratch on rendered figures (the
recipe of the tests' ``trained_on_figures``, with more images and epochs), then the real pipeline
(DIS flow, flow boxes, NMS, the trained network on every crop it is given, the tracker) runs over a
rendered clip of figures walking to and fro at three speeds while swinging arms and legs, with the
true boxes as detections on every frame (as ``fast``) and on every 5th (as ``realtime``).

Per setting: joint error against the truth (median and 90th percentile, in pixels and in % of
the figure's height), PCK (joints within 5 % of the height), the error against the same
pipeline with ``pose_every=1`` (what carrying changes), and pose-network crops per frame.

    python benchmarks/pose_every.py [--frames 120] [--epochs 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_line  # noqa: E402  (beside this script)

from synthetic_people import render_dataset, walking_figures  # noqa: E402  (the tests' renderer)


class Clip:
    """The rendered clip as a pipeline source."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        from posetrack_cli.core.types import Frame

        self.items = [Frame(i, i / 30, f) for i, f in enumerate(frames)]
        self.path, self.frame_count, self.fps, self.missing = "walkers", len(frames), 30.0, []

    def frames(self):  # noqa: ANN201 - the Source protocol's iterator
        return iter(self.items)

    def request_stop(self, reason: str) -> None:
        pass

    def close(self) -> None:
        pass


class Boxes:
    """The true boxes of every frame, as a boxes file gives them."""

    def __init__(self, boxes: np.ndarray) -> None:
        self.boxes = boxes

    def get(self, index: int):  # noqa: ANN201
        from posetrack_cli.core.types import Detections

        return Detections(self.boxes[index].astype(np.float32), np.full(len(self.boxes[index]), 0.98, np.float32))


class Counting:
    """The estimator, counting the crops it is given."""

    def __init__(self, estimator) -> None:  # noqa: ANN001
        self.estimator, self.crops = estimator, 0
        self.num_keypoints = estimator.num_keypoints

    def estimate(self, image, detections):  # noqa: ANN001, ANN201
        self.crops += len(detections)
        return self.estimator.estimate(image, detections)


def train_network(folder: Path, images: int, epochs: int) -> Path:
    import torch

    from posetrack_cli.training.data import load_keypoint_annotations
    from posetrack_cli.training.loop import RunOptions, TrainConfig, train

    annotations = render_dataset(folder / "images", images=images, size=(192, 160), seed=0)
    samples, _ = load_keypoint_annotations([annotations])
    config = TrainConfig(depth=18, input_size=(64, 64), init="scratch", epochs=epochs,
                         lr_steps=(int(epochs * 0.7),), batch_size=8, scale_factor=0.0, rotation_factor=0.0)
    torch.set_num_threads(1)
    result = train(config, samples, folder / "run", options=RunOptions(device="cpu", workers=0, progress=False),
                   log=lambda _: None, warn=lambda _: None)
    return Path(result.checkpoint)


def run(estimator, frames: list[np.ndarray], boxes: np.ndarray, detect_every: int, pose_every: int,
        flow: str) -> tuple[np.ndarray, float, float]:
    """Keypoints ``(T, P, K, 2)`` of each true figure (NaN where nobody was matched to it), crops per
    frame, and CPU ms per frame."""
    from posetrack_cli.models.flow import make_flow
    from posetrack_cli.run.pipeline import Pipeline, PipelineConfig
    from posetrack_cli.tracking.similarity import iou_matrix

    counting = Counting(estimator)
    pipeline = Pipeline(counting, make_flow(flow), PipelineConfig(detect_every=detect_every, pose_every=pose_every,
                                                                  overlap=False))
    out = np.full((len(frames), boxes.shape[1], 17, 2), np.nan)
    start = time.process_time()
    for frame, tracked in pipeline.track(Clip(frames), boxes=Boxes(boxes)):
        if len(tracked):
            iou = iou_matrix(tracked.poses.boxes, boxes[frame.index])
            for row, who in enumerate(iou.argmax(1)):
                if iou[row, who] > 0.3:
                    out[frame.index, who] = tracked.poses.keypoints[row]
    ms = (time.process_time() - start) * 1000 / len(frames)
    return out, counting.crops / len(frames), ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--flow", default="dis-ultrafast")
    parser.add_argument("--checkpoint", type=Path, help="a network trained before (skips training)")
    args = parser.parse_args()

    import torch

    from posetrack_cli.inference.estimator import PoseEstimator

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        checkpoint = args.checkpoint or train_network(Path(tmp), args.images, args.epochs)
        trained_s = time.perf_counter() - t0
        estimator = PoseEstimator.from_checkpoint(checkpoint, device="cpu", runtime="torch", flip_test=False)
        frames, truth, boxes = walking_figures(args.frames)
        height = (truth[..., 1].max(-1) - truth[..., 1].min(-1))[..., None]  # (T, P, 1)
        print(f"# CPU: {cpu_line()}; 1 thread")
        print(f"# pose_every: ResNet-18 64x64 trained on {args.images} rendered images x {args.epochs} epochs "
              f"({'given' if args.checkpoint else f'{trained_s:.0f} s'}); {args.frames} frames of 3 walkers "
              f"(steps of 1.5/3/5 px a frame on ~{np.median(height):.0f}-px figures, limbs swinging), "
              f"true boxes, {args.flow} flow")
        print(f"{'detect_every':>12} {'pose_every':>10} {'crops/frame':>11} {'median px':>9} {'p90 px':>7} "
              f"{'median %h':>9} {'PCK@5%h':>8} {'vs every px':>11} {'found %':>8} {'CPU ms/frame':>12}")
        for detect_every in (1, 5):
            reference = None
            for pose_every in (1, 2, 3, 4, 5):
                got, crops, ms = run(estimator, frames, boxes, detect_every, pose_every, args.flow)
                err = np.linalg.norm(got - truth, axis=-1)  # (T, P, K), NaN where not found
                rel = err / height
                found = np.isfinite(err).mean()
                if reference is None:
                    reference = got
                vs = np.nanmedian(np.linalg.norm(got - reference, axis=-1))
                print(f"{detect_every:>12} {pose_every:>10} {crops:>11.2f} {np.nanmedian(err):>9.2f} "
                      f"{np.nanpercentile(err, 90):>7.2f} {100 * np.nanmedian(rel):>9.2f} "
                      f"{100 * np.nanmean(rel < 0.05):>8.1f} {vs:>11.2f} {100 * found:>8.1f} {ms:>12.1f}")


if __name__ == "__main__":
    main()
