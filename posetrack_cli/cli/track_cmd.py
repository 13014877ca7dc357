"""``posetrack track POSES --video SOURCE``: track poses made by any other estimator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from posetrack_cli.cli.options import tracker_options
from posetrack_cli.cli.params import Number
from posetrack_cli.core.types import DEFAULT_IMAGE_FPS
from posetrack_cli.models.flow import DEFAULT_FLOW, FLOW_NAMES
from posetrack_cli.run.settings import DEFAULT_CHECKPOINT_EVERY, MAX_IMAGE_FPS, MIN_IMAGE_FPS


@click.command()
@click.argument("poses", type=click.Path(exists=True, path_type=Path))
@click.option("--video", "source", required=True, type=click.Path(exists=True, path_type=Path),
              help="Video file or folder of frames the poses came from (used for optical flow), or a folder of "
                   "videos when POSES is a folder of <name>.json files.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("posetrack-out"),
              show_default=True, help="Output folder for <name>.tracks.json and <name>.tracks.csv.")
@tracker_options
@click.option("--flow", type=click.Choice(FLOW_NAMES), default=DEFAULT_FLOW, show_default=True,
              help="Optical flow estimator (RAFT is meant for a GPU).")
@click.option("--fps", "image_fps", type=Number(MIN_IMAGE_FPS, MAX_IMAGE_FPS), default=DEFAULT_IMAGE_FPS,
              show_default=True,
              help="Frame rate of a frame folder (videos carry their own timestamps).")
@click.option("--checkpoint-every", type=Number(0.0), default=DEFAULT_CHECKPOINT_EVERY, show_default=True,
              help="Seconds between checkpoints of a video or frame folder: after Ctrl-C, a crash or kill, a rerun "
                   "resumes from the last one to the same result (0: none).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (RAFT only).")
@click.option("--recursive", is_flag=True, help="Look for videos in subfolders of a --video folder too.")
@click.option("--overwrite", is_flag=True, help="Redo videos whose outputs are already complete.")
@click.option("--offline", is_flag=True, help="Never download model files (RAFT weights).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
@click.option("--verbose", is_flag=True,
              help="Also show the libraries' own warnings and notes (torch, OpenVINO), which a run hides.")
def track(poses: Path, source: Path, out: Path, recursive: bool, overwrite: bool, offline: bool, no_progress: bool,
          **flags: Any) -> None:
    """Assign track ids to per-frame poses from any estimator.

    POSES is any of: COCO results (image_id = 0-based frame index, or the frame's file name for a
    frame folder; keypoints [x, y, score] * 17; score; optional bbox xywh); a COCO keypoint
    annotation file (v flags: 0 = not labelled, a missing joint; 1 or 2 = labelled, trusted); a
    PoseTrack 2018 file; or what posetrack writes: OUT/<name>.json, .tracks.json, .csv, and the
    posetrack18 and coco exports. A document's image is found by its file name in a frame folder;
    for a video, a PoseTrack file's by its place in the file (as PoseTrack's tools do), others' by
    the frame number the file name carries (000042.jpg: frame 42). MOT files hold boxes only: give
    them to `posetrack run VIDEO --detections`. The video's frames are used only for optical flow.
    Writes OUT/<name>.tracks.json and
    OUT/<name>.tracks.csv (names of their own: they never replace `posetrack run`'s outputs or
    the POSES file), and OUT/summary.csv. Decoding that stops early keeps the frames before it,
    marked partial. For a batch, POSES is a folder holding <name>.json for each video of the
    --video folder; videos already tracked with the same settings and poses are skipped on a rerun.

    \b
    Examples:
      posetrack track results.json --video clip.mp4
      posetrack track person_keypoints.json --video frames/             # a COCO annotation file
      posetrack track out/posetrack18/clip.json --video clip.mp4         # posetrack's own export, fed back
      posetrack track results.json --video frames/ --fps 25 -o tracks
      posetrack track poses/ --video videos/ -o tracks
      posetrack track results.json --video clip.mp4 --similarity iou --queue-length 10
      posetrack track results.json --video clip.mp4 --max-lost 3 --smooth one-euro
    """
    from posetrack_cli.run.runner import run_command
    from posetrack_cli.run.settings import RunRequest, spec_from_options

    try:
        request = RunRequest((str(source),), spec_from_options(poses=poses, **flags, allow_download=not offline))
    except ValueError as exc:  # a value a config refuses
        raise click.UsageError(str(exc)) from None
    run_command(request, out, overwrite=overwrite, recursive=recursive, progress=not no_progress, echo=click.echo)
