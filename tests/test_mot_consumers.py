"""posetrack's MOTChallenge export read by the tools people score MOT files with: motmetrics'
``loadtxt`` + ``compare_to_groundtruth`` (which fails on NumPy 2 where it computes IoU, and works
once NumPy's removed ``asfarray`` is given back) and TrackEval's MOTChallenge reader, each giving
the numbers ``posetrack evaluate --metric mot`` gives on the JSON files, and the ones counted by hand."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import Poses, TrackedFrame
from posetrack_cli.io.exports import write_exports

from helpers import write_track_document

T = 20
# Counted by hand from `_scene`: 60 ground-truth boxes (3 people x 20 frames); the prediction
# misses person 1 in frames 5-7 (3 FN) and gives them a new id after (1 switch), is off person 2
# in frames 10-11 (IoU < 0.5: 2 FN and 2 FP), and has a ghost in frame 3 (1 FP).
FN, FP, IDSW, OBJECTS = 5, 3, 1, 60
MOTA = 1 - (FN + FP + IDSW) / OBJECTS  # 0.85


def _scene(predicted: bool) -> list[TrackedFrame]:
    frames = []
    for t in range(T):
        boxes, ids = [], []
        for person, (x0, y0, dx) in enumerate([(20.0, 30.0, 6.0), (200.0, 60.0, -4.0), (300.0, 150.0, 2.0)]):
            box = [x0 + dx * t, y0, x0 + dx * t + 50.0, y0 + 120.0]
            tid = person
            if predicted:
                if person == 1 and 5 <= t <= 7:
                    continue
                if person == 1 and t > 7:
                    tid = 7  # found again under a new id
                if person == 2 and t in (10, 11):
                    box = [box[0] + 40.0, box[1], box[2] + 40.0, box[3]]  # IoU 0.11 with the truth
            boxes.append(box)
            ids.append(tid)
        if predicted and t == 3:
            boxes.append([400.0, 10.0, 430.0, 70.0])
            ids.append(9)
        b = np.array(boxes)
        kps = np.stack([np.stack([np.linspace(x1 + 5, x2 - 5, 17), np.linspace(y1 + 5, y2 - 5, 17)], 1)
                        for x1, y1, x2, y2 in b])
        frames.append(TrackedFrame(t, t / 25, Poses(kps, np.full((len(b), 17), 0.9), b, np.full(len(b), 0.8)), ids))
    return frames


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Ground truth and prediction as posetrack JSON, and their MOT exports."""
    root = tmp_path_factory.mktemp("mot")
    paths: dict[str, Path] = {}
    for kind in ("gt", "pred"):
        folder = root / kind
        doc = write_track_document(folder, "walk", _scene(kind == "pred"), [(480, 320, None)] * T, COCO_KEYPOINTS)
        paths[f"{kind}_json"] = folder / "walk.json"
        [paths[f"{kind}_mot"]] = write_exports(doc, folder, "walk", ["mot"])
    return paths


def _posetrack_evaluate(files: dict[str, Path], tmp_path: Path) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["evaluate", str(files["gt_json"]), str(files["pred_json"]), "--metric", "mot",
                                       "--json", str(tmp_path / "scores.json")])
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / "scores.json").read_text())["total"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")  # motmetrics' pandas use
def test_motmetrics_compare_to_groundtruth_on_the_export(files: dict[str, Path], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import motmetrics as mm

    gt = mm.io.loadtxt(str(files["gt_mot"]), fmt="mot15-2D")
    pred = mm.io.loadtxt(str(files["pred_mot"]), fmt="mot15-2D")
    assert len(gt) == OBJECTS and len(pred) == OBJECTS - 3 + 1  # loadtxt reads the export as it is
    np.testing.assert_allclose(gt.loc[(1, 1)][["X", "Y", "Width", "Height"]].to_numpy(float), [20, 30, 50, 120])

    if not hasattr(np, "asfarray"):  # NumPy 2 removed it; motmetrics 1.4.0 (the newest on PyPI) calls it for IoU
        try:
            mm.utils.compare_to_groundtruth(gt, pred, "iou", distth=0.5)
        except AttributeError as exc:
            assert "asfarray" in str(exc)
        # What works: NumPy's old alias given back for motmetrics, as a user's script can.
        monkeypatch.setattr(np, "asfarray", lambda a, dtype=np.float64: np.asarray(a, dtype=dtype), raising=False)
    acc = mm.utils.compare_to_groundtruth(gt, pred, "iou", distth=0.5)  # IoU >= 0.5, as MOTChallenge
    summary = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches", "num_misses",
                                                        "num_false_positives", "num_objects"], name="walk")
    row = summary.loc["walk"]
    assert (row["num_objects"], row["num_misses"], row["num_false_positives"], row["num_switches"]) == (
        OBJECTS, FN, FP, IDSW)
    assert row["mota"] == pytest.approx(MOTA)
    ours = _posetrack_evaluate(files, tmp_path)
    assert ours["MOTA"] == pytest.approx(100 * row["mota"], abs=1e-3)
    assert ours["IDF1"] == pytest.approx(100 * row["idf1"], abs=1e-3)


@pytest.mark.skipif(importlib.util.find_spec("trackeval") is None,
                    reason="TrackEval is not installed (pip install trackeval --no-deps: its opencv-python would "
                           "replace posetrack's headless OpenCV)")
def test_trackeval_reads_the_export_as_a_motchallenge_tracker(files: dict[str, Path], tmp_path: Path) -> None:
    import trackeval

    # TrackEval's MOTChallenge layout: gt/<benchmark>-<split>/<seq>/gt/gt.txt + seqinfo.ini,
    # trackers/<benchmark>-<split>/<tracker>/data/<seq>.txt.
    seq = tmp_path / "gt" / "MOT17-train" / "walk"
    (seq / "gt").mkdir(parents=True)
    # A ground-truth line: frame,id,x,y,w,h,consider,class(1 pedestrian),visibility. As ground truth the
    # export's -1,-1,-1 would make TrackEval refuse the file (class -1), or with preprocessing off
    # count no ground truth at all; as a tracker's file (below) it is read as written.
    lines = [",".join(line.split(",")[:6] + ["1", "1", "1"]) for line in files["gt_mot"].read_text().splitlines()]
    (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname=walk\nseqLength={T}\nimWidth=480\nimHeight=320\n")
    data = tmp_path / "trackers" / "MOT17-train" / "posetrack" / "data"
    data.mkdir(parents=True)
    (data / "walk.txt").write_text(files["pred_mot"].read_text())
    config = {"GT_FOLDER": str(tmp_path / "gt"), "TRACKERS_FOLDER": str(tmp_path / "trackers"),
              "BENCHMARK": "MOT17", "SPLIT_TO_EVAL": "train", "SEQ_INFO": {"walk": T}, "PRINT_CONFIG": False}
    # (TrackEval's defaults otherwise, its MOT17 preprocessing included.)
    evaluator = trackeval.Evaluator({"PRINT_RESULTS": False, "PRINT_CONFIG": False, "OUTPUT_SUMMARY": False,
                                     "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "TIME_PROGRESS": False,
                                     "DISPLAY_LESS_PROGRESS": True})
    results, _ = evaluator.evaluate([trackeval.datasets.MotChallenge2DBox(config)],
                                    [trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
                                     trackeval.metrics.Identity({"PRINT_CONFIG": False})])
    walk = results["MotChallenge2DBox"]["posetrack"]["walk"]["pedestrian"]
    assert (walk["CLEAR"]["CLR_FN"], walk["CLEAR"]["CLR_FP"], walk["CLEAR"]["IDSW"]) == (FN, FP, IDSW)
    assert walk["CLEAR"]["MOTA"] == pytest.approx(MOTA)
    ours = _posetrack_evaluate(files, tmp_path)
    assert ours["MOTA"] == pytest.approx(100 * walk["CLEAR"]["MOTA"], abs=1e-3)
    assert ours["IDF1"] == pytest.approx(100 * walk["Identity"]["IDF1"], abs=1e-3)
