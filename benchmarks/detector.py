"""The person detectors' cost per keyframe at 1280x720, one thread, by path and by stage.

Prints (1) SSDlite320 (the `realtime` preset's detector) per keyframe: torchvision's forward
(every class decoded and NMSed) with the backbone in OpenVINO, as posetrack ran it before, against
posetrack's paths (person-only decoding; heads in torch or in OpenVINO with the backbone), one or
two keyframes per call; and (2) the MobileNetV3-FPN Faster R-CNN (the `fast` preset's) by stage --
input (the frame resized, normalised, padded), backbone with FPN and RPN head (OpenVINO, one
network), proposals (anchors, decoding, NMS), RoIAlign, box head, the rest (predictor, box
decoding, NMS) -- for each box-head form this CPU is offered (`--forms` adds others; bf16 without
native bf16 is emulated, correct but slow) and each proposal count, beside the path before
(torchvision's input resize, only the backbone in OpenVINO, the RPN head's convolutions in the
proposals column, fp32 box head, 1000 proposals). CPU and wall ms, medians over rounds in which
every variant runs once, in an order that rotates. Random weights of the real
architectures (an untrained network passes no box over the 0.5 threshold, so torchvision's
all-class postprocessing does its least work here: its figures are a lower bound).

    python benchmarks/detector.py [--rounds 7] [--proposals 1000,300,100] [--forms fp32,int8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from machine import cpu_line  # beside this script

SSD = "ssdlite320_mobilenet_v3_large"
RCNN = "fasterrcnn_mobilenet_v3_large_fpn"
STAGES = ("input", "backbone", "proposals", "roi_align", "box_head", "rest")


def frame_1280x720() -> np.ndarray:
    """The shared street video's first frame at 1280x720 (random pixels where it is not at hand)."""
    import cv2

    video = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "video" / "street_5frames.mp4"
    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        return np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    return cv2.resize(frame, (1280, 720))


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """(CPU ms, wall ms) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000


def ssd_variants(weights: Path, frame: np.ndarray) -> dict[str, tuple[Callable[[], object], int]]:
    """name -> (a call detecting on keyframes, keyframes per call)."""
    from posetrack_cli.core.keypoints import COCO_PERSON
    from posetrack_cli.inference.detector import PersonDetector
    from posetrack_cli.models.ssd_person import PersonSSD, SSDDecoding, SSDNetwork
    from posetrack_cli.runtime.backbone import OpenVINOBackbone
    from posetrack_cli.runtime.cache import state_dict_sha256

    image = torch.from_numpy(frame).permute(2, 0, 1).float()
    before = PersonDetector(SSD, weights)
    digest = state_dict_sha256(before.model)
    backbone = OpenVINOBackbone(before.model.backbone, name=SSD, precision="fp32", weights_sha256=digest)
    before.model.backbone = backbone
    before.model.transform.train()  # its input made by torchvision's resize, as before (see RCNNStages)

    def torchvision_path() -> object:  # the person rows of torchvision's all-class output, as detect() did
        out = before.model([image])[0]
        return out["boxes"][out["labels"] == COCO_PERSON]

    heads_model: Any = PersonDetector(SSD, weights).model
    heads_model.backbone = backbone
    torch_heads = PersonSSD(SSDDecoding.of(heads_model), SSDNetwork(heads_model),  # OpenVINO backbone, torch heads
                            heads_model.score_thresh)
    after = PersonDetector(SSD, weights, runtime="openvino")
    eager = PersonDetector(SSD, weights)
    return {
        "torchvision forward, backbone in OpenVINO (before)": (torch.inference_mode()(torchvision_path), 1),
        "person-only, eager torch": (lambda: eager.detect([frame]), 1),
        "person-only, heads in torch": (torch.inference_mode()(lambda: torch_heads([frame])), 1),
        "person-only, heads in OpenVINO (posetrack)": (lambda: after.detect([frame]), 1),
        "  the same, 2 keyframes per call": (lambda: after.detect([frame, frame]), 2),
    }


class RCNNStages:
    """A Faster R-CNN's forward stage by stage, with ``proposals`` and a box-head form set per call:
    posetrack's (:class:`~posetrack_cli.models.rcnn_person.PersonRCNN`), and torchvision's model with
    its backbone in OpenVINO as the path before (``before``)."""

    def __init__(self, weights: Path, forms: list[str]) -> None:
        from posetrack_cli.inference.detector import PersonDetector
        from posetrack_cli.models.rcnn_person import TwoLayerHead
        from posetrack_cli.runtime.backbone import OpenVINOBackbone
        from posetrack_cli.runtime.box_head import box_head_form
        from posetrack_cli.runtime.cache import tensors_sha256

        self.detector = PersonDetector(RCNN, weights, runtime="openvino", box_head="fp32")
        assert self.detector._rcnn is not None
        self.rcnn = self.detector._rcnn
        state = torch.load(weights, weights_only=True)
        source = (RCNN, tensors_sha256(state))  # names the OpenVINO form's conversion
        head = TwoLayerHead.from_state(state)
        assert head is not None
        self.heads = {form: box_head_form(head, form, source=source) for form in forms}
        before: Any = PersonDetector(RCNN, weights).model  # the backbone alone in OpenVINO, as before
        before.backbone = OpenVINOBackbone(before.backbone, name=RCNN, precision="fp32", weights_sha256=source[1])
        # A transform in training mode takes torchvision's resize path (FrameTransform's shortcuts are for
        # inference); its only other difference, boxes left unscaled, is in a step not timed here.
        before.transform.train()
        self.before = before

    @torch.inference_mode()
    def run(self, frame: np.ndarray, form: str, proposals: int) -> dict[str, tuple[float, float]]:
        """(CPU ms, wall ms) of each of :data:`STAGES` on ``frame`` (form ``before``: the path before)."""
        if form == "before":
            return self._before(frame, proposals)
        rcnn = self.rcnn
        rcnn.run = replace(rcnn.run, proposals_before_nms=proposals, proposals=proposals)
        out: dict[str, Any] = {}

        def input_() -> None:  # the frame resized, normalised and padded into a batch
            out["batch"], out["sizes"] = rcnn.inputs([frame])

        def backbone() -> None:
            out["maps"] = rcnn.network(out["batch"])

        def proposals_() -> None:  # the RPN head's outputs came with the features
            out["proposals"] = rcnn.proposals(out["maps"], tuple(out["batch"].shape[2:]), out["sizes"])

        def roi_align() -> None:
            out["pooled"] = rcnn.roi_features(out["maps"], out["proposals"], out["sizes"])

        def box_head() -> None:
            out["fc7"] = self.heads[form](out["pooled"])

        def rest() -> None:
            rcnn.person_boxes(out["fc7"], out["proposals"], out["sizes"])

        steps = (input_, backbone, proposals_, roi_align, box_head, rest)
        return {name: timed(step) for name, step in zip(STAGES, steps)}

    def _before(self, frame: np.ndarray, proposals: int) -> dict[str, tuple[float, float]]:
        model = self.before
        heads = model.roi_heads
        model.rpn._pre_nms_top_n["testing"] = model.rpn._post_nms_top_n["testing"] = proposals
        out: dict[str, Any] = {}

        def input_() -> None:
            out["images"] = model.transform([torch.from_numpy(frame).permute(2, 0, 1).float()])[0]

        def backbone() -> None:
            out["features"] = model.backbone(out["images"].tensors)

        def proposals_() -> None:  # the RPN head's convolutions in torch, here
            out["proposals"] = model.rpn(out["images"], out["features"])[0]

        def roi_align() -> None:
            out["pooled"] = heads.box_roi_pool(out["features"], out["proposals"], out["images"].image_sizes)

        def box_head() -> None:
            out["fc7"] = heads.box_head(out["pooled"])

        def rest() -> None:
            logits, deltas = heads.box_predictor(out["fc7"])
            heads.postprocess_detections(logits, deltas, out["proposals"], out["images"].image_sizes)

        steps = (input_, backbone, proposals_, roi_align, box_head, rest)
        return {name: timed(step) for name, step in zip(STAGES, steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--proposals", default="1000,300,100", help="RPN proposals per frame, comma-separated")
    parser.add_argument("--forms", default="", help="box-head forms to time (default: those offered on this CPU)")
    parser.add_argument("--skip", choices=("ssd", "rcnn"), help="leave one detector out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from posetrack_cli.models.detectors import build_detector
    from posetrack_cli.runtime.box_head import offered_forms
    from posetrack_cli.runtime.cpu import cpu_info

    forms = args.forms.split(",") if args.forms else list(offered_forms(cpu_info().native_bf16))
    counts = [int(n) for n in args.proposals.split(",")]
    frame = frame_1280x720()
    print(f"# {cpu_line()}")
    print(f"# detector: 1280x720, 1 thread, torch {torch.__version__}, median of {args.rounds} rotating rounds")
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("POSETRACK_CACHE", str(Path(folder) / "cache"))
        paths: dict[str, Path] = {}
        for name in (SSD, RCNN):
            paths[name] = Path(folder) / f"{name}.pth"
            torch.save(build_detector(name).state_dict(), paths[name])
        if args.skip != "ssd":
            ssd_table(ssd_variants(paths[SSD], frame), args.rounds)
        if args.skip != "rcnn":
            rcnn_table(RCNNStages(paths[RCNN], forms), frame, forms, counts, args.rounds)


def ssd_table(variants: dict[str, tuple[Callable[[], object], int]], rounds: int) -> None:
    for run, _ in variants.values():  # the first calls compile kernels for each batch size
        run(), run()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    order = list(variants)
    for r in range(rounds):
        for name in order[r % len(order):] + order[:r % len(order)]:
            run, keyframes = variants[name]
            cpu, wall = timed(run)
            times[name].append((cpu / keyframes, wall / keyframes))
    print(f"\n{'SSDlite320 path':52} {'CPU ms/keyframe':>15} {'wall ms/keyframe':>16}")
    for name, t in times.items():
        print(f"{name:52} {statistics.median(c for c, _ in t):15.1f} {statistics.median(w for _, w in t):16.1f}")


def rcnn_table(stages: RCNNStages, frame: np.ndarray, forms: list[str], counts: list[int], rounds: int) -> None:
    variants = [("before", 1000)] + [(form, n) for n in counts for form in forms]
    for form, n in variants:
        stages.run(frame, form, n)
    times: dict[tuple[str, int], list[dict[str, tuple[float, float]]]] = {v: [] for v in variants}
    for r in range(rounds):
        for variant in variants[r % len(variants):] + variants[:r % len(variants)]:
            times[variant].append(stages.run(frame, *variant))
    header = " ".join(f"{s:>9}" for s in STAGES)
    print(f"\n{'Faster R-CNN MobileNetV3-FPN':30} {'proposals':>9} {header} {'CPU total':>9} {'wall total':>10}"
          "  (CPU ms per stage)")
    for (form, n), runs in times.items():
        cpu = {s: statistics.median(run[s][0] for run in runs) for s in STAGES}
        total = statistics.median(sum(run[s][0] for s in STAGES) for run in runs)
        wall = statistics.median(sum(run[s][1] for s in STAGES) for run in runs)
        cells = " ".join(f"{cpu[s]:9.1f}" for s in STAGES)
        print(f"{'box head ' + form:30} {n:9d} {cells} {total:9.1f} {wall:10.1f}")


if __name__ == "__main__":
    main()
