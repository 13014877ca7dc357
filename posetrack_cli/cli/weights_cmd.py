"""``posetrack weights list|download|verify|inspect``."""

from __future__ import annotations

from pathlib import Path

import click

from posetrack_cli import weights as W
from posetrack_cli.errors import PosetrackError


@click.group()
def weights() -> None:
    """Model files: what is known, what is present, download, verify, inspect.

    \b
    Files live in the weights folder: $POSETRACK_WEIGHTS if set, else the checkout's
    weights/ folder (editable install), else ~/.cache/posetrack/weights.

    \b
    Examples:
      posetrack weights list
      posetrack weights download pose_resnet50_256x192
      posetrack weights download all
      posetrack weights verify
      posetrack weights inspect my_finetuned.pth
    """


@weights.command("list")
def list_() -> None:
    """Show every known file, whether it is present, and where."""
    folder = W.weights_dir()
    click.echo(f"weights folder: {folder}")
    rows = [("name", "kind", "present", "MB", "file")]
    for entry in W.load_manifest().values():
        present = "yes" if W.local_path(entry, folder).is_file() else "no"
        rows.append((entry.name, entry.kind, present, f"{entry.size_mb:g}", entry.filename))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@weights.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...|all")
@click.option("--force", is_flag=True, help="Download again even if the file is present.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def download(names: tuple[str, ...], force: bool, no_progress: bool) -> None:
    """Download files by name (or `all`), verifying each SHA-256."""
    manifest = W.load_manifest()
    wanted = list(manifest) if "all" in names else list(names)
    unknown = [n for n in wanted if n not in manifest]
    if unknown:
        raise PosetrackError(f"unknown model file {unknown[0]!r}; known: {', '.join(sorted(manifest))}")
    failures = 0
    for name in wanted:
        entry = manifest[name]
        try:
            path = W.download(entry, progress=not no_progress, force=force)
        except PosetrackError as exc:
            click.echo(f"posetrack: error: {exc}", err=True)
            failures += 1
            continue
        click.echo(f"{name}: {path}")
    if failures:
        raise SystemExit(1)


@weights.command()
@click.argument("names", nargs=-1)
def verify(names: tuple[str, ...]) -> None:
    """Check the SHA-256 of present files (all known files, or those named).

    Exits non-zero if a file is corrupt, or if a file named explicitly is missing.
    """
    manifest = W.load_manifest()
    unknown = [n for n in names if n not in manifest]
    if unknown:
        raise PosetrackError(f"unknown model file {unknown[0]!r}; known: {', '.join(sorted(manifest))}")
    bad = 0
    for name in names or manifest:
        entry = manifest[name]
        path = W.local_path(entry)
        if not path.is_file():
            click.echo(f"{name}: missing ({path})")
            bad += bool(names)
            continue
        ok = W.matches(entry, W.file_sha256(path))
        click.echo(f"{name}: {'ok' if ok else 'CORRUPT (SHA-256 mismatch)'} ({path})")
        bad += not ok
    if bad:
        raise SystemExit(1)


@weights.command()
@click.argument("path", type=click.Path(path_type=Path))
def inspect(path: Path) -> None:
    """Print a pose checkpoint's layout, architecture and size, or why it is not one."""
    from posetrack_cli.checkpoints import load_pose_checkpoint

    _, info = load_pose_checkpoint(path)
    spec = info.spec
    size = f"{info.input_size[0]}x{info.input_size[1]} (width x height)" if info.input_size else "not recorded"
    click.echo(f"file:        {info.path}")
    click.echo(f"layout:      {info.layout}")
    click.echo(f"backbone:    {spec.backbone_name}")
    click.echo(f"deconv:      {len(spec.deconv_channels)} x {spec.deconv_kernel}x{spec.deconv_kernel}, widths {list(spec.deconv_channels)}")
    click.echo(f"keypoints:   {spec.num_keypoints}" + (f" ({', '.join(info.keypoint_names[:3])}, ...)" if info.keypoint_names else " (no standard names)"))
    click.echo(f"input size:  {size}")
    click.echo(f"input norm:  {info.norm.channel_order.upper()}, mean {list(info.norm.mean)}, std {list(info.norm.std)}")
    click.echo(f"parameters:  {info.num_parameters:,}")
