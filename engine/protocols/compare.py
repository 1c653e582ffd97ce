"""Comparisons on arithmetic shares, built from ``boolean.msb_bool``.

All take and return [3, *shape] share arrays.  Values compared must differ by
less than 2^63 in ring units (any two encodings ``FixedPoint.encode`` accepts);
with ``width=32`` by less than 2^31 (|x| < 8192 at f = 18), for about half
the bytes and one round less.

``coarse(f, band_bits)`` gives the (width, shift) of a comparison that callers
use when a wrong answer within 2^-band_bits (real terms) above zero does no
harm (a clamp, a maximum that is only subtracted, a branch whose two sides
agree there): a 16-bit adder over the shares shifted right by f - band_bits
bits, for differences below 2^(15 - band_bits), about a quarter of the bytes
of the 64-bit comparison (see ``boolean.msb_bool``).
"""

from __future__ import annotations

import numpy as np

from .arith import mul_ss, share_public
from .boolean import bit_to_arith, msb_bool


COARSE_WIDTH = 16
COARSE_BAND_BITS = 2         # default band: 2^-2 in real terms


def coarse_limit(band_bits: int = COARSE_BAND_BITS) -> float:
    """|x| (real terms) below which a coarse comparison is exact outside its band."""
    return 2.0 ** (COARSE_WIDTH - 1 - band_bits)


def coarse(f: int, band_bits: int = COARSE_BAND_BITS) -> tuple:
    """(width, shift) of a coarse comparison at f fractional bits: exact outside
    [0, 2^-band_bits) (real terms) for |x| < coarse_limit(band_bits) - 2^-band_bits;
    either answer inside."""
    shift = f - band_bits
    if shift < 0 or shift + COARSE_WIDTH > 64:
        raise ValueError(f"coarse comparisons need {band_bits} <= f <= {48 + band_bits}, got f = {f}")
    return COARSE_WIDTH, shift


def msb(ctx, x: np.ndarray, tag: str = "msb", width: int = 64, shift: int = 0) -> np.ndarray:
    """Arithmetic shares of the sign bit (1 where x < 0). Cost: 7 rounds (width 32: 6; 16: 5)."""
    shape = x.shape[1:]
    flat = np.ascontiguousarray(x.reshape(3, -1))
    bits = msb_bool(ctx, flat, tag, width, shift)
    return bit_to_arith(ctx, bits, tag).reshape((3,) + shape)


def lt(ctx, x: np.ndarray, y: np.ndarray, tag: str = "lt", width: int = 64, shift: int = 0) -> np.ndarray:
    """[x < y] as arithmetic shares of 0/1 (y may be public shares)."""
    return msb(ctx, x - y, tag, width, shift)


def select(ctx, c: np.ndarray, a: np.ndarray, b: np.ndarray, tag: str = "select") -> np.ndarray:
    """c ? a : b for shared bits c (integer 0/1): b + c (a - b). Cost: 1 round."""
    return b + mul_ss(ctx, c, a - b, tag)


def relu(ctx, x: np.ndarray, tag: str = "relu", width: int = 64, shift: int = 0) -> np.ndarray:
    """max(x, 0) = x - x [x < 0]. Cost: 8 rounds (width 32: 7; 16: 6)."""
    s = msb(ctx, x, tag, width, shift)
    return x - mul_ss(ctx, s, x, tag)


def abs_(ctx, x: np.ndarray, tag: str = "abs") -> np.ndarray:
    """|x| = x (1 - 2 [x < 0]). Cost: 8 rounds."""
    s = msb(ctx, x, tag)
    one_minus_2s = share_public(np.ones(s.shape[1:], np.uint64)) - np.uint64(2) * s
    return mul_ss(ctx, one_minus_2s, x, tag)


def max_(ctx, x: np.ndarray, axis: int, tag: str = "max", width: int = 64, shift: int = 0) -> np.ndarray:
    """Maximum along ``axis`` (of the shared shape) by a pairwise tree.

    ceil(log2 n) levels, each max(a, b) = b + relu(a - b): one comparison and
    one product, 8 rounds a level (width 32: 7; 16: 6); the difference is
    formed once, contiguous, from the strided halves.  With a coarse
    comparison (``shift``) each level may keep b up to 2^shift ring units
    below a, so the result is within ceil(log2 n) 2^shift of the maximum
    (and is one of the inputs).
    """
    axis = axis % (x.ndim - 1)
    cur = np.moveaxis(x, axis + 1, -1)
    while cur.shape[-1] > 1:
        n = cur.shape[-1]
        half = n // 2
        a, b = cur[..., 0:2 * half:2], cur[..., 1:2 * half:2]
        m = b + relu(ctx, a - b, tag, width, shift)
        if n % 2:
            m = np.concatenate([m, cur[..., -1:]], axis=-1)
        cur = m
    return cur[..., 0]
