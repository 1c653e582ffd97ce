"""Allocator tuning for the engine's access pattern.

The engine allocates and frees many multi-megabyte temporaries (limb matrices,
PRG output, shares).  With glibc's defaults the heap is trimmed whenever a
freed block at its top exceeds a (dynamic) threshold, and the next allocation
of that size grows it again: the kernel zero-fills every page on first touch.
Whether a process falls into that cycle depends on its allocation history.
Measured (MiniLM, 32 x 64 tokens, public weights, one secure forward, commit
a40968e): 17-18 s in processes that reuse the heap (about 30 page faults per
forward), 31-34 s in those that trim and regrow it (about 93,000 faults, the
heap moved by 2.2 GB 45 times), and the same command fell either way.

``tune_allocator`` therefore serves every block from the heap (``M_MMAP_MAX``
= 0: blocks above glibc's largest mmap threshold, 32 MiB, such as a share
array of 32 x 64 x 1536 words, would otherwise be mapped and zero-filled
afresh on every allocation) and disables trimming (``M_TRIM_THRESHOLD`` = -1,
as mallopt(3) documents).  Measured after the change: 17.3-18.0 s and 35
page faults per forward in four processes out of four; peak resident size
unchanged (3.6 GB).  The cost: freed memory stays in the process for reuse
instead of going back to the OS.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4

TOP_PAD = 64 << 20

_applied: dict[str, bool] | None = None


def tune_allocator() -> dict[str, bool]:
    """Apply the glibc settings once per process and return which took effect (all
    False where glibc's mallopt is absent, e.g. macOS)."""
    global _applied
    if _applied is not None:
        return _applied
    settings = {"mmap_max": (_M_MMAP_MAX, 0),
                "trim_threshold": (_M_TRIM_THRESHOLD, -1),
                "top_pad": (_M_TOP_PAD, TOP_PAD)}
    mallopt = _mallopt()
    _applied = {k: mallopt is not None and mallopt(p, v) == 1 for k, (p, v) in settings.items()}
    return _applied


def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn
