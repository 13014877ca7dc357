"""Converted models kept on disk, so a second run pays no conversion.

Each entry is a folder named by :class:`CacheKey` (the SHA-256 of the state dict it was converted
from, input size, batch shape, precision, cache version) holding ``model.xml``, ``model.bin`` and
``about.json``; a folder is written under a temporary name and renamed into place, so a reader
never sees half a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

CACHE_VERSION = 4  # bump when what is cached (conversion arguments, quantization settings) changes


def state_dict_sha256(model: torch.nn.Module) -> str:
    """Hex SHA-256 of a module's state dict: names, dtypes, shapes and bytes, in key order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
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


def save_atomically(model: Any, folder: Path, about: dict[str, Any]) -> None:
    """Write ``model.xml``/``model.bin``/``about.json`` into a temporary folder and rename it to ``folder``.

    A folder that already exists (another run finished first, or a recalibration) is replaced
    only after the new one is complete, so a reader never sees half a model.
    """
    import openvino as ov

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        (tmp / "about.json").write_text(json.dumps(about, indent=1, allow_nan=False))
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(folder)
    except OSError:
        if folder.is_dir() and (folder / "about.json").is_file():
            shutil.rmtree(tmp, ignore_errors=True)  # a concurrent run wrote the same model first
            return
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_cached(folder: Path) -> tuple[Any, dict[str, Any]] | None:
    """The cached OpenVINO model and its ``about.json``, or None when absent."""
    if not (folder / "about.json").is_file():
        return None
    import openvino as ov

    return ov.Core().read_model(str(folder / "model.xml")), json.loads((folder / "about.json").read_text())


def cached_or_converted(key: CacheKey, convert: Callable[[], tuple[Any, dict[str, Any]]]) -> tuple[Any, dict[str, Any]]:
    """The fp32 ``openvino.Model`` cached under ``key`` and its ``about.json``; on a miss ``convert()``
    makes the model and what else to remember of it, saved (with the key's digest, size, precision
    and OpenVINO's version) for later runs."""
    import openvino as ov

    folder = cache_dir() / key.folder_name()
    cached = read_cached(folder)
    if cached is not None:
        return cached
    ov_model, extra = convert()
    about = {**extra, "weights_sha256": key.weights_sha256,
             "input_size": None if key.input_size is None else list(key.input_size),
             "precision": key.precision, "openvino": ov.__version__}
    save_atomically(ov_model, folder, about)
    return ov_model, about
