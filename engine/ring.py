"""The ring Z_2^64 on numpy uint64 arrays.

numpy's uint64 arithmetic wraps modulo 2^64 silently, which is exactly the
ring.  Ring matrix products, which numpy does without BLAS, are
``gemm.u64_matmul``.
"""

from __future__ import annotations

import numpy as np

RING_BITS = 64
_U = np.uint64


def as_ring(x) -> np.ndarray:
    """Integer data as a uint64 array (negative values wrap modulo 2^64)."""
    arr = np.asarray(x)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64).view(np.uint64) if arr.dtype.kind == "i" else arr.astype(np.uint64)
    if arr.dtype.kind == "O":
        flat = [int(v) % (1 << 64) for v in arr.ravel()]
        return np.array(flat, dtype=np.uint64).reshape(arr.shape)
    raise TypeError(f"ring values must be integers, got dtype {arr.dtype}")


def const(c: int) -> np.uint64:
    """A Python integer as a ring constant (reduced modulo 2^64)."""
    return _U(int(c) % (1 << 64))
