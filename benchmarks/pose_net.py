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
crop / limit), 1.0 being the hardware. MobileNetV2's int8 network also runs in each form of its
depthwise convolutions posetrack chooses between (:mod:`posetrack_cli.runtime.quantize`: int8, or
left in fp32, or bf16 where native); a mixed form's limit is its floor: the depthwise FLOPs at
their format's limit plus the rest at int8's. The fastest form, the one posetrack's one-time choice
takes on this CPU by the same measure (CPU time, interleaved), is marked. FLOPs are counted by
torch's FlopCounterMode (2 per multiply-add). Everything is timed interleaved, one thread, medians
(the machine is shared), in CPU time (``time.process_time``) with wall time beside it.

A last table splits each int8 network into its backbone's depthwise convolutions, the rest of its
backbone and its deconvolution head (the paper's three deconvolutions and the 1x1 heatmap layer),
with the floor of each part: its FLOPs at its format's limit, the least time this CPU can take
for it. OpenVINO's per-layer counters give wall time only (their ``cpu_time`` repeats
``real_time`` on the CPU plugin, which a busy machine inflates), so each call's CPU time
(``time.process_time``) is split in the shares of the per-layer wall times. On a CPU without VNNI
the floor, times the crops of a frame, says which per-frame targets a top-down network can meet.

Last, what choosing MobileNetV2's form costs a first calibration (posetrack's 72 crops): NNCF's
quantization in one form, in every form on one pass of statistics (as posetrack does), and the
timing of the forms (6 calls of each, as ``runtime.tuning.fastest`` makes them).

    python benchmarks/pose_net.py [--repeats 7] [--batch 8]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Callable

import numpy as np
import torch
from machine import cpu_line

from posetrack_cli.models.checkpoints import InputNorm
from posetrack_cli.models.crop_input import CropInput
from posetrack_cli.models.pose_mobilenetv2 import pose_mobilenetv2
from posetrack_cli.models.pose_resnet import fold_batchnorm, pose_resnet
from posetrack_cli.runtime.convert import compile_model as _compile
from posetrack_cli.runtime.convert import convert_to_openvino
from posetrack_cli.runtime.cpu import cpu_info
from posetrack_cli.runtime.engines import TIMED_BATCH
from posetrack_cli.runtime.quantize import (
    CALIBRATION_CROPS,
    FORMS,
    HELD_BACK,
    candidate_forms,
    quantize_forms,
    quantize_int8,
)

# label -> ((batch, channels, height, width), kernel) of the limit probes: a ResNet stage's 3x3, a
# wide 1x1 (a bottleneck's) and a deeper stage's 3x3
PROBES = {"conv3x3 256@56": ((8, 256, 56, 56), 3), "conv1x1 1024@16": ((8, 1024, 16, 12), 1),
          "conv3x3 512@28": ((8, 512, 28, 28), 3)}
CHAIN = 4  # convolutions (each with a ReLU) in a limit probe
MM = 1024
HEAD_PARTS = ("deconv_layers", "final_layer")  # the heatmap head's modules in both networks


def flops_of(model: torch.nn.Module, shape: tuple[int, ...]) -> dict[str, float]:
    """FLOPs of one forward (2 per multiply-add), counted by torch on ``model`` itself: the whole
    network's (``total``), its heatmap head's alone (``head``: ``HEAD_PARTS``) and its depthwise
    convolutions' (``depthwise``: convolutions with a group per input channel)."""
    from torch.utils.flop_counter import FlopCounterMode

    depthwise = [0.0]

    def count(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        assert isinstance(module, torch.nn.Conv2d)
        depthwise[0] += 2.0 * out.numel() * module.kernel_size[0] * module.kernel_size[1]

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels]
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.randn(*shape))
    for hook in hooks:
        hook.remove()
    counts = counter.get_flop_counts()
    top = type(model).__name__
    head = float(sum(sum(counts.get(f"{top}.{p}", {}).values()) for p in HEAD_PARTS))
    return {"total": float(counter.get_total_flops()), "head": head, "depthwise": depthwise[0]}


PARTS = ("depthwise", "backbone rest", "head")


def part_of(layer: object) -> str:
    """Which of ``PARTS`` an OpenVINO profiling record (``ProfilingInfo``) belongs to."""
    if any(f".{p}" in layer.node_name for p in HEAD_PARTS):  # type: ignore[attr-defined]
        return "head"
    return "depthwise" if layer.node_type == "GroupConvolution" else "backbone rest"  # type: ignore[attr-defined]


def int8_split(compiled: object, crops: np.ndarray, repeats: int) -> tuple[dict[str, float], float]:
    """CPU seconds per crop of each of ``PARTS`` of a network compiled with ``PERF_COUNT``: each call's
    CPU time split in the shares of OpenVINO's per-layer wall times; medians over ``repeats`` calls.
    Also the median of the per-layer wall times' sum per crop, for comparison."""
    request = compiled.create_infer_request()  # type: ignore[attr-defined]
    request.infer([crops])
    shares: dict[str, list[float]] = {part: [] for part in PARTS}
    walls = []
    for _ in range(repeats):
        cpu = time.process_time()
        request.infer([crops])
        cpu = time.process_time() - cpu
        wall = dict.fromkeys(PARTS, 0.0)
        for layer in request.profiling_info:
            wall[part_of(layer)] += layer.real_time.total_seconds()
        total = sum(wall.values())
        walls.append(total / len(crops))
        for part in PARTS:
            shares[part].append(cpu * wall[part] / total / len(crops))
    return {part: statistics.median(t) for part, t in shares.items()}, statistics.median(walls)


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
        if native_bf16:  # a copy: Module.to converts in place, and the fp32 probe above still runs conv_cl
            conv_bf, xb = copy.deepcopy(conv_cl).to(torch.bfloat16), x.to(torch.bfloat16)
            probes[f"torch {label} bf16"] = ("bf16", ops, lambda m=conv_bf, xb=xb: m(xb))
            bf = _compile(ov_conv, "bf16")
            probes[f"openvino {label} bf16"] = ("bf16", ops, lambda c=bf, xn=xn: c(xn))
        q = _compile(quantize_int8(ov_conv, xn[:4]), "int8")
        probes[f"openvino {label} int8"] = ("int8", ops, lambda c=q, xn=xn: c(xn))
    a = torch.randint(-64, 64, (MM, MM), dtype=torch.int8)
    b = torch.randint(-64, 64, (MM, MM), dtype=torch.int8)
    probes["torch _int_mm int8"] = ("int8", 2.0 * MM**3, lambda: torch._int_mm(a, b))
    return probes


Variant = tuple[str, str, str, Callable[[], object]]  # network, dtype, its depthwise layers' dtype, call


def network_variants(batch: int, native_bf16: bool) -> tuple[dict[str, Variant], dict[str, tuple[object, np.ndarray]],
                                                             dict[str, float]]:
    """name -> (network, dtype, depthwise dtype, call on one batch of ``batch`` crops); name of an int8
    variant -> (its model compiled with per-layer counters, the batch); and what MobileNetV2's
    calibration costs (see :func:`calibration_cost`)."""
    rng = np.random.default_rng(0)
    xn = rng.integers(0, 256, (batch, 256, 192, 3), dtype=np.uint8)  # crops as cut: (N, H, W, 3) uint8 BGR
    x = torch.from_numpy(xn).permute(0, 3, 1, 2)
    calibration = rng.integers(0, 256, (CALIBRATION_CROPS - round(CALIBRATION_CROPS * HELD_BACK), 256, 192, 3),
                               dtype=np.uint8)  # as many as posetrack calibrates on (the rest are held back)
    variants: dict[str, Variant] = {}
    profiled: dict[str, tuple[object, np.ndarray]] = {}
    cost: dict[str, float] = {}
    for net, model in (("ResNet-50", pose_resnet(depth=50)), ("MobileNetV2", pose_mobilenetv2())):
        # As the estimator runs it: normalisation in front, BatchNorm folded.
        folded = fold_batchnorm(CropInput(model, InputNorm("rgb")).eval()).to(memory_format=torch.channels_last)
        variants[f"{net} torch fp32"] = (net, "fp32", "fp32", lambda m=folded: m(x.float()))
        ov_model = convert_to_openvino(folded, (192, 256))
        f32 = _compile(ov_model, "fp32")
        variants[f"{net} openvino fp32"] = (net, "fp32", "fp32", lambda c=f32: c(xn))
        if native_bf16:
            bf = _compile(ov_model, "bf16")
            variants[f"{net} openvino bf16"] = (net, "bf16", "bf16", lambda c=bf: c(xn))
        forms = candidate_forms(ov_model, native_bf16)
        if len(forms) > 1:
            cost = calibration_cost(ov_model, calibration, forms)
        for form, int8 in quantize_forms(ov_model, calibration, forms).items():
            q = _compile(int8, "int8", unquantized=FORMS[form].unquantized)
            name = f"{net} openvino int8" + ("" if len(forms) == 1 else f" ({form})")
            variants[name] = (net, "int8", FORMS[form].depthwise, lambda c=q: c(xn))
            profiled[name] = (_compile(int8, "int8", profile=True, unquantized=FORMS[form].unquantized).compiled, xn)
    return variants, profiled, cost


def calibration_cost(ov_model: object, crops: np.ndarray, forms: list[str]) -> dict[str, float]:
    """CPU seconds of NNCF's quantization on ``crops`` in the first form alone and in all ``forms`` on one
    pass of statistics (posetrack's first calibration on a CPU)."""
    cpu = time.process_time()
    quantize_forms(ov_model, crops, forms[:1])
    one = time.process_time() - cpu
    cpu = time.process_time()
    quantize_forms(ov_model, crops, forms)
    return {"crops": float(len(crops)), "one form": one, f"{len(forms)} forms": time.process_time() - cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=TIMED_BATCH,
                        help="crops per call (4 people with the flip test: 8, as posetrack times its forms)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    native_bf16 = cpu_info().native_bf16

    networks = {"ResNet-50": pose_resnet(depth=50).eval(), "MobileNetV2": pose_mobilenetv2().eval()}
    flops = {net: flops_of(m, (1, 3, 256, 192)) for net, m in networks.items()}
    with torch.inference_mode():
        probes = limit_probes(native_bf16)
        variants, profiled, cost = network_variants(args.batch, native_bf16)
        for _, _, fn in probes.values():
            fn()
        for *_, fn in variants.values():
            fn()
        probe_times: dict[str, list[float]] = {k: [] for k in probes}
        variant_times: dict[str, list[float]] = {k: [] for k in variants}
        variant_wall: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.repeats):  # interleaved: a slow moment of the machine hits every row alike
            for name, (_, _, fn) in probes.items():
                probe_times[name].append(timed(fn)[0])
            for name, (*_, fn) in variants.items():
                cpu, wall = timed(fn)
                variant_times[name].append(cpu / args.batch)
                variant_wall[name].append(wall / args.batch)
        splits = {name: int8_split(compiled, crops, args.repeats) for name, (compiled, crops) in profiled.items()}

    # CPU time: on a shared machine wall time also counts the moments another process held the core.
    rates = {name: ops / statistics.median(probe_times[name]) for name, (_, ops, _) in probes.items()}
    limits: dict[str, float] = {}
    for name, (dtype, _, _) in probes.items():
        limits[dtype] = max(limits.get(dtype, 0.0), rates[name])

    def floor(net: str, dtype: str, depthwise: str, part: str = "all") -> float:
        """Seconds per crop of ``net`` (or one of its ``PARTS``) at the limits of the formats it runs in."""
        f = flops[net]
        dw, head, rest = f["depthwise"], f["head"], f["total"] - f["head"] - f["depthwise"]
        seconds = {"depthwise": dw / limits[depthwise], "backbone rest": rest / limits[dtype],
                   "head": head / limits[dtype]}
        return sum(seconds.values()) if part == "all" else seconds[part]

    print(f"# pose_net: {cpu_line()}")
    print(f"# 1 thread, torch {torch.__version__}, median of {args.repeats}, CPU time (time.process_time)")
    if not native_bf16:
        print("# no bf16 rows: this CPU has no native bf16 (AVX512_BF16 or AMX); OpenVINO would run f32 under "
              "a bf16 hint")
    print(f"{'limit probe (CPU time)':<32} {'dtype':>5} {'GOP/s':>8}")
    for name, (dtype, _, _) in probes.items():
        print(f"{name:<32} {dtype:>5} {rates[name] / 1e9:>8.1f}")

    per_crop = {name: statistics.median(t) for name, t in variant_times.items()}
    forms = [name for name in variants if "(" in name]
    chosen = min(forms, key=lambda name: per_crop[name]) if forms else None
    print(f"\n{'network runtime':<44} {'CPU ms/crop':>11} {'wall ms':>8} {'GOP/s':>8} {'x limit':>8}   "
          f"(batch {args.batch}, ResNet-50 {flops['ResNet-50']['total'] / 1e9:.2f} / MobileNetV2 "
          f"{flops['MobileNetV2']['total'] / 1e9:.2f} GFLOP per crop)")
    for name, (net, dtype, depthwise, _) in variants.items():
        rate = flops[net]["total"] / per_crop[name]
        wall = statistics.median(variant_wall[name])
        mark = "  <- fastest form: posetrack's choice" if name == chosen else ""
        print(f"{name:<44} {per_crop[name] * 1e3:>11.1f} {wall * 1e3:>8.1f} {rate / 1e9:>8.1f} "
              f"{per_crop[name] / floor(net, dtype, depthwise):>8.2f}{mark}")

    width = max(len(name) for name in splits) + len(" (per-layer wall times summed)")
    print(f"\n{'int8 part':<{width}} {'GFLOP':>6} {'CPU ms/crop':>11} {'x limit':>8} {'floor ms':>9}   (each call's "
          "CPU time split by OpenVINO's per-layer wall-time shares)")
    for name, (parts, wall_sum) in splits.items():
        net, dtype, depthwise, _ = variants[name]
        f = flops[net]
        part_flops = {"depthwise": f["depthwise"], "head": f["head"],
                      "backbone rest": f["total"] - f["head"] - f["depthwise"]}
        for part in PARTS:
            if not part_flops[part]:
                continue
            low = floor(net, dtype, depthwise, part)
            print(f"{name + ' ' + part:<{width}} {part_flops[part] / 1e9:>6.2f} {parts[part] * 1e3:>11.2f} "
                  f"{parts[part] / low:>8.2f} {low * 1e3:>9.2f}")
        print(f"{name + ' (per-layer wall times summed)':<{width}} {'':>6} {wall_sum * 1e3:>11.2f}")

    if cost:
        timing = 6 * sum(per_crop[name] * args.batch for name in forms)  # fastest(): 1 warm-up + 5 timed calls each
        many = next(k for k in cost if k.endswith("forms"))
        print(f"\nfirst int8 calibration of MobileNetV2 on {cost['crops']:.0f} crops (CPU s): quantized in one form "
              f"{cost['one form']:.1f}, in {many} on one pass of statistics {cost[many]:.1f}, timing the forms "
              f"{timing:.1f}: choosing costs {cost[many] - cost['one form'] + timing:.1f} s once per CPU and network")


if __name__ == "__main__":
    main()
