"""``posetrack export OUT/clip.json --format posetrack18,coco,mot``: the track file in other tools' formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from posetrack_cli.io.exports import EXTENSIONS, FORMATS


class FormatList(click.ParamType):
    """A comma-separated list of export formats, each one of ``FORMATS``."""

    name = "formats"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        chosen = tuple(dict.fromkeys(v.strip() for v in str(value).split(",") if v.strip()))
        unknown = [v for v in chosen if v not in FORMATS]
        if unknown or not chosen:
            self.fail(f"{unknown[0] if unknown else value!r} is not an export format; choose from "
                      f"{', '.join(FORMATS)} (comma-separated)", param, ctx)
        return chosen


EXPORT_FORMATS = FormatList()


@click.command("export")
@click.argument("tracks", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "formats", type=EXPORT_FORMATS, default=",".join(FORMATS), show_default=True,
              help="Formats to write, comma-separated: "
                   + ", ".join(f"{f} (OUT/{f}/<name>{EXTENSIONS[f]})" for f in FORMATS) + ".")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: the folder of each track file].")
def export(tracks: tuple[Path, ...], formats: tuple[str, ...], out: Path | None) -> None:
    """Write posetrack track files (OUT/<name>.json) in the formats other tools read, each into
    a folder of its own named by the sequence: OUT/posetrack18/<name>.json, OUT/coco/<name>.json,
    OUT/mot/<name>.txt (OUT: -o, or the track file's folder).

    \b
    posetrack18: PoseTrack 2018 sequence JSON, as the official evaluation (poseval) reads it.
    coco:        COCO keypoint results (image_id, category_id, keypoints, score).
    mot:         MOTChallenge boxes, frame,id,x,y,w,h,conf,-1,-1,-1 (frames from 1).

    \b
    Examples:
      posetrack export posetrack-out/clip.json                # all three, under posetrack-out/
      posetrack export out/*.json --format posetrack18        # out/posetrack18/: a folder for poseval
      posetrack export out/*.json --format mot -o mot_results # mot_results/mot/<name>.txt
    """
    from posetrack_cli.core.files import read_json, refuse_overwriting_inputs
    from posetrack_cli.io.exports import export_paths, write_exports

    def folder(path: Path) -> Path:
        return out if out is not None else path.parent

    # An export of OUT/posetrack18/x.json into OUT would be written over x.json itself, the input.
    refuse_overwriting_inputs([p for path in tracks for p in export_paths(folder(path), path.stem, formats).values()],
                              tracks)
    for path in tracks:
        written = write_exports(read_json(path), folder(path), path.stem, formats, where=str(path))
        click.echo(f"{path}: " + ", ".join(str(p) for p in written))
