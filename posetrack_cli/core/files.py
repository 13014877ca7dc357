"""Safe file handling: atomic writes, temporary names of our own, per-output locks, strict JSON.

The rules every file posetrack writes follows:

* a file appears under its final name only when complete (written to a temporary name beside it,
  flushed, then renamed), so an interrupted run never leaves a file that looks finished;
* temporary names are unique per process (name, pid and a random part), so two runs into one
  folder never write into each other's files, and fit the file system's name limit (a long name
  is shortened to a prefix and a digest of it: :func:`fitted_name`);
* an output is worked on by one process at a time (:class:`OutputLock`, an advisory ``flock``);
* files get the modes the umask gives (as ``open`` would), not ``mkstemp``'s private 0600;
* JSON is strict: NaN and Infinity cannot be written (``allow_nan=False``), and every JSON file
  posetrack reads goes through :func:`read_json` (one line for a missing, malformed, too deeply
  nested or too large file).
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Literal, overload

from posetrack_cli.core.errors import PosetrackError

PARTIAL = ".partial"


class OutputWriteError(PosetrackError):
    """Writing an output failed (disk full, I/O error, permission changed mid-run)."""

    def __init__(self, path: Path, exc: OSError) -> None:
        self.disk_full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        cause = "disk full" if self.disk_full else (exc.strerror or type(exc).__name__)
        super().__init__(f"cannot write {path}: {cause}")
        self.path = path


# Bytes a temporary name adds to its output's name: ".", ".", a pid (at most 10 digits), "-", 8 hex
# digits, and a suffix of at most _MAX_SUFFIX bytes.
_MAX_SUFFIX = 32
_TEMP_EXTRA = 2 + 10 + 1 + 8 + _MAX_SUFFIX
_DIGEST = 8  # hex digits of the whole name's digest kept in a shortened name
NAME_MAX = 255  # the name limit where the file system does not say (Linux's, in bytes)


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, that ``folder``'s file system takes (255 where it does not say)."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return NAME_MAX
    return limit if limit > 0 else NAME_MAX


def fitted_name(name: str, budget: int) -> str:
    """``name`` if it takes at most ``budget`` bytes in the file system's encoding, else its longest
    prefix (whole characters) that leaves room for ``~`` and 8 hex digits of its SHA-256, and those:
    the same for every process, different for names that differ past the prefix.

    Example:
        >>> fitted_name("clip.json", 20)
        'clip.json'
        >>> fitted_name("é" * 20, 20)  # 40 bytes in UTF-8: 5 characters (10 bytes) and the digest
        'ééééé~f5cacffb'
    """
    raw = os.fsencode(name)
    if len(raw) <= budget:
        return name
    keep, size = [], 0
    for ch in name:
        size += len(os.fsencode(ch))
        if size > budget - 1 - _DIGEST:
            break
        keep.append(ch)
    return "".join(keep) + "~" + hashlib.sha256(raw).hexdigest()[:_DIGEST]


def _temp_stem(path: Path) -> str:
    """The part of ``path``'s temporary names that names the output: its name, shortened to fit."""
    return fitted_name(path.name, name_max(path.parent) - _TEMP_EXTRA)


def temp_path(path: Path, suffix: str = PARTIAL) -> Path:
    """A temporary name beside ``path``, unique to this process: ``.NAME.PID-RANDOM.partial``.

    ``suffix`` may carry a real extension after ``.partial`` where a library picks the container
    by it (``.partial.mp4``). ``NAME`` is the output's name, shortened (:func:`fitted_name`) where
    the whole would pass the file system's name limit, so any name that fits makes a temporary
    name that fits too; :func:`stale_temp_files` finds either.
    """
    if len(os.fsencode(suffix)) > _MAX_SUFFIX:
        raise ValueError(f"a temporary suffix takes at most {_MAX_SUFFIX} bytes: {suffix!r}")
    return path.with_name(f".{_temp_stem(path)}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def stale_temp_files(paths: Iterable[Path]) -> list[Path]:
    """Temporary files of the outputs ``paths`` that processes left behind (killed mid-video);
    only safe to remove while holding those outputs' :class:`OutputLock`."""
    found = []
    for path in paths:
        stem = _temp_stem(path)
        ours = re.compile(rf"\.{re.escape(stem)}\.\d+-[0-9a-f]{{8}}\.")  # .NAME.PID-RANDOM.
        found += [tmp for tmp in path.parent.glob(f".{glob.escape(stem)}.*{PARTIAL}*") if ours.match(tmp.name)]
    return found


def umask_mode() -> int:
    """The mode ``open()`` gives a new file under the current umask (0o666 masked).

    Read from /proc/self/status where Linux provides it: setting the umask to read it back would
    change it, for an instant, for every thread of the process (a writer thread may be creating
    a file then).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@overload
def atomic_write(path: str | Path, mode: Literal["w"] = "w",
                 newline: str | None = None) -> AbstractContextManager[IO[str]]: ...


@overload
def atomic_write(path: str | Path, mode: Literal["wb"], newline: None = None) -> AbstractContextManager[IO[bytes]]: ...


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", newline: str | None = None) -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place only on success: text
    (``mode="w"``) or bytes (``"wb"``).

    An interrupted or failed write leaves any earlier file untouched and no partial file under
    the final name; a write error (a full disk, say) is an :class:`OutputWriteError` naming ``path``.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, mode, newline=newline) as f:  # open() applies the umask, unlike mkstemp
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputWriteError(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dump_json(document: Any, f: IO[str]) -> None:
    """Strict, compact JSON (no NaN or Infinity: a value that is not finite is a bug, raised here)."""
    json.dump(document, f, separators=(",", ":"), allow_nan=False)


def read_json_lenient(path: str | Path) -> tuple[Any, PosetrackError | None]:
    """The parsed file with any NaN or Infinity read as floats, and the error :func:`read_json`
    raises for them (None if the file has none): a reader can then name the entry that holds one.

    Raises PosetrackError (one line) for a file that is missing, unreadable, not JSON, nested too
    deeply (Python's parser recurses: a file nested thousands deep would exhaust the stack; no
    posetrack, PoseTrack or COCO file is nested more than a few levels) or too large for memory.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PosetrackError(f"file not found: {path}") from None
    except MemoryError:
        raise PosetrackError(f"cannot read {path}: it does not fit in memory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PosetrackError(f"cannot read {path}: {exc}") from None

    constants: list[str] = []

    def constant(name: str) -> float:
        constants.append(name)
        return float(name)  # "NaN", "Infinity" and "-Infinity" are float's spellings too

    try:
        document = json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise PosetrackError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise PosetrackError(f"{path} is nested too deeply to be a posetrack, PoseTrack or COCO file") from None
    except MemoryError:
        raise PosetrackError(f"cannot read {path}: it does not fit in memory") from None
    except ValueError as exc:  # an integer of more digits than Python converts, say
        raise PosetrackError(f"{path} is not valid JSON ({exc})") from None
    strict = PosetrackError(f"{path} is not valid JSON ({constants[0]} is not a JSON number)") if constants else None
    return document, strict


def read_json(path: str | Path) -> Any:
    """Load a JSON file with one-line errors for missing, unreadable, malformed, too deeply nested
    or too large files: the reader of every JSON file posetrack is given.

    NaN and Infinity, which Python's parser accepts but JSON does not allow, are refused too.
    """
    document, strict = read_json_lenient(path)
    if strict is not None:
        raise strict
    return document


def prepare_output_dir(out_dir: Path) -> bool:
    """Create the output folder if needed and check it can be written; returns whether it was
    created (so a run that wrote nothing can remove it again)."""
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out_dir, prefix=".posetrack-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise PosetrackError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None
    return created


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if nothing is in it (a run that wrote nothing leaves no empty folder)."""
    try:
        folder.rmdir()
    except OSError:
        pass


class OutputLock:
    """An advisory lock on one output name in an output folder, held while it is worked on.

    The lock is ``flock`` on ``.NAME.lock``, released by the kernel if the process dies, so a
    killed run never leaves a stale lock. The lock file is removed on release; acquiring checks
    that the file locked is still the one at the path (another process may have removed it
    between our open and our lock), so two processes never both believe they hold it. A name too
    long for ``.NAME.lock`` to fit the file system's name limit is shortened (:func:`fitted_name`),
    the same way in every process.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / f".{fitted_name(name, name_max(folder) - len('..lock'))}.lock"
        self._fd: int | None = None

    def acquire(self, wait: bool | float) -> bool:
        """Take the lock: ``wait`` True blocks until it is free, False tries once, a number of
        seconds tries until then; returns whether it is held."""
        deadline = time.monotonic() + (wait if not isinstance(wait, bool) else 0.0)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait is True else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
                continue
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)  # the holder removed it after we opened it: lock the new one

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """Wait for the lock and hold it for a ``with`` block."""
        self.acquire(wait=True)
        try:
            yield
        finally:
            self.release()


def refuse_overwriting_inputs(outputs: Iterable[Path], inputs: Iterable[Path]) -> None:
    """Raise PosetrackError if any output path is one of the inputs (a video, a frame folder, a
    poses or boxes file): posetrack never writes over what it reads."""
    given = {p.resolve(): p for p in inputs}
    for path in outputs:
        hit = given.get(path.resolve())
        if hit is not None:
            raise PosetrackError(f"the output {path} would replace the input {hit}; choose another output folder (-o)")
