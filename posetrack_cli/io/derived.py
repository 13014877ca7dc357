"""Files derived from a track document (exports, report pages and pictures): written atomically,
and never over a file that posetrack did not write.

Each kind of file says whether an existing file is posetrack's: PNG pictures and HTML pages carry a
marker (a PNG ``Software`` text chunk, an HTML ``generator`` meta tag); exports carry what their
format allows (see ``posetrack_cli.io.exports``). A file at the target path that is not recognisably
posetrack's stops the writing with one line, before anything is written.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Callable

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import atomic_write
from posetrack_cli.core.version import __version__

GENERATOR = f"posetrack {__version__}"  # the marker's value: who wrote the file
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEY = b"Software"


def check_replaceable(paths: list[Path], is_ours: Callable[[Path], bool]) -> None:
    """Refuse, in one line, when any of ``paths`` exists and ``is_ours`` does not recognise it."""
    for path in paths:
        if path.is_dir() or (path.exists() and not is_ours(path)):
            raise PosetrackError(f"{path} exists and posetrack did not write it; not replacing it "
                                 "(move it away or choose another output folder)")


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, then rename)."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


def mark_png(png: bytes) -> bytes:
    """``png`` with a ``Software: posetrack <version>`` text chunk after its header chunk."""
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    header_end = len(_PNG_SIGNATURE) + 8 + struct.unpack(">I", png[8:12])[0] + 4  # IHDR: length, type, data, crc
    body = b"tEXt" + _PNG_KEY + b"\0" + GENERATOR.encode("latin-1")
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    return png[:header_end] + chunk + png[header_end:]


def png_is_ours(path: Path) -> bool:
    """Whether the PNG at ``path`` carries posetrack's ``Software`` text chunk."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if not data.startswith(_PNG_SIGNATURE):
        return False
    at = len(_PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"tEXt":
            key, _, value = data[at + 8:at + 8 + length].partition(b"\0")
            if key == _PNG_KEY and value.startswith(b"posetrack "):
                return True
        if kind in (b"IDAT", b"IEND"):  # text chunks that matter come before the image data
            return False
        at += 12 + length
    return False


def html_marker() -> str:
    """The ``<meta>`` tag that marks an HTML page as posetrack's."""
    return f'<meta name="generator" content="{GENERATOR}">'


def html_is_ours(path: Path) -> bool:
    """Whether the page at ``path`` has posetrack's generator tag near its start."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return False
    return '<meta name="generator" content="posetrack ' in head
