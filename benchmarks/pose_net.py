"""Pose network speed on this machine against its FLOP bound.

Prints, for SimpleBaseline ResNet-50 at 256x192 (random weights: speed does not depend on them),
milliseconds per person at batch 1, 8, 16 and 32, the fp32 matmul rate measured in the same run, and
the median ratio of time per person to the FLOP bound: the network's FLOPs per person, counted by
torch's FlopCounterMode on the model itself (2 per multiply-add, as the matmul rate counts them:
10.85 GFLOP; the paper's table quotes 8.9 "GFLOPs", a count that leaves part of the work out),
divided by that rate. The machine is shared and noisy, so matmul and forward timings are
interleaved and medians are reported.

    python benchmarks/pose_net.py [--repeats 7] [--threads N] [--compile]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from posetrack_cli.models.pose_resnet import fold_batchnorm, pose_resnet



def flops_per_person(model: torch.nn.Module) -> float:
    """FLOPs of one 256x192 forward (2 per multiply-add), counted by torch on ``model`` itself."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.randn(1, 3, 256, 192))
    return float(counter.get_total_flops())


def matmul_rate(n: int = 2048, reps: int = 4) -> float:
    """fp32 GEMM rate in FLOP/s (2 n^3 per product), the machine's practical compute peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start)


def time_forward(model: torch.nn.Module, batch: int) -> float:
    x = torch.randn(batch, 3, 256, 192).contiguous(memory_format=torch.channels_last)
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to build)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    base = pose_resnet(depth=50).eval().to(memory_format=torch.channels_last)
    flops = flops_per_person(base)
    variants = {"eager": base, "eager+bn-fold": fold_batchnorm(base).to(memory_format=torch.channels_last)}
    if args.compile:
        # Inductor with freezing folds BatchNorm and pre-packs weights for oneDNN itself.
        variants["compiled"] = torch.compile(base, dynamic=False, options={"freezing": True})

    rows = []
    with torch.inference_mode():
        for name, model in variants.items():
            for batch in (1, 8, 16, 32):
                time_forward(model, batch)  # warm-up (and compilation)
                times, rates, ratios = [], [], []
                for _ in range(args.repeats):
                    # The bound comes from the matmul rate measured just before, so drifts in
                    # the machine's speed cancel in the ratio.
                    rate = matmul_rate()
                    per_person = time_forward(model, batch) / batch
                    rates.append(rate)
                    times.append(per_person)
                    ratios.append(per_person / (flops / rate))
                rows.append((name, batch, statistics.median(times) * 1e3, statistics.median(rates) / 1e9,
                             statistics.median(ratios)))

    print(f"# pose_net: ResNet-50 256x192, fp32, {args.threads} threads, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, median of {args.repeats}; "
          f"{flops / 1e9:.2f} GFLOP per person (bound = that / matmul rate)")
    print(f"{'variant':<18} {'batch':>5} {'ms/person':>10} {'matmul GFLOP/s':>15} {'x FLOP bound':>13}")
    for name, batch, ms, gflops, ratio in rows:
        print(f"{name:<18} {batch:>5} {ms:>10.1f} {gflops:>15.1f} {ratio:>13.2f}")


if __name__ == "__main__":
    main()
