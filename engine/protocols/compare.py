"""Comparisons on arithmetic shares, built from ``boolean.msb_bool``.

All take and return [3, *shape] share arrays.  Values compared must differ by
less than 2^63 in ring units (any two encodings ``FixedPoint.encode`` accepts);
with ``width=32`` by less than 2^31 (|x| < 8192 at f = 18), for about half
the bytes and one round less.
"""

from __future__ import annotations

import numpy as np

from .arith import mul_ss, share_public
from .boolean import bit_to_arith, msb_bool


def msb(ctx, x: np.ndarray, tag: str = "msb", width: int = 64) -> np.ndarray:
    """Arithmetic shares of the sign bit (1 where x < 0). Cost: 7 rounds (width 32: 6)."""
    shape = x.shape[1:]
    flat = np.ascontiguousarray(x.reshape(3, -1))
    bits = msb_bool(ctx, flat, tag, width)
    return bit_to_arith(ctx, bits, tag).reshape((3,) + shape)


def lt(ctx, x: np.ndarray, y: np.ndarray, tag: str = "lt", width: int = 64) -> np.ndarray:
    """[x < y] as arithmetic shares of 0/1 (y may be public shares)."""
    return msb(ctx, x - y, tag, width)


def select(ctx, c: np.ndarray, a: np.ndarray, b: np.ndarray, tag: str = "select") -> np.ndarray:
    """c ? a : b for shared bits c (integer 0/1): b + c (a - b). Cost: 1 round."""
    return b + mul_ss(ctx, c, a - b, tag)


def relu(ctx, x: np.ndarray, tag: str = "relu", width: int = 64) -> np.ndarray:
    """max(x, 0) = x - x [x < 0]. Cost: 8 rounds (width 32: 7)."""
    s = msb(ctx, x, tag, width)
    return x - mul_ss(ctx, s, x, tag)


def abs_(ctx, x: np.ndarray, tag: str = "abs") -> np.ndarray:
    """|x| = x (1 - 2 [x < 0]). Cost: 8 rounds."""
    s = msb(ctx, x, tag)
    one_minus_2s = share_public(np.ones(s.shape[1:], np.uint64)) - np.uint64(2) * s
    return mul_ss(ctx, one_minus_2s, x, tag)


def max_(ctx, x: np.ndarray, axis: int, tag: str = "max", width: int = 64) -> np.ndarray:
    """Maximum along ``axis`` (of the shared shape) by a pairwise tree.

    ceil(log2 n) levels, each one comparison and one select: 8 rounds a level
    (width 32: 7).
    """
    axis = axis % (x.ndim - 1)
    cur = np.moveaxis(x, axis + 1, -1)
    while cur.shape[-1] > 1:
        n = cur.shape[-1]
        half = n // 2
        a, b = cur[..., 0:2 * half:2], cur[..., 1:2 * half:2]
        c = lt(ctx, b, a, tag, width)               # 1 where a > b
        m = select(ctx, c, a, b, tag)
        if n % 2:
            m = np.concatenate([m, cur[..., -1:]], axis=-1)
        cur = m
    return cur[..., 0]
