"""``posetrack train``: train or fine-tune the pose network on COCO-format keypoint annotations."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from posetrack_cli.cli.params import Size
from posetrack_cli.core.errors import PosetrackError


class _Epochs(click.ParamType):
    """Comma-separated epoch numbers (``90,120``)."""

    name = "E1,E2"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            steps = tuple(int(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of epochs (for example 90,120)", param, ctx)
        if any(s < 1 for s in steps):
            self.fail(f"{value!r}: epochs count from 1", param, ctx)
        return steps


# Command-line options that are TrainConfig fields: what the run learns, fixed once it starts.
_SCHEDULE = ("init", "depth", "input_size", "epochs", "lr", "lr_steps", "lr_factor", "batch_size", "sigma",
             "scale_factor", "rotation_factor", "flip", "seed")


@click.command()
@click.argument("annotations", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder the images' file_name is relative to (COCO: train2017/; PoseTrack: the dataset root). "
                   "Default: each annotation file's folder.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("posetrack-out/train"),
              show_default=True, help="Folder for checkpoint.pth (every epoch), best.pth, final.pth and history.csv.")
@click.option("--init", default="imagenet", show_default=True,
              help="Start from: imagenet (torchvision ResNet weights, as the paper), scratch, or a pose checkpoint "
                   "to fine-tune (a file, or a name from 'posetrack weights list').")
@click.option("--depth", type=click.Choice(["18", "34", "50", "101", "152"]), default="50", show_default=True,
              help="ResNet depth (a fine-tuned checkpoint brings its own).")
@click.option("--input-size", type=Size(), default="192x256", show_default=True,
              help="Network input WIDTHxHEIGHT (the paper: 192x256 and 288x384; "
                   "default for fine-tuning: the checkpoint's).")
@click.option("--epochs", type=click.IntRange(min=1), default=140, show_default=True, help="Length of the schedule.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate.")
@click.option("--lr-steps", type=_Epochs(), default="90,120", show_default=True,
              help="Epochs at which the learning rate is multiplied by --lr-factor.")
@click.option("--lr-factor", type=click.FloatRange(min=0, max=1, min_open=True), default=0.1, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="People per step.")
@click.option("--sigma", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="Gaussian target std in heatmap pixels.")
@click.option("--scale-factor", type=click.FloatRange(min=0, max=1, max_open=True), default=0.3, show_default=True,
              help="Random scale 1 +- this (0: off).")
@click.option("--rotation-factor", type=click.FloatRange(min=0), default=40.0, show_default=True,
              help="Random rotation std in degrees, clipped at twice it, on 60% of examples (0: off).")
@click.option("--flip/--no-flip", default=True, show_default=True, help="Mirror half the examples, left/right swapped.")
@click.option("--seed", type=int, default=0, show_default=True, help="Initialisation, shuffling and augmentation.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp/--no-amp", default=None,
              help="Mixed precision (float16 autocast + GradScaler). Default: on for CUDA, off on CPU.")
@click.option("--workers", type=click.IntRange(min=0), default=min(4, os.cpu_count() or 1), show_default=True,
              help="DataLoader worker processes (0: load in the main process).")
@click.option("--val", "val_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="COCO keypoint file to report COCO AP on (ground-truth boxes), saving best.pth.")
@click.option("--val-images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of the --val images. Default: the --val file's folder.")
@click.option("--val-every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Validate every N epochs (and after the last).")
@click.option("--resume", is_flag=True, help="Continue the run in --output from its last checkpoint: same schedule, "
                                              "epoch, learning rate and optimiser state.")
@click.option("--no-progress", is_flag=True, help="No progress bar (the per-epoch lines remain).")
@click.pass_context
def train(ctx: click.Context, /, annotations: tuple[Path, ...], images: Path | None, output: Path,
          val_path: Path | None, val_images: Path | None, val_every: int, resume: bool, device: str,
          amp: bool | None, workers: int, no_progress: bool, **schedule: Any) -> None:
    """Train or fine-tune the pose network on COCO-format person keypoints.

    ANNOTATIONS are COCO keypoint JSON files (person_keypoints_*.json) or PoseTrack 2018
    files; a folder means every .json in it (PoseTrack: one file per video). Each annotated
    person is one example: its box padded to the input's aspect ratio and enlarged 1.25x,
    randomly scaled, rotated and flipped, with Gaussian heatmap targets (sigma 2). The
    defaults are the paper's: Adam, lr 1e-3, x0.1 at epochs 90 and 120 of 140, batch 32.

    \b
    Every epoch writes OUTPUT/checkpoint.pth (MSRA layout plus optimiser state), which
    'posetrack run' loads as is; Ctrl-C keeps the last complete one, and --resume continues it.

    \b
    Examples:
      # ResNet-50 at 256x192 from ImageNet, as the paper, validating on COCO val
      posetrack train coco/annotations/person_keypoints_train2017.json --images coco/train2017 \\
          --val coco/annotations/person_keypoints_val2017.json --val-images coco/val2017 -o runs/res50
      # fine-tune the released COCO model on PoseTrack 2018
      posetrack train posetrack18/annotations/train/ --images posetrack18 \\
          --init pose_resnet50_256x192 --epochs 20 --lr-steps 10,15 -o runs/res50_pt18
      # continue after an interruption
      posetrack train coco/annotations/person_keypoints_train2017.json --images coco/train2017 \\
          -o runs/res50 --resume
      # a small model on the CPU
      posetrack train my_people.json --init scratch --depth 18 --input-size 96x128 --batch-size 8 --device cpu
    """
    from posetrack_cli.models.checkpoints import load_resnet_checkpoint
    from posetrack_cli.models.device import resolve_device
    from posetrack_cli.training.data import load_keypoint_annotations
    from posetrack_cli.training.initialise import check_architecture, is_checkpoint_init, start_file
    from posetrack_cli.training.loop import CHECKPOINT_NAME, RunOptions, TrainConfig, read_saved_run
    from posetrack_cli.training.loop import train as run_training
    from posetrack_cli.training.validate import CocoValidation

    def warn(message: str) -> None:
        click.echo(f"posetrack: warning: {message}", err=True)

    schedule["depth"] = int(schedule["depth"])
    given = {name for name in _SCHEDULE if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE}

    # Settle the device, the run, its recipe and starting weights before reading a large annotation file.
    resolve_device(device)
    saved = read_saved_run(output) if resume else None
    if saved is not None:
        config = dataclasses.replace(saved.config, **{name: schedule[name] for name in given})
    else:
        if (output / CHECKPOINT_NAME).exists():
            raise PosetrackError(f"{output} already holds a training run ({CHECKPOINT_NAME}); "
                                 "continue it with --resume or choose another --output")
        values = dict(schedule)
        start = start_file(schedule["init"], schedule["depth"], progress=not no_progress)
        if start is not None and is_checkpoint_init(schedule["init"]):
            # Fine-tuning keeps the checkpoint's architecture and, unless told otherwise, its input size.
            model, info = load_resnet_checkpoint(start)
            values["depth"] = values["depth"] if "depth" in given else model.spec.depth
            values["deconv_channels"] = model.spec.deconv_channels
            check_architecture(info, values["depth"], values["deconv_channels"])
            if "input_size" not in given and info.input_size is not None:
                values["input_size"] = info.input_size
        try:
            config = TrainConfig(**values)
        except ValueError as exc:
            raise PosetrackError(str(exc)) from None
    validation = None
    if val_path is not None:
        validation = CocoValidation.from_file(val_path, val_images)
        click.echo(f"validation: {len(validation.samples)} people from "
                   f"{len(validation.samples.image_paths)} images ({val_path})")

    samples, skipped = load_keypoint_annotations(annotations, images)
    shown = ", ".join(str(a) for a in annotations[:3]) + (", ..." if len(annotations) > 3 else "")
    click.echo(f"read {len(samples)} people from {len(samples.image_paths)} images ({shown})")
    if skipped.total:
        warn(skipped.summary())
    options = RunOptions(device=device, workers=workers, amp=amp, progress=not no_progress, val_every=val_every)
    run_training(config, samples, output, options=options, validation=validation, resume=saved,
                 log=click.echo, warn=warn)
