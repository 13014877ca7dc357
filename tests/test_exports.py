"""Exports read back by their consumers' rules: PoseTrack18 as poseval parses it (and posetrack's own
evaluator), COCO results through pycocotools' loadRes, MOTChallenge boxes through motmetrics."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import Poses, TrackedFrame
from posetrack_cli.evaluation.coco import coco_keypoint_ap
from posetrack_cli.evaluation.posetrack import evaluate_posetrack
from posetrack_cli.io.exports import write_exports
from posetrack_cli.io.formats import POSETRACK17_JOINTS, POSETRACK18_KEYPOINTS, read_sequence

from helpers import write_track_document

T = 5


def _document(names: tuple[str, ...] = COCO_KEYPOINTS, source: str = "clip.mp4", file_names: bool = False) -> dict:
    """Two people walking for T frames (ids 0 and 1), nobody in frame 2; joints 3 px apart down each body."""
    frames, sizes = [], []
    for t in range(T):
        sizes.append((640, 480, f"{t:06d}.jpg" if file_names else None))
        if t == 2:
            continue
        kps = np.stack([np.stack([np.full(17, x0 + 4.0 * t), 100 + 10.0 * np.arange(17)], axis=1) for x0 in (100, 400)])
        kps[:, :, 0] += np.arange(17) % 3  # not a vertical line: a box with width
        boxes = np.concatenate([kps.min(axis=1) - 5, kps.max(axis=1) + 5], axis=1)
        scores = np.tile(np.linspace(0.3, 0.95, 17), (2, 1))
        frames.append(TrackedFrame(t, t / 25, Poses(kps, scores, boxes, [0.9, 0.8]), [0, 1]))
    with tempfile.TemporaryDirectory() as folder:
        return write_track_document(Path(folder), "clip", frames, sizes, names, {"source": source})


# -------------------------------------------------------------------------------------- PoseTrack18


def _poseval_reads(doc: dict) -> None:
    """What poseval's PoseTrack18 reader (convert.Video.from_new, Image.from_new, Person.from_new) requires."""
    assert len(doc["categories"]) == 1 and doc["categories"][0]["name"] == "person"
    names = doc["categories"][0]["keypoints"]
    assert len(names) in (15, 17) and all(n in names for n in POSETRACK17_JOINTS)  # "Landmark not found" otherwise
    for im in doc["images"]:
        assert {"file_name", "id", "frame_id", "vid_id", "nframes"} <= set(im)
        int(Path(im["file_name"]).name.split(".")[0])  # the frame number poseval parses from the name
        assert im["nframes"] == len(doc["images"])
    ids = {im["id"] for im in doc["images"]}
    for ann in doc["annotations"]:
        assert {"keypoints", "scores", "track_id", "image_id", "bbox", "id", "category_id"} <= set(ann)
        assert len(ann["keypoints"]) == 3 * len(names) and len(ann["scores"]) == len(names)
        assert ann["image_id"] in ids
    assert len({a["id"] for a in doc["annotations"]}) == len(doc["annotations"])


def test_posetrack18_of_a_coco_model_for_a_posetrack_sequence(tmp_path: Path) -> None:
    """Run on PoseTrack's frame folder: PoseTrack's image ids and file names; eyes dropped, head joints
    written as not predicted (0, 0, 0, score 0), the other joints where they were."""
    doc = _document(source="posetrack/images/val/000342_mpii_test", file_names=True)
    paths = write_exports(doc, tmp_path, "000342_mpii_test", ["posetrack18"])
    assert paths == [tmp_path / "posetrack18" / "000342_mpii_test.json"]
    out = json.loads(paths[0].read_text())
    _poseval_reads(out)
    assert out["images"][3]["file_name"] == "images/val/000342_mpii_test/000003.jpg"
    assert out["images"][3]["id"] == out["images"][3]["frame_id"] == 1 * 10_000_000_000 + 342 * 10_000 + 3
    assert out["images"][0]["vid_id"] == "000342"
    ann = out["annotations"][0]
    kps = np.array(ann["keypoints"]).reshape(17, 3)
    names = list(POSETRACK18_KEYPOINTS)
    for head in ("head_bottom", "head_top"):
        assert kps[names.index(head)].tolist() == [0, 0, 0] and ann["scores"][names.index(head)] == 0
    src = np.array(doc["annotations"][0]["keypoints"]).reshape(17, 3)
    np.testing.assert_allclose(kps[names.index("left_wrist"), :2], src[COCO_KEYPOINTS.index("left_wrist"), :2])
    assert "bbox_head" not in ann  # a COCO model's joints give no head box; none is made up
    # posetrack's evaluator reads it as PoseTrack 2018, with the same people and ids
    seq = read_sequence(paths[0])
    assert seq.format == "PoseTrack18" and len(seq.frames) == T and len(seq.frames[2]) == 0
    np.testing.assert_array_equal(seq.frames[0].track_ids, [0, 1])
    assert not seq.frames[0].labelled[:, [1, 2]].any() and seq.frames[0].labelled[:, 5:].all()


def test_posetrack18_of_a_posetrack_model_has_head_boxes_and_scores_perfectly_against_itself(tmp_path: Path) -> None:
    doc = _document(POSETRACK18_KEYPOINTS)
    path = write_exports(doc, tmp_path, "clip", ["posetrack18"])[0]
    out = json.loads(path.read_text())
    _poseval_reads(out)
    assert out["images"][1]["file_name"] == "images/clip/000001.jpg" and out["images"][1]["id"] == 1
    video = write_exports(_document(POSETRACK18_KEYPOINTS, source="/home/me/images/trips/clip.mp4"),
                          tmp_path / "v", "clip", ["posetrack18"])[0]
    assert json.loads(video.read_text())["images"][0]["file_name"] == "images/clip/000000.jpg"  # a video, not frames
    head = out["annotations"][0]["bbox_head"]
    assert head[2] == head[3] == pytest.approx(10.0, abs=0.1)  # head_bottom to head_top: 10 px
    seq = read_sequence(path)
    m = evaluate_posetrack([seq], [seq])
    assert m.totals["AP"] == pytest.approx(100.0) and m.totals["MOTA"] == pytest.approx(100.0)


# ---------------------------------------------------------------------------------------------- COCO


def test_coco_results_load_in_pycocotools_and_score_one_against_the_same_people(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    doc = _document()
    path = write_exports(doc, tmp_path, "clip", ["coco"])[0]
    assert path == tmp_path / "coco" / "clip.json"
    results = json.loads(path.read_text())
    assert len(results) == len(doc["annotations"]) == 8
    gt = {"images": doc["images"], "categories": doc["categories"],
          "annotations": [{**a, "id": a["id"] + 1, "iscrowd": 0, "num_keypoints": 17,  # COCOeval takes id 0 as "none"
                           "keypoints": [v if i % 3 < 2 else 2 for i, v in enumerate(a["keypoints"])]}
                          for a in doc["annotations"]]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        loaded = coco.loadRes(str(path))  # pycocotools' own reader of a results file
    assert len(loaded.getAnnIds()) == 8 and loaded.loadAnns(loaded.getAnnIds())[0]["track_id"] in (0, 1)
    assert coco_keypoint_ap(gt, results)["AP"] == pytest.approx(1.0)


def test_coco_results_need_coco_keypoints(tmp_path: Path) -> None:
    with pytest.raises(PosetrackError, match="17 COCO keypoints"):
        write_exports(_document(POSETRACK18_KEYPOINTS), tmp_path, "clip", ["coco"])
    assert not list(tmp_path.rglob("*"))


# ----------------------------------------------------------------------------------------------- MOT


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:Operation with tuple")  # motmetrics' pandas use
def test_mot_boxes_read_by_motmetrics(tmp_path: Path) -> None:
    import motmetrics as mm

    doc = _document()
    path = write_exports(doc, tmp_path, "clip", ["mot"])[0]
    assert path == tmp_path / "mot" / "clip.txt"
    table = mm.io.loadtxt(str(path), fmt="mot15-2D")
    assert len(table) == 8
    assert sorted(set(table.index.get_level_values("FrameId"))) == [1, 2, 4, 5]  # frame index + 1; frame 2 empty
    assert sorted(set(table.index.get_level_values("Id"))) == [1, 2]  # track ids 0, 1 -> 1, 2
    first = doc["annotations"][0]
    row = table.loc[(1, first["track_id"] + 1)]
    np.testing.assert_allclose(row[["X", "Y", "Width", "Height"]].to_numpy(float), first["bbox"], atol=0.01)
    assert row["Confidence"] == pytest.approx(first["score"])
    assert (table[["ClassId", "Visibility"]] == -1).all().all()  # what mot15-2D names the last columns


# ------------------------------------------------------------------------------------ files and CLI


def test_exports_never_replace_a_file_posetrack_did_not_write(tmp_path: Path) -> None:
    doc = _document()
    theirs = tmp_path / "coco" / "clip.json"
    theirs.parent.mkdir()
    theirs.write_text(json.dumps([{"image_id": 0, "category_id": 1, "keypoints": [0] * 51, "score": 1.0}]))
    before = theirs.read_bytes()
    with pytest.raises(PosetrackError, match="posetrack did not write it"):
        write_exports(doc, tmp_path, "clip", ["posetrack18", "coco", "mot"])
    assert theirs.read_bytes() == before
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["coco", "coco/clip.json"]
    theirs.unlink()
    (tmp_path / "mot").mkdir()
    (tmp_path / "mot" / "clip.txt").write_text("1,1,10,10,5,5,1,1,1,1\n")  # a MOT16 ground truth, say
    with pytest.raises(PosetrackError, match="clip.txt"):
        write_exports(doc, tmp_path, "clip", ["mot"])
    (tmp_path / "mot" / "clip.txt").unlink()
    first = write_exports(doc, tmp_path, "clip")
    assert [p.relative_to(tmp_path).as_posix() for p in first] == ["posetrack18/clip.json", "coco/clip.json",
                                                                    "mot/clip.txt"]
    assert write_exports(doc, tmp_path, "clip") == first  # posetrack's own exports are replaced
    assert not [p for p in tmp_path.rglob("*") if ".partial" in p.name]


def test_cli_export(tmp_path: Path) -> None:
    track = tmp_path / "out" / "clip.json"
    track.parent.mkdir()
    track.write_text(json.dumps(_document()))
    result = CliRunner().invoke(main, ["export", str(track), "--format", "mot,coco"])
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(track.parent).as_posix() for p in track.parent.rglob("*.*")) == [
        "clip.json", "coco/clip.json", "mot/clip.txt"]
    result = CliRunner().invoke(main, ["export", str(track), "-o", str(tmp_path / "x"), "--format", "posetrack18"])
    assert result.exit_code == 0 and (tmp_path / "x" / "posetrack18" / "clip.json").is_file()
    bad = CliRunner().invoke(main, ["export", str(track), "--format", "coco,csv"])
    assert bad.exit_code == 2 and "'csv' is not an export format" in bad.output
    results = tmp_path / "results.json"
    results.write_text("[]")
    wrong = CliRunner().invoke(main, ["export", str(results)])
    assert wrong.exit_code == 1 and wrong.stderr.startswith("posetrack: error: not a posetrack track file")


def test_export_and_evaluate_never_write_over_their_inputs(tmp_path: Path) -> None:
    """`posetrack export OUT/posetrack18/x.json -o OUT` would replace x.json with a lossy copy of itself,
    and `evaluate --json PRED` the predictions with scores: both are refused before anything is written."""
    source = tmp_path / "posetrack18" / "x.json"
    source.parent.mkdir()
    source.write_text('{"images": [], "annotations": [], "categories": []}')
    before = source.read_bytes()
    result = CliRunner().invoke(main, ["export", str(source), "-o", str(tmp_path), "--format", "posetrack18"])
    assert result.exit_code != 0 and "would replace the input" in result.output
    scored = CliRunner().invoke(main, ["evaluate", str(source), str(source), "--json", str(source)])
    assert scored.exit_code != 0 and "would replace the input" in scored.output
    assert source.read_bytes() == before and sorted(p.name for p in tmp_path.rglob("*")) == ["posetrack18", "x.json"]
