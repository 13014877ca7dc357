"""The ``posetrack`` command line. Each command lives in its own module and only translates flags;
the work is done by library functions. Errors meant for users become one line on stderr."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, NoReturn

import click

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.version import __version__


class _Group(click.Group):
    """A click group whose commands report user errors as one line and a non-zero exit.

    Bad input (a PosetrackError) and click's own usage errors (an unknown option, a value out of
    range) read alike: ``posetrack: error: ...`` on one line of stderr.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            fail(exc.format_message() + where, exc.exit_code)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("posetrack: interrupted", err=True)
            sys.exit(130)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PosetrackError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            click.echo("posetrack: interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug, not bad input: say so in one line, trace on request
            if os.environ.get("POSETRACK_DEBUG"):
                traceback.print_exc()
            fail(f"internal error: {type(exc).__name__}: {exc} (set POSETRACK_DEBUG=1 for the traceback)")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``posetrack: error: <message>`` as one line on stderr and exit."""
    click.echo(f"posetrack: error: {' '.join(message.split())}", err=True)
    sys.exit(code)


@click.group(cls=_Group, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="posetrack")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Multi-person 2D pose tracking in video (Simple Baselines, Xiao et al. ECCV 2018).

    \b
    Examples:
      posetrack run video.mp4
      posetrack run videos/ --render -o results
      posetrack track results.json --video clip.mp4
      posetrack weights list
      posetrack weights download pose_resnet50_256x192
      posetrack weights inspect weights/res50_coco_256x192-ec54d7f3_20200709.pth
      posetrack evaluate posetrack_data/annotations/val/ out/
      posetrack report posetrack-out/video.json
      posetrack export posetrack-out/video.json --format posetrack18,coco,mot
      posetrack train coco/annotations/person_keypoints_train2017.json --images coco/train2017
      posetrack calibrate my_videos/ --preset realtime
    """
    if ctx.invoked_subcommand is None:  # plain `posetrack`: the help, and success
        click.echo(ctx.get_help())


def _register() -> None:
    from posetrack_cli.cli.calibrate_cmd import calibrate
    from posetrack_cli.cli.evaluate_cmd import evaluate
    from posetrack_cli.cli.export_cmd import export
    from posetrack_cli.cli.report_cmd import report
    from posetrack_cli.cli.run_cmd import run
    from posetrack_cli.cli.track_cmd import track
    from posetrack_cli.cli.train_cmd import train
    from posetrack_cli.cli.weights_cmd import weights

    main.add_command(run)
    main.add_command(track)
    main.add_command(evaluate)
    main.add_command(train)
    main.add_command(weights)
    main.add_command(report)
    main.add_command(export)
    main.add_command(calibrate)


_register()
