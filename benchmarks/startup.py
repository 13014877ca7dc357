"""Time to the first frame of ``posetrack run``: cold (empty model cache) and warm (cache present).

For ``--preset realtime`` and ``--preset fast`` the real command runs as a child process
(``python -m posetrack_cli run CLIP --preset P --offline --no-progress``) on a 1280x720 clip of
four rendered walkers (tests/synthetic.py), with random-initialised weights in the released
layouts (mmpose 1.x MobileNetV2, mmpose 0.x ResNet-50, torchvision's detector files, biased so
that the detectors find people: SSDlite 4 a frame, Faster R-CNN 1) under their manifest file
names in a weights folder of their own, described by a manifest with their SHA-256
(``POSETRACK_WEIGHTS``, ``POSETRACK_MANIFEST``: the way the tests trust random stand-ins); every
file is found, SHA-256 checked, strictly loaded, converted and compiled as a user's would be.

* cold: an empty ``POSETRACK_CACHE`` and no digest cache in the weights folder (a first run on a
  new machine: weights hashed, the pose network and the detector's backbone converted and
  compiled), on a clip long enough for the 96 int8 calibration crops (the pose network runs fp32
  until then); the time to the calibration line is reported too.
* 2nd run and warm: a 5-frame clip with the cache the cold run left; the 2nd run (the first after
  the cold one) apart from the later ones, as it compiles the int8 model calibration left (not
  kept compiled). A warm run that adds to the cache is flagged in its row.

Per run: wall seconds from the process's start to its first frame and the CPU seconds spent by
then (``info.timings`` of the output JSON: ``first_frame_s``, ``first_frame_cpu_s``), the wall
time of the whole child and its CPU time (``resource.getrusage(RUSAGE_CHILDREN)``: every thread
of the process). Repeats interleave presets, cold and warm; medians. The child runs one thread
(``OMP_NUM_THREADS=1``), as the other CPU benchmarks do.

The breakdown (``--breakdown N``, default 3) runs N more warm runs of each preset in-process with
each start-up step's function timed where it is called (wall and CPU; no profiler overhead),
after importing what a run imports: imports, weights check, model builds and strict loads, cache
keys, cache reads and compiled-blob imports, and the first frame itself.

With ``--baseline DIR`` (a checkout of another commit, e.g. ``git worktree add DIR <commit>``), warm
runs of that checkout's posetrack and this one's then take turns, ``--baseline-rounds`` each, on
caches each made by its own cold run: the same machine state for both, whatever it is (this VM
runs at two speeds about 1.6x apart).

    python benchmarks/startup.py [--repeats 3] [--warm 3] [--breakdown 3] [--cold-breakdown 1]
    python benchmarks/startup.py --repeats 0 --baseline /tmp/before --baseline-rounds 4
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the checkpoint writers and manifest of the tests

from machine import cpu_line, timed_env  # noqa: E402  (beside this script)

PRESETS = ("realtime", "fast")
PEOPLE = 4  # walkers in the clip (the realtime detector finds 4 people a frame, the fast one 1)
# Cold runs: frames enough for the 96 calibration crops (realtime: 4 people on every 5th frame; fast: 1
# person and its mirror on every frame).
COLD_FRAMES = {"realtime": 125, "fast": 50}
WARM_FRAMES = 5  # warm runs: the first frames of the same clip
SIZE = (1280, 720)

# Start-up steps a warm run's breakdown times: (label, module, attribute); a function is timed wherever
# posetrack's modules hold it (``from m import f`` copies included). Steps do not nest, except where said.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("runtime and precision choice", "posetrack_cli.runtime.choice", "choose_precision"),
    ("weights: SHA-256 check (cached digests)", "posetrack_cli.models.weights", "require_files"),
    ("pose network: read file, build, strict load", "posetrack_cli.models.checkpoints", "load_pose_checkpoint"),
    ("detector: build", "posetrack_cli.models.detectors", "build_detector"),
    ("detector: read its file (torch.load)", "torch", "load"),  # the pose file's is in its own step
    ("state-dict digests (cache keys)", "posetrack_cli.runtime.cache", "state_dict_sha256"),
    ("state-dict digests (cache keys)", "posetrack_cli.runtime.cache", "tensors_sha256"),  # a weights file's
    ("BatchNorm folding", "posetrack_cli.models.pose_resnet", "fold_batchnorm"),
    ("model cache: verify + read_model", "posetrack_cli.runtime.cache", "read_cached"),
    ("compiled model: verify + import blob (or compile)", "posetrack_cli.runtime.convert", "compile_model"),
    ("flow", "posetrack_cli.models.flow", "make_flow"),
    ("per-CPU choices (runtime/tuning)", "posetrack_cli.runtime.tuning", "fastest"),
    ("cold: conversion to OpenVINO (convert_model)", "openvino", "convert_model"),
    # NNCF on each depthwise form, their compilation, timing (runtime/tuning) and agreement with fp32
    ("cold: int8 calibration, all of it", "posetrack_cli.runtime.engines", "OpenVINORuntime.calibrate"),
)
AFTER = " (while the input runs)"  # a step's time once the input has started (frames, calibration)
# What a run imports before its first frame, imported first so that the steps' times leave it out.
IMPORTS = ("posetrack_cli.cli", "posetrack_cli.run.runner", "posetrack_cli.run.job", "posetrack_cli.inference.detector",
           "posetrack_cli.inference.estimator", "posetrack_cli.runtime.backbone", "posetrack_cli.models.flow",
           "openvino")


def breakdown_child(argv: list[str], report: Path) -> None:
    """Child of ``--breakdown``: ``posetrack run argv`` in this process with each step of ``STEPS``
    timed (wall and CPU, summed over its calls), written to ``report`` as JSON with the imports'
    times and the run's ``info.timings``."""
    import importlib
    import types

    wall0, cpu0 = time.perf_counter(), time.process_time()
    for name in IMPORTS:
        importlib.import_module(name)
    times: dict[str, list[float]] = {"imports": [time.perf_counter() - wall0, time.process_time() - cpu0]}
    active: list[str] = []

    def timed(label: str, fn: object) -> object:
        def wrapper(*args: object, **kwargs: object) -> object:
            if active:  # inside another step: counted there
                return fn(*args, **kwargs)  # type: ignore[operator]
            active.append(label)
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)  # type: ignore[operator]
            finally:
                active.pop()
                spent = times.setdefault(label + (AFTER if "input starts" in times else ""), [0.0, 0.0])
                spent[0] += time.perf_counter() - w
                spent[1] += time.process_time() - c
        return wrapper

    for label, module_name, attr in STEPS:
        home: object = importlib.import_module(module_name)
        *owners, attr = attr.split(".")  # a method: its class is the home
        for owner in owners:
            home = getattr(home, owner)
        original = getattr(home, attr)
        wrapped = timed(label, original)
        setattr(home, attr, wrapped)
        for module in list(sys.modules.values()):
            if isinstance(module, types.ModuleType) and module.__name__.startswith("posetrack_cli"):
                for key, value in list(vars(module).items()):
                    if value is original:
                        setattr(module, key, wrapped)
    from posetrack_cli.cli import main as cli_main
    from posetrack_cli.core.clock import process_age
    from posetrack_cli.run.job import LoadedRun

    process = LoadedRun.process

    def started(self: LoadedRun, *args: object, **kwargs: object) -> object:
        times["input starts"] = [process_age() or 0.0, time.process_time()]
        return process(self, *args, **kwargs)  # type: ignore[arg-type]

    LoadedRun.process = started  # type: ignore[assignment,method-assign]
    try:
        cli_main(argv, standalone_mode=False)
    finally:
        out = Path(argv[argv.index("-o") + 1])
        info = json.loads((out / f"{Path(argv[1]).stem}.json").read_text())["info"]
        report.write_text(json.dumps({"steps": times, "timings": info["timings"]}))


def make_weights(folder: Path) -> Path:
    """The two presets' files under their manifest names in ``folder``, random-initialised in the
    released layouts (biased so that the detectors find people), and a manifest trusting them."""
    import torch

    from posetrack_cli.models.detectors import build_detector
    from posetrack_cli.models.pose_mobilenetv2 import pose_mobilenetv2
    from posetrack_cli.models.pose_resnet import pose_resnet
    from posetrack_cli.models.weights import load_manifest
    from posetrack_cli.run.presets import PRESETS as ALL

    from helpers import write_checkpoint, write_test_manifest

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest()
    files: dict[str, Path] = {}
    with torch.no_grad():
        ssd = build_detector(ALL["realtime"].detector)
        for layer in ssd.head.classification_head.module_list:  # background everywhere ...
            layer[-1].bias.view(-1, 91)[:, 0] = 10.0
        # ... but one anchor shape of the 2x2 map, a "person" shrunk to a quarter of the frame: 4 people a frame
        ssd.head.classification_head.module_list[4][-1].bias.view(-1, 91)[3, 1] = 30.0
        ssd.head.regression_head.module_list[4][-1].bias.view(-1, 4)[3, 2:] = -5.0
        rcnn = build_detector(ALL["fast"].detector)  # helpers.write_biased_checkpoints' biases
        rcnn.rpn.head.cls_logits.bias.fill_(-10.0)
        rcnn.rpn.head.cls_logits.bias[13] = 10.0
        rcnn.roi_heads.box_predictor.cls_score.bias[1] = 10.0
        rcnn.roi_heads.box_predictor.bbox_pred.bias[6:8] = 50.0
    for name, detector in ((ALL["realtime"].detector, ssd), (ALL["fast"].detector, rcnn)):
        files[name] = folder / manifest[name].filename
        torch.save(detector.state_dict(), files[name])
    for name, net, layout in ((ALL["realtime"].pose, pose_mobilenetv2(), "mmpose-1.x"),
                              (ALL["fast"].pose, pose_resnet(depth=50), "mmpose-0.x")):
        torch.nn.init.constant_(net.final_layer.bias, 0.5)
        files[name] = write_checkpoint(net.eval(), folder / manifest[name].filename, layout)
    return write_test_manifest({p.name: p for p in files.values()}, folder.parent / "manifest.json")


def make_clips(folder: Path) -> None:
    """Each preset's cold clip ``cold-<preset>.mp4`` and the warm runs' ``warm.mp4``: the first frames
    of one clip of walkers to and fro."""
    import numpy as np

    from helpers import write_video
    from synthetic import Person, render

    frames = max(COLD_FRAMES.values())
    lane, t = SIZE[0] / PEOPLE, np.arange(frames, dtype=np.float32)[:, None]
    people = [Person(300, np.array([lane * (i + 0.5) - 60, 60 + 80 * (i % 2)], np.float32)
                     + np.array([40, 0], np.float32) * np.sin(t / (8 + 3 * i)), seed=i) for i in range(PEOPLE)]
    rendered = render(people, frames, SIZE)
    for preset, count in COLD_FRAMES.items():
        write_video(folder / f"cold-{preset}.mp4", rendered[:count], fps=30)
    write_video(folder / "warm.mp4", rendered[:WARM_FRAMES], fps=30)


@dataclass
class Run:
    """One child run's figures (seconds)."""

    first_frame: float  # wall, process start to first frame (the child's own record)
    first_frame_cpu: float  # CPU by then
    wall: float  # the whole child, as the parent saw it
    cpu: float  # the whole child's CPU time (RUSAGE_CHILDREN)
    people: int  # on the first frame
    calibrated: float | None = None  # wall from the child's start to the calibration line (cold int8)
    cache_changed: bool = False  # a warm run that added to the model cache (it was not warm)


def run_child(preset: str, clip: Path, out: Path, env: dict[str, str], report: Path | None = None) -> Run:
    """``posetrack run`` as a user starts it, timed from outside and from its own record; with
    ``report``, run through :func:`breakdown_child` instead. It runs in the clip's folder: ``-m``
    puts the working directory first on the path, and a checkout there would be imported instead
    of the one the environment names."""
    args = ["run", str(clip), "-o", str(out), "--preset", preset, "--offline", "--no-progress", "--overwrite"]
    here = str(Path(__file__).resolve())
    lead = [here, "--breakdown-child", str(report), "--"] if report else ["-m", "posetrack_cli"]
    cache = Path(env["POSETRACK_CACHE"])
    entries = set(cache.iterdir()) if cache.is_dir() else set()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, *lead, *args], env=env, stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, text=True, cwd=clip.parent)
    assert child.stderr is not None
    lines, calibrated = [], None
    for line in child.stderr:  # read as it comes: the calibration line's time
        lines.append(line.rstrip())
        if "calibrated int8" in line and calibrated is None:
            calibrated = time.perf_counter() - started
    code = child.wait()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"posetrack run --preset {preset} failed ({code}):\n" + "\n".join(lines[-20:]))
    doc = json.loads((out / f"{clip.stem}.json").read_text())
    timings = doc["info"]["timings"]
    people = sum(1 for a in doc["annotations"] if a["image_id"] == 0)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    changed = bool(entries) and set(cache.iterdir()) != entries
    return Run(timings["first_frame_s"], timings["first_frame_cpu_s"], wall, cpu, people, calibrated, changed)


def child_env(work: Path, cache: Path) -> dict[str, str]:
    return timed_env(POSETRACK_WEIGHTS=str(work / "weights"), POSETRACK_MANIFEST=str(work / "manifest.json"),
                     POSETRACK_CACHE=str(cache))


def cold_cache(work: Path, preset: str, repeat: int) -> Path:
    """An empty model cache, and no digest cache in the weights folder: a first run."""
    from posetrack_cli.models.weights import CACHE_NAME

    (work / "weights" / CACHE_NAME).unlink(missing_ok=True)
    cache = work / f"cache-{preset}-{repeat}"
    shutil.rmtree(cache, ignore_errors=True)
    return cache


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def breakdown(preset: str, clip: Path, work: Path, cache: Path | None, rounds: int) -> list[str]:
    """Rows of where a start's seconds go: medians over ``rounds`` instrumented runs, warm with
    ``cache``, else cold (each with an empty cache)."""
    reports = []
    for i in range(rounds):
        report = work / f"breakdown-{preset}-{i}.json"
        env = child_env(work, cache or cold_cache(work, preset, 1000 + i))
        run_child(preset, clip, work / "out-breakdown", env, report)
        reports.append(json.loads(report.read_text()))
    labels = list(dict.fromkeys(["imports", *(label for label, _, _ in STEPS)]))  # a label may time two functions
    rows = []

    def row(label: str, wall: list[float], cpu: list[float]) -> None:
        rows.append(f"| {preset} | {label} | {med(wall)} | {med(cpu)} |")

    first = [r["timings"]["first_frame_s"] for r in reports]
    first_cpu = [r["timings"]["first_frame_cpu_s"] for r in reports]
    row("**to the first frame**", first, first_cpu)
    steps = [{k: v for k, v in r["steps"].items() if not k.endswith(AFTER)} for r in reports]
    later = [{k: v for k, v in r["steps"].items() if k.endswith(AFTER)} for r in reports]
    inputs = [s.pop("input starts") for s in steps]
    # What the steps leave of the time to the input's start: the interpreter, this script's own few
    # imports, and the loading outside any step (options, settings, the output folder).
    counted = [sum(v[0] for v in s.values()) for s in steps]
    row("interpreter start, the rest of loading", [i[0] - c for i, c in zip(inputs, counted)],
        [i[1] - sum(v[1] for v in s.values()) for i, s in zip(inputs, steps)])
    for label in labels:
        row(label, [s.get(label, [0.0, 0.0])[0] for s in steps], [s.get(label, [0.0, 0.0])[1] for s in steps])
    row("open the video, run the first frame", [f - i[0] for f, i in zip(first, inputs)],
        [f - i[1] for f, i in zip(first_cpu, inputs)])
    for label in sorted({k for each in later for k in each}):
        row(label, [s.get(label, [0.0, 0.0])[0] for s in later], [s.get(label, [0.0, 0.0])[1] for s in later])
    return [r for r in rows if not r.endswith("| 0.00 | 0.00 |")]  # steps this start does not take


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="cold runs per preset, each followed by --warm ones")
    parser.add_argument("--warm", type=int, default=3, help="warm runs after each cold run (the first: 2nd run)")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--breakdown", type=int, default=3, help="instrumented warm runs per preset (0: none)")
    parser.add_argument("--cold-breakdown", type=int, default=1, help="instrumented cold runs per preset (0: none)")
    parser.add_argument("--keep", type=Path, help="work folder to keep and reuse (default: a temporary one)")
    parser.add_argument("--baseline", type=Path, help="a checkout of another commit to compare warm starts with")
    parser.add_argument("--baseline-rounds", type=int, default=4, help="warm runs of each, taking turns")
    parser.add_argument("--breakdown-child", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.breakdown_child is not None:
        breakdown_child(rest[rest.index("--") + 1:], args.breakdown_child)
        return

    print(cpu_line())
    work = args.keep or Path(tempfile.mkdtemp(prefix="posetrack-startup-"))
    try:
        if not (work / "manifest.json").is_file():
            make_weights(work / "weights")
        if not (work / "warm.mp4").is_file():
            make_clips(work)
        short = work / "warm.mp4"
        cold: dict[str, list[Run]] = {p: [] for p in args.presets}
        warm: dict[str, list[Run]] = {p: [] for p in args.presets}
        second: dict[str, list[Run]] = {p: [] for p in args.presets}  # the first warm run after a cold one
        caches: dict[str, Path] = {}
        for repeat in range(args.repeats):  # interleaved: each preset cold, then warm, round after round
            for preset in args.presets:
                cache = caches[preset] = cold_cache(work, preset, repeat)
                clip = work / f"cold-{preset}.mp4"
                cold[preset].append(run_child(preset, clip, work / "out", child_env(work, cache)))
                for i in range(args.warm):
                    (warm if i else second)[preset].append(run_child(preset, short, work / "out",
                                                                     child_env(work, cache)))
        if args.repeats == 0:
            args.breakdown = 0  # warm runs need the cache of a cold one
        frames = " and ".join(f"{n} ({p})" for p, n in COLD_FRAMES.items())
        print(f"`posetrack run --preset P`, 1280x720, one thread; cold: {frames} frames, empty model cache and "
              f"digest cache; warm: {WARM_FRAMES} frames, the cache the cold run left; medians of {args.repeats} "
              f"cold, 2nd and {args.repeats * (args.warm - 1)} later warm runs (seconds)")
        print("| preset | start | people on frame 0 | first frame, wall | first frame, CPU | int8 calibrated, wall | "
              "whole run, wall | whole run, CPU |")
        print("|---|---|---|---|---|---|---|---|")
        for preset in args.presets if args.repeats else ():
            for label, runs in (("cold", cold[preset]), ("2nd run", second[preset]), ("warm", warm[preset])):
                calibrated = [r.calibrated for r in runs if r.calibrated is not None]
                stale = sum(r.cache_changed for r in runs)
                note = f" ({stale} of {len(runs)} runs added to the cache: not warm)" if stale else ""
                print(f"| {preset} | {label}{note} | {statistics.median([r.people for r in runs]):g} | "
                      f"{med([r.first_frame for r in runs])} | {med([r.first_frame_cpu for r in runs])} | "
                      f"{med(calibrated)} | {med([r.wall for r in runs])} | {med([r.cpu for r in runs])} |")
        if args.breakdown:
            print(f"\nWhere a warm start's seconds go: medians of {args.breakdown} instrumented warm runs (each step "
                  "timed where it is called; imports done first)")
            print("| preset | step | wall | CPU |")
            print("|---|---|---|---|")
            for preset in args.presets:
                for line in breakdown(preset, short, work, caches[preset], args.breakdown):
                    print(line)
        if args.baseline is not None:
            compare(args.baseline, args.presets, work, args.baseline_rounds)
        if args.cold_breakdown:
            print(f"\nWhere a cold start's seconds go: medians of {args.cold_breakdown} instrumented cold runs "
                  "(the cold clips; int8 calibration comes after the first frame)")
            print("| preset | step | wall | CPU |")
            print("|---|---|---|---|")
            for preset in args.presets:
                for line in breakdown(preset, work / f"cold-{preset}.mp4", work, None, args.cold_breakdown):
                    print(line)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def compare(baseline: Path, presets: list[str], work: Path, rounds: int) -> None:
    """Warm starts of ``baseline``'s posetrack and this checkout's, taking turns (who goes first
    alternates), each on a cache its own cold run and 2nd run made; a table of medians."""
    checkouts = {"baseline": baseline.resolve(), "this": ROOT}
    runs: dict[tuple[str, str], list[Run]] = {}

    def env_of(name: str, preset: str) -> dict[str, str]:
        return {**child_env(work, work / f"cache-{name}-{preset}"), "PYTHONPATH": str(checkouts[name])}

    for preset in presets:
        for name in checkouts:
            if not (work / f"cache-{name}-{preset}").is_dir():
                run_child(preset, work / f"cold-{preset}.mp4", work / f"out-{name}", env_of(name, preset))
                run_child(preset, work / "warm.mp4", work / f"out-{name}", env_of(name, preset))  # compiles int8
    for r in range(rounds):
        for preset in presets:
            for name in (list(checkouts) if r % 2 == 0 else list(reversed(checkouts))):
                runs.setdefault((preset, name), []).append(
                    run_child(preset, work / "warm.mp4", work / f"out-{name}", env_of(name, preset)))
    print(f"\nWarm starts, this checkout against {baseline} ({rounds} each, taking turns; seconds)")
    print("| preset | posetrack | first frame, wall: median (each) | first frame, CPU | whole run, wall |")
    print("|---|---|---|---|---|")
    for (preset, name), done in runs.items():
        walls = ", ".join(f"{r.first_frame:.2f}" for r in done)
        print(f"| {preset} | {name} | {med([r.first_frame for r in done])} ({walls}) | "
              f"{med([r.first_frame_cpu for r in done])} | {med([r.wall for r in done])} |")


if __name__ == "__main__":
    main()
