"""Polynomials on fixed-point shares: batched powers and one-truncation combination.

Share-level helpers (arrays [3, ...] with a context); the functions in the
sibling modules build on them.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

from ..kernels import elementwise
from ..protocols.arith import _server_term, mul_ss
from ..protocols.trunc import _truncated_into, mul_trunc, mul_trunc_formed, mul_trunc_many, trunc
from ..ring import const


def mul_many(ctx, pairs, m: int | None, tag: str) -> list:
    """Products of several (a, b) share pairs in one batch: truncated by m bits
    (2 rounds in all; pairs of one shape are not concatenated in one process,
    ``trunc.mul_trunc_many``), or integer products for m = None (1 round)."""
    if len(pairs) == 1:           # nothing to batch: no concatenation copies
        (a, b), = pairs
        return [mul_ss(ctx, a, b, tag) if m is None else mul_trunc(ctx, a, b, m, tag)]
    shapes = [np.broadcast_shapes(a.shape, b.shape) for a, b in pairs]
    if m is not None and len(set(shapes)) == 1:
        return mul_trunc_many(ctx, pairs, m, tag)
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


@elementwise(0)
def _axpy(out, p, c, first):
    """out = c p (first) or out + c p, over [3, n] share arrays (p may have any row stride)."""
    for i in numba.prange(out.shape[1]):
        for j in range(3):
            v = p[j, i] * c
            out[j, i] = v if first else out[j, i] + v


def _linear(pw: dict, coeffs, scale: int) -> np.ndarray:
    """sum_{k>=1} round(coeffs[k] 2^scale) pw[k], local (the constant term is the caller's):
    one pass per power, no temporaries (``_axpy``)."""
    shape = pw[1].shape
    out = np.zeros((3, int(np.prod(shape[1:], dtype=np.int64))), np.uint64)
    first = True
    for k, c in enumerate(coeffs):
        if k and c != 0.0:
            _axpy(out, pw[k].reshape(3, -1), const(round(c * 2.0**scale)), first)
            first = False
    return out.reshape(shape)


def combine(ctx, pw: dict, coeffs, f: int, bound: float, tag: str, extra=None, out_bits: int = 0) -> np.ndarray:
    """Shares of sum_k coeffs[k] x^k, from powers, with one truncation.

    Each c_k (k >= 1) is encoded as the integer round(c_k 2^S) and multiplied
    into x^k locally; the sum carries S + f fractional bits and is truncated by
    S once.  ``bound`` bounds sum_k |c_k| |x|^k (and |extra|) so that the sum
    stays below 2^62; S is the largest scale that allows, capped at 44.
    ``extra``: optional shares (scale f) added with weight ``extra[1]``
    before the truncation, as (shares, weight, bound on |shares|).
    ``out_bits``: the result carries f + out_bits fractional bits (truncated by less).
    Cost: one truncation (2 rounds, 16 B per element per server).
    """
    S = min(44, 61 - f - max(0, math.ceil(math.log2(bound + 1.0))))
    if S < 8:
        raise ValueError(f"{tag}: bound {bound} leaves too little precision for the coefficients")
    acc = _linear(pw, coeffs, S)
    if extra is not None:
        shares, weight, _ = extra
        acc += shares * const(round(weight * 2.0**S))
    out = trunc(ctx, acc, S - out_bits, f"{tag}/combine")
    out[0] += const(round(coeffs[0] * 2.0 ** (f + out_bits)))
    return out


@numba.njit(inline="always")
def _split_at(p1, p2, p3, p4, pe, ch, cl, ce, f, j, i):
    """Component j of element i of H = ch[0] (component 0) + sum_k ch[k] p_k and of
    L = (sum_k cl[k] p_k) << f + ce pe, k = 1..4 (unused powers carry coefficient 0)."""
    a, b, c, d = p1[j, i], p2[j, i], p3[j, i], p4[j, i]
    h = ch[1] * a + ch[2] * b + ch[3] * c + ch[4] * d
    if j == 0:
        h += ch[0]
    return h, ((cl[1] * a + cl[2] * b + cl[3] * c + cl[4] * d) << np.uint64(f)) + ce * pe[j, i]


@elementwise(0)
def _split_terms(p1, p2, p3, p4, pe, ch, cl, ce, f, high, low):
    """H and L (``_split_at``) over [3, n] share arrays, in one pass."""
    for i in numba.prange(high.shape[1]):
        for j in range(3):
            high[j, i], low[j, i] = _split_at(p1, p2, p3, p4, pe, ch, cl, ce, f, j, i)


@elementwise(5)
def _split_product_all(cuts, p1, p2, p3, p4, y, pe, ch, cl, ce, f, cm, ra, rb, a0, b0, rho, sigma, m, out):
    """u^m H + L (+ ce pe) truncated by m, every server and role in one pass (the
    in-process simulation): H and L formed per element (``_split_at``), the three
    servers' product terms with y = u^m, the truncation (``trunc._truncated_into``),
    nothing written out but the result."""
    for e in numba.prange(y.shape[1]):
        k = 0 if e < cuts[1] else (1 if e < cuts[2] else 2)
        x0, l0 = _split_at(p1, p2, p3, p4, pe, ch, cl, ce, f, 0, e)
        x1, l1 = _split_at(p1, p2, p3, p4, pe, ch, cl, ce, f, 1, e)
        x2, l2 = _split_at(p1, p2, p3, p4, pe, ch, cl, ce, f, 2, e)
        y0, y1, y2 = y[0, e], y[1, e], y[2, e]
        _truncated_into(out, e, k, _server_term(0, x0, x1, x2, y0, y1, y2) + l0,
                        _server_term(1, x0, x1, x2, y0, y1, y2) + l1,
                        _server_term(2, x0, x1, x2, y0, y1, y2) + l2,
                        cm[e], ra[e], rb[e], a0[e], b0[e], rho[e], sigma[e], m)


def _split_inputs(pw: dict, a: list, m: int, S: int, r: int, f: int, extra) -> tuple:
    """The arguments of ``_split_at`` for m <= 4: the powers u^1..u^4 as [3, n] (those
    above m with weight 0), the addend pe, H's coefficients ch at scale S - r (its u^0
    term at S + f, on component 0), L - a_0's cl at scale S, and the addend's weight ce
    (extra = (shares at scale f, weight, bound), or none: weight 0)."""
    ch, cl = np.zeros(5, np.uint64), np.zeros(5, np.uint64)
    ch[0] = const(round(a[m] * 2.0 ** (S + f)))
    for k in range(1, len(a) - m):
        ch[k] = const(round(a[m + k] * 2.0 ** (S - r)))
    for k in range(1, m):
        cl[k] = const(round(a[k] * 2.0 ** S))
    flat = [pw[min(k, m)].reshape(3, -1) for k in range(1, 5)]          # views: batched powers are strided
    pe, ce = flat[0], np.uint64(0)
    if extra is not None:
        shares, weight, _ = extra
        pe, ce = shares.reshape(3, -1), const(round(weight * 2.0 ** (S + f + r)))
    return flat, pe, ch, cl, ce


def _split_parts(pw: dict, a: list, m: int, S: int, r: int, f: int, extra) -> tuple:
    """H = sum_{k <= d - m} a_{m+k} u^k at scale S + f (S - r for the coefficients,
    the u^0 term on component 0) and L - a_0 = sum_{0 < k < m} a_k u^k, plus
    ``extra``, at scale S + F + f (coefficients at S, shifted by f), local: one
    pass (``_split_terms``) for m <= 4 (degree 8 and below), else one per power
    (``_linear``)."""
    if m > 4:
        high = _linear(pw, a[m:], S - r)
        high[0] += const(round(a[m] * 2.0 ** (S + f)))
        low = _linear(pw, [0.0] + a[1:m], S) << np.uint64(f)
        if extra is not None:
            shares, weight, _ = extra
            low += shares * const(round(weight * 2.0 ** (S + f + r)))
        return high, low
    flat, pe, ch, cl, ce = _split_inputs(pw, a, m, S, r, f, extra)
    high, low = (np.empty((3, flat[0].shape[1]), np.uint64) for _ in range(2))
    _split_terms(*flat, pe, ch, cl, ce, f, high, low)
    return high.reshape(pw[1].shape), low.reshape(pw[1].shape)


def _split_product(ctx, pw: dict, a: list, m: int, S: int, r: int, f: int, extra, shift: int,
                   tag: str) -> np.ndarray:
    """(u^m H + L + extra) >> shift in one process, H and L formed inside the product
    kernel (``_split_product_all``; m <= 4) instead of written out by ``_split_parts``
    and read back by ``mul_trunc``: the same draws, messages and values."""
    flat, pe, ch, cl, ce = _split_inputs(pw, a, m, S, r, f, extra)

    def fill(cuts, mask, draws, out):
        _split_product_all(cuts, *flat, flat[m - 1], pe, ch, cl, ce, f, mask, *draws, shift, out)

    return mul_trunc_formed(ctx, flat[0].shape[1], shift, f"{tag}/poly", fill).reshape(pw[1].shape)


SPLIT_MIN_BITS = 16


@functools.lru_cache(maxsize=256)
def _split_bound(a: tuple, m: int, ulo: float, uhi: float) -> float:
    """max over u in [ulo, uhi] of |L(u) - a_0| + |u^m H(u)| on a dense grid, with a 25% margin
    (the polynomials are public; the margin covers the grid and the powers' rounding)."""
    u = np.linspace(ulo, uhi, 20001)
    low = np.polyval(list(a[1:m])[::-1] + [0.0], u)
    high = u**m * np.polyval(list(a[m:])[::-1], u)
    return 1.25 * float(np.max(np.abs(low) + np.abs(high)))


def evaluate(ctx, x: np.ndarray, coeffs, f: int, domain: tuple, tag: str, extra=None, out_bits: int = 0,
             r: int | None = None) -> np.ndarray:
    """Shares of p(x) = sum_k coeffs[k] x^k for x in domain = (lo, hi), with about half
    the products of ``powers`` + ``combine`` and one truncation at the end.

    The variable is u = x / 2^r, r = round(log2 max |x|) (so |u| <= sqrt 2; or the
    caller's r, where a wider u keeps the coefficients of H large enough):
    the shares of x at scale f are u at scale F = f + r, for free, and its
    powers (``powers`` at scale F) stay near 1.  With m = ceil(d / 2),
        p = L(u) + u^m H(u),   L = sum_{k<m} a_k u^k,   H = sum_{k<=d-m} a_{m+k} u^k,
    a_k = coeffs[k] 2^(r k): L (coefficients at scale S, so L is at scale
    S + F) and H (coefficients at scale S - r, so H is at scale S + f) are
    linear in the powers, with no truncation; u^m H + L 2^f (scale S + F + f)
    is truncated once, by S + F (``mul_trunc`` with an addend).  ``extra`` =
    (shares at scale f, weight, bound on |shares|) is added before that truncation.
    ``out_bits``: the result carries f + out_bits fractional bits (the last
    truncation is out_bits shorter), for callers that go on multiplying.
    Degree 7 or 8: u^2 | u^3 u^4 | u^4 H + L, four products and 6 rounds
    (``powers`` + ``combine`` for degree 7: six products, 8 rounds); degree
    5 or 6: u^2 | u^3 | u^3 H + L, three products.
    S is the largest scale that keeps (|L - a_0| + |u^m H| + |extra|)
    2^(S + F + f) below 2^61 over the domain (``_split_bound``), capped at 44.
    Degree <= 3, or wide domains and large polynomials that leave H's
    coefficients fewer than SPLIT_MIN_BITS bits: ``powers`` + ``combine``.
    """
    d = len(coeffs) - 1
    lo, hi = domain
    xmax = max(abs(lo), abs(hi))
    r = max(0, round(math.log2(xmax))) if r is None else r
    F = f + r
    a = [c * 2.0 ** (r * k) for k, c in enumerate(coeffs)]
    m = -(-d // 2)                                         # H may use u^m itself
    S = 0
    if d > 3:
        bound = _split_bound(tuple(a), m, lo / 2.0**r, hi / 2.0**r) + (abs(extra[1]) * extra[2] if extra else 0.0)
        S = min(44, 61 - F - f - max(0, math.ceil(math.log2(bound + 1.0))))
    if S - r < SPLIT_MIN_BITS:        # every power of u, one combination (a_k / 2^r u^k at scale F is p at scale f)
        umax = xmax / 2.0**r
        bound = sum(abs(ak) / 2.0**r * umax**k for k, ak in enumerate(a)) + (abs(extra[1]) * extra[2] if extra else 0.0)
        return combine(ctx, powers(ctx, x, max(d, 1), F, tag), [ak / 2.0**r for ak in a], F, bound, tag, extra,
                       out_bits)
    pw = powers(ctx, x, m, F, tag)                         # u^k at scale F

    if ctx.chan.simulated() and m <= 4:                    # H, L and extra formed in the product kernel
        out = _split_product(ctx, pw, a, m, S, r, f, extra, S + F - out_bits, tag)
    else:
        high, low = _split_parts(pw, a, m, S, r, f, extra)  # H at scale S + f, L - a_0 + extra at S + F + f
        out = mul_trunc(ctx, high, pw[m], S + F - out_bits, f"{tag}/poly", add=low)
    out[0] += const(round(coeffs[0] * 2.0 ** (f + out_bits)))
    return out
