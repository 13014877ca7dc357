"""``posetrack evaluate GT PRED``: PoseTrack mAP and MOTA, box MOTA and IDF1, or COCO keypoint AP."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import click

from posetrack_cli.core.files import atomic_write, refuse_overwriting_inputs
from posetrack_cli.evaluation import report
from posetrack_cli.evaluation.coco import coco_keypoint_ap
from posetrack_cli.evaluation.mot import evaluate_boxes
from posetrack_cli.evaluation.posetrack import evaluate_posetrack
from posetrack_cli.io import formats


def _describe(sequences: list[formats.PoseSequence], path: Path) -> str:
    kinds = Counter(s.format for s in sequences)
    return ", ".join(f"{n} {kind}" for kind, n in kinds.items()) + f" file{'s' if len(sequences) > 1 else ''} ({path})"


@click.command()
@click.argument("gt", type=click.Path(exists=True, path_type=Path))
@click.argument("pred", type=click.Path(exists=True, path_type=Path))
@click.option("--metric", type=click.Choice(["posetrack", "mot", "coco"]), default="posetrack", show_default=True,
              help="posetrack: per-joint AP (PCKh@0.5) and MOTA, MOTP, precision, recall (needs head boxes "
                   "in GT). mot: person-box MOTA, MOTP, IDF1 (no head boxes needed: compares two runs). "
                   "coco: COCO keypoint AP/AR (pycocotools). Default: posetrack, or mot when GT is "
                   "posetrack's own output.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the numbers to this JSON file.")
@click.pass_context
def evaluate(ctx: click.Context, gt: Path, pred: Path, metric: str, json_path: Path | None) -> None:
    """Score predictions against ground truth, as the PoseTrack and COCO benchmarks do.

    \b
    --metric posetrack (default): GT and PRED are files or folders of one JSON per
    sequence, paired by file name (two files pair with each other). Each may be
    PoseTrack 2017 (annolist), PoseTrack 2018 (COCO-like with track_id, bbox_head)
    or posetrack's own output. Joints pair by name; the table says which were scored.
    \b
    --metric mot: the same files; person boxes (bbox) and track ids are scored
    (IoU >= 0.5), so posetrack's own output works as ground truth: compare two
    runs or two settings. This is the default when GT is posetrack's output.
    \b
    --metric coco: GT is a COCO person-keypoint file, PRED a COCO results list or
    posetrack's output for a folder of those images (frames found by file name).

    \b
    Examples:
      posetrack evaluate posetrack_data/annotations/val/ out/
      posetrack evaluate gt/000342_mpii_test.json out/000342_mpii_test.json --json scores.json
      posetrack evaluate run_a/clip.json run_b/clip.json              # two runs: box MOTA, IDF1
      posetrack evaluate person_keypoints_val2017.json results.json --metric coco
    """
    if json_path is not None:  # --json pred.json would write the scores over the predictions
        read = [gt, pred, *(f for d in (gt, pred) if d.is_dir() for f in d.glob("*.json"))]
        refuse_overwriting_inputs([json_path], read)
    if metric in ("posetrack", "mot"):
        gts, preds = formats.read_sequences(gt), formats.read_sequences(pred)
        if gt.is_file() and pred.is_file():  # two files named on the command line belong together
            preds = [dataclasses.replace(preds[0], name=gts[0].name)]
        click.echo(f"ground truth: {_describe(gts, gt)}; predictions: {_describe(preds, pred)}")
        chosen = ctx.get_parameter_source("metric") != click.core.ParameterSource.DEFAULT
        if metric == "posetrack" and not chosen and all(s.format == "posetrack" for s in gts):
            click.echo("the ground truth is posetrack's own output, which has no head boxes for PCKh: "
                       "scoring person boxes and track ids (--metric mot)")
            metric = "mot"
        if metric == "mot":
            boxes = evaluate_boxes(gts, preds)
            text, document = report.mot_table(boxes), report.mot_json(boxes)
        else:
            metrics = evaluate_posetrack(gts, preds)
            text, document = report.posetrack_table(metrics), report.posetrack_json(metrics)
    else:
        inputs = formats.read_coco_predictions(gt, pred)
        gt_doc, results = inputs.gt, inputs.results
        missing = inputs.uncovered
        if missing:
            people = len(inputs.images_with_people)
            click.echo(f"posetrack: warning: the predictions cover {people - len(missing)} of the {people} "
                       f"ground-truth images with people; the people of the other {len(missing)} count as missed "
                       f"(first: image_id {missing[0]})", err=True)
        stats = coco_keypoint_ap(gt_doc, results)
        people_count = sum(1 for a in gt_doc["annotations"] if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd"))
        text = report.coco_table(stats, num_images=len(gt_doc["images"]), num_people=people_count,
                                 num_results=len(results))
        document = report.coco_json(stats)
    click.echo(text)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(json_path) as f:
            json.dump({"ground_truth": str(gt), "predictions": str(pred), **document}, f, indent=1, allow_nan=False)
        click.echo(f"wrote {json_path}")
