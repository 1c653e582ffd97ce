"""Polynomials on fixed-point shares: batched powers and one-truncation combination.

Share-level helpers (arrays [3, ...] with a context); the functions in the
sibling modules build on them.
"""

from __future__ import annotations

import math

import numpy as np

from ..protocols.arith import mul_ss
from ..protocols.trunc import mul_trunc, trunc
from ..ring import const


def mul_many(ctx, pairs, m: int | None, tag: str) -> list:
    """Products of several (a, b) share pairs in one batch: truncated by m bits
    (2 rounds in all), or integer products for m = None (1 round)."""
    shapes = [np.broadcast_shapes(a.shape, b.shape) for a, b in pairs]
    left = np.concatenate([np.broadcast_to(a, s).reshape(3, -1) for (a, _), s in zip(pairs, shapes)], axis=1)
    right = np.concatenate([np.broadcast_to(b, s).reshape(3, -1) for (_, b), s in zip(pairs, shapes)], axis=1)
    out = mul_ss(ctx, left, right, tag) if m is None else mul_trunc(ctx, left, right, m, tag)
    res, start = [], 0
    for s in shapes:
        size = int(np.prod(s[1:], dtype=np.int64))
        res.append(out[:, start:start + size].reshape(s))
        start += size
    return res


def powers(ctx, x: np.ndarray, degree: int, f: int, tag: str) -> dict:
    """{k: shares of x^k} for k = 1..degree, in ceil(log2 degree) batched layers.

    Layer L computes every power in (2^(L-1), 2^L] as x^(2^(L-1)) * x^(k - 2^(L-1)).
    Cost: 2 rounds a layer; degree - 1 multiplications in all.
    """
    pw = {1: x}
    top = 1
    while top < degree:
        ks = [k for k in range(top + 1, min(2 * top, degree) + 1)]
        prods = mul_many(ctx, [(pw[top], pw[k - top]) for k in ks], f, f"{tag}/pow{2 * top}")
        pw.update(zip(ks, prods))
        top *= 2
    return pw


def combine(ctx, pw: dict, coeffs, f: int, bound: float, tag: str, extra=None) -> np.ndarray:
    """Shares of sum_k coeffs[k] x^k, from powers, with one truncation.

    Each c_k (k >= 1) is encoded as the integer round(c_k 2^S) and multiplied
    into x^k locally; the sum carries S + f fractional bits and is truncated by
    S once.  ``bound`` bounds sum_k |c_k| |x|^k (and |extra|) so that the sum
    stays below 2^62; S is the largest scale that allows, capped at 44.
    ``extra``: optional shares (scale f) added with weight ``extra[1]``
    before the truncation, as (shares, weight).
    Cost: one truncation (2 rounds, 16 B per element per server).
    """
    S = min(44, 61 - f - max(0, math.ceil(math.log2(bound + 1.0))))
    if S < 8:
        raise ValueError(f"{tag}: bound {bound} leaves too little precision for the coefficients")
    shape = pw[1].shape
    acc = np.zeros(shape, np.uint64)
    for k, c in enumerate(coeffs):
        if k == 0 or c == 0.0:
            continue
        acc += pw[k] * const(round(c * 2.0**S))
    if extra is not None:
        shares, weight = extra
        acc += shares * const(round(weight * 2.0**S))
    out = trunc(ctx, acc, S, f"{tag}/combine")
    out[0] += const(round(coeffs[0] * 2.0**f))
    return out
