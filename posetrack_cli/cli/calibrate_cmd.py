"""``posetrack calibrate SOURCE...``: int8 calibration of the pose network on the user's own footage."""

from __future__ import annotations

from pathlib import Path

import click

from posetrack_cli.cli.options import pose_model_options
from posetrack_cli.cli.params import UNIT
from posetrack_cli.core.paper import DETECTION_THRESHOLD
from posetrack_cli.inference.calibration import DEFAULT_CROPS
from posetrack_cli.models.detectors import DETECTORS
from posetrack_cli.run.presets import PRESETS


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="fast", show_default=True,
              help="Whose pose network and detector to use (the same as `posetrack run --preset`).")
@pose_model_options
@click.option("--detector", type=click.Choice(DETECTORS), help="Detector (overrides the preset).")
@click.option("--detector-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Local detector weights (torchvision layout) instead of the manifest's.")
@click.option("--det-threshold", type=UNIT, default=DETECTION_THRESHOLD, show_default=True,
              help="Detector boxes scoring below are not used.")
@click.option("--crops", type=click.IntRange(8, 10000), default=DEFAULT_CROPS, show_default=True,
              help="Network inputs to gather (a quarter is held back to measure agreement with fp32).")
@click.option("--every", type=click.IntRange(1, 10000), default=10, show_default=True,
              help="Take every N-th frame of a video (neighbouring frames add little).")
@click.option("--no-flip-test", is_flag=True, help="Calibrate for runs with --no-flip-test (no mirrored crops).")
@click.option("--offline", is_flag=True, help="Never download model files.")
def calibrate(sources: tuple[Path, ...], preset: str, pose: str | None, pose_weights: Path | None,
              input_size: tuple[int, int] | None, detector: str | None, detector_weights: Path | None,
              det_threshold: float,
              crops: int, every: int, no_flip_test: bool, offline: bool) -> None:
    """Calibrate the pose network's int8 model on person crops from your videos and images.

    SOURCE is a video, an image, or a folder of them (searched recursively). The detector finds
    people, their crops are what the network will see, and NNCF quantizes on three quarters of them;
    the rest measure how far int8 lands from fp32. The model is cached beside the weights, so later
    `posetrack run --precision int8` runs use it without calibrating again.

    \b
    Examples:
      posetrack calibrate my_videos/
      posetrack calibrate street.mp4 --preset realtime --crops 500
    """
    import torch

    from posetrack_cli.inference.calibration import calibration_files, gather_inputs
    from posetrack_cli.inference.config import EstimatorConfig
    from posetrack_cli.inference.detector import load_detector
    from posetrack_cli.run.job import load_estimator
    from posetrack_cli.run.settings import ModelChoice

    files = calibration_files(sources)
    models = ModelChoice(preset=preset, pose=pose, pose_weights=pose_weights, input_size=input_size, detector=detector,
                         detector_weights=detector_weights)
    config = EstimatorConfig(device="cpu", flip_test=not no_flip_test, runtime="openvino", precision="int8")
    estimator = load_estimator(models, config, allow_download=not offline)
    person_detector = load_detector(models.detector_name, weights=detector_weights, device=torch.device("cpu"),
                                    score_threshold=det_threshold, allow_download=not offline)
    gathered = gather_inputs(estimator, person_detector, files, crops=crops, every=every)
    agreement = estimator.calibrate(gathered.inputs, source=gathered.describe())
    click.echo(agreement.line())
