"""The libraries' own notes (their warnings and log lines) while posetrack loads and converts models:
hidden in a normal run, shown under ``--verbose``. Imports no torch, so a command that loads no
model (``posetrack track``) can enter :func:`library_notes` without paying torch's import."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import warnings
from typing import Iterator

# Whether the libraries' own notes (their warnings and log lines, which the quiet_* contexts of the
# runtime hide) are shown: True within `library_notes(True)`, which a job enters for the extent of
# its own work when its RunSpec says `verbose` (posetrack run --verbose). A context variable, as
# `warnings.catch_warnings` and `decimal.localcontext` keep theirs: it holds no setting of its own,
# only the caller's, and only while the caller's `with` lasts.
_NOTES_SHOWN: contextvars.ContextVar[bool] = contextvars.ContextVar("posetrack_library_notes", default=False)


@contextlib.contextmanager
def library_notes(shown: bool) -> Iterator[None]:
    """Within, the libraries' notes that the runtime hides by default (:func:`quiet_tracing`,
    :func:`no_cuda_note`, the int8 box head's deprecation notes) are shown when ``shown``;
    a normal run shows none of them, ``--verbose`` all."""
    token = _NOTES_SHOWN.set(shown)
    try:
        yield
    finally:
        _NOTES_SHOWN.reset(token)


def notes_shown() -> bool:
    """Whether the caller asked for the libraries' notes (:func:`library_notes`)."""
    return _NOTES_SHOWN.get()


@contextlib.contextmanager
def no_cuda_note() -> Iterator[None]:
    """Without the "No CUDA runtime is found" line ``torch.utils.cpp_extension`` logs as it is first
    imported on a CPU-only machine: NNCF's torch half imports it (when OpenVINO's converter checks
    for an NNCF model, when NNCF checks a model's framework), and the user can do nothing about it.
    Shown within ``library_notes(True)``."""
    if notes_shown():
        yield
        return
    note = logging.getLogger("torch.utils.cpp_extension")
    level = note.level
    note.setLevel(logging.ERROR)
    try:
        yield
    finally:
        note.setLevel(level)


@contextlib.contextmanager
def quiet_tracing() -> Iterator[None]:
    """Without the FutureWarnings torch's tracer prints as OpenVINO converts a module (``torch.jit.trace``
    is deprecated; OpenVINO's converter traces, and has no other path for an ``nn.Module``), nor
    :func:`no_cuda_note`'s line: a conversion says nothing the user can act on. Only those: other
    warnings raised while converting still show. All of them show within ``library_notes(True)``."""
    with warnings.catch_warnings(), no_cuda_note():
        if not notes_shown():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit\._trace$")
        yield
