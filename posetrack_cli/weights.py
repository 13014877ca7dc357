"""Known model files: the manifest, where files live, download with verification, and look-up.

The manifest (``weights/manifest.json``, installed as ``posetrack_cli.manifest``) carries each
file's facts -- URL, SHA-256, layout, input size, keypoints, normalisation -- so they live with the
file rather than in code. ``POSETRACK_MANIFEST`` may point to another manifest (a private mirror).

Files live in the weights folder: ``POSETRACK_WEIGHTS`` if set; else the ``weights/`` folder of the
source checkout when posetrack runs from one (``pip install -e .``); else
``$XDG_CACHE_HOME/posetrack/weights`` (``~/.cache/...``) for a wheel install.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from posetrack_cli.errors import WeightsError

ENV_WEIGHTS = "POSETRACK_WEIGHTS"
ENV_MANIFEST = "POSETRACK_MANIFEST"
KINDS = ("pose", "detector", "flow", "backbone")


@dataclass(frozen=True)
class WeightFile:
    """One known model file.

    Attributes:
        name: short name used on the command line (``pose_resnet50_256x192``).
        kind: ``pose``, ``detector``, ``flow``, or ``backbone`` (ImageNet weights training starts from).
        filename: the file's name in the weights folder (the publisher's own).
        url: where it is downloaded from.
        sha256: full hex digest, or the publisher's prefix of it (at least 8 hex digits).
        size_mb: approximate size, for the user's information.
        layout: checkpoint layout (``msra``, ``mmpose-0.x``, ``mmpose-1.x``, ``torchvision``).
        source: what the file is and where it comes from, in words.
        input_size: ``(width, height)`` the pose model was trained at, for pose files.
        keypoints: keypoint set name (``coco``) for pose files.
        norm: ``{"channel_order", "mean", "std"}`` for pose files.
        architecture: torchvision builder name, for detector, flow and backbone files.
    """

    name: str
    kind: str
    filename: str
    url: str
    sha256: str
    size_mb: float
    layout: str
    source: str
    input_size: tuple[int, int] | None = None
    keypoints: str | None = None
    norm: dict[str, Any] = field(default_factory=dict)
    architecture: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if not re.fullmatch(r"[0-9a-f]{8,64}", self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 8 to 64 lower-case hex digits, got {self.sha256!r}")
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))


def load_manifest(path: str | Path | None = None) -> dict[str, WeightFile]:
    """The known files by name, from ``path``, ``$POSETRACK_MANIFEST``, or the built-in manifest.

    The built-in manifest is the source checkout's ``weights/manifest.json`` when posetrack runs from
    one (the same rule as ``weights_dir``: a second checkout or worktree run with ``python -m`` reads
    its own manifest, not the one the editable install points at), else the installed package's.
    """
    path = path or os.environ.get(ENV_MANIFEST)
    checkout = Path(__file__).resolve().parent.parent / "weights" / "manifest.json"
    try:
        if path:
            text = Path(path).read_text()
        elif checkout.is_file():
            text = checkout.read_text()
        else:
            text = resources.files("posetrack_cli.manifest").joinpath("manifest.json").read_text()
        doc = json.loads(text)
        entries = [WeightFile(**entry) for entry in doc["files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"cannot read the weights manifest {path or '(built in)'}: {exc}") from None
    return {e.name: e for e in entries}


def weights_dir() -> Path:
    """The folder model files are read from and downloaded to (see the module docstring)."""
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parent.parent / "weights"
    if (checkout / "manifest.json").is_file():
        return checkout
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "posetrack" / "weights"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def matches(entry: WeightFile, digest: str) -> bool:
    """Whether a file's full digest matches the manifest's (full or prefix) digest."""
    return digest.startswith(entry.sha256)


def local_path(entry: WeightFile, folder: Path | None = None) -> Path:
    return (folder or weights_dir()) / entry.filename


def missing_message(entry: WeightFile, folder: Path | None = None, reason: str = "") -> str:
    """One line telling the user which file is missing, where to put it, and where it comes from."""
    where = local_path(entry, folder)
    lead = f"model file {entry.filename} ({entry.name}) is missing"
    if reason:
        lead = f"cannot download {entry.filename} ({entry.name}): {reason}"
    return f"{lead}; download {entry.url} and save it as {where} (or set {ENV_WEIGHTS} to the folder that has it)"


def download(entry: WeightFile, folder: Path | None = None, *, progress: bool = True, force: bool = False) -> Path:
    """Download ``entry`` into the weights folder, verify its SHA-256, and return its path.

    torch.hub's downloader streams to a temporary file beside the target, shows a progress bar,
    checks the hash prefix and only then renames, so an interrupted or corrupted download never
    leaves a file under the final name. A full-length digest is checked here afterwards.
    """
    import torch.hub  # heavy; only when downloading

    folder = folder or weights_dir()
    target = local_path(entry, folder)
    if target.exists() and not force:
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"cannot create the weights folder {folder}: {exc.strerror}") from None
    try:
        torch.hub.download_url_to_file(entry.url, str(target), hash_prefix=entry.sha256, progress=progress)
    except urllib.error.URLError as exc:
        raise WeightsError(missing_message(entry, folder, f"no network ({getattr(exc, 'reason', exc)})")) from None
    except RuntimeError as exc:  # torch.hub's hash mismatch
        raise WeightsError(f"download of {entry.name} from {entry.url} failed verification: {exc}") from None
    except OSError as exc:
        raise WeightsError(missing_message(entry, folder, str(exc))) from None
    if len(entry.sha256) == 64 and file_sha256(target) != entry.sha256:
        target.unlink()
        raise WeightsError(f"download of {entry.name} from {entry.url} failed SHA-256 verification")
    return target


def resolve(name: str, *, allow_download: bool = True, progress: bool = True) -> tuple[WeightFile, Path]:
    """Path of a known file, downloading it on first use unless ``allow_download`` is False.

    Raises WeightsError naming the file, where it goes and where it comes from when it is absent
    and cannot be fetched.
    """
    manifest = load_manifest()
    if name not in manifest:
        raise WeightsError(f"unknown model file {name!r}; known: {', '.join(sorted(manifest))}")
    entry = manifest[name]
    path = local_path(entry)
    if path.is_file():
        return entry, path
    if not allow_download:
        raise WeightsError(missing_message(entry) + " [offline]")
    return entry, download(entry, progress=progress)
