"""``posetrack weights list|download|verify|inspect``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.models import weights as W


@click.group()
def weights() -> None:
    """Model files: what is known, what is present, download, verify, inspect.

    \b
    Files live in the weights folder: $POSETRACK_WEIGHTS if set, else the checkout's
    weights/ folder (editable install), else ~/.cache/posetrack/weights.

    \b
    Examples:
      posetrack weights list
      posetrack weights list --json
      posetrack weights download pose_resnet50_256x192
      posetrack weights download pose_resnet50_256x192 --force   # replace a corrupt file
      posetrack weights download all
      posetrack weights verify
      posetrack weights inspect my_finetuned.pth
    """


@weights.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON (strict) on stdout.")
def list_(as_json: bool) -> None:
    """Show every known file, whether it is present, where, and where it comes from.

    \b
    "verified" is the verdict of the last SHA-256 check of the file as it is now (files are
    checked when a run loads them, or by `posetrack weights verify`): yes, CORRUPT, or "-" for
    a file not checked since it last changed. Listing never reads the files.
    """
    folder = W.weights_dir()
    entries = list(W.load_manifest().values())
    paths = [W.local_path(entry, folder) for entry in entries]
    verdicts = [W.cached_verdict(e, p, folder) if p.is_file() else None for e, p in zip(entries, paths)]
    if as_json:
        files = [{"name": e.name, "kind": e.kind, "present": p.is_file(), "verified": v, "size_mb": e.size_mb,
                  "path": str(p), "url": e.url, "sha256": e.sha256} for e, p, v in zip(entries, paths, verdicts)]
        click.echo(json.dumps({"folder": str(folder), "files": files}, indent=2, allow_nan=False))
        return
    click.echo(f"weights folder: {folder}")
    words = {True: "yes", False: "CORRUPT", None: "-"}
    rows = [("name", "kind", "present", "verified", "MB", "url")]
    for e, p, v in zip(entries, paths, verdicts):
        present = p.is_file()
        rows.append((e.name, e.kind, "yes" if present else "no", words[v] if present else "", f"{e.size_mb:g}", e.url))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@weights.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...|all")
@click.option("--force", is_flag=True, help="Download again and replace the file if it is present (e.g. corrupt).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def download(names: tuple[str, ...], force: bool, no_progress: bool) -> None:
    """Download files by name (or `all`), verifying each SHA-256.

    A file already present is checked instead; a corrupt one is reported (non-zero exit) and
    replaced with --force.
    """
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

    Reads every file in full (the digest cache is refreshed, not trusted). Exits non-zero if a
    file is corrupt (replace it with `posetrack weights download NAME --force`), or if a file
    named explicitly is missing.
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
        ok = W.is_intact(entry, path, use_cache=False)
        click.echo(f"{name}: {'ok' if ok else 'CORRUPT (SHA-256 mismatch)'} ({path})")
        bad += not ok
    if bad:
        raise SystemExit(1)


@weights.command()
@click.argument("path", type=click.Path(path_type=Path))
def inspect(path: Path) -> None:
    """Print a pose checkpoint's layout, architecture and size, or why it is not one."""
    from posetrack_cli.models.checkpoints import load_pose_checkpoint

    _, info = load_pose_checkpoint(path)
    spec = info.spec
    size = f"{info.input_size[0]}x{info.input_size[1]} (width x height)" if info.input_size else "not recorded"
    click.echo(f"file:        {info.path}")
    click.echo(f"layout:      {info.layout}")
    click.echo(f"backbone:    {spec.backbone_name}")
    kernel = f"{spec.deconv_kernel}x{spec.deconv_kernel}"
    click.echo(f"deconv:      {len(spec.deconv_channels)} x {kernel}, widths {list(spec.deconv_channels)}")
    names = f" ({', '.join(info.keypoint_names[:3])}, ...)" if info.keypoint_names else " (no standard names)"
    click.echo(f"keypoints:   {spec.num_keypoints}" + names)
    click.echo(f"input size:  {size}")
    norm = info.norm
    click.echo(f"input norm:  {norm.channel_order.upper()}, mean {list(norm.mean)}, std {list(norm.std)}")
    click.echo(f"parameters:  {info.num_parameters:,}")
