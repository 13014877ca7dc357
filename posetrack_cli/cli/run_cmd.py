"""``posetrack run SOURCE...``: the whole pipeline on videos, folders of videos, or frame folders.

Flags are named after the config fields they set (``--det-threshold`` sets
``PipelineConfig.detection_threshold``); :func:`posetrack_cli.cli.params.build` turns them into the
typed configs of a :class:`~posetrack_cli.run.settings.RunSpec`, and this module only translates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from posetrack_cli.cli.export_cmd import EXPORT_FORMATS
from posetrack_cli.cli.options import pose_model_options, tracker_options
from posetrack_cli.cli.overlay_options import overlay_options
from posetrack_cli.cli.params import POSITIVE, UNIT, Number, Size
from posetrack_cli.core.types import DEFAULT_IMAGE_FPS
from posetrack_cli.inference.config import EstimatorConfig
from posetrack_cli.io.live import LiveConfig
from posetrack_cli.models.detectors import DETECTORS
from posetrack_cli.models.flow import FLOW_NAMES
from posetrack_cli.run.presets import PRESETS
from posetrack_cli.run.settings import DEFAULT_CHECKPOINT_EVERY, MAX_IMAGE_FPS, MIN_IMAGE_FPS, PipelineConfig
from posetrack_cli.runtime.choice import PRECISIONS, RUNTIMES

PIPE, EST, LIVE = PipelineConfig(), EstimatorConfig(), LiveConfig()


@click.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("posetrack-out"),
              show_default=True, help="Output folder.")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="fast", show_default=True,
              help="fast: MobileNetV3 detector + ResNet-50 256x192 in int8; accurate: ResNet-50-FPN v2 detector + "
                   "ResNet-152 384x288; realtime: SSDlite on every 5th frame + MobileNetV2 head in int8, no flip test.")
@click.option("--detector", type=click.Choice(DETECTORS), help="Detector (overrides the preset).")
@click.option("--detector-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Local detector weights (torchvision layout) instead of the manifest's.")
@click.option("--detector-size", type=click.IntRange(128, 4096),
              help="Shorter side frames are resized to for detection [default: the model's 800]; smaller is faster.")
@click.option("--detections", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Person boxes instead of a detector (one SOURCE only): a COCO-results JSON (image_id the "
                   "frame index or frame file name), or a MOTChallenge file (frame,id,x,y,w,h,conf,...; frames "
                   "from 1), posetrack's mot export among them.")
@pose_model_options
@click.option("--flow", type=click.Choice(FLOW_NAMES), help="Optical flow (overrides the preset).")
@tracker_options
@click.option("--det-threshold", "detection_threshold", type=UNIT, default=PIPE.detection_threshold,
              show_default=True, help="Boxes scoring below are dropped (paper: 0.5).")
@click.option("--rescore-threshold", type=UNIT, default=PIPE.rescore_threshold, show_default=True,
              help="Joints above this count in a person's score (the released code's 0.2).")
@click.option("--nms-iou", type=UNIT, default=PIPE.nms_iou, show_default=True,
              help="IoU above which a detection and a flow box are one person.")
@click.option("--flip-test/--no-flip-test", default=None,
              help="Average with the mirrored crop (--no-flip-test: about 2x faster pose, slightly less accurate) "
                   "[default: the preset's: off for realtime, else on].")
@click.option("--detect-every", type=click.IntRange(1, 1000),
              help="Run the detector on every N-th frame only; flow boxes carry people in between (faster; "
                   "people who appear are found at the next keyframe) [default: the preset's: 5 for realtime, else 1].")
@click.option("--pose-every", type=click.IntRange(1, 1000),
              help="Run the pose network on each person at least every N-th frame; flow carries their joints in "
                   "between, refreshing sooner after a large step or on a weak pose (faster; see the speed "
                   "docs for the accuracy cost) [default: the preset's: 5 for realtime, else 1].")
@click.option("--detect-batch", type=click.IntRange(1, 64), default=PIPE.detect_batch, show_default=True,
              help="Frames per detector call (batching pays on a GPU).")
@click.option("--overlap/--no-overlap", default=None,
              help="Run decoding, detection and flow ahead and writing behind in their own threads [default: on "
                   "with CUDA or when torch has 2+ CPU threads; off on one core].")
@click.option("--half", is_flag=True, help="Pose network in float16 (CUDA only).")
@click.option("--compile", is_flag=True, help="torch.compile the pose network: slow first frames, faster after.")
@click.option("--runtime", type=click.Choice(RUNTIMES), default=EST.runtime, show_default=True,
              help="Where the pose network and the detector's backbone run: auto is OpenVINO on a CPU where "
                   "installed, torch on CUDA. The detector runs fp32 (bf16 where native) beside an int8 pose "
                   "network; the JSON's settings say what ran.")
@click.option("--precision", type=click.Choice(PRECISIONS), default=EST.precision, show_default=True,
              help="Pose network numbers: auto is the preset's (int8 for fast and realtime) on OpenVINO, else bf16 "
                   "where the CPU has native bf16, else fp32; int8 is calibrated on the first person crops of the "
                   "run, or ahead by `posetrack calibrate`.")
@click.option("--batch-size", type=click.IntRange(1, 1024), default=EST.batch_size, show_default=True,
              help="Crops per pose-network forward.")
@click.option("--device", default=EST.device, show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--render", is_flag=True, help="Also write OUT/<name>.mp4 with boxes, skeletons and ids drawn.")
@overlay_options
@click.option("--format", "formats", type=EXPORT_FORMATS, default=None, callback=lambda ctx, param, value: value or (),
              help="Also write each video in these formats, comma-separated: posetrack18 (OUT/posetrack18/<name>.json, "
                   "for poseval), coco (OUT/coco/<name>.json, COCO results), mot (OUT/mot/<name>.txt, MOTChallenge).")
@click.option("--report", is_flag=True,
              help="Also write OUT/<name>.report.html with plots of the tracks "
                   "(needs pip install \"posetrack[report]\").")
@click.option("--images", is_flag=True,
              help="Each image of a folder on its own (no flow, no tracking, any sizes): OUT/<name>.coco.json, "
                   "COCO results for `posetrack evaluate --metric coco`. With --detections, a person detector's "
                   "COCO results for the images (image_id: the number of a COCO file name, or the file name) "
                   "give the boxes (COCO's protocol: add --det-threshold 0).")
@click.option("--recursive", is_flag=True, help="Look for videos in subfolders of folder SOURCEs too.")
@click.option("--overwrite", is_flag=True, help="Redo inputs whose outputs are already complete.")
@click.option("--offline", is_flag=True, help="Never download model files.")
@click.option("--fps", "image_fps", type=Number(MIN_IMAGE_FPS, MAX_IMAGE_FPS), default=DEFAULT_IMAGE_FPS,
              show_default=True,
              help="Frame rate of frame folders (videos carry their own timestamps).")
@click.option("--checkpoint-every", type=Number(0.0), default=DEFAULT_CHECKPOINT_EVERY, show_default=True,
              help="Seconds between checkpoints of a video or frame folder: after Ctrl-C, a crash or kill, a rerun "
                   "resumes from the last one to the same result (0: none).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--verbose", is_flag=True,
              help="Also show the libraries' own warnings and notes (torch, OpenVINO), which a run hides.")
@click.option("--reconnect", type=click.IntRange(0, 1000), default=LIVE.reconnect, show_default=True,
              help="Live: times a dropped stream or webcam is reopened (per drop, with a short backoff); "
                   "frame numbers and times go on.")
@click.option("--pipe-size", type=Size(multiple=1),
              help="Live: WIDTHxHEIGHT of the raw BGR24 frames read from stdin when SOURCE is -.")
@click.option("--show", is_flag=True,
              help="Live: show the overlay in a window (q or closing it stops; needs opencv-python, not "
                   "the headless build, and a display).")
@click.option("--flush-every", type=POSITIVE, default=LIVE.flush_every, show_default=True,
              help="Live: seconds between rewrites of OUT/<name>.json and .csv (each atomic), so a stream "
                   "stopped at any moment leaves valid files.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this process, one input after another; ray: a pool of Ray workers, each loading the "
                   'models once and taking whole videos (needs pip install "posetrack[ray]").')
@click.option("--address", help="Ray: cluster to join, HOST:PORT of `ray start --head` [default: $RAY_ADDRESS if set, "
                                "else a Ray instance started on this machine for the run].")
@click.option("--workers", type=click.IntRange(min=1),
              help="Ray: number of workers [default: one per CPU of the cluster, or as many as its GPUs allow "
                   "with --gpus-per-worker].")
@click.option("--gpus-per-worker", type=click.FloatRange(min=0),
              help="Ray: GPUs each worker reserves, fractions allowed [default: 1 if the cluster has GPUs and "
                   "--device is not cpu, else 0].")
@click.option("--retries", type=click.IntRange(0, 100),
              help="Ray: times a video is tried again after its worker died mid-video [default: 2].")
def run(sources: tuple[str, ...], out: Path, recursive: bool, overwrite: bool, offline: bool, no_progress: bool,
        executor: str, address: str | None, workers: int | None, gpus_per_worker: float | None,
        retries: int | None, **flags: Any) -> None:
    """Find, estimate and track every person in videos.

    SOURCE is a video file, a folder of videos (a batch), or a folder of images taken as one
    sequence in natural order. Per input, writes OUT/<name>.json and OUT/<name>.csv (and
    OUT/<name>.mp4 with --render), plus OUT/summary.csv for the batch. Inputs already done
    with the same settings are skipped on a rerun. Model files are downloaded on first use.
    Missing inputs are reported before any model loads; an output that would replace an input
    is refused before any work.

    SOURCE may instead be one live source: a webcam index (0), an rtsp:// or http(s):// stream,
    or - for raw BGR24 frames on stdin (--pipe-size). It runs until the stream ends or Ctrl-C;
    the JSON and CSV on disk are valid at every moment (--flush-every) and say whether and why
    the output is partial.

    With --executor ray, Ray workers share the videos of a batch, on this machine or on a
    cluster; they write the same files as the local executor, so SOURCEs and OUT must be on a
    filesystem every machine mounts at the same path.

    \b
    Examples:
      posetrack run video.mp4
      posetrack run videos/ --recursive -o results --render
      posetrack run frames/ --fps 25 --preset accurate --device cuda
      posetrack run video.mp4 --detections boxes.json --pose-weights my_model.pth
      posetrack run val2017/ --images --detections person_detections.json --det-threshold 0
      posetrack run lecture.mp4 --detect-every 5
      posetrack run webcam_recording.mp4 --preset realtime
      posetrack run corridor.mp4 --max-lost 3 --smooth one-euro
      posetrack run videos/ --executor ray --workers 4
      posetrack run /shared/videos -o /shared/out --executor ray --address 10.0.0.1:6379 --gpus-per-worker 1
      posetrack run 0 --show
      posetrack run rtsp://camera.local/stream --reconnect 5 --detect-every 5
      ffmpeg -i in.mkv -f rawvideo -pix_fmt bgr24 - | posetrack run - --pipe-size 1280x720
    """
    from posetrack_cli.run.runner import run_command
    from posetrack_cli.run.settings import ExecutorConfig, RayOptions, RunRequest, spec_from_options

    if executor == "ray":
        from posetrack_cli.run.ray_executor import import_ray

        import_ray()  # before anything else: without Ray, say how to install it
    try:
        ray = RayOptions(address=address, workers=workers, gpus_per_worker=gpus_per_worker,
                         retries=RayOptions.retries if retries is None else retries)
        request = RunRequest(sources, spec_from_options(**flags, allow_download=not offline),
                             ExecutorConfig(executor, ray))
    except ValueError as exc:  # a value a config refuses (a combination of options is an OptionsError: one line)
        raise click.UsageError(str(exc)) from None
    run_command(request, out, overwrite=overwrite, recursive=recursive, progress=not no_progress, echo=click.echo)
