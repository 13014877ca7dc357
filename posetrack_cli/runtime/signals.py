"""A workaround OpenVINO's CPU plugin needs: the calling thread keeps its own signal stack."""

from __future__ import annotations

import contextlib
import ctypes
import sys
from typing import Iterator


class _SignalStack(ctypes.Structure):
    """``stack_t`` of ``sigaltstack(2)``."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


_libc: ctypes.CDLL | None = None


@contextlib.contextmanager
def own_signal_stack() -> Iterator[None]:
    """Give the calling thread back its own alternate signal stack after OpenVINO ran on it.

    OpenVINO's CPU plugin, compiling or running a model, installs a signal stack of its own on the
    calling thread and frees it with the compiled model. Freed on another thread (the garbage
    collector runs wherever it happens to run), it stays installed on the first: the next signal
    with a handler that thread takes (a SIGCHLD as a subprocess ends, once torch's DataLoader has
    set a handler) cannot be delivered, and the kernel kills the process with SIGSEGV.
    """
    global _libc
    if not sys.platform.startswith("linux"):
        yield
        return
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    libc = _libc
    saved = _SignalStack()
    if libc.sigaltstack(None, ctypes.byref(saved)) != 0:
        yield
        return
    try:
        yield
    finally:
        current = _SignalStack()
        if libc.sigaltstack(None, ctypes.byref(current)) == 0 and (
                current.ss_sp, current.ss_size, current.ss_flags) != (saved.ss_sp, saved.ss_size, saved.ss_flags):
            if saved.ss_flags & 2:  # SS_DISABLE: the thread had none
                saved.ss_sp, saved.ss_size = None, 0
            libc.sigaltstack(ctypes.byref(saved), None)
