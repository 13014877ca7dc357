"""Click options shared by commands, so one flag reads and defaults the same everywhere."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import click

from posetrack_cli.cli.params import UNIT, Size
from posetrack_cli.tracker import SIMILARITIES, TrackerConfig

F = TypeVar("F", bound=Callable[..., Any])
_TRACK = TrackerConfig()


def tracker_options(command: F) -> F:
    """Add ``--similarity --queue-length --min-similarity --joint-threshold`` (the paper's tracker).

    Each flag is named after its :class:`TrackerConfig` field.
    """
    options = [
        click.option("--similarity", type=click.Choice(SIMILARITIES), default=_TRACK.similarity, show_default=True,
                     help="flow-oks (paper), oks without flow, or box iou (the paper's ablations)."),
        click.option("--queue-length", type=click.IntRange(1, 1000), default=_TRACK.queue_length, show_default=True,
                     help="L_Q: frames of tracked poses a new pose is compared against."),
        click.option("--min-similarity", type=UNIT, default=_TRACK.min_similarity,
                     show_default=True, help="Below this a pose starts a new track."),
        click.option("--joint-threshold", type=UNIT, default=_TRACK.joint_threshold,
                     show_default=True, help="Joints scoring below this are not trusted (paper: 0.4)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def pose_model_options(command: F) -> F:
    """Add ``--pose --pose-weights --input-size``: the pose network by manifest name or local file."""
    from pathlib import Path

    options = [
        click.option("--pose",
                     help="Pose model by manifest name (overrides the preset; see `posetrack weights list`)."),
        click.option("--pose-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Local pose checkpoint in any supported layout (MSRA, mmpose 0.x/1.x, posetrack train)."),
        click.option("--input-size", type=Size(), help="Pose input WIDTHxHEIGHT (multiples of 32) for a checkpoint "
                                                       "that does not record it, e.g. 192x256."),
    ]
    for option in reversed(options):
        command = option(command)
    return command
