"""``posetrack track POSES --video SOURCE``: track poses made by any other estimator."""

from __future__ import annotations

from pathlib import Path

import click

from posetrack_cli.cli.options import tracker_options
from posetrack_cli.flow import DEFAULT_FLOW, FLOW_NAMES
from posetrack_cli.tracker import TrackerConfig
from posetrack_cli.video import DEFAULT_IMAGE_FPS


@click.command()
@click.argument("poses", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--video", "source", required=True, type=click.Path(exists=True, path_type=Path),
              help="Video file or folder of frames the poses came from (used for optical flow).")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("posetrack-out"),
              show_default=True, help="Output folder for <name>.json and <name>.csv.")
@tracker_options
@click.option("--flow", "flow_name", type=click.Choice(FLOW_NAMES),
              default=DEFAULT_FLOW, show_default=True, help="Optical flow estimator (RAFT is meant for a GPU).")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_IMAGE_FPS, show_default=True,
              help="Frame rate of a frame folder (videos carry their own timestamps).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (RAFT only).")
@click.option("--offline", is_flag=True, help="Never download model files (RAFT weights).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def track(poses: Path, source: Path, out: Path, tracker_config: TrackerConfig, flow_name: str, fps: float, device: str, offline: bool, no_progress: bool) -> None:
    """Assign track ids to per-frame poses from any estimator.

    POSES is a COCO-results JSON (image_id = 0-based frame index, or the frame's file name for a
    frame folder; keypoints [x, y, v] * 17; score; optional bbox xywh) or a posetrack JSON. The
    video's frames are used only for optical flow. Writes OUT/<name>.json and OUT/<name>.csv.

    \b
    Examples:
      posetrack track results.json --video clip.mp4
      posetrack track results.json --video frames/ --fps 25 -o tracks
      posetrack track results.json --video clip.mp4 --similarity iou --queue-length 10
      posetrack track results.json --video clip.mp4 --max-lost 3 --smooth one-euro
    """
    from dataclasses import asdict

    from tqdm import tqdm

    from posetrack_cli.flow import make_flow
    from posetrack_cli.keypoints import COCO_KEYPOINTS
    from posetrack_cli.outputs import TrackWriter, prepare_output_dir
    from posetrack_cli.pose_input import load_poses
    from posetrack_cli.track_job import track_poses
    from posetrack_cli.video import ImageFolderSource, open_source

    config = tracker_config
    frames = open_source(source, image_fps=fps)
    try:
        names = [p.name for p in frames.files] if isinstance(frames, ImageFolderSource) else None
        by_frame = load_poses(poses, names)
        flow = make_flow(flow_name, device=device, allow_download=not offline)
        prepare_output_dir(out)
        name = source.stem if source.is_file() else source.name
        settings = {**asdict(config), **({"fps": fps} if names is not None else {})}
        with TrackWriter(out, name, COCO_KEYPOINTS, keypoint_threshold=config.joint_threshold) as writer, \
                tqdm(total=frames.frame_count, unit="frame", desc=source.name, disable=no_progress, leave=False) as bar:
            count, tracks = track_poses(by_frame, frames, flow, writer, config, on_frame=lambda _: bar.update())
            paths = writer.commit({"command": "track", "source": str(source), "poses": str(poses),
                                   "models": {"flow": flow.name}, "settings": settings, "frames": count, "partial": False})
    finally:
        frames.close()
    click.echo(f"{source}: {count} frames, {writer.annotations} poses, {tracks} tracks -> {paths['json']}, {paths['csv']}")
