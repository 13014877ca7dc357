"""Videos per minute of ``posetrack run`` on this machine: the local executor, and Ray with 1 and 2 workers.

Renders N short clips of two walkers (320x240), writes the fast preset's checkpoints with random
weights biased to find people (as the tests do: speed does not depend on the values), and runs the
same batch with each executor through the library calls the command line makes, in this process,
with the test settings (pose input 32x32, no flip test, detector at 256 px). For Ray, a Ray
instance is started on this machine for each run (address="local"), as ``--executor ray`` does
without ``--address``. It prints, per configuration:

The local executor runs twice, with its stages in sequence and overlapped in threads (its
default where torch has 2+ threads; Ray workers have one CPU each, so theirs run in sequence).

* start-up: seconds from the call to the first finished video, less that video's own time (Ray
  start and model loading in every worker; model loading for the local executor);
* videos/min end to end: N / wall time of the whole call, start-up included;
* videos/min steady: videos finished per minute between the first and the last to finish.

    python benchmarks/ray_batch.py [--videos 8] [--frames 40]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test renderer and checkpoints

from posetrack_cli.inference.config import EstimatorConfig  # noqa: E402
from posetrack_cli.run.batch import BatchRecord, ItemResult, LocalExecutor, expand_sources  # noqa: E402
from posetrack_cli.run.job import load_run  # noqa: E402
from posetrack_cli.run.ray_executor import run_on_ray  # noqa: E402
from posetrack_cli.run.settings import ModelChoice, PipelineConfig, RayOptions, RunSpec  # noqa: E402

from helpers import walkers, write_biased_checkpoints, write_video  # noqa: E402

SPEC = RunSpec(models=ModelChoice(input_size=(32, 32), detector_size=256), estimator=EstimatorConfig(flip_test=False),
               allow_download=False)


def timed(run) -> tuple[float, list[tuple[float, ItemResult]], list[ItemResult]]:  # noqa: ANN001
    """Wall time of ``run(on_item)``, and when each video finished (seconds from the start)."""
    start = time.perf_counter()
    finished: list[tuple[float, ItemResult]] = []
    results = run(lambda result: finished.append((time.perf_counter() - start, result)))
    return time.perf_counter() - start, finished, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    load = os.getloadavg()[0]  # other work on the machine skews every number here

    root = Path(tempfile.mkdtemp(prefix="posetrack-ray-bench-"))
    os.environ["POSETRACK_WEIGHTS"] = str(root / "weights")
    (root / "weights").mkdir()
    write_biased_checkpoints(root / "weights")
    (root / "videos").mkdir()
    for i in range(args.videos):
        write_video(root / "videos" / f"clip{i:02d}.mp4", walkers(frames=args.frames, seed=2 * i + 1))
    items, _ = expand_sources([root / "videos"])

    def local(overlap: bool):  # noqa: ANN202
        def run(on_item):  # noqa: ANN001, ANN202
            out = root / f"local-overlap-{overlap}"
            out.mkdir()
            loaded = load_run(replace(SPEC, pipeline=PipelineConfig(overlap=overlap))).into(out)
            return LocalExecutor(loaded, overwrite=True, on_item=on_item).run(BatchRecord(out, items))
        return run

    def on_ray(workers: int):  # noqa: ANN202
        def run(on_item):  # noqa: ANN001, ANN202
            return run_on_ray(SPEC, items, root / f"ray{workers}", RayOptions(workers=workers), overwrite=True,
                              on_item=on_item)
        return run

    threads = f"{torch.get_num_threads()} (torch default)"
    configs = [("local --no-overlap", "-", threads, local(False)),
               ("local --overlap", "-", threads, local(True)),
               ("ray", "1", "1 (Ray: 1 CPU each)", on_ray(1)),
               ("ray", "2", "1 (Ray: 1 CPU each)", on_ray(2))]
    rows = []
    for executor, workers, threads, run in configs:
        if executor == "ray":
            (root / f"ray{workers}").mkdir()
        wall, finished, results = timed(run)
        assert all(r.status == "ok" for r in results), [r for r in results if r.status != "ok"]
        startup = finished[0][0] - finished[0][1].seconds
        span = finished[-1][0] - finished[0][0]
        steady = (len(finished) - 1) / span * 60 if len(finished) > 1 else float("nan")
        rows.append((executor, workers, threads, f"{startup:.1f}", f"{len(items) / wall * 60:.1f}", f"{steady:.1f}"))

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"torch {torch.__version__}, load average at start: {load:.1f}")
    print(f"# {len(items)} videos x {args.frames} frames, 320x240, 2 walkers; pose 32x32, no flip, detector 256 px")
    header = ("executor", "workers", "torch threads/worker", "start-up s", "videos/min end to end", "videos/min steady")
    table = [header] + rows
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")


if __name__ == "__main__":
    main()
