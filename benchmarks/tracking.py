"""Tracking on real motion: posetrack's tracker against ByteTrack and norfair on the development set.

The clips of ``shared/data/tracking_dev`` (Bonn Multi-Person PoseTrack, 30 clips of real people's
annotated joints and identities; no frames) are turned into input variants that stress a tracker
(``benchmarks/tracking_variants.py``: clean, noisy joints and misses, every 2nd and 3rd frame,
occlusion gaps of 1-3 x L_Q at crossings, duplicated poses, false positives). Every tracker gets
the same poses frame by frame, on grey 960x540 frames; each is scored with CLEAR-MOT and IDF1
(motmetrics' accumulator): a pose matches an annotated person when at least half of the joints
scored in the pose and annotated in the person (at least one) lie within PCKh@0.5, half the
person's head size; the distance is 1 - that fraction.

- posetrack: ``FrameTracker(config, flow=None).update(frame, poses, timestamp=t)`` for each setting
  of ``SETTINGS`` and of ``--setting`` (``name=key:value,...`` over ``TrackerConfig``'s fields,
  ``stitch:true`` for offline stitching after the clip), its ids passed through the
  ``Confirmation`` the frame loop writes through (tracks not confirmed in time are not written);
- ByteTrack: supervision's ``sv.ByteTrack`` on the pose boxes, the person score as confidence,
  ``frame_rate`` the variant's;
- norfair: ``norfair.Tracker`` on the keypoints, set up as its OpenPose demo (keypoint voting
  distance, joints within frame height / 40 px, at least 2 to match), without initialization delay.

    pip install -e ".[bench]"
    python benchmarks/tracking.py                                  # all clips, all variants
    python benchmarks/tracking.py --variants gap-2x,every-3rd --clips 000015,000026
    python benchmarks/tracking.py --setting "q10=queue_length:10,max_lost:2" --settings defaults
    python benchmarks/tracking.py --flow-check                     # posetrack with DIS flow vs none
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import sys
import time
import warnings
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import motmetrics as mm
import numpy as np

from posetrack_cli.core.keypoints import COCO_SIGMAS
from posetrack_cli.run.frame_tracker import FrameTracker
from posetrack_cli.tracking.confirmation import Confirmation
from posetrack_cli.tracking.similarity import box_areas, oks_matrix
from posetrack_cli.tracking.stitching import stitch
from posetrack_cli.tracking.tracker import TrackerConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the variants beside this script

from machine import cpu_line  # noqa: E402
from tracking_variants import FPS, FRAME_HEIGHT, FRAME_WIDTH, VARIANTS, Clip, Inputs, Truth, Variant, load_clips  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tracking_dev"
PCKH = 0.5  # a joint is found within half a head size
MATCH_FRACTION = 0.5  # a pose is the person when at least this share of the common joints is found
MIN_COMMON = 1  # ... of at least this many joints scored in the pose and annotated in the person
QUEUE_LENGTH = TrackerConfig().queue_length  # L_Q, for the occlusion gaps
METRICS = ["mota", "idf1", "num_switches", "num_false_positives", "num_misses", "num_objects"]


@dataclass(frozen=True)
class Setting:
    """A posetrack configuration: the tracker's settings, and whether the clip's ids are stitched."""

    config: TrackerConfig
    stitch: bool = False


# The posetrack settings run by default (``--settings`` picks among them and ``--setting`` adds).
SETTINGS: dict[str, Setting] = {
    "defaults": Setting(TrackerConfig()),
    "paper": Setting(TrackerConfig.paper()),
    "defaults+stitch": Setting(TrackerConfig(), stitch=True),
    # one default changed at a time: what each contributes
    "confirm-1": Setting(TrackerConfig(confirm_frames=1)),
    "confirm-3": Setting(TrackerConfig(confirm_frames=3)),
    "min-sim-0.1": Setting(TrackerConfig(min_similarity=0.1)),
    "joint-noise-0": Setting(TrackerConfig(joint_noise=0.0)),
    "duplicate-oks-0.7": Setting(TrackerConfig(duplicate_oks=0.7)),
    "no-staged": Setting(TrackerConfig(staged=False)),
}
PEERS = ("bytetrack", "norfair")

# norfair's OpenPose demo (demos/openpose/src/demo.py in tryolabs/norfair): its constants, with the
# frame counts scaled to the frame rate as supervision's ByteTrack scales its lost-track buffer.
NORFAIR_DETECTION_THRESHOLD = 0.1
NORFAIR_DISTANCE_THRESHOLD = 0.4  # 1 / (1 + matched joints) < 0.4: at least 2 joints
NORFAIR_KEYPOINT_DISTANCE = FRAME_HEIGHT / 40
NORFAIR_HIT_COUNTER_MAX = 30  # at 30 fps
NORFAIR_POINTWISE_HIT_COUNTER_MAX = 10  # at 30 fps


def parse_setting(text: str) -> tuple[str, Setting]:
    """``name=key:value,key:value`` over the defaults: ``TrackerConfig`` fields (typed as their
    defaults are) and ``stitch``."""
    name, sep, body = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--setting wants name=key:value,...; got {text!r}")
    types = {f.name: type(getattr(TrackerConfig(), f.name)) for f in dataclasses.fields(TrackerConfig)}
    values: dict[str, Any] = {}
    stitched = False
    for item in filter(None, body.split(",")):
        key, sep, raw = item.partition(":")
        key = key.strip().replace("-", "_")
        if key == "stitch" or types.get(key) is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise SystemExit(f"--setting {name}: {key} wants true or false, got {raw!r}")
            flag = raw.lower() in ("true", "1", "yes", "on")
            if key == "stitch":
                stitched = flag
            else:
                values[key] = flag
        elif key in types:
            try:
                values[key] = types[key](raw)
            except ValueError as error:
                raise SystemExit(f"--setting {name}: {key}: {error}") from None
        else:
            raise SystemExit(f"--setting {name}: no such TrackerConfig field {key!r} (fields: {', '.join(types)})")
    try:
        return name, Setting(replace(TrackerConfig(), **values), stitched)
    except ValueError as error:
        raise SystemExit(f"--setting {name}: {error}") from None


# ---------------------------------------------------------------------------------------------
# Trackers: each gives every input pose of every frame an id, or -1 (not output)


@dataclass
class Run:
    ids: list[np.ndarray]  # per frame, (N,) the id of each input pose, -1 where the tracker gave none
    cpu: float = 0.0  # seconds of CPU time in the tracker
    wall: float = 0.0
    suppressed: int | None = None  # the tracker's own count of duplicates it dropped, if it keeps one


def _ids_of_inputs(inputs: Inputs, tracked: Any) -> np.ndarray:
    """The tracker's id for each input pose (-1 for one it dropped), matched by identical keypoints
    where it returned fewer poses than it was given."""
    poses, out = inputs.poses, tracked.poses
    if len(out) == len(poses) and np.array_equal(out.keypoints, poses.keypoints):
        return np.asarray(tracked.track_ids, np.int64)
    ids = np.full(len(poses), -1, np.int64)
    for j in range(len(out)):
        same = np.flatnonzero((poses.keypoints == out.keypoints[j]).all((1, 2))
                              & (poses.keypoint_scores == out.keypoint_scores[j]).all(1) & (ids < 0))
        if len(same):
            ids[same[0]] = tracked.track_ids[j]
    return ids


GREY = np.full((FRAME_HEIGHT, FRAME_WIDTH, 3), 128, np.uint8)


def run_posetrack(setting: Setting, variant: Variant, flow: str | None) -> Run:
    tracker = FrameTracker(setting.config, flow=flow)
    run = Run([])
    c0, w0 = time.process_time(), time.perf_counter()
    confirm: Confirmation[int] = Confirmation(setting.config.confirm_frames)  # as the frame loop writes

    def written(released: list[tuple[int, np.ndarray]]) -> None:
        for frame, keep in released:
            ids = run.ids[frame]
            ids[np.flatnonzero(ids >= 0)[~keep]] = -1

    for inputs, _ in variant.frames:
        tracked = tracker.update(GREY, inputs.poses, timestamp=inputs.index / FPS)
        run.ids.append(_ids_of_inputs(inputs, tracked))
        written(confirm.push(len(run.ids) - 1, run.ids[-1][run.ids[-1] >= 0]))
    written(confirm.flush())
    if setting.stitch:
        mapping = stitch([t for t in tracker.tracklets() if confirm.confirmed(t.track_id)], setting.config)
        run.ids = [np.array([mapping.get(int(i), int(i)) if i >= 0 else -1 for i in ids], np.int64)
                   for ids in run.ids]
    run.cpu, run.wall = time.process_time() - c0, time.perf_counter() - w0
    for owner in (tracker, getattr(tracker, "_tracker", None)):
        if owner is not None and isinstance(getattr(owner, "suppressed", None), int):
            run.suppressed = owner.suppressed
            break
    return run


def run_bytetrack(variant: Variant) -> Run:
    import supervision as sv

    if not hasattr(sv, "ByteTrack"):
        raise SystemExit(f"supervision {sv.__version__} has no ByteTrack (removed in 0.31): pip install -e '.[bench]'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation notice
        tracker = sv.ByteTrack(frame_rate=variant.fps)
    run = Run([])
    c0, w0 = time.process_time(), time.perf_counter()
    for inputs, _ in variant.frames:
        p = inputs.poses
        n = len(p)
        detections = sv.Detections(xyxy=p.boxes.astype(np.float32), confidence=p.scores.astype(np.float32),
                                   class_id=np.zeros(n, int), data={"pose": np.arange(n)})
        out = tracker.update_with_detections(detections)
        ids = np.full(n, -1, np.int64)
        if len(out):
            ids[np.asarray(out.data["pose"], int)] = out.tracker_id
        run.ids.append(ids)
    run.cpu, run.wall = time.process_time() - c0, time.perf_counter() - w0
    return run


def run_norfair(variant: Variant) -> Run:
    from norfair import Detection, Tracker
    from norfair.distances import create_keypoints_voting_distance

    per_30fps = variant.fps / 30.0
    tracker = Tracker(
        distance_function=create_keypoints_voting_distance(NORFAIR_KEYPOINT_DISTANCE, NORFAIR_DETECTION_THRESHOLD),
        distance_threshold=NORFAIR_DISTANCE_THRESHOLD, detection_threshold=NORFAIR_DETECTION_THRESHOLD,
        initialization_delay=0, hit_counter_max=max(1, round(NORFAIR_HIT_COUNTER_MAX * per_30fps)),
        pointwise_hit_counter_max=max(1, round(NORFAIR_POINTWISE_HIT_COUNTER_MAX * per_30fps)))
    run = Run([])
    c0, w0 = time.process_time(), time.perf_counter()
    for frame, (inputs, _) in enumerate(variant.frames):
        p = inputs.poses
        # norfair keeps a copy of the detection an object last matched: its data says which pose it was
        detections = [Detection(p.keypoints[i].astype(np.float64), scores=p.keypoint_scores[i].astype(np.float64),
                                data=(frame, i)) for i in range(len(p))]
        ids = np.full(len(p), -1, np.int64)
        for obj in tracker.update(detections=detections):
            seen, i = obj.last_detection.data
            if seen == frame and obj.id is not None:
                ids[i] = obj.id
        run.ids.append(ids)
    run.cpu, run.wall = time.process_time() - c0, time.perf_counter() - w0
    return run


# ---------------------------------------------------------------------------------------------
# Scoring


def pckh_distances(truth: Truth, inputs: Inputs, hyps: np.ndarray) -> np.ndarray:
    """``(people, hyps)`` 1 - the share of common joints (annotated in the person, scored in the
    pose) within PCKh@0.5; NaN (no match) below ``MATCH_FRACTION`` or with no common joint."""
    kps = inputs.poses.keypoints[hyps]  # (H, K, 2)
    scored = inputs.poses.keypoint_scores[hyps] > 0
    both = truth.annotated[:, None] & scored[None]  # (G, H, K)
    d = np.linalg.norm(truth.keypoints[:, None] - kps[None], axis=-1)
    found = (both & (d <= PCKH * truth.head[:, None, None])).sum(-1)
    common = both.sum(-1)
    share = found / np.maximum(common, 1)
    return np.where((common >= MIN_COMMON) & (share >= MATCH_FRACTION), 1.0 - share, np.nan)


def accumulate(variant: Variant, run: Run) -> mm.MOTAccumulator:
    acc = mm.MOTAccumulator()
    for (inputs, truth), ids in zip(variant.frames, run.ids):
        hyps = np.flatnonzero(ids >= 0)
        if len(np.unique(ids[hyps])) != len(hyps):
            raise RuntimeError("a tracker gave one id to two poses of a frame")
        acc.update(truth.ids.tolist(), ids[hyps].tolist(), pckh_distances(truth, inputs, hyps), frameid=inputs.index)
    return acc


def oks_between(variants: dict[str, Variant]) -> tuple[np.ndarray, np.ndarray]:
    """OKS (posetrack's, COCO sigmas, joints scoring at least the tracker's joint threshold, at the
    scale of either pose's box, the larger of the two) between each injected duplicate and its
    original, and between every two different annotated people of a frame."""
    threshold = TrackerConfig().joint_threshold
    same, different = [], []
    for variant in variants.values():
        for inputs, _ in variant.frames:
            p = inputs.poses
            if len(p) < 2:
                continue
            valid = p.keypoint_scores >= threshold
            sim = oks_matrix(p.keypoints, valid, p.keypoints, valid, box_areas(p.boxes), COCO_SIGMAS)
            sim = np.maximum(sim, sim.T)
            for i in range(len(p)):
                for j in range(i + 1, len(p)):
                    if inputs.duplicate_of[j] == i or inputs.duplicate_of[i] == j:
                        same.append(sim[i, j])
                    elif inputs.person[i] >= 0 and inputs.person[j] >= 0 and inputs.person[i] != inputs.person[j] \
                            and inputs.duplicate_of[i] < 0 and inputs.duplicate_of[j] < 0:
                        different.append(sim[i, j])
    return np.array(same), np.array(different)


def duplicate_counts(variant: Variant, run: Run) -> dict[str, int]:
    """Of the injected duplicates: how many were output under an id of their own while the pose they
    duplicate was output too ("duplicate ids"), and how many were not output (dropped); and how
    many real poses were not output."""
    counts = {"dup ids": 0, "dropped dups": 0, "dropped others": 0}
    for (inputs, _), ids in zip(variant.frames, run.ids):
        for d in np.flatnonzero(inputs.duplicate_of >= 0):
            o = inputs.duplicate_of[d]
            counts["dup ids"] += int(ids[d] >= 0 and ids[o] >= 0 and ids[d] != ids[o])
            counts["dropped dups"] += int(ids[d] < 0)
        counts["dropped others"] += int(((ids < 0) & (inputs.duplicate_of < 0)).sum())
    return counts


@dataclass
class Result:
    """One tracker on one variant over the clips."""

    per_clip: dict[str, dict[str, float]] = field(default_factory=dict)  # clip -> metric -> value
    overall: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    cpu: float = 0.0
    wall: float = 0.0
    suppressed: int | None = None
    duplicates: dict[str, int] = field(default_factory=dict)


def score(variants: dict[str, Variant], runs: dict[str, Run]) -> Result:
    names = list(variants)
    accs = [accumulate(variants[n], runs[n]) for n in names]
    table = mm.metrics.create().compute_many(accs, metrics=METRICS, names=names, generate_overall=True)
    result = Result()
    for n in names:
        result.per_clip[n] = {m: float(table.loc[n, m]) for m in METRICS}
    result.overall = {m: float(table.loc["OVERALL", m]) for m in METRICS}
    result.frames = sum(len(v.frames) for v in variants.values())
    result.cpu = sum(r.cpu for r in runs.values())
    result.wall = sum(r.wall for r in runs.values())
    counts = [r.suppressed for r in runs.values()]
    result.suppressed = None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
    for n in names:
        for key, value in duplicate_counts(variants[n], runs[n]).items():
            result.duplicates[key] = result.duplicates.get(key, 0) + value
    return result


# ---------------------------------------------------------------------------------------------
# Tables


def markdown(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
             for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def pct(x: float) -> str:
    return f"{100 * x:.1f}" if np.isfinite(x) else "n/a"


def versions() -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "-"
    norfair = version("norfair-enough") if version("norfair-enough") != "-" else version("norfair")
    return (f"Python {platform.python_version()}, numpy {np.__version__}, posetrack {version('posetrack')}, "
            f"supervision {version('supervision')}, norfair {norfair}, motmetrics {version('motmetrics')}, "
            f"OpenCV {cv2.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the clips' JSON files")
    parser.add_argument("--clips", help="comma-separated clip names (default: all)")
    parser.add_argument("--variants", help=f"comma-separated, of: {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--settings", help=f"posetrack settings to run, of: {', '.join(SETTINGS)} (default: all)")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=KEY:VALUE,...",
                        help="an extra posetrack setting over TrackerConfig's defaults; stitch:true stitches")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers to run ('' for none)")
    parser.add_argument("--flow", default=None, help="posetrack's flow on the grey frames (default: none)")
    parser.add_argument("--flow-check", action="store_true",
                        help="only run posetrack's defaults with flow dis-ultrafast and without, and compare ids")
    parser.add_argument("--per-clip", action="store_true", help="also print each clip's row in every variant")
    parser.add_argument("--losses", type=int, default=12,
                        help="list this many clip/variants where the first setting's MOTA is most below ByteTrack's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    logging.getLogger().setLevel(logging.ERROR)

    clips = load_clips(args.data, args.clips.split(",") if args.clips else None)
    variant_names = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [v for v in variant_names if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    settings = {n: SETTINGS[n] for n in (args.settings.split(",") if args.settings else SETTINGS)}
    for text in args.setting:
        name, setting = parse_setting(text)
        settings[name] = setting
    peers = [p for p in args.peers.split(",") if p]
    if any(p not in PEERS for p in peers):
        raise SystemExit(f"--peers: choose from {', '.join(PEERS)}")

    start = time.perf_counter()
    built: dict[str, dict[str, Variant]] = {}
    for v in variant_names:
        built[v] = {}
        for clip in clips:
            rng = np.random.default_rng([args.seed, zlib.crc32(f"{v}/{clip.name}".encode())])
            built[v][clip.name] = VARIANTS[v](clip, rng, QUEUE_LENGTH)

    print(f"# tracking on real motion: {len(clips)} clips of {args.data.name}, {datetime.now():%Y-%m-%d %H:%M}")
    print(f"# CPU: {cpu_line()}; 1 thread")
    print(f"# {versions()}")
    print(f"# L_Q = {QUEUE_LENGTH}; posetrack flow: {args.flow or 'none'} on grey {FRAME_WIDTH}x{FRAME_HEIGHT} frames; "
          f"match: >= {MATCH_FRACTION:g} of the common joints (>= {MIN_COMMON}) within PCKh@{PCKH:g}")
    print(f"# posetrack defaults: {TrackerConfig()}")
    for name, setting in settings.items():
        changed = {f.name: getattr(setting.config, f.name) for f in dataclasses.fields(TrackerConfig)
                   if getattr(setting.config, f.name) != getattr(TrackerConfig(), f.name)}
        print(f"#   {name}: {', '.join(f'{k}={v}' for k, v in changed.items()) or 'defaults'}"
              f"{' + stitch' if setting.stitch else ''}")

    if args.flow_check:
        flow_check(built)
        return

    trackers = [f"posetrack {n}" for n in settings] + peers
    results: dict[str, dict[str, Result]] = {t: {} for t in trackers}
    for v, variants in built.items():
        for name, setting in settings.items():
            runs = {c: run_posetrack(setting, variant, args.flow) for c, variant in variants.items()}
            results[f"posetrack {name}"][v] = score(variants, runs)
        if "bytetrack" in peers:
            results["bytetrack"][v] = score(variants, {c: run_bytetrack(x) for c, x in variants.items()})
        if "norfair" in peers:
            results["norfair"][v] = score(variants, {c: run_norfair(x) for c, x in variants.items()})
    report(clips, built, results, trackers, args)
    print(f"\n# whole run: {time.perf_counter() - start:.0f} s wall")


def flow_check(built: dict[str, dict[str, Variant]]) -> None:
    """posetrack's defaults with DIS flow (ultrafast) and without on the same grey frames."""
    setting = SETTINGS["defaults"]
    differ, frames, times = 0, 0, {"dis-ultrafast": [0.0, 0.0], "none": [0.0, 0.0]}
    for variants in built.values():
        for variant in variants.values():
            with_flow = run_posetrack(setting, variant, "dis-ultrafast")
            without = run_posetrack(setting, variant, None)
            for key, run in (("dis-ultrafast", with_flow), ("none", without)):
                times[key][0] += run.cpu
                times[key][1] += run.wall
            frames += len(variant.frames)
            differ += sum(not np.array_equal(a, b) for a, b in zip(with_flow.ids, without.ids))
    print(f"\nposetrack defaults, flow dis-ultrafast vs none: {differ} of {frames} frames with different ids")
    for key, (cpu, wall) in times.items():
        print(f"  flow {key:<13} {1000 * wall / frames:6.2f} ms/frame, CPU {1000 * cpu / frames:6.2f} ms/frame")


def report(clips: list[Clip], built: dict[str, dict[str, Variant]], results: dict[str, dict[str, Result]],
           trackers: list[str], args: argparse.Namespace) -> None:
    headers = ["tracker", "MOTA %", "IDF1 %", "IDsw", "FP", "FN"]
    for v, variants in built.items():
        frames = sum(len(x.frames) for x in variants.values())
        people = sum(len(t) for x in variants.values() for _, t in x.frames)
        poses = sum(len(i.poses) for x in variants.values() for i, _ in x.frames)
        notes: dict[str, int] = {}
        for x in variants.values():
            for key, value in x.notes.items():
                notes[key] = notes.get(key, 0) + value
        extra = "".join(f", {key} {value}" for key, value in notes.items())
        print(f"\n## {v}: {frames} frames, {people} annotated person-frames, {poses} input poses{extra}\n")
        dup = v == "duplicates"
        rows = []
        for t in trackers:
            r = results[t][v]
            o = r.overall
            row: list[Any] = [t, pct(o["mota"]), pct(o["idf1"]), int(o["num_switches"]),
                              int(o["num_false_positives"]), int(o["num_misses"])]
            if "bytetrack" in trackers:
                bt = results["bytetrack"][v].per_clip
                row.append("-" if t == "bytetrack" else
                           sum(r.per_clip[c]["mota"] < bt[c]["mota"] - 1e-9 for c in r.per_clip))
            if dup:
                row += [r.duplicates["dup ids"], r.duplicates["dropped dups"], r.duplicates["dropped others"],
                        "n/a" if r.suppressed is None else r.suppressed]
            rows.append(row)
        columns = headers + (["clips MOTA < ByteTrack"] if "bytetrack" in trackers else [])
        columns += ["dup ids", "dups dropped", "others dropped", "suppressed (own count)"] if dup else []
        print(markdown(columns, rows))
        if dup:
            same, different = oks_between(variants)
            print(f"\ninjected duplicates: {notes.get('duplicates', 0)}. OKS of a duplicate with its original: "
                  f"min {same.min(initial=1):.2f}, median {np.median(same) if len(same) else np.nan:.2f}; "
                  f"of two different people in one frame ({len(different)} pairs): max "
                  f"{different.max(initial=0):.2f}, above 0.5: {int((different > 0.5).sum())}, "
                  f"above 0.7: {int((different > 0.7).sum())} (COCO sigmas, joints scoring >= the joint threshold, "
                  "at the larger box's scale)")
        if args.per_clip:
            for clip in clips:
                rows = [[t] + [pct(results[t][v].per_clip[clip.name][m]) for m in ("mota", "idf1")]
                        + [int(results[t][v].per_clip[clip.name][m])
                           for m in ("num_switches", "num_false_positives", "num_misses")] for t in trackers]
                print(f"\n{v} / {clip.name}\n")
                print(markdown(headers, rows))

    print("\n## all variants\n")
    has_bt = "bytetrack" in trackers
    peers = [t for t in trackers if not t.startswith("posetrack")]
    rows = []
    for t in trackers:
        res = results[t]
        switches = sum(int(r.overall["num_switches"]) for r in res.values())
        mota = np.mean([r.overall["mota"] for r in res.values()])
        idf1 = np.mean([r.overall["idf1"] for r in res.values()])
        below = "-"
        if has_bt and t != "bytetrack":
            pairs = [(res[v].per_clip[c]["mota"], results["bytetrack"][v].per_clip[c]["mota"])
                     for v in res for c in res[v].per_clip]
            below = f"{sum(a < b - 1e-9 for a, b in pairs)} / {len(pairs)}"
        frames = sum(r.frames for r in res.values())
        cpu = sum(r.cpu for r in res.values())
        wall = sum(r.wall for r in res.values())
        rows.append([t, switches, pct(mota), pct(idf1), below, f"{1000 * wall / frames:.2f}",
                     f"{1000 * cpu / frames:.2f}"])
    print(markdown(["tracker", "IDsw (total)", "mean MOTA %", "mean IDF1 %", "clip/variants MOTA < ByteTrack",
                    "ms/frame", "CPU ms/frame"], rows))
    print("(means over the variants of each variant's overall MOTA and IDF1; ms/frame: the tracker's update "
          "calls alone, over every frame of every variant)")

    if has_bt:
        print("\n## the issue's bar, per posetrack setting\n")
        bt = results["bytetrack"]
        bt_switches = sum(int(r.overall["num_switches"]) for r in bt.values())
        rows = []
        for t in trackers:
            if not t.startswith("posetrack"):
                continue
            res = results[t]
            switches = sum(int(r.overall["num_switches"]) for r in res.values())
            pairs = [(res[v].per_clip[c]["mota"], bt[v].per_clip[c]["mota"]) for v in res for c in res[v].per_clip]
            below = sum(a < b - 1e-9 for a, b in pairs)
            idf1 = np.mean([r.overall["idf1"] for r in res.values()])
            peer_idf1 = max(np.mean([r.overall["idf1"] for r in results[p].values()]) for p in peers)
            variants_below = sum(res[v].overall["idf1"] <= max(results[p][v].overall["idf1"] for p in peers)
                                 for v in res)
            dup = "-"
            if "duplicates" in res:
                injected = sum(x.notes.get("duplicates", 0) for x in built["duplicates"].values())
                own = res["duplicates"].suppressed
                dup = (f"n/a (dropped {res['duplicates'].duplicates['dropped dups']} of {injected})" if own is None
                       else f"{own} vs {injected}: {'yes' if own == injected else 'no'}")
            rows.append([t, f"{switches} vs {bt_switches / 2:g}: {'yes' if switches <= bt_switches / 2 else 'no'}",
                         f"{below} below: {'yes' if below == 0 else 'no'}",
                         f"{pct(idf1)} vs {pct(peer_idf1)}: {'yes' if idf1 > peer_idf1 else 'no'} "
                         f"({variants_below} variants not above)", dup])
        print(markdown(["setting", "IDsw <= ByteTrack's / 2", "MOTA >= ByteTrack, every clip/variant",
                        "mean IDF1 above both peers", "suppressed = injected duplicates"], rows))

        first = next((t for t in trackers if t.startswith("posetrack")), None)
        if first and args.losses > 0:
            losses = []
            for v, res in results[first].items():
                for c, m in res.per_clip.items():
                    b = bt[v].per_clip[c]
                    if m["mota"] < b["mota"] - 1e-9:
                        losses.append((m["mota"] - b["mota"], v, c, m, b))
            losses.sort(key=lambda x: x[0])
            print(f"\n## where {first} has a lower MOTA than ByteTrack ({len(losses)} clip/variants; "
                  f"worst {min(args.losses, len(losses))})\n")
            rows = [[f"{v} / {c}", f"{pct(m['mota'])} vs {pct(b['mota'])}",
                     f"{int(m['num_switches'])} vs {int(b['num_switches'])}",
                     f"{int(m['num_false_positives'])} vs {int(b['num_false_positives'])}",
                     f"{int(m['num_misses'])} vs {int(b['num_misses'])}", int(m["num_objects"])]
                    for _, v, c, m, b in losses[:args.losses]]
            print(markdown(["variant / clip", "MOTA %", "IDsw", "FP", "FN", "person-frames"], rows))


if __name__ == "__main__":
    main()
