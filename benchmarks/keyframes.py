"""Keyframe detection (--detect-every N): tracking quality against N on rendered sequences.

Runs the real Pipeline (DIS flow, flow boxes, NMS, rescoring, tracker) on rendered sequences with
known identities where people enter and leave, and scores the output with posetrack's PoseTrack
evaluation (MOTA, mAP with PCKh@0.5). Trained weights cannot be downloaded here, so the detector
and the pose network are stand-ins: the detector returns the true boxes of the people in view,
missing each with probability 10 % (as a real detector does now and then), and the pose stage
returns each box's person's true joints plus 1.5 px noise. What changes with N is therefore only
what keyframe detection changes: who is found, when, and how flow carries them in between.
Detection time per frame falls as 1/N; benchmarks/pipeline.py measures the end-to-end speed-up.

    python benchmarks/keyframes.py [--frames 90] [--sequences 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test renderer

from posetrack_cli.core.files import read_json  # noqa: E402
from posetrack_cli.core.keypoints import COCO_KEYPOINTS  # noqa: E402
from posetrack_cli.core.types import Detections, Poses  # noqa: E402
from posetrack_cli.evaluation.posetrack import evaluate_posetrack  # noqa: E402
from posetrack_cli.io.formats import PoseFrame, PoseSequence  # noqa: E402
from posetrack_cli.io.outputs import OutputSet  # noqa: E402
from posetrack_cli.io.video import ImageFolderSource  # noqa: E402
from posetrack_cli.models.flow import DISFlow  # noqa: E402
from posetrack_cli.run.pipeline import Pipeline, PipelineConfig  # noqa: E402
from posetrack_cli.tracking.similarity import iou_matrix  # noqa: E402

from synthetic import TEMPLATE, Person, render  # noqa: E402

SIZE = (640, 360)


def scene(frames: int, seed: int) -> list[Person]:
    """Six walkers at different speeds; some start outside the frame and walk in, some walk out."""
    rng = np.random.default_rng(seed)
    people = []
    for i in range(6):
        height = rng.uniform(100, 150)
        speed = rng.uniform(2, 7) * rng.choice([-1, 1])
        x0 = rng.uniform(-150, 750) if i % 2 else rng.uniform(40, 560)
        y0 = rng.uniform(5, SIZE[1] - height * 1.05)
        path = np.stack([x0 + speed * np.arange(frames), np.full(frames, y0)], 1)  # (T, 2)
        people.append(Person(height, path, seed=seed * 10 + i))
    return people


def in_view(person: Person, t: int) -> bool:
    box = person.box(t)
    return box[0] > 0 and box[2] < SIZE[0] - 1


class KeyframeTruth:
    """Boxes source: true boxes of the people in view, each missed with probability ``miss``."""

    name = "truth"

    def __init__(self, people: list[Person], miss: float, seed: int) -> None:
        self.people, self.miss, self.seed = people, miss, seed
        self.calls = 0

    def get(self, index: int) -> Detections:
        self.calls += 1
        rng = np.random.default_rng((self.seed, index))
        boxes = [p.box(index) for p in self.people if in_view(p, index) and rng.random() >= self.miss]
        return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.95))


class TruthPoses:
    """Each box's person's true joints (+ noise); a box on nobody gives joints scoring 0.1."""

    num_keypoints = 17

    def __init__(self, people: list[Person], seed: int) -> None:
        self.people, self.rng, self.t = people, np.random.default_rng(seed), -1

    def estimate(self, frame: np.ndarray, detections: Detections) -> Poses:
        self.t += 1
        if not len(detections):
            return Poses.empty(17)
        truth = np.stack([p.box(self.t) for p in self.people])
        iou = iou_matrix(detections.boxes, truth)
        kps, scores = [], []
        for row in iou:
            best = int(row.argmax())
            good = row[best] > 0.3 and in_view(self.people[best], self.t)
            if good:
                kps.append(self.people[best].keypoints(self.t) + self.rng.normal(0, 1.5, (17, 2)))
            else:
                kps.append(np.zeros((17, 2)))
            scores.append(np.full(17, 0.9 if good else 0.1))
        return Poses(np.array(kps), np.array(scores), detections.boxes, detections.scores)


def ground_truth(people: list[Person], frames: int, name: str) -> PoseSequence:
    head = TEMPLATE[:5]
    out = []
    for t in range(frames):
        who = [i for i, p in enumerate(people) if in_view(p, t)]
        kps = np.array([people[i].keypoints(t) for i in who]).reshape(-1, 17, 2)
        heads = np.array([np.concatenate([people[i].path[t] + (head.min(0) - 0.05) * people[i].height,
                                          people[i].path[t] + (head.max(0) + 0.05) * people[i].height])
                          for i in who]).reshape(-1, 4)
        out.append(PoseFrame(kps, np.ones(kps.shape[:2], bool), np.ones(kps.shape[:2]), np.array(who, np.int64), heads))
    return PoseSequence(name, COCO_KEYPOINTS, tuple(out))


def predictions(path: Path, frames: int, name: str) -> PoseSequence:
    doc = read_json(path)
    by_frame: dict[int, list[dict]] = {}
    for ann in doc["annotations"]:
        by_frame.setdefault(ann["image_id"], []).append(ann)
    out = []
    for t in range(frames):
        anns = by_frame.get(t, [])
        kps = np.array([a["keypoints"] for a in anns], np.float64).reshape(-1, 17, 3)
        scores = np.array([a["keypoint_scores"] for a in anns], np.float64).reshape(-1, 17)
        out.append(PoseFrame(kps[..., :2], np.ones(scores.shape, bool), scores,
                             np.array([a["track_id"] for a in anns], np.int64), np.full((len(anns), 4), np.nan)))
    return PoseSequence(name, COCO_KEYPOINTS, tuple(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--sequences", type=int, default=3)
    parser.add_argument("--every", type=int, nargs="+", default=[1, 2, 5, 10])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clips = []
        for s in range(args.sequences):
            people = scene(args.frames, seed=s + 1)
            folder = root / f"seq{s}"
            folder.mkdir()
            for t, frame in enumerate(render(people, args.frames, SIZE, seed=s)):
                cv2.imwrite(str(folder / f"{t:05d}.png"), frame)
            clips.append((people, folder))
        print(f"# keyframe detection: {args.sequences} rendered sequences x {args.frames} frames, {SIZE[0]}x{SIZE[1]}, "
              "6 walkers entering and leaving, detector misses 10 % of boxes")
        print(f"{'detect every':>12} {'detector calls/frame':>21} {'MOTA':>6} {'mAP':>6} {'ID switches':>12} "
              f"{'misses':>7} {'FP':>5}")
        for every in args.every:
            gts, preds, calls = [], [], 0
            for s, (people, folder) in enumerate(clips):
                boxes = KeyframeTruth(people, 0.1, seed=s)
                pipeline = Pipeline(TruthPoses(people, seed=s), DISFlow(), PipelineConfig(detect_every=every))
                with OutputSet(root, f"out{s}_{every}").open(COCO_KEYPOINTS) as writer:
                    result = pipeline.run(ImageFolderSource(folder), writer, boxes=boxes)
                    paths = writer.commit({"frames": result.frames})
                calls += boxes.calls
                gts.append(ground_truth(people, args.frames, f"seq{s}"))
                preds.append(predictions(paths["json"], args.frames, f"seq{s}"))
            m = evaluate_posetrack(gts, preds)
            t = m.totals
            print(f"{every:>12} {calls / (args.frames * len(clips)):>21.2f} {t['MOTA']:>6.1f} {t['AP']:>6.1f} "
                  f"{int(m.switches.sum()):>12} {int(m.misses.sum()):>7} {int(m.false_positives.sum()):>5}", flush=True)


if __name__ == "__main__":
    main()
