"""Converted models kept on disk, so a second run pays no conversion; every entry checks itself.

Each entry is a folder written under a temporary name and renamed into place, so a reader never
sees half a model: a converted model is named by :class:`CacheKey` (the SHA-256 of the state dict it
was converted from, input size, batch shape, precision, cache version) and holds ``model.xml``,
``model.bin`` and ``about.json``; a compiled model (:func:`~posetrack_cli.runtime.convert.compile_model`)
is ``compiled-<digest>-v<N>`` holding ``compiled.blob``.

``about.json`` records what the entry was made from (the weights' full SHA-256 for a converted
model, the digest of the model and the compile settings for a compiled one), each file's size,
``mtime_ns`` and SHA-256, and a digest of itself. An entry is verified before use: a file whose size
and mtime are those recorded is trusted without reading it (the weights check's fast path); one
whose mtime changed is hashed and must have the recorded SHA-256 (nothing is rewritten then: the
cache is only read). A damaged entry (a file changed, truncated or missing, unreadable or edited
metadata, made from other weights) is never used: it is made again and replaced, with one warning.
A cache that cannot be written (read-only, disk full) costs only the saving: the model is converted
in memory with one warning, and no temporary folder is left behind.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

CACHE_VERSION = 6  # bump when what is cached changes (conversion, quantization, layout; 6: SSD decoding kept)
ABOUT = "about.json"
MODEL_FILES = ("model.xml", "model.bin")

Warn = Callable[[str], None]  # receives one warning line (without the ``posetrack: warning:`` lead)


def warn_on_stderr(message: str) -> None:
    """The default receiver of the cache's warnings: one ``posetrack: warning:`` line on stderr."""
    print(f"posetrack: warning: {message}", file=sys.stderr, flush=True)


def state_dict_sha256(model: torch.nn.Module) -> str:
    """Hex SHA-256 of a module's state dict: names, dtypes, shapes and bytes, in key order."""
    return tensors_sha256(model.state_dict())


def tensors_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """:func:`state_dict_sha256` of the module a state dict (a weights file's, as ``torch.load``
    gives it) loads strictly into: the same digest without building the module."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().data)  # its own memory, not a copy
    return digest.hexdigest()


ENV_CACHE = "POSETRACK_CACHE"  # where converted models are kept, if not beside the weights


def cache_dir() -> Path:
    """Converted models live in ``$POSETRACK_CACHE`` when set, else in ``cache/`` inside the weights folder."""
    from posetrack_cli.models.weights import weights_dir

    return Path(os.environ[ENV_CACHE]) if os.environ.get(ENV_CACHE) else weights_dir() / "cache"


@dataclass(frozen=True)
class CacheKey:
    """What makes a converted model reusable.

    Attributes:
        weights_sha256: digest of the state dict the model was converted from.
        input_size: ``(width, height)``, or None for a model whose height and width are dynamic.
        precision: ``fp32``, ``bf16`` or ``int8``.
        batch: ``"dynamic"`` (any batch size), the only batch shape converted today.
        kind: ``pose`` for a pose network, ``<detector>-backbone`` for a detector's backbone.
    """

    weights_sha256: str
    input_size: tuple[int, int] | None
    precision: str
    batch: str = "dynamic"
    kind: str = "pose"

    def folder_name(self) -> str:
        """``<kind>-<sha16>-<W>x<H>-b<batch>-<precision>-v<N>`` (``any`` for a dynamic size): one folder per model."""
        size = "any" if self.input_size is None else "{}x{}".format(*self.input_size)
        return f"{self.kind}-{self.weights_sha256[:16]}-{size}-b{self.batch}-{self.precision}-v{CACHE_VERSION}"

    def made_from(self) -> dict[str, Any]:
        """What ``about.json`` must say for an entry to be this key's (the folder name holds a prefix only)."""
        return {"weights_sha256": self.weights_sha256, "precision": self.precision,
                "input_size": None if self.input_size is None else list(self.input_size)}


class Damaged(Exception):
    """A cache entry that is there but cannot be trusted; the message says what is wrong."""


class Unwritable(Exception):
    """The cache cannot take a new entry; the message says why (read-only, disk full, ...)."""


def _about_digest(about: Mapping[str, Any]) -> str:
    body = {k: v for k, v in about.items() if k != "about_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _file_record(path: Path) -> dict[str, Any]:
    from posetrack_cli.models.weights import file_sha256

    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": file_sha256(path)}


def _check_file(folder: Path, name: str, record: Any) -> None:
    """Raise Damaged unless ``folder/name`` is the file ``record`` describes (size and mtime, else its SHA-256)."""
    from posetrack_cli.models.weights import file_sha256

    if not (isinstance(record, dict) and all(isinstance(record.get(k), t) for k, t in
                                             (("size", int), ("mtime_ns", int), ("sha256", str)))):
        raise Damaged(f"about.json's record of {name} is malformed")
    try:
        stat = (folder / name).stat()
    except FileNotFoundError:
        raise Damaged(f"{name} is missing") from None
    except OSError as exc:
        raise Damaged(f"{name} cannot be read: {_os_reason(exc)}") from None
    if stat.st_size != record["size"]:
        cut = ": truncated" if stat.st_size < record["size"] else ""
        raise Damaged(f"{name} has {stat.st_size} bytes, {record['size']} when saved{cut}")
    if stat.st_mtime_ns == record["mtime_ns"]:
        return  # unchanged since it was saved and checked
    try:
        digest = file_sha256(folder / name)
    except OSError as exc:
        raise Damaged(f"{name} cannot be read: {_os_reason(exc)}") from None
    if digest != record["sha256"]:
        raise Damaged(f"{name} was changed after it was saved: its SHA-256 differs")


def read_about(folder: Path, made_from: Mapping[str, Any], required: Sequence[str]) -> dict[str, Any] | None:
    """The verified ``about.json`` of the entry ``folder``; None when there is no entry.

    Raises Damaged when the entry is there but cannot be trusted: ``about.json`` missing,
    unreadable or edited, a value of ``made_from`` not the one recorded, a ``required`` file not
    listed, or a listed file missing, resized or (mtime changed) of another SHA-256.
    """
    if not folder.is_dir():
        if folder.exists() or folder.is_symlink():
            raise Damaged("it is not a folder")
        return None
    try:
        about = json.loads((folder / ABOUT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Damaged("about.json is missing") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = _os_reason(exc) if isinstance(exc, OSError) else "not JSON"
        raise Damaged(f"about.json cannot be read: {why}") from None
    if not isinstance(about, dict) or about.get("about_sha256") != _about_digest(about):
        raise Damaged("about.json was changed after it was saved")
    for name, value in made_from.items():
        if about.get(name) != value:
            if name == "weights_sha256":
                raise Damaged("it was converted from other weights")
            raise Damaged(f"about.json records {name} {about.get(name)!r}, not {value!r}")
    files = about.get("files")
    if not isinstance(files, dict) or any(name not in files for name in required):
        raise Damaged("about.json does not list its files")
    for name, record in files.items():
        _check_file(folder, str(name), record)
    return about


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    why = exc.strerror or type(exc).__name__
    return why[:1].lower() + why[1:]


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _move_into_place(tmp: Path, folder: Path) -> None:
    """Rename the complete ``tmp`` to ``folder``, replacing an entry there only once the new one is whole."""
    old = None
    if folder.exists() or folder.is_symlink():  # a damaged entry, or a recalibration's predecessor
        old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
        try:
            folder.rename(old)
        except FileNotFoundError:
            old = None  # another run moved it away first
    try:
        tmp.rename(folder)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not folder.is_dir():
            raise
        # another run put the same model there first: its entry serves as well as ours
    finally:
        if old is not None:
            _remove(old)


def save_entry(folder: Path, about: Mapping[str, Any], write: Callable[[Path], None]) -> dict[str, Any]:
    """Make the entry ``folder``: ``write(tmp)`` puts its files in a temporary folder beside it, whose
    ``about.json`` gets ``about``, each file's size, mtime and SHA-256, and its own digest; then it is
    renamed into place. Returns what ``about.json`` holds.

    Raises Unwritable (read-only, disk full: an OSError, or the RuntimeError OpenVINO's writers
    raise) with the temporary folder removed.
    """
    tmp: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        write(tmp)
        written = {**about, "cache_version": CACHE_VERSION,
                   "files": {p.name: _file_record(p) for p in sorted(tmp.iterdir()) if p.name != ABOUT}}
        written["about_sha256"] = _about_digest(written)
        (tmp / ABOUT).write_text(json.dumps(written, indent=1, allow_nan=False), encoding="utf-8")
        _move_into_place(tmp, folder)
        tmp = None
        return written
    except OSError as exc:
        raise Unwritable(_os_reason(exc)) from None
    except RuntimeError as exc:  # OpenVINO's writers
        raise Unwritable(f"OpenVINO could not write it: {_last_line(exc)}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


_told_unwritable: set[tuple[str, str]] = set()  # (cache folder, reason) already warned of in this process


def keep(folder: Path, about: Mapping[str, Any], write: Callable[[Path], None], warn: Warn, *,
         damaged: str | None = None) -> dict[str, Any]:
    """:func:`save_entry`, warning once of what the user should know: the damaged entry it replaces
    (``damaged``, a clause naming it), or a cache that cannot be written (once per process and
    cache folder). Returns what ``about.json`` holds, or ``about`` unchanged when it was not saved."""
    try:
        written = save_entry(folder, about, write)
    except Unwritable as exc:
        root = str(folder.parent)
        if damaged:
            warn(f"{damaged}; it cannot be replaced ({exc}), so this run converts it in memory")
        elif (root, str(exc)) not in _told_unwritable:
            warn(f"cannot write the model cache {root} ({exc}); this run converts in memory "
                 f"(set {ENV_CACHE} to a writable folder to keep conversions)")
        _told_unwritable.add((root, str(exc)))
        return dict(about)
    if damaged:
        warn(f"{damaged}; converted it again")
    return written


def read_cached(folder: Path, key: CacheKey) -> tuple[Any, dict[str, Any]] | None:
    """The cached OpenVINO model of ``key`` and its ``about.json``, verified (:func:`read_about`);
    None when absent. Raises Damaged when it is there but cannot be trusted."""
    about = read_about(folder, key.made_from(), MODEL_FILES)
    if about is None:
        return None
    import openvino as ov

    try:
        return ov.Core().read_model(str(folder / "model.xml")), about
    except RuntimeError as exc:
        raise Damaged(f"OpenVINO cannot read it: {_last_line(exc)}") from None


def damaged_entry(folder: Path, exc: Damaged) -> str:
    """The clause a warning names a damaged entry with."""
    return f"cached model {folder} is damaged ({exc})"


def save_model(model: Any, folder: Path, about: Mapping[str, Any], warn: Warn = warn_on_stderr, *,
               damaged: str | None = None) -> dict[str, Any]:
    """Keep ``model`` (an ``openvino.Model``) as the entry ``folder`` (see :func:`keep`)."""
    import openvino as ov

    def write(tmp: Path) -> None:
        try:
            ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        except RuntimeError:  # all OpenVINO says of a full disk is 'basic_ios::clear: iostream error'
            weights = sum(op.get_byte_size() for op in model.get_ops() if op.get_type_name() == "Constant")
            if shutil.disk_usage(tmp).free < weights:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
            raise

    return keep(folder, about, write, warn, damaged=damaged)


def source_of(key: CacheKey, about: Mapping[str, Any]) -> tuple[str, str] | None:
    """What a compiled model of the cached model ``key`` is made from: the entry's folder name and a
    digest of its files as saved (``about.json``); None for a model that was not saved."""
    files = about.get("files")
    if not isinstance(files, dict) or not files:
        return None
    parts = [f"{name}:{record.get('sha256')}" for name, record in sorted(files.items()) if isinstance(record, dict)]
    return key.folder_name(), hashlib.sha256(";".join(parts).encode()).hexdigest()


def cached_or_converted(key: CacheKey, convert: Callable[[], tuple[Any, dict[str, Any]]],
                        warn: Warn = warn_on_stderr) -> tuple[Any, dict[str, Any]]:
    """The fp32 ``openvino.Model`` cached under ``key`` and its ``about.json``, verified; on a miss, or
    in place of a damaged entry (one warning), ``convert()`` makes the model and what else to remember
    of it, saved (with the key's digest, size, precision and OpenVINO's version) for later runs. A
    cache that cannot be written gives the converted model with one warning (see :func:`keep`)."""
    import openvino as ov

    folder = cache_dir() / key.folder_name()
    damaged = None
    try:
        cached = read_cached(folder, key)
    except Damaged as exc:
        damaged = damaged_entry(folder, exc)
    else:
        if cached is not None:
            return cached
    ov_model, extra = convert()
    about = {**extra, **key.made_from(), "openvino": ov.__version__}
    return ov_model, save_model(ov_model, folder, about, warn, damaged=damaged)
