"""The overlay flags (what ``--render`` draws), one per ``OverlayConfig`` field, for any command that
draws overlays: ``@overlay_options`` on the command, then ``overlay_config(...)`` of its values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from posetrack_cli.paper import JOINT_THRESHOLD
from posetrack_cli.render import OverlayConfig

_DEFAULT = OverlayConfig()

# (flag, help) per option; the defaults are OverlayConfig's.
_OPTIONS: tuple[Callable[[Any], Any], ...] = (
    click.option("--boxes/--no-boxes", "overlay_boxes", default=_DEFAULT.boxes, show_default=True,
                 help="Overlay: draw each person's box."),
    click.option("--ids/--no-ids", "overlay_ids", default=_DEFAULT.ids, show_default=True,
                 help="Overlay: draw the track id in a label in the track's colour."),
    click.option("--skeleton/--no-skeleton", "overlay_skeleton", default=_DEFAULT.skeleton, show_default=True,
                 help="Overlay: draw limbs and joints."),
    click.option("--trail", "overlay_trail", type=click.IntRange(min=0), default=_DEFAULT.trail, show_default=True,
                 help="Overlay: draw each track's last N positions (0: none)."),
    click.option("--dim", "overlay_dim", type=click.FloatRange(0, 1), default=_DEFAULT.dim, show_default=True,
                 help="Overlay: opacity of joints scoring below the keypoint threshold (0 hides them)."),
)


def overlay_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the overlay flags to a click command (its function receives ``overlay_*`` keywords)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def overlay_config(*, overlay_boxes: bool, overlay_ids: bool, overlay_skeleton: bool, overlay_trail: int,
                   overlay_dim: float, keypoint_threshold: float = JOINT_THRESHOLD) -> OverlayConfig:
    """The ``OverlayConfig`` of the flags' values; ``keypoint_threshold`` is the run's joint threshold."""
    return OverlayConfig(boxes=overlay_boxes, ids=overlay_ids, skeleton=overlay_skeleton, trail=overlay_trail,
                         dim=overlay_dim, keypoint_threshold=keypoint_threshold)
