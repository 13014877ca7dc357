"""Click options shared by commands, so one flag reads and defaults the same everywhere."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import click

from posetrack_cli.cli.params import POSITIVE, UNIT, Number, Size
from posetrack_cli.tracking.smoothing import SMOOTHERS, SmoothingConfig
from posetrack_cli.tracking.tracker import PAPER_FLOW_LIFE, SIMILARITIES, TrackerConfig

F = TypeVar("F", bound=Callable[..., Any])
_TRACK = TrackerConfig()
_SMOOTH = SmoothingConfig()


def tracker_options(command: F) -> F:
    """Add the tracker's flags: the paper's (``--similarity --queue-length --min-similarity
    --joint-threshold``), the lost memory's (``--max-lost --own-motion --appearance``) and the
    written keypoints' smoothing (``--smooth --smooth-min-cutoff --smooth-beta``).

    Each flag is named after its :class:`TrackerConfig` field, the smoothing flags after the fields
    of the :class:`SmoothingConfig` that ``TrackOutputConfig.smoothing`` holds, ``--stitch`` after its ``stitch``.
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
        click.option("--max-lost", type=Number(0.0, 600.0), default=_TRACK.max_lost, show_default=True,
                     help="Seconds a person unseen for longer than L_Q frames is remembered and can get their id "
                          "back when they reappear (hidden by a pillar or a passer-by, out of the picture); "
                          "0: the paper's tracker, ids only within the queue."),
        click.option("--own-motion/--no-own-motion", default=_TRACK.own_motion, show_default=True,
                     help="Also predict each person from their own recent velocity, where flow is blind "
                          "(flat clothing or background, low frame rate)."),
        click.option("--duplicate-oks", type=UNIT, default=_TRACK.duplicate_oks, show_default=True,
                     help="A pose of a frame whose OKS with a better one (a detection's over a flow box's, then "
                          "the higher score) is above this is the same person and is dropped before it takes an "
                          "id; 1 keeps every pose (the paper)."),
        click.option("--staged/--no-staged", default=_TRACK.staged, show_default=True,
                     help="Match in two stages: strong poses first, then weak ones (found by a flow box, or scoring "
                          "under --weak-score) against the tracks left; a weak pose never starts a track "
                          "(--no-staged: the paper's single greedy pass)."),
        click.option("--weak-score", type=UNIT, default=_TRACK.weak_score, show_default=True,
                     help="Poses scoring below this are weak (see --staged): they continue tracks, never start "
                          "one."),
        click.option("--flow-life", type=Number(0.0, PAPER_FLOW_LIFE), default=_TRACK.flow_life, show_default=True,
                     help="Seconds a person only weak poses continue (flow boxes, with no detection) keeps "
                          "taking them; after that the flow boxes stop, so a box that slid off someone cannot "
                          "seed more."),
        click.option("--joint-noise", type=Number(0.0, 1000.0), default=_TRACK.joint_noise, show_default=True,
                     help="Pixels of error every joint has whatever the person's size, added to OKS's tolerance "
                          "when tracks meet new poses (0: the paper's OKS)."),
        click.option("--confirm-frames", type=click.IntRange(1, 100), default=_TRACK.confirm_frames,
                     show_default=True,
                     help="Frames a new person needs a pose in before they are written, from their first frame "
                          "on (the output waits that long); fewer are taken for false positives. People in the "
                          "first or last frame count at once. 1: every pose written at once (the paper)."),
        click.option("--appearance/--no-appearance", default=_TRACK.appearance, show_default=True,
                     help="Torso colours: break ties and refuse re-identifying someone in other clothes "
                          "(off when everyone wears the same colours)."),
        click.option("--stitch", is_flag=True,
                     help="After the video, join tracks whose end and start fit (gap up to --max-lost, motion, "
                          "size, colours) under one id, before the files are written (files only, no --render)."),
        click.option("--smooth", type=click.Choice(SMOOTHERS), default=_SMOOTH.smooth, show_default=True,
                     help="Smooth the written keypoints of each track over time (one-euro: the One Euro filter); "
                          "tracking and keypoint scores stay raw."),
        click.option("--smooth-min-cutoff", type=POSITIVE, default=_SMOOTH.smooth_min_cutoff, show_default=True,
                     help="One Euro cutoff in Hz at rest; lower removes more jitter from still people."),
        click.option("--smooth-beta", type=Number(0.0), default=_SMOOTH.smooth_beta, show_default=True,
                     help="One Euro speed coefficient (Hz per body height per second); higher lags less behind "
                          "fast motion, lower smooths it more."),
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
