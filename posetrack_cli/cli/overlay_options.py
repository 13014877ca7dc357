"""The overlay flags (what ``--render`` draws), each named after the ``OverlayConfig`` field it sets,
so ``settings.take(OverlayConfig, flags)`` makes the config (``settings.spec_from_options`` does)."""

from __future__ import annotations

from typing import Any, Callable

import click

from posetrack_cli.cli.params import UNIT
from posetrack_cli.io.render import OverlayConfig

_DEFAULT = OverlayConfig()

_OPTIONS: tuple[Callable[[Any], Any], ...] = (
    click.option("--boxes/--no-boxes", default=_DEFAULT.boxes, show_default=True,
                 help="Overlay (--render): draw each person's box."),
    click.option("--ids/--no-ids", default=_DEFAULT.ids, show_default=True,
                 help="Overlay: draw the track id in a label of the track's colour, placed so that labels of "
                      "people close together do not cover each other, kept inside the frame."),
    click.option("--skeleton/--no-skeleton", default=_DEFAULT.skeleton, show_default=True,
                 help="Overlay: draw limbs and joints."),
    click.option("--trail", type=click.IntRange(min=0), default=_DEFAULT.trail, show_default=True,
                 help="Overlay: draw each track's positions of the last N frames (0: none)."),
    click.option("--dim", type=UNIT, default=_DEFAULT.dim, show_default=True,
                 help="Overlay: opacity of joints scoring below the joint threshold (0 hides them)."),
    click.option("--frame-stamp/--no-frame-stamp", default=_DEFAULT.frame_stamp, show_default=True,
                 help="Overlay: write each frame's number and time (frame 1234  0:41.13) in the corner "
                      "with the fewest people."),
)


def overlay_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the overlay flags to a click command; its function receives ``boxes``, ``ids``,
    ``skeleton``, ``trail``, ``dim`` and ``frame_stamp``."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command
