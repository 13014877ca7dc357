"""End-to-end `posetrack run` pipeline cost on this machine, per stage, and its memory use.

Part 1 runs the real Pipeline (decode thread, detector, DIS flow, flow boxes + NMS, top-down pose
network with flip test, tracker, streaming writer) on a rendered 640x360 clip with N people, for
each preset's architectures at their real input sizes. Weights are random (none can be
downloaded here; speed does not depend on their values), so the detector runs its real forward
pass but hands the pipeline the clip's true person boxes, and the pose network runs its real forward
on every box but hands on the people's true joints, so the flow boxes, NMS and tracker see N people
as they would on a real clip. (With random weights all 1,000 region proposals reach the detector's
box head, which trained weights prune, so detection here is an upper bound.) It prints ms/frame per
stage, end-to-end fps, and the ratio of end-to-end time to the sum of the model stages (detect +
flow + crops/pose): the pipeline's own overhead.

Part 2 runs a light configuration (boxes given, ResNet-18 at 64x64, no flip) on 100 and 1,000
frames, each in a fresh process, and prints resident memory when the video starts and its peak
while the video runs (Linux's VmHWM, reset at the start): streaming must keep it flat.

    python benchmarks/pipeline.py [--frames 10] [--people 5]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test renderer

from posetrack_cli.core.keypoints import COCO_KEYPOINTS  # noqa: E402
from posetrack_cli.core.types import Detections  # noqa: E402
from posetrack_cli.inference.config import EstimatorConfig
from posetrack_cli.inference.detector import PersonDetector
from posetrack_cli.inference.estimator import PoseEstimator
from posetrack_cli.io.outputs import OutputSet  # noqa: E402
from posetrack_cli.io.video import open_source  # noqa: E402
from posetrack_cli.models.checkpoints import InputNorm  # noqa: E402
from posetrack_cli.models.detectors import build_detector
from posetrack_cli.models.flow import make_flow  # noqa: E402
from posetrack_cli.models.pose_resnet import pose_resnet  # noqa: E402
from posetrack_cli.models.weights import load_manifest  # noqa: E402
from posetrack_cli.run.pipeline import Pipeline, PipelineConfig  # noqa: E402
from posetrack_cli.run.presets import PRESETS  # noqa: E402

from synthetic import Person, render  # noqa: E402

SIZE = (640, 360)


def make_clip(path: Path, frames: int, people: int) -> list[Person]:
    """A rendered mp4 of ``people`` walkers; returns them (their boxes are the ground truth)."""
    rng = np.random.default_rng(0)
    t = np.arange(frames, dtype=np.float32)[:, None]
    crowd = []
    for i in range(people):  # walking to and fro, so that nobody leaves however long the clip
        start = np.array([rng.uniform(60, 500), rng.uniform(5, 180)], np.float32)
        swing = np.array([rng.uniform(20, 60), rng.uniform(0, 10)], np.float32)
        walk = start + swing * np.sin(2 * np.pi * t / rng.uniform(60, 120) + rng.uniform(0, 2 * np.pi))
        crowd.append(Person(rng.uniform(110, 160), walk, seed=i))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, SIZE)
    chunk = 50  # render in chunks: memory of this script stays small too
    for start in range(0, frames, chunk):
        n = min(chunk, frames - start)
        shifted = [Person(p.height, p.path[start:start + n], p.seed) for p in crowd]
        for frame in render(shifted, n, SIZE):
            writer.write(frame)
    writer.release()
    return crowd


class TimedTruthDetector:
    """Runs a real detector forward (timed by the pipeline) and returns the clip's true boxes."""

    def __init__(self, detector: PersonDetector, crowd: list[Person]) -> None:
        self.detector, self.crowd, self.name, self.t = detector, crowd, detector.name, -1

    def detect(self, frames: list[np.ndarray]) -> list[Detections]:
        self.detector.detect(frames)
        self.t += 1
        boxes = np.stack([p.box(self.t) for p in self.crowd])
        return [Detections(boxes, np.full(len(boxes), 0.99))]


class TruthPoses:
    """Runs the real pose network (timed) and returns the people's true joints for each box.

    Random weights put joints anywhere, and flow boxes around such joints would add phantom
    people frame after frame; with true joints the flow boxes land on the real people and NMS
    merges them with the detections, so every frame costs what N people cost.
    """

    def __init__(self, estimator: PoseEstimator, crowd: list[Person]) -> None:
        self.estimator, self.crowd, self.t = estimator, crowd, -1
        self.num_keypoints = estimator.num_keypoints

    def estimate(self, frame: np.ndarray, detections: Detections):  # noqa: ANN201 - Poses
        poses = self.estimator.estimate(frame, detections)
        self.t += 1
        truth = np.stack([p.box(self.t) for p in self.crowd])
        centres = (detections.boxes[:, None, :2] + detections.boxes[:, None, 2:]) / 2
        nearest = np.linalg.norm(centres - (truth[None, :, :2] + truth[None, :, 2:]) / 2, axis=2).argmin(1)
        keypoints = np.stack([self.crowd[i].keypoints(self.t) for i in nearest]) if len(nearest) else poses.keypoints
        return type(poses)(keypoints, np.full_like(poses.keypoint_scores, 0.9), poses.boxes, poses.scores)


class TruthBoxes:
    name = "truth"

    def __init__(self, crowd: list[Person]) -> None:
        self.crowd = crowd

    def get(self, index: int) -> Detections:
        boxes = np.stack([p.box(index) for p in self.crowd])
        return Detections(boxes, np.full(len(boxes), 0.99))


def random_estimator(depth: int, input_size: tuple[int, int], flip: bool) -> PoseEstimator:
    model = pose_resnet(depth=depth)
    return PoseEstimator(model, norm=InputNorm("rgb"), keypoint_names=COCO_KEYPOINTS,
                         config=EstimatorConfig(input_size=input_size, flip_test=flip, device="cpu"))


def run_preset(name: str, clip: Path, crowd: list[Person], out: Path, **config: object) -> dict[str, float]:
    preset = PRESETS[name]
    entry = load_manifest()[preset.pose]
    weights = out / f"{preset.detector}.pth"
    torch.save(build_detector(preset.detector).state_dict(), weights)
    detector = TimedTruthDetector(PersonDetector(preset.detector, weights), crowd)
    if "mobilenet" in preset.pose:
        from posetrack_cli.models.pose_mobilenetv2 import pose_mobilenetv2

        model = PoseEstimator(pose_mobilenetv2(), norm=InputNorm("rgb"), keypoint_names=COCO_KEYPOINTS,
                              config=EstimatorConfig(input_size=entry.input_size, device="cpu"))
    else:
        model = random_estimator(int(preset.pose.split("resnet")[1].split("_")[0]), entry.input_size, True)
    estimator = TruthPoses(model, crowd)
    pipeline = Pipeline(estimator, make_flow(preset.flow), PipelineConfig(**config), detector)
    source = open_source(clip)
    with OutputSet(out, name).open(COCO_KEYPOINTS) as writer:
        result = pipeline.run(source, writer)
        writer.commit({"frames": result.frames})
    source.close()
    times = {k: v / result.frames * 1e3 for k, v in result.times.as_dict().items()}
    times["total"] = result.seconds / result.frames * 1e3
    return times


def rss_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_run(frames: int) -> None:
    """Child process: process ``frames`` frames with a light configuration; print resident memory
    when the video starts and its peak while the video is processed, in MiB."""
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        crowd = make_clip(clip, frames, 5)
        pipeline = Pipeline(TruthPoses(random_estimator(18, (64, 64), False), crowd), make_flow("dis-ultrafast"),
                            PipelineConfig(overlap=False))
        source = open_source(clip)
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak: measure the video alone
        start = rss_mib("VmRSS")
        with OutputSet(Path(tmp), "clip").open(COCO_KEYPOINTS) as writer:
            result = pipeline.run(source, writer, boxes=TruthBoxes(crowd))
            writer.commit({"frames": result.frames})
        assert result.frames == frames
        peak = rss_mib("VmHWM")
    print(f"{start:.1f} {peak:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--presets", nargs="+", default=sorted(PRESETS))
    parser.add_argument("--memory-frames", type=int, nargs=2, default=(100, 1000))
    parser.add_argument("--memory-run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_run:
        memory_run(args.memory_run)
        return

    print(f"# pipeline: {SIZE[0]}x{SIZE[1]}, {args.people} people, {args.frames} frames, CPU "
          f"({platform.machine()}, {torch.get_num_threads()} threads), torch {torch.__version__}, flip test on",
          flush=True)
    header = ["run", "decode", "detect", "flow", "crops+pose", "track", "write", "end-to-end", "fps", "e2e/models",
              "e2e/slowest"]
    print(f"{header[0]:<34}" + " ".join(f"{h:>11}" for h in header[1:]), flush=True)
    # Stages one after another unless the label says --overlap, so each option is seen alone.
    runs = [(f"{name} --no-overlap", name, {"overlap": False}) for name in args.presets]
    if "fast" in args.presets:  # what each speed option does, on the CPU preset
        runs += [("fast --overlap", "fast", {"overlap": True}),
                 ("fast --no-overlap --detect-every 5", "fast", {"overlap": False, "detect_every": 5})]
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        crowd = make_clip(clip, args.frames, args.people)
        for label, name, config in runs:
            t = run_preset(name, clip, crowd, Path(tmp), **config)
            models = t["detect"] + t["flow"] + t["pose"]
            # The dependent chains: decode | detect -> flow | crops+pose -> track | write.
            slowest = max(t["decode"], t["detect"] + t["flow"], t["pose"] + t["track"], t["write"])
            row = [t["decode"], t["detect"], t["flow"], t["pose"], t["track"], t["write"], t["total"]]
            print(f"{label:<34}" + " ".join(f"{v:>11.1f}" for v in row)
                  + f" {1000 / t['total']:>11.3f} {t['total'] / models:>11.3f} {t['total'] / slowest:>11.3f}",
                  flush=True)
    print("(ms per frame; e2e/models = end-to-end / (detect + flow + crops+pose); e2e/slowest = end-to-end /"
          " the slowest chain of dependent work; stage times overlap when threads run them together)")
    print()
    print("# peak resident memory, light configuration (boxes given, ResNet-18 64x64, no flip, DIS ultrafast)")
    print(f"{'frames':>7} {'at start MiB':>13} {'peak during video MiB':>22}")
    peaks = []
    for frames in args.memory_frames:
        out = subprocess.run([sys.executable, __file__, "--memory-run", str(frames)], capture_output=True, text=True,
                             check=True).stdout.split()
        peaks.append(float(out[1]))
        print(f"{frames:>7} {float(out[0]):>13.1f} {float(out[1]):>22.1f}", flush=True)
    print(f"growth {args.memory_frames[0]} -> {args.memory_frames[1]} frames: {100 * (peaks[1] / peaks[0] - 1):+.1f} %")


if __name__ == "__main__":
    main()
