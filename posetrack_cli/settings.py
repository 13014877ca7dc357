"""Settings dataclasses that the command line reads its defaults from.

Kept free of heavy imports (torch) so that ``posetrack --help`` starts instantly; the modules that
do the work import their settings from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# torchvision COCO detector architectures posetrack can run as its person detector.
DETECTORS = ("fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_320_fpn",
             "ssdlite320_mobilenet_v3_large")

# Where the pose network runs (posetrack_cli/runtime.py) and in which number format.
RUNTIMES = ("auto", "torch", "openvino")
PRECISIONS = ("auto", "fp32", "bf16", "int8")


@dataclass(frozen=True)
class EstimatorConfig:
    """Inference settings.

    Attributes:
        input_size: ``(width, height)`` of the network input (192x256 or 288x384 for released files).
        padding: enlargement of the aspect-padded box (the paper's 1.25).
        flip_test: average with the horizontally flipped crop, as the released results do.
        batch_size: crops per forward pass (with the flip test each person is two crops).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        half: run the network in float16 (CUDA only).
        compile: ``torch.compile`` the network (slow first run, faster after; batches are padded
            to powers of two so only a few shapes get compiled).
        runtime: ``auto`` (OpenVINO on a CPU where installed, torch on CUDA), ``torch`` or ``openvino``.
        precision: ``auto`` (bf16 where the CPU has native bf16, else fp32), ``fp32``, ``bf16`` or
            ``int8`` (OpenVINO; calibrated on person crops, see ``posetrack calibrate``).
    """

    input_size: tuple[int, int] = (192, 256)
    padding: float = 1.25  # paper: box enlarged 1.25x before cropping
    flip_test: bool = True  # released COCO numbers use it
    batch_size: int = 16  # crops per forward; on CPU larger batches fall out of cache (benchmarks/pose_net.py)
    device: str = "auto"
    half: bool = False  # float16 tensor cores on a GPU; off by default: not validated here (no GPU)
    compile: bool = False  # off: compiling ResNet-50 takes ~40 s on a CPU before the first frame
    runtime: str = "auto"  # OpenVINO is several times faster than eager torch on a CPU
    precision: str = "auto"

    def __post_init__(self) -> None:
        w, h = self.input_size
        if w < 32 or h < 32 or w % 32 or h % 32:
            raise ValueError(f"input_size must be multiples of 32 of at least 32, got {w}x{h}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {self.runtime!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.padding <= 0:
            raise ValueError(f"padding must be > 0, got {self.padding}")
