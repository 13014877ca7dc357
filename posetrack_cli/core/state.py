"""Saving and reading back the state of a run in progress, without pickles.

A state is a tree of dicts (string keys), lists, JSON scalars and numpy arrays. :func:`save_state`
writes it as two files in a folder: ``state-<n>.npz`` (the arrays, read back with
``allow_pickle=False``), then ``state.json`` (the tree, each array replaced by a reference, and the
name of its arrays file), each written under a temporary name, flushed and renamed into place;
the arrays of the previous state go last. A reader follows ``state.json`` to its own arrays, so it
sees the previous state or the new one, never half of one. Floats go through JSON's shortest
round-trip form and arrays keep their dtypes and bytes, so a state read back is the state saved,
bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import uuid
import zipfile
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np

from posetrack_cli.core.errors import PosetrackError

STATE_FILE = "state.json"
_ARRAY = "__array__"  # a leaf that refers to an array of the npz file


def pack(tree: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """``tree`` as a JSON-able tree and its arrays by reference name.

    Example:
        >>> import numpy as np
        >>> plain, arrays = pack({"ids": np.arange(3), "queue": [1.5, None, "x"]})
        >>> plain, {name: a.tolist() for name, a in arrays.items()}
        ({'ids': {'__array__': 'a0'}, 'queue': [1.5, None, 'x']}, {'a0': [0, 1, 2]})
        >>> unpack(plain, arrays)["ids"].tolist()
        [0, 1, 2]
    """
    arrays: dict[str, np.ndarray] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            name = f"a{len(arrays)}"
            arrays[name] = value
            return {_ARRAY: name}
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError("state dicts take string keys")
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            return walk(np.array(value))  # strict JSON has no NaN or infinity: an array keeps it
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"a state holds dicts, lists, JSON scalars and numpy arrays, not {type(value).__name__}")

    return walk(tree), arrays


def unpack(plain: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The tree :func:`pack` was given (tuples come back as lists, 0-d arrays of non-finite floats as floats)."""
    if isinstance(plain, dict):
        if set(plain) == {_ARRAY}:
            array = arrays[plain[_ARRAY]]
            return float(array) if array.ndim == 0 and array.dtype.kind == "f" else array
        return {k: unpack(v, arrays) for k, v in plain.items()}
    if isinstance(plain, list):
        return [unpack(v, arrays) for v in plain]
    return plain


def save_state(folder: Path, tree: Any) -> None:
    """Write ``tree`` into ``folder`` (created if needed); see the module docstring. Raises
    OSError when the disk refuses (full, read-only)."""
    plain, arrays = pack(tree)
    folder.mkdir(parents=True, exist_ok=True)
    old = sorted(folder.glob("state-*.npz"))
    arrays_file = f"state-{uuid.uuid4().hex[:12]}.npz"
    savez: Callable[..., None] = np.savez  # the arrays' names are keywords: typed as **Any
    _write(folder / arrays_file, lambda f: savez(f, **arrays))
    _write(folder / STATE_FILE, lambda f: f.write(json.dumps({"arrays": arrays_file, "tree": plain},
                                                              allow_nan=False).encode()))
    for path in old:
        path.unlink(missing_ok=True)


def _write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    temp = path.with_name(f".{path.name}.partial")
    try:
        with open(temp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def load_state(folder: Path) -> Any:
    """The tree saved in ``folder``; PosetrackError when it is missing, damaged or does not fit
    its arrays (the caller then starts over)."""
    try:
        saved = json.loads((folder / STATE_FILE).read_text())
        with np.load(folder / Path(saved["arrays"]).name, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return unpack(saved["tree"], arrays)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise PosetrackError(f"the saved state in {folder} cannot be read ({type(exc).__name__}: {exc})") from None
