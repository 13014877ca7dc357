"""Click options shared by commands, so one flag reads and defaults the same everywhere."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from posetrack_cli.errors import PosetrackError
from posetrack_cli.smoothing import SMOOTHERS, SmoothingConfig
from posetrack_cli.tracker import SIMILARITIES, TrackerConfig

F = TypeVar("F", bound=Callable)
_TRACK = TrackerConfig()
_SMOOTH = SmoothingConfig()


def _tracker_config(kwargs: dict[str, Any]) -> TrackerConfig:
    """Take the tracker's flags out of ``kwargs`` and build the one config they stand for."""
    smooth = kwargs.pop("smooth")
    cutoff, beta = kwargs.pop("smooth_min_cutoff"), kwargs.pop("smooth_beta")
    if smooth == "none" and (cutoff is not None or beta is not None):
        raise PosetrackError("--smooth-min-cutoff and --smooth-beta apply to --smooth one-euro only")
    smoothing = None
    if smooth == "one-euro":
        smoothing = SmoothingConfig(min_cutoff=_SMOOTH.min_cutoff if cutoff is None else cutoff,
                                    beta=_SMOOTH.beta if beta is None else beta)
    return TrackerConfig(similarity=kwargs.pop("similarity"), queue_length=kwargs.pop("queue_length"),
                         min_similarity=kwargs.pop("min_similarity"), joint_threshold=kwargs.pop("joint_threshold"),
                         max_lost=kwargs.pop("max_lost"), own_motion=kwargs.pop("own_motion"),
                         appearance=kwargs.pop("appearance"), smoothing=smoothing)


def tracker_options(command: F) -> F:
    """Add the tracker's flags (the paper's, the lost memory's, smoothing) and hand the command one
    ``tracker_config: TrackerConfig`` in their place."""
    options = [
        click.option("--similarity", type=click.Choice(SIMILARITIES), default=_TRACK.similarity, show_default=True,
                     help="flow-oks (paper), oks without flow, or box iou (the paper's ablations)."),
        click.option("--queue-length", type=click.IntRange(1, 1000), default=_TRACK.queue_length, show_default=True,
                     help="L_Q: frames of tracked poses a new pose is compared against."),
        click.option("--min-similarity", type=click.FloatRange(0, 1), default=_TRACK.min_similarity,
                     show_default=True, help="Below this a pose starts a new track."),
        click.option("--joint-threshold", type=click.FloatRange(0, 1), default=_TRACK.joint_threshold,
                     show_default=True, help="Joints scoring below this are not trusted (paper: 0.4)."),
        click.option("--max-lost", type=click.FloatRange(0, 600), default=_TRACK.max_lost, show_default=True,
                     help="Seconds a person unseen for longer than L_Q frames is remembered and can get their id "
                          "back when they reappear (hidden by a pillar or a passer-by, out of the picture); "
                          "0: the paper's tracker, ids only within the queue."),
        click.option("--own-motion/--no-own-motion", default=_TRACK.own_motion, show_default=True,
                     help="Also predict each person from their own recent velocity, where flow is blind "
                          "(flat clothing or background, low frame rate)."),
        click.option("--appearance/--no-appearance", default=_TRACK.appearance, show_default=True,
                     help="Torso colours: break ties and refuse re-identifying someone in other clothes."),
        click.option("--smooth", type=click.Choice(SMOOTHERS), default="none", show_default=True,
                     help="Smooth the written keypoints of each track over time (one-euro: the One Euro filter); "
                          "tracking and keypoint scores stay raw."),
        click.option("--smooth-min-cutoff", type=click.FloatRange(min=0, min_open=True),
                     help=f"One Euro cutoff in Hz at rest; lower removes more jitter [default: {_SMOOTH.min_cutoff:g}]."),
        click.option("--smooth-beta", type=click.FloatRange(min=0),
                     help=f"One Euro speed coefficient (Hz per body height per second); higher lags less behind "
                          f"fast motion [default: {_SMOOTH.beta:g}]."),
    ]

    @functools.wraps(command)
    def with_config(*args: Any, **kwargs: Any) -> Any:
        kwargs["tracker_config"] = _tracker_config(kwargs)
        return command(*args, **kwargs)

    wrapped: Any = with_config
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped
