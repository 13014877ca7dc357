"""Tracking given poses needs no torch, and imports none: ``import torch`` (with torchvision,
``torch._dynamo``) takes 2-4 s on a 2-core CPU, which ``posetrack track`` would pay at its start,
and the frame loop mid-run where its first IoU imported torchvision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from test_identity import person

from helpers import write_video


def test_the_tracking_layer_never_imports_torch() -> None:
    """The tracker, the carrying and the IoU run on numpy alone."""
    code = (
        "import sys, numpy as np\n"
        "from posetrack_cli.core.types import Detections, Poses\n"
        "from posetrack_cli.tracking.carry import carry_plan\n"
        "from posetrack_cli.tracking.tracker import PoseTracker, TrackerConfig\n"
        "from posetrack_cli.tracking.similarity import iou_matrix\n"
        "rng = np.random.default_rng(0)\n"
        "tracker = PoseTracker(TrackerConfig(similarity='iou'))\n"
        "for t in range(3):\n"
        "    k = rng.uniform(0, 100, (2, 17, 2)).astype(np.float32)\n"
        "    boxes = np.concatenate([k.min(1), k.max(1)], 1)\n"
        "    tracker.update(Poses(k, np.ones((2, 17), np.float32), boxes, np.ones(2, np.float32)))\n"
        "assert iou_matrix(boxes, boxes).shape == (2, 2)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_posetrack_track_imports_no_torch(tmp_path: Path) -> None:
    """Two walkers' given poses tracked by the command in a fresh process: both tracked on every
    frame, and neither torch nor torchvision imported."""
    frames = 12
    video = write_video(tmp_path / "walk.mp4", [np.full((360, 640, 3), 90, np.uint8)] * frames, fps=25)
    results = [{"image_id": t, "category_id": 1, "score": 0.9,
                "keypoints": np.concatenate([person(x, 60, 250), np.full((17, 1), 0.9)], 1).ravel().tolist()}
               for t in range(frames) for x in (60 + 6 * t, 500 - 6 * t)]
    (tmp_path / "poses.json").write_text(json.dumps(results))
    code = ("import sys\n"
            "from posetrack_cli.cli import main\n"
            "try:\n"
            "    main(sys.argv[1:])\n"
            "except SystemExit as stop:\n"
            "    assert stop.code == 0, stop.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))\n")
    done = subprocess.run([sys.executable, "-c", code, "track", str(tmp_path / "poses.json"), "--video", str(video),
                           "-o", str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    doc = json.loads((tmp_path / "out" / "walk.tracks.json").read_text())
    ids = {(a["image_id"], a["track_id"]) for a in doc["annotations"]}
    assert len(ids) == 2 * frames and len({track for _, track in ids}) == 2
