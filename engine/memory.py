"""Allocator tuning for the engine's access pattern.

The engine allocates and frees many multi-megabyte temporaries (limb matrices,
PRG output, shares).  With glibc's defaults each of them is a fresh mmap that
the kernel zero-fills page by page on first touch: measured here, splitting a
768 x 768 matrix into limbs took 6.4 ms with fresh pages and 0.37 ms with reused
ones.  ``tune_allocator`` raises glibc's mmap and trim thresholds so freed
blocks are reused from the heap.  The cost is that the process keeps up to
``trim_bytes`` of freed memory instead of returning it to the OS at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_done = False


def tune_allocator(mmap_bytes: int = 1 << 30, trim_bytes: int = 2 << 30) -> bool:
    """Apply the glibc thresholds once per process; False where glibc is absent."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mmap_bytes = min(mmap_bytes, 2**31 - 1)
    trim_bytes = min(trim_bytes, 2**31 - 1)
    ok = (
        mallopt(_M_MMAP_THRESHOLD, mmap_bytes) == 1
        and mallopt(_M_TRIM_THRESHOLD, trim_bytes) == 1
        and mallopt(_M_TOP_PAD, 64 << 20) == 1
    )
    _done = ok
    return ok
