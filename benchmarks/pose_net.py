"""Pose network speed on this machine against what its CPU can do in each number format.

The limits are measured with convolution-shaped work through oneDNN, the library both torch and
OpenVINO run convolutions with (not MKL's ``torch.mm``, which on some CPUs does not use their
widest vector units):

* fp32: chains of four convolutions with ReLUs in three shapes (3x3 256 -> 256 on 8 x 56 x 56,
  1x1 1024 -> 1024 on 8 x 16 x 12, 3x3 512 -> 512 on 8 x 28 x 28), in torch and in OpenVINO;
* bf16: the same convolution in bfloat16 (torch, and OpenVINO with the bf16 hint) -- only where the
  CPU has native bf16 (AVX512_BF16 or AMX); elsewhere bf16 is emulated and has no limit to speak of;
* int8: ``torch._int_mm`` (1024^3, int8 -> int32) and the same chains quantized by NNCF in OpenVINO.

Each dtype's limit is the fastest of its measurements. Then SimpleBaseline ResNet-50 and the
MobileNetV2 head at 256x192 (random weights: speed does not depend on them; int8 calibrated on
random crops for the same reason) run in torch eager fp32, OpenVINO fp32, bf16 (where native) and
int8, and each is reported against its own dtype's limit: ``x limit`` = time per crop / (FLOPs per
crop / limit), 1.0 being the hardware. FLOPs are counted by torch's FlopCounterMode (2 per
multiply-add). Everything is timed interleaved, one thread, medians (the machine is shared).

A last table splits each int8 network into its backbone and its deconvolution head (the paper's
three deconvolutions and the 1x1 heatmap layer), timed by OpenVINO's per-layer counters, with the
floor of each part: its FLOPs at the int8 limit, the least time this CPU can take for it. On a
CPU without VNNI the floor, times the crops of a frame, says which per-frame targets a
top-down network can meet at all.

    python benchmarks/pose_net.py [--repeats 7] [--batch 8]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import numpy as np
import torch

from posetrack_cli.models.checkpoints import InputNorm
from posetrack_cli.models.crop_input import CropInput
from posetrack_cli.models.pose_mobilenetv2 import pose_mobilenetv2
from posetrack_cli.models.pose_resnet import fold_batchnorm, pose_resnet
from posetrack_cli.runtime.choice import cpu_has_native_bf16
from posetrack_cli.runtime.convert import compile_model as _compile
from posetrack_cli.runtime.convert import convert_to_openvino
from posetrack_cli.runtime.quantize import quantize_int8

# label -> ((batch, channels, height, width), kernel) of the limit probes: a ResNet stage's 3x3, a
# wide 1x1 (a bottleneck's) and a deeper stage's 3x3
PROBES = {"conv3x3 256@56": ((8, 256, 56, 56), 3), "conv1x1 1024@16": ((8, 1024, 16, 12), 1),
          "conv3x3 512@28": ((8, 512, 28, 28), 3)}
CHAIN = 4  # convolutions (each with a ReLU) in a limit probe
MM = 1024
HEAD_PARTS = ("deconv_layers", "final_layer")  # the heatmap head's modules in both networks


def flops_of(model: torch.nn.Module, shape: tuple[int, ...]) -> tuple[float, float]:
    """FLOPs of one forward (2 per multiply-add), counted by torch on ``model`` itself: the whole
    network's, and its heatmap head's alone (``HEAD_PARTS``)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.randn(*shape))
    counts = counter.get_flop_counts()
    top = type(model).__name__
    return float(counter.get_total_flops()), float(sum(sum(counts.get(f"{top}.{p}", {}).values()) for p in HEAD_PARTS))


def int8_split(compiled: object, crops: np.ndarray, repeats: int) -> tuple[float, float]:
    """Seconds per crop of (backbone, head) of a compiled int8 network, from OpenVINO's per-layer
    counters (``compiled`` made with ``PERF_COUNT``), medians over ``repeats`` calls."""
    request = compiled.create_infer_request()  # type: ignore[attr-defined]
    request.infer([crops])
    backbone, head = [], []
    for _ in range(repeats):
        request.infer([crops])
        parts = [0.0, 0.0]
        for layer in request.profiling_info:
            parts[any(f".{p}" in layer.node_name for p in HEAD_PARTS)] += layer.real_time.total_seconds()
        backbone.append(parts[0] / len(crops))
        head.append(parts[1] / len(crops))
    return statistics.median(backbone), statistics.median(head)


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """CPU seconds (all threads of the process) and wall seconds of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def _chain(shape: tuple[int, int, int, int], kernel: int) -> tuple[torch.nn.Module, float]:
    """``CHAIN`` convolutions (``kernel`` x ``kernel``, C -> C, each with a ReLU) on ``shape``, and the
    operations of one call. A chain, so that (as inside a network) int8 stays int8 from one
    convolution to the next and the fp32 <-> int8 conversions at its two ends weigh little."""
    n, c, h, w = shape
    layers = [m for _ in range(CHAIN) for m in (torch.nn.Conv2d(c, c, kernel, padding=kernel // 2, bias=False),
                                                torch.nn.ReLU())]
    return torch.nn.Sequential(*layers).eval(), 2.0 * n * c * h * w * c * kernel * kernel * CHAIN


def limit_probes(native_bf16: bool) -> dict[str, tuple[str, float, Callable[[], object]]]:
    """name -> (dtype, operations per call, call) for the convolution-shaped limit measurements."""
    import openvino as ov

    probes: dict[str, tuple[str, float, Callable[[], object]]] = {}
    for label, (shape, kernel) in PROBES.items():
        conv, ops = _chain(shape, kernel)
        x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
        conv_cl = conv.to(memory_format=torch.channels_last)
        probes[f"torch {label} fp32"] = ("fp32", ops, lambda m=conv_cl, x=x: m(x))
        with torch.no_grad():
            ov_conv = ov.convert_model(conv, example_input=torch.zeros(*shape))
        xn = x.contiguous().numpy()
        f32 = _compile(ov_conv, "fp32")
        probes[f"openvino {label} fp32"] = ("fp32", ops, lambda c=f32, xn=xn: c(xn))
        if native_bf16:
            conv_bf, xb = conv_cl.to(torch.bfloat16), x.to(torch.bfloat16)
            probes[f"torch {label} bf16"] = ("bf16", ops, lambda m=conv_bf, xb=xb: m(xb))
            bf = _compile(ov_conv, "bf16")
            probes[f"openvino {label} bf16"] = ("bf16", ops, lambda c=bf, xn=xn: c(xn))
        q = _compile(quantize_int8(ov_conv, xn[:4]), "int8")
        probes[f"openvino {label} int8"] = ("int8", ops, lambda c=q, xn=xn: c(xn))
    a = torch.randint(-64, 64, (MM, MM), dtype=torch.int8)
    b = torch.randint(-64, 64, (MM, MM), dtype=torch.int8)
    probes["torch _int_mm int8"] = ("int8", 2.0 * MM**3, lambda: torch._int_mm(a, b))
    return probes


def network_variants(batch: int, native_bf16: bool) -> tuple[dict[str, tuple[str, str, Callable[[], object]]],
                                                             dict[str, tuple[object, np.ndarray]]]:
    """name -> (network, dtype, call on one batch of ``batch`` crops); and network -> (its int8 model
    compiled with per-layer counters, the batch)."""
    rng = np.random.default_rng(0)
    xn = rng.integers(0, 256, (batch, 256, 192, 3), dtype=np.uint8)  # crops as cut: (N, H, W, 3) uint8 BGR
    x = torch.from_numpy(xn).permute(0, 3, 1, 2)
    calibration = rng.integers(0, 256, (16, 256, 192, 3), dtype=np.uint8)
    variants: dict[str, tuple[str, str, Callable[[], object]]] = {}
    profiled: dict[str, tuple[object, np.ndarray]] = {}
    for net, model in (("ResNet-50", pose_resnet(depth=50)), ("MobileNetV2", pose_mobilenetv2())):
        # As the estimator runs it: normalisation in front, BatchNorm folded.
        folded = fold_batchnorm(CropInput(model, InputNorm("rgb")).eval()).to(memory_format=torch.channels_last)
        variants[f"{net} torch fp32"] = (net, "fp32", lambda m=folded: m(x.float()))
        ov_model = convert_to_openvino(folded, (192, 256))
        f32 = _compile(ov_model, "fp32")
        variants[f"{net} openvino fp32"] = (net, "fp32", lambda c=f32: c(xn))
        if native_bf16:
            bf = _compile(ov_model, "bf16")
            variants[f"{net} openvino bf16"] = (net, "bf16", lambda c=bf: c(xn))
        int8 = quantize_int8(ov_model, calibration)
        q = _compile(int8, "int8")
        variants[f"{net} openvino int8"] = (net, "int8", lambda c=q: c(xn))
        profiled[net] = (_compile(int8, "int8", profile=True).compiled, xn)
    return variants, profiled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=8, help="crops per call (4 people with the flip test: 8)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    native_bf16 = cpu_has_native_bf16()

    networks = {"ResNet-50": pose_resnet(depth=50).eval(), "MobileNetV2": pose_mobilenetv2().eval()}
    counted = {net: flops_of(m, (1, 3, 256, 192)) for net, m in networks.items()}
    flops = {net: total for net, (total, _) in counted.items()}
    head_flops = {net: head for net, (_, head) in counted.items()}
    with torch.inference_mode():
        probes = limit_probes(native_bf16)
        variants, profiled = network_variants(args.batch, native_bf16)
        for _, _, fn in probes.values():
            fn()
        for _, _, fn in variants.values():
            fn()
        probe_times: dict[str, list[float]] = {k: [] for k in probes}
        variant_times: dict[str, list[float]] = {k: [] for k in variants}
        variant_wall: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.repeats):  # interleaved: a slow moment of the machine hits every row alike
            for name, (_, _, fn) in probes.items():
                probe_times[name].append(timed(fn)[0])
            for name, (_, _, fn) in variants.items():
                cpu, wall = timed(fn)
                variant_times[name].append(cpu / args.batch)
                variant_wall[name].append(wall / args.batch)
        splits = {net: int8_split(compiled, crops, args.repeats) for net, (compiled, crops) in profiled.items()}

    # CPU time: on a shared machine wall time also counts the moments another process held the core.
    rates = {name: ops / statistics.median(probe_times[name]) for name, (_, ops, _) in probes.items()}
    limits: dict[str, float] = {}
    for name, (dtype, _, _) in probes.items():
        limits[dtype] = max(limits.get(dtype, 0.0), rates[name])

    print(f"# pose_net: 1 thread, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"native bf16: {'yes' if native_bf16 else 'no'}, median of {args.repeats}")
    print(f"{'limit probe (CPU time)':<32} {'dtype':>5} {'GOP/s':>8}")
    for name, (dtype, _, _) in probes.items():
        print(f"{name:<32} {dtype:>5} {rates[name] / 1e9:>8.1f}")
    print(f"\n{'network runtime':<28} {'CPU ms/crop':>11} {'wall ms':>8} {'GOP/s':>8} {'x limit':>8}   "
          f"(batch {args.batch}, "
          f"ResNet-50 {flops['ResNet-50'] / 1e9:.2f} / MobileNetV2 {flops['MobileNetV2'] / 1e9:.2f} GFLOP per crop)")
    for name, (net, dtype, _) in variants.items():
        per_crop = statistics.median(variant_times[name])
        rate = flops[net] / per_crop
        wall = statistics.median(variant_wall[name])
        print(f"{name:<28} {per_crop * 1e3:>11.1f} {wall * 1e3:>8.1f} {rate / 1e9:>8.1f} {limits[dtype] / rate:>8.2f}")

    int8_limit = limits["int8"]
    print(f"\n{'int8 part (per-layer counters)':<32} {'GFLOP':>6} {'ms/crop':>8} {'x limit':>8} {'floor ms':>9}")
    for net, (backbone, head) in splits.items():
        for part, seconds, ops in (("backbone", backbone, flops[net] - head_flops[net]),
                                   ("head", head, head_flops[net])):
            floor = ops / int8_limit
            print(f"{net + ' ' + part:<32} {ops / 1e9:>6.2f} {seconds * 1e3:>8.1f} {seconds / floor:>8.2f} "
                  f"{floor * 1e3:>9.1f}")


if __name__ == "__main__":
    main()
