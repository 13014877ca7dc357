"""Known model files: the manifest, where files live, download with verification, and look-up.

The manifest (``weights/manifest.json``, installed as ``posetrack_cli.manifest``) carries each
file's facts -- URL, SHA-256, input size, normalisation -- so they live with the
file rather than in code. ``POSETRACK_MANIFEST`` may point to another manifest (a private mirror).

Files live in the weights folder: ``POSETRACK_WEIGHTS`` if set; else the ``weights/`` folder of the
source checkout when posetrack runs from one (``pip install -e .``); else
``$XDG_CACHE_HOME/posetrack/weights`` (``~/.cache/...``) for a wheel install.

A file under a manifest name is SHA-256 checked whenever it is looked up, so a damaged file is
never loaded. The digest of each file is remembered in ``.sha256-cache.json`` in the weights
folder, keyed on the file's path, size and modification time (ns): a second run reads the cache,
not 100+ MB of weights. A weights folder that cannot be written only loses the cache.
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
from typing import Any, Sequence

from posetrack_cli.core.errors import WeightsError
from posetrack_cli.core.files import OutputWriteError, atomic_write, umask_mode

ENV_WEIGHTS = "POSETRACK_WEIGHTS"
ENV_MANIFEST = "POSETRACK_MANIFEST"
KINDS = ("pose", "detector", "flow", "backbone")
CACHE_NAME = ".sha256-cache.json"  # in the weights folder: digests by (path, size, mtime_ns)


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
        source: what the file is and where it comes from, in words.
        input_size: ``(width, height)`` the pose model was trained at, for pose files.
        norm: ``{"channel_order", "mean", "std"}`` for pose files.
    """

    name: str
    kind: str
    filename: str
    url: str
    sha256: str
    size_mb: float
    source: str
    input_size: tuple[int, int] | None = None
    norm: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if not re.fullmatch(r"[0-9a-f]{8,64}", self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 8 to 64 lower-case hex digits, got {self.sha256!r}")
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))


# The weights/ folder of a source checkout (this file is posetrack_cli/models/weights.py).
CHECKOUT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def load_manifest(path: str | Path | None = None) -> dict[str, WeightFile]:
    """The known files by name, from ``path``, ``$POSETRACK_MANIFEST``, or the built-in manifest.

    The built-in manifest is the source checkout's ``weights/manifest.json`` when posetrack runs from
    one (the same rule as ``weights_dir``: a second checkout or worktree run with ``python -m`` reads
    its own manifest, not the one the editable install points at), else the installed package's.
    """
    path = path or os.environ.get(ENV_MANIFEST)
    checkout = CHECKOUT_WEIGHTS / "manifest.json"
    try:
        if path:
            text = Path(path).read_text()
        elif checkout.is_file():
            text = checkout.read_text()
        else:
            text = resources.files("posetrack_cli.manifest").joinpath("manifest.json").read_text()
        doc = json.loads(text)
        entries = [WeightFile(**entry) for entry in doc["files"]]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise WeightsError(f"cannot read the weights manifest {path or '(built in)'}: {exc}") from None
    return {e.name: e for e in entries}


def weights_dir() -> Path:
    """The folder model files are read from and downloaded to (see the module docstring)."""
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        return Path(env).expanduser()
    if (CHECKOUT_WEIGHTS / "manifest.json").is_file():
        return CHECKOUT_WEIGHTS
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


def _cache_key(path: Path) -> tuple[str, dict[str, int]]:
    real = path.resolve()
    stat = real.stat()
    return str(real), {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read_cache(folder: Path) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads((folder / CACHE_NAME).read_text())
        files = doc["files"]
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # none yet, or damaged: digests are computed again


def cached_sha256(path: Path, folder: Path | None = None) -> str:
    """Hex SHA-256 of ``path``, from the weights folder's cache when the file's path, size and
    mtime are those the digest was computed for; computed (and cached) otherwise."""
    folder = folder or weights_dir()
    key, stamp = _cache_key(path)
    known = _read_cache(folder).get(key)
    digest = known.get("sha256") if isinstance(known, dict) else None
    if isinstance(known, dict) and {k: known.get(k) for k in stamp} == stamp and isinstance(digest, str):
        return digest
    digest = file_sha256(path)
    remember_sha256(path, digest, folder)
    return digest


def remember_sha256(path: Path, digest: str, folder: Path | None = None) -> None:
    """Record ``path``'s digest in the cache (atomically, strict JSON); skipped where the weights
    folder cannot be written, which only costs hashing the file again next time."""
    folder = folder or weights_dir()
    key, stamp = _cache_key(path)
    files = _read_cache(folder)
    files[key] = {**stamp, "sha256": digest}
    files = {k: v for k, v in files.items() if Path(k).is_file()}  # forget files that are gone
    try:
        with atomic_write(folder / CACHE_NAME) as f:
            json.dump({"about": "SHA-256 of model files by path, size and mtime_ns; safe to delete",
                       "files": files}, f, indent=1, sort_keys=True, allow_nan=False)
    except (OSError, OutputWriteError):
        pass


def cached_verdict(entry: WeightFile, path: Path, folder: Path | None = None) -> bool | None:
    """Whether ``path`` matched ``entry``'s digest when last checked, or None if it has not been
    checked since it last changed (reads the cache only; never hashes)."""
    folder = folder or weights_dir()
    try:
        key, stamp = _cache_key(path)
    except OSError:
        return None
    known = _read_cache(folder).get(key)
    if not isinstance(known, dict) or {k: known.get(k) for k in stamp} != stamp:
        return None
    return matches(entry, str(known.get("sha256", "")))


def is_intact(entry: WeightFile, path: Path, folder: Path | None = None, *, use_cache: bool = True) -> bool:
    """Whether ``path`` has ``entry``'s SHA-256 (the cached digest unless ``use_cache`` is False)."""
    if use_cache:
        return matches(entry, cached_sha256(path, folder))
    digest = file_sha256(path)
    remember_sha256(path, digest, folder or weights_dir())
    return matches(entry, digest)


def corrupt_message(entries: Sequence[WeightFile], folder: Path | None = None) -> str:
    """One line naming damaged files and the command that replaces them."""
    files = ", ".join(f"{local_path(e, folder)} ({e.name})" for e in entries)
    names = " ".join(e.name for e in entries)
    noun = "model file" if len(entries) == 1 else "model files"
    return (f"{noun} {files} {'is' if len(entries) == 1 else 'are'} corrupt (SHA-256 differs from the manifest's); "
            f"re-download with `posetrack weights download {names} --force`")


def local_path(entry: WeightFile, folder: Path | None = None) -> Path:
    return (folder or weights_dir()) / entry.filename


def missing_message(entry: WeightFile, folder: Path | None = None, reason: str = "") -> str:
    """One line telling the user which file is missing, where to put it, and where it comes from."""
    where = local_path(entry, folder)
    lead = f"model file {entry.filename} ({entry.name}) is missing"
    if reason:
        lead = f"cannot download {entry.filename} ({entry.name}): {reason}"
    return f"{lead}; download {entry.url} and save it as {where} (or set {ENV_WEIGHTS} to the folder that has it)"


def all_missing_message(entries: Sequence[WeightFile], folder: Path | None = None, reason: str = "") -> str:
    """One line naming every missing file with its URL and target path (``missing_message`` for one)."""
    if len(entries) == 1:
        return missing_message(entries[0], folder, reason)
    files = "; ".join(f"{e.name} from {e.url} to {local_path(e, folder)}" for e in entries)
    why = f" ({reason})" if reason else ""
    return (f"{len(entries)} model files are missing{why}: {files}; download them with "
            f"`posetrack weights download {' '.join(e.name for e in entries)}` (or set {ENV_WEIGHTS} to the "
            f"folder that has them)")


def download(entry: WeightFile, folder: Path | None = None, *, progress: bool = True, force: bool = False) -> Path:
    """Download ``entry`` into the weights folder, verify its SHA-256, and return its path.

    A file already there is checked instead (WeightsError if it is corrupt); ``force`` downloads
    it again and replaces it. torch.hub's downloader streams to a temporary file beside the
    target, shows a progress bar, checks the hash prefix and only then renames, so an interrupted
    or corrupted download never leaves a file under the final name. A full-length digest is
    checked here afterwards. The file gets the mode the umask gives new files.
    """
    import torch.hub  # heavy; only when downloading

    folder = folder or weights_dir()
    target = local_path(entry, folder)
    if target.exists() and not force:
        if not is_intact(entry, target, folder):
            raise WeightsError(corrupt_message([entry], folder))
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
    os.chmod(target, umask_mode())  # torch.hub's temporary file is created 0600
    digest = file_sha256(target)
    if not matches(entry, digest):
        target.unlink()
        raise WeightsError(f"download of {entry.name} from {entry.url} failed SHA-256 verification")
    remember_sha256(target, digest, folder)
    return target


def require_files(names: Sequence[str], *, allow_download: bool, progress: bool = True) -> dict[str, Path]:
    """Paths of every named manifest file, each present and SHA-256 checked, before any loads.

    Call it once with all the files a run needs: missing files are downloaded (unless
    ``allow_download`` is False), and every problem is named in ONE WeightsError line -- each
    missing file with its URL and target path, each corrupt file with the command that replaces
    it -- so the user fixes everything in one round trip.
    """
    manifest = load_manifest()
    unknown = [n for n in names if n not in manifest]
    if unknown:
        raise WeightsError(f"unknown model file {unknown[0]!r}; known: {', '.join(sorted(manifest))}")
    folder = weights_dir()
    wanted = [manifest[n] for n in dict.fromkeys(names)]
    missing = [e for e in wanted if not local_path(e, folder).is_file()]
    corrupt = [e for e in wanted if e not in missing and not is_intact(e, local_path(e, folder), folder)]
    problems = [corrupt_message(corrupt, folder)] if corrupt else []
    if missing and allow_download and not corrupt:
        failed = []
        for entry in missing:
            try:
                download(entry, folder, progress=progress)
            except WeightsError as exc:
                failed.append((entry, str(exc)))
        if len(failed) == 1:
            problems.append(failed[0][1])
        elif failed:
            problems.append(all_missing_message([e for e, _ in failed], folder, "downloads failed") + " (first: "
                            + failed[0][1] + ")")
    elif missing:
        problems.append(all_missing_message(missing, folder) + ("" if allow_download else " [offline]"))
    if problems:
        raise WeightsError("; and ".join(problems))
    return {e.name: local_path(e, folder) for e in wanted}


def resolve(name: str, *, allow_download: bool = True, progress: bool = True) -> tuple[WeightFile, Path]:
    """Path of a known file, SHA-256 checked, downloading it on first use unless ``allow_download``
    is False (see :func:`require_files`, which checks several files at once).

    Raises WeightsError naming the file, where it goes and where it comes from when it is absent
    and cannot be fetched, or the command that replaces it when it is corrupt.
    """
    path = require_files([name], allow_download=allow_download, progress=progress)[name]
    return load_manifest()[name], path
