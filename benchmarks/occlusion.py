"""Id switches when people are hidden: the paper's queue, the lost memory, torso colours, stitching.

Runs the tracker with real DIS flow on the rendered scenes of tests/occlusion_scenes.py (a walker
behind a pillar or a passer-by for 2, 4 and 8 x L_Q frames, leaving and re-entering at the frame
edge, two people crossing while both hidden, a motion reversal, a stranger coming out where someone
vanished, a walker turning round behind a pillar), each at 30 fps and at every 3rd frame. The
tracker gets the true poses of the people an estimator would see (+ 0.5 px noise), so the figures
measure identity only: MOTA = 1 - id switches / poses (no misses or false positives by
construction) and IDF1 from motmetrics; merges (ids given to two different people) and poses
under another person's id (a merge's cost, which MOTA does not count).

    python benchmarks/occlusion.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import motmetrics as mm
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the scenes

from posetrack_cli.tracking.stitching import stitch
from posetrack_cli.tracking.tracker import TrackerConfig

from occlusion_scenes import all_scenes, run

VARIANTS = {
    "L_Q only (paper)": (TrackerConfig(max_lost=0.0, own_motion=False, appearance=False), False),
    "lost memory": (TrackerConfig(appearance=False), False),
    "lost memory + colours": (TrackerConfig(), False),
    "+ stitching": (TrackerConfig(), True),
}


def score(result: list[dict[int, int]], acc: mm.MOTAccumulator) -> tuple[int, int]:
    """Add one run to ``acc`` (the tracker's poses are the true ones, so each pose's person is
    known); returns how many ids were given to more than one person, and how many poses carry an
    id that belongs to someone else (the person with most poses under it)."""
    owners: dict[int, dict[int, int]] = {}
    for frame in result:
        people = sorted(frame)
        hyps = [frame[p] for p in people]
        acc.update(people, hyps, [[0.0 if a == b else np.nan for b in range(len(people))] for a in range(len(people))])
        for p, h in frame.items():
            owners.setdefault(h, {}).setdefault(p, 0)
            owners[h][p] += 1
    merges = sum(len(o) > 1 for o in owners.values())
    return merges, sum(sum(o.values()) - max(o.values()) for o in owners.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    scenes = all_scenes()
    totals: dict[str, dict] = {name: {"merges": 0, "wrong": 0, "reid": 0, "joins": 0, "accs": []} for name in VARIANTS}
    per_scene: dict[str, dict[str, int]] = {}
    mh = mm.metrics.create()
    for scene in scenes:
        for step in (1, 3):
            label = scene.name + ("" if step == 1 else ", every 3rd")
            per_scene[label] = {}
            for name, (config, stitched) in VARIANTS.items():
                result, tracker = run(scene, config, step)
                if stitched:
                    mapping = stitch(tracker.tracklets(), config)
                    result = [{p: mapping.get(i, i) for p, i in frame.items()} for frame in result]
                    totals[name]["joins"] += len(mapping)
                acc = mm.MOTAccumulator(auto_id=True)
                merges, wrong = score(result, acc)
                totals[name]["merges"] += merges
                totals[name]["wrong"] += wrong
                totals[name]["reid"] += tracker.reidentified
                totals[name]["accs"].append(acc)
                switches = mh.compute(acc, metrics=["num_switches"], name="x")["num_switches"]
                per_scene[label][name] = int(switches.iloc[0])

    width = max(len(k) for k in per_scene)
    print("# id switches per scene")
    print(f"{'scene':<{width}} " + " ".join(f"{n:>22}" for n in VARIANTS))
    for label, row in per_scene.items():
        print(f"{label:<{width}} " + " ".join(f"{row[n]:>22}" for n in VARIANTS))
    print()
    print(f"# all {len(per_scene)} sequences")
    print(f"{'variant':<22} {'id switches':>11} {'merges':>6} {'poses under another id':>22} "
          f"{'MOTA %':>7} {'IDF1 %':>7} "
          f"{'re-found':>8} {'stitched':>8}")
    for name, t in totals.items():
        summary = mh.compute_many(t["accs"], metrics=["num_switches", "mota", "idf1"], generate_overall=True)
        overall = summary.loc["OVERALL"]
        print(f"{name:<22} {int(overall['num_switches']):>11} {t['merges']:>6} {t['wrong']:>22} "
              f"{100 * overall['mota']:>7.2f} "
              f"{100 * overall['idf1']:>7.2f} {t['reid']:>8} {t['joins']:>8}")


if __name__ == "__main__":
    main()
