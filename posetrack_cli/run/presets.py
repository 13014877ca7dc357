"""Presets: which detector, pose network and flow a run uses, and how they are run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Model choice of a preset; each part can be overridden on the command line.

    Attributes:
        detector: manifest name of the torchvision detector.
        pose: manifest name of the pose checkpoint.
        flow: flow estimator name.
        detect_every: run the detector on every N-th frame (keyframes); flow carries people between.
        pose_every: run the pose network on each person at least every N-th frame; flow carries
            their joints between.
        detector_proposals: RPN proposals per frame for a Faster R-CNN (None: the model's own).
        flip_test: average with the mirrored crop.
        precision: the pose network's precision under ``--precision auto`` (``auto``: the machine's).
    """

    detector: str
    pose: str
    flow: str
    detect_every: int = 1
    pose_every: int = 1
    detector_proposals: int | None = None
    flip_test: bool = True
    precision: str = "auto"


PRESETS: dict[str, Preset] = {
    # Accuracy first: ResNet-50 FPN v2 detector (box AP 46.7), ResNet-152 at 384x288 (COCO AP 75.0).
    "accurate": Preset("fasterrcnn_resnet50_fpn_v2", "pose_resnet152_384x288", "dis-medium"),
    # The paper's ResNet-50 at 256x192 (COCO AP 71.8) on the fastest runtime (OpenVINO on a CPU, int8
    # calibrated on the run's own crops), MobileNetV3 FPN detector (box AP 32.8) on every frame with 300 RPN
    # proposals, not the model's 1000: its RoIAlign and box head cost scale with them (benchmarks/detector.py);
    # torchvision's own cut of this architecture (its 320-pixel checkpoint) to 150 proposals cost 0.2 box AP
    # (23.0 -> 22.8, pytorch/vision PR #3265).
    "fast": Preset("fasterrcnn_mobilenet_v3_large_fpn", "pose_resnet50_256x192", "dis-medium", detector_proposals=300,
                   precision="int8"),
    # CPU real time: MobileNetV2 deconv head (COCO AP 64.8 with the flip test) in int8, SSDlite detector
    # (box AP 21.3) on every 5th frame with flow boxes between, DIS ultrafast. No flip test: it doubles the
    # pose network's work, which is most of this preset's time (benchmarks/peers.py). The pose network runs
    # on each person on the keyframes (and sooner after a large step or on a weak pose), flow carrying the
    # joints between: its crops then sit on detector boxes rather than on boxes drawn around joints that
    # flow moved, which measured both cheaper and closer to the truth (benchmarks/pose_every.py).
    "realtime": Preset("ssdlite320_mobilenet_v3_large", "pose_mobilenetv2_256x192", "dis-ultrafast", detect_every=5,
                       pose_every=5, flip_test=False, precision="int8"),
}
