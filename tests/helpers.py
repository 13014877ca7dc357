"""Test helpers: checkpoints in the released layouts, written from random-initialised networks;
rendered videos; checks of ``posetrack run`` outputs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import types
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import torch

from synthetic import Person, linear_path, render

# `posetrack run` flags that keep the end-to-end tests fast on a CPU with the biased random checkpoints.
FAST = ["--input-size", "32x32", "--no-flip-test", "--detector-size", "256", "--no-progress", "--offline"]

LAYOUTS = ("msra", "mmpose-0.x", "mmpose-1.x")


def randomise_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give BatchNorm layers non-trivial statistics so loading them wrongly changes outputs."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
    return model.eval()


def spread_frozen_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """A detector's frozen BatchNorms given spread statistics (its buffers, unlike
    :func:`randomise_batchnorm`'s BatchNorm2d modules), so feature maps are not the near-zeros of an
    untrained network and a wrong layer would show."""
    g = torch.Generator().manual_seed(0)
    for name, buffer in model.named_buffers():
        if name.endswith("running_var"):
            buffer.copy_(torch.rand(buffer.shape, generator=g) * 0.5 + 0.05)
        elif name.endswith("running_mean"):
            buffer.copy_(torch.randn(buffer.shape, generator=g) * 0.02)
    return model


def _fake_mmengine_object() -> object:
    """An instance of a class that pickles as ``mmengine.logging.history_buffer.HistoryBuffer``,
    as the message hub in an mmpose 1.x release does; the module is gone again after saving."""
    module = types.ModuleType("mmengine.logging.history_buffer")

    class HistoryBuffer:
        def __init__(self) -> None:
            self._log_history = np.arange(3.0)

    HistoryBuffer.__module__ = module.__name__
    HistoryBuffer.__qualname__ = "HistoryBuffer"
    module.HistoryBuffer = HistoryBuffer  # type: ignore[attr-defined]
    return module, HistoryBuffer()


def write_checkpoint(model: torch.nn.Module, path: Path, layout: str, *, module_prefix: bool = False) -> Path:
    """Save ``model`` as the released files of ``layout`` are saved.

    * msra: a bare OrderedDict state dict (optionally ``module.``-prefixed, as DataParallel saves).
    * mmpose-0.x: ``{"meta": {...strings...}, "state_dict": {backbone.*, keypoint_head.*}}``.
    * mmpose-1.x: ``{"meta": {...}, "state_dict": {backbone.*, head.*}, "message_hub": <mmengine object>}``.
    """
    state = model.state_dict()
    backbone_keys = ("conv1.", "bn1.", "conv2.", *(f"layer{i}." for i in range(1, 8)))  # ResNet's, MobileNetV2's
    if layout == "msra":
        prefix = "module." if module_prefix else ""
        torch.save(OrderedDict((prefix + k, v) for k, v in state.items()), path)
        return path
    head = {"mmpose-0.x": "keypoint_head.", "mmpose-1.x": "head."}[layout]
    renamed = OrderedDict(
        (("backbone." if k.startswith(backbone_keys) else head) + k, v) for k, v in state.items()
    )
    meta = {"mmcv_version": "1.3.8", "time": "Thu Jul  9 12:00:00 2020", "epoch": 210,
            "config": "model = dict(type='TopDown')"}
    obj = {"meta": meta, "state_dict": renamed}
    if layout == "mmpose-1.x":
        module, hub = _fake_mmengine_object()
        names = ["mmengine", "mmengine.logging", module.__name__]
        for name in names[:-1]:
            sys.modules[name] = types.ModuleType(name)
        sys.modules[module.__name__] = module
        try:
            obj["message_hub"] = {"log_scalars": {"loss": hub}, "runtime_info": {"epoch": 210}}
            obj["meta"]["dataset_meta"] = {"sigmas": np.ones(17, dtype=np.float32)}
            torch.save(obj, path)
        finally:
            for name in names:
                del sys.modules[name]
        return path
    torch.save(obj, path)
    return path


def write_biased_checkpoints(folder: Path) -> dict[str, Path]:
    """The fast preset's files under their manifest names in ``folder``, random-initialised in the
    released layouts and biased so that ``posetrack run`` finds a few people quickly.

    Random weights cannot find people, so biases make them produce a few: the detector's region
    proposals come from one anchor shape only (a few dozen instead of 1,000), its "person" logit is
    raised, and its person box regression is pushed to the largest growth torchvision allows, so
    boxes clip to the frame and NMS keeps about one per frame; the pose head's bias is raised so
    every joint scores above the 0.4 threshold.
    """
    from posetrack_cli.models import weights as W
    from posetrack_cli.models.detectors import build_detector
    from posetrack_cli.models.pose_resnet import pose_resnet

    torch.manual_seed(0)
    pose = pose_resnet(depth=18)
    torch.nn.init.constant_(pose.final_layer.bias, 0.5)
    detector = build_detector("fasterrcnn_mobilenet_v3_large_fpn")
    with torch.no_grad():
        detector.rpn.head.cls_logits.bias.fill_(-10.0)
        detector.rpn.head.cls_logits.bias[13] = 10.0  # anchors of size 256, height:width 2
        detector.roi_heads.box_predictor.cls_score.bias[1] = 10.0  # class 1 = person
        detector.roi_heads.box_predictor.bbox_pred.bias[6:8] = 50.0  # person dw, dh: grow to the frame
    manifest = W.load_manifest()
    pose_file = write_checkpoint(pose, folder / manifest["pose_resnet50_256x192"].filename, "mmpose-0.x")
    det_file = folder / manifest["fasterrcnn_mobilenet_v3_large_fpn"].filename
    torch.save(detector.state_dict(), det_file)
    return {"pose": pose_file, "detector": det_file}


def write_test_manifest(files: dict[str, Path], target: Path) -> Path:
    """The built-in manifest with each file of ``files`` (named by its manifest file name) given
    its own SHA-256, written to ``target``."""
    import hashlib

    from posetrack_cli.models import weights as W

    doc = json.loads((W.CHECKOUT_WEIGHTS / "manifest.json").read_text())
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files.values()}
    for entry in doc["files"]:
        entry["sha256"] = digests.get(entry["filename"], entry["sha256"])
    target.write_text(json.dumps(doc))
    return target


def trust_files(monkeypatch: object, *files: Path) -> Path:
    """Make the manifest describe ``files`` (random stand-ins written under manifest file names)
    with their own SHA-256, through ``POSETRACK_MANIFEST``, so that loading them passes the digest
    check; call again after rewriting a file."""
    from posetrack_cli.models import weights as W

    target = files[0].parent / f".test-manifest-{len(files)}.json"
    write_test_manifest({p.name: p for p in files}, target)
    monkeypatch.setenv(W.ENV_MANIFEST, str(target))  # type: ignore[attr-defined]
    return target


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10, fourcc: str = "mp4v") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def walkers(frames: int = 6, seed: int = 1) -> list[np.ndarray]:
    people = [Person(120, linear_path((40, 20), (10, 0), frames), seed=seed),
              Person(110, linear_path((250, 100), (-10, 0), frames), seed=seed + 1)]
    return render(people, frames, size=(320, 240), seed=seed)


def check_outputs(out: Path, name: str, frames: int) -> dict:
    """The JSON and CSV of one input agree: every annotation has a track id, rows match one to one."""
    doc = json.loads((out / f"{name}.json").read_text())
    assert len(doc["images"]) == frames == doc["info"]["frames"]
    assert [im["frame_id"] for im in doc["images"]] == list(range(frames))
    assert doc["annotations"], "the biased checkpoints should produce people"
    for ann in doc["annotations"]:
        assert isinstance(ann["track_id"], int) and ann["track_id"] >= 0
        assert len(ann["keypoints"]) == 51 and len(ann["keypoint_scores"]) == 17
    per_frame: dict[int, list[int]] = {}
    for ann in doc["annotations"]:
        per_frame.setdefault(ann["image_id"], []).append(ann["track_id"])
    assert all(len(ids) == len(set(ids)) for ids in per_frame.values())  # an id once per frame
    with open(out / f"{name}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(doc["annotations"])
    by_key = {(a["image_id"], a["track_id"]): a for a in doc["annotations"]}
    for row in rows:
        ann = by_key[(int(row["frame"]), int(row["track_id"]))]
        assert float(row["nose_x"]) == ann["keypoints"][0]
        assert float(row["right_ankle_score"]) == ann["keypoint_scores"][16]
        assert float(row["time_s"]) == doc["images"][ann["image_id"]]["timestamp"]
    return doc


def summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as f:
        return {Path(r["input"]).name: r for r in csv.DictReader(f)}


def write_track_document(folder: Path, name: str, frames: list, sizes: list[tuple[int, int, str | None]],
                         keypoint_names, info: dict | None = None) -> dict:
    """A posetrack JSON written by the shipped writers (``OutputSet``), as ``posetrack run`` writes
    it: ``frames`` are TrackedFrames (any subset of the frames), ``sizes`` one ``(width, height,
    file_name)`` per frame read. Returns the parsed document."""
    from posetrack_cli.core.types import Frame, Poses, TrackedFrame
    from posetrack_cli.io.outputs import OutputSet

    folder.mkdir(parents=True, exist_ok=True)
    by_index = {f.frame_index: f for f in frames}
    k = len(keypoint_names)
    with OutputSet(folder, name).open(keypoint_names) as writers:
        for t, (width, height, file_name) in enumerate(sizes):
            tracked = by_index.get(t, TrackedFrame(t, 0.0, Poses.empty(k), np.zeros(0, np.int64)))
            writers.add(Frame(t, tracked.timestamp, np.zeros((height, width, 3), np.uint8), file_name), tracked)
        paths = writers.commit({"command": "run", "frames": len(sizes), **(info or {})})
    return json.loads(paths["json"].read_text())


def without_timings(path: Path) -> dict:
    """A JSON output less what changes from run to run of the same input: ``info.stage_seconds``
    and ``info.timings`` (timings) and ``info.speed`` (how fast, not what: threads, batch sizes)."""
    doc = json.loads(path.read_text())
    doc["info"].pop("stage_seconds", None)
    doc["info"].pop("timings", None)
    doc["info"].pop("speed", None)
    return doc


def detect_in_a_fresh_process(architecture: str, weights: Path, frame: np.ndarray, folder: Path,
                              **options: object) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``PersonDetector(architecture, weights, runtime="openvino", **options).detect([frame])`` in a
    new Python process (one thread, this process's ``POSETRACK_CACHE``): its boxes, scores, and the
    torchvision modules it imported (a warm start should import none)."""
    np.save(folder / "frame.npy", frame)
    script = (
        "import sys, numpy as np\n"
        "from posetrack_cli.inference.detector import PersonDetector\n"
        f"found = PersonDetector({architecture!r}, {str(weights)!r}, runtime='openvino', **{options!r})"
        f".detect([np.load({str(folder / 'frame.npy')!r})])[0]\n"
        f"np.savez({str(folder / 'found.npz')!r}, boxes=found.boxes, scores=found.scores)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision'))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    found = np.load(folder / "found.npz")
    return found["boxes"], found["scores"], json.loads(done.stdout.strip().replace("'", '"'))
