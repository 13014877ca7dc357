"""``posetrack report OUT/clip.json``: an HTML page and PNG plots of a track file."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("tracks", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--video", type=click.Path(exists=True, path_type=Path),
              help="The video file or frame folder the track file was made from, for each track's first crop "
                   "[default: the file's info.source, where it still exists]. Only with one track file.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: the folder of each track file].")
def report(tracks: tuple[Path, ...], video: Path | None, out: Path | None) -> None:
    """Draw a track file (OUT/<name>.json): tracks over time, people per frame, keypoint
    confidence, stage timings and each track's first crop.

    Writes <name>.report.html (one self-contained page: pictures embedded, nothing fetched)
    and the plots as <name>.report-*.png. Needs matplotlib: pip install "posetrack[report]".

    \b
    Examples:
      posetrack report posetrack-out/clip.json                  # -> posetrack-out/clip.report.html
      posetrack report out/clip.json --video clips/clip.mp4     # the video has moved since the run
      posetrack report out/*.json -o reports
    """
    from posetrack_cli.core.errors import PosetrackError
    from posetrack_cli.core.files import read_json
    from posetrack_cli.io.report import write_report

    if video is not None and len(tracks) > 1:
        raise PosetrackError("--video goes with one track file; give the files one at a time")
    for path in tracks:
        written = write_report(read_json(path), out if out is not None else path.parent, name=path.stem, video=video,
                               where=str(path))
        click.echo(f"{path}: {written[0]} ({len(written) - 1} pictures)")
