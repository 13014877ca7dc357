"""``posetrack report OUT/clip.json``: an HTML page and PNG plots of a track file."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("tracks", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--video", type=click.Path(exists=True, path_type=Path),
              help="The video file or frame folder the track file was made from, for each track's first crop "
                   "[default: the file's info.source, where it still exists]. Only with one track file.")
@click.option("--overlay", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The overlay video of the track file, for the page to play (a click on a track seeks it) "
                   "[default: the .mp4 the file lists among its outputs, beside it]. Only with one track file.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: the folder of each track file].")
def report(tracks: tuple[Path, ...], video: Path | None, overlay: Path | None, out: Path | None) -> None:
    """Draw a track file (OUT/<name>.json): tracks over time, people per frame, keypoint
    confidence, stage timings and each track's first crop.

    Writes <name>.report.html (one page: pictures embedded, nothing fetched) and the plots as
    <name>.report-*.png. Where the overlay video of the run is at hand (run --render), the page
    plays it from beside it, by a relative path, and a click on a track seeks it to the track's
    first frame. Needs matplotlib: pip install "posetrack[report]".

    \b
    Examples:
      posetrack report posetrack-out/clip.json                  # -> posetrack-out/clip.report.html
      posetrack report out/clip.json --video clips/clip.mp4     # the video has moved since the run
      posetrack report out/*.json -o reports
      posetrack report out/clip.json --overlay elsewhere/clip.mp4
    """
    from posetrack_cli.core.errors import PosetrackError
    from posetrack_cli.core.files import read_json
    from posetrack_cli.io.report import overlay_beside, write_report

    for given, flag in ((video, "--video"), (overlay, "--overlay")):
        if given is not None and len(tracks) > 1:
            raise PosetrackError(f"{flag} goes with one track file; give the files one at a time")
    for path in tracks:
        document = read_json(path)
        played = overlay if overlay is not None else overlay_beside(document, path.parent)
        written = write_report(document, out if out is not None else path.parent, name=path.stem, video=video,
                               overlay=played, where=str(path))
        click.echo(f"{path}: {written[0]} ({len(written) - 1} pictures)")
