"""exp, reciprocal and inverse square root on fixed-point shares.

All take and return [3, ...] share arrays with the context's format (f
fractional bits); ``SharedTensor`` methods wrap them.  Error bounds are
named constants that the tests import; costs are in ``engine/costs.py``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..kernels import elementwise
from ..protocols.arith import _zero_shared_terms, mul_ss, reshare
from ..protocols.boolean import bit_to_arith, highest_bit_position, msb_bool
from ..protocols.compare import coarse
from ..protocols.trunc import mul_trunc
from ..ring import _U, const
from . import coeffs, fit
from .poly import evaluate

# ----------------------------------------------------------------------------
# exp

EXP_LO = fit.EXP_LO            # inputs below give 0 (e^-16 = 1.1e-7 < 1 ulp at f = 18)
EXP_HI = fit.EXP_HI            # domain upper end
EXP_REL_FLOOR = 2.0**-6        # below this output the fixed-point ulp dominates the relative error
EXP_MAX_REL_ERR = 5e-4         # relative error for outputs >= EXP_REL_FLOOR on [EXP_LO, EXP_HI] (f = 18; measured 2.4e-4)
EXP_MAX_ABS_ERR = 1e-4         # absolute error for every input in [EXP_MIN_INPUT, 0] (f = 18; measured 6e-6)
EXP_MIN_INPUT = -8000.0        # the clamp's coarse comparison: x - EXP_LO > -2^13 + 1/4
EXP_GUARD_BITS = 8             # extra fractional bits of p and the squarings (e^4 at 2 (f + 8) bits < 2^62)


def exp(ctx, x: np.ndarray, f: int, clamp: bool = True, tag: str = "exp") -> np.ndarray:
    """e^x for EXP_MIN_INPUT <= x <= EXP_HI (inputs below EXP_LO give 0).

    e^x = p(x / 8)^8: a degree-5 polynomial fitted on z = x / 8 in [-2, 0.5] to
    the errors promised here, carried back through the squarings (``fit.py``:
    the float64 p^8 is within 7e-5 relative where e^x >= 2^-6 and 7e-7
    absolute for x <= 0; ``poly.evaluate``: three products), then three
    squarings; p and the squarings carry EXP_GUARD_BITS more fractional bits,
    so that their rounding, which the squarings double, stays small.
    ``clamp`` multiplies the result by keep = [x >= EXP_LO], from a coarse
    comparison (``compare.coarse``: inputs within 1/4 above EXP_LO may give 0,
    below one ulp of the result either way), which sets EXP_MIN_INPUT.  Below
    EXP_LO the polynomial and the squarings run outside their range and
    compute garbage (their truncations may wrap), which the integer product
    by keep = 0 makes exactly 0; the comparison runs on x - EXP_LO without
    forming it (``msb_bool``'s offsets).  Callers that guarantee x >= EXP_LO
    may skip the clamp.
    Cost: comparison 5 rounds + polynomial 6 + squarings 6 + selection 1 =
    18 rounds (the comparison's rounds are independent of the polynomial's);
    151.7 B per element per server.
    """
    keep = None
    if clamp:
        flat = np.ascontiguousarray(x.reshape(3, -1))
        width, shift = coarse(f)
        below = msb_bool(ctx, flat, f"{tag}/clamp", width, shift, offsets=[const(round(EXP_LO * 2**f))])
        below[0] ^= np.uint8(1)                                       # keep = 1 ^ [x < EXP_LO], local
        keep = bit_to_arith(ctx, below, f"{tag}/clamp").reshape(x.shape)
    k = 2**fit.EXP_SQUARINGS
    c = [ck / k**j for j, ck in enumerate(coeffs.EXP_POLY)]
    g = EXP_GUARD_BITS
    # in u = x / 8 itself (r = 3, not 4): its coefficients are those of p, and H's keep 16 bits
    y = evaluate(ctx, x, c, f, (EXP_LO, EXP_HI), tag, out_bits=g, r=fit.EXP_SQUARINGS)
    for i in range(fit.EXP_SQUARINGS):
        last = i == fit.EXP_SQUARINGS - 1
        y = mul_trunc(ctx, y, y, f + g + (g if last else 0), f"{tag}/square{i}")
    return y if keep is None else mul_ss(ctx, keep, y, f"{tag}/clamp-select")


# ----------------------------------------------------------------------------
# normalisation by the highest set bit

NORM_BITS = 32                 # inputs below 2^32 in ring units: |x| < 2^(32 - f) real


@numba.njit(inline="always")
def _factor_at(pos, b, w, x, i):
    """The three components of element i of a factor of 2^K: 1 + K_b (w - 1) = w - pos_b (w - 1)
    (K_b = 1 - pos_b, arithmetic bit shares pos [nbits, 3, n]; the public w on component 0),
    or of x itself where b < 0."""
    if b < 0:
        return x[0, i], x[1, i], x[2, i]
    a = w - _U(1)
    return w - pos[b, 0, i] * a, _U(0) - pos[b, 1, i] * a, _U(0) - pos[b, 2, i] * a


@elementwise(1)
def _factor_operands(pos, x, lb, lw, rb, rw, left, right):
    """Operands [3, P n] of a batch of integer products, pair j at elements j n ..
    (j + 1) n: the factors (lb[j], lw[j]) on the left and (rb[j], rw[j]) on the right
    (``_factor_at``)."""
    n = x.shape[1]
    for j in range(lb.size):
        for i in numba.prange(n):
            e = j * n + i
            left[0, e], left[1, e], left[2, e] = _factor_at(pos, lb[j], lw[j], x, i)
            right[0, e], right[1, e], right[2, e] = _factor_at(pos, rb[j], rw[j], x, i)


@elementwise(1)
def _factor_products_all(pos, x, lb, lw, rb, rw, r, parts):
    """``_factor_operands`` and ``arith._mul_all_servers`` in one pass (the in-process
    simulation): the servers' additive shares of each product under the zero sharing
    r_s - r_{s+1}, the operands never written out."""
    n = x.shape[1]
    for j in range(lb.size):
        for i in numba.prange(n):
            e = j * n + i
            x0, x1, x2 = _factor_at(pos, lb[j], lw[j], x, i)
            y0, y1, y2 = _factor_at(pos, rb[j], rw[j], x, i)
            parts[0, e], parts[1, e], parts[2, e] = _zero_shared_terms(x0, x1, x2, y0, y1, y2,
                                                                       r[0, e], r[1, e], r[2, e])


def _factor_products(ctx, pos: np.ndarray, x: np.ndarray, pairs: list, tag: str) -> list:
    """Integer products in one round, each pair ((b, w) or None for x, (b, w)) of factors
    1 + K_b (w - 1) of 2^K (``_factor_at``; x any shares [3, n]).  In one process the
    factors are formed inside the product kernel; in party mode as operands of ``mul_ss``."""
    n = x.shape[1]
    lb = np.array([-1 if p is None else p[0] for p, _ in pairs], np.int64)
    lw = np.array([0 if p is None else p[1] for p, _ in pairs], np.uint64)
    rb = np.array([q[0] for _, q in pairs], np.int64)
    rw = np.array([q[1] for _, q in pairs], np.uint64)
    xc = np.ascontiguousarray(x)
    if ctx.chan.simulated():
        r = ctx.rand.components((len(pairs) * n,))          # the draws of ``mul_ss`` on the batch
        parts = np.empty((3, len(pairs) * n), np.uint64)
        _factor_products_all(pos, xc, lb, lw, rb, rw, r, parts)
        out = reshare(ctx, parts, tag)
    else:
        left, right = np.empty((3, len(pairs) * n), np.uint64), np.empty((3, len(pairs) * n), np.uint64)
        _factor_operands(pos, xc, lb, lw, rb, rw, left, right)
        out = mul_ss(ctx, left, right, tag)
    return [out[:, j * n:(j + 1) * n] for j in range(len(pairs))]


def _position_bits(ctx, x: np.ndarray, tag: str, bits=None) -> np.ndarray:
    """For x in [1, 2^32) ring units: arithmetic shares [len(bits), 3, n] of bits ``bits``
    (default all five) of the position J of x's highest set bit; K = 31 - J (bits
    K_b = 1 - J_b) makes x 2^K in [2^31, 2^32).
    Cost: 6 + 5 + 1 rounds (``highest_bit_position``)."""
    return highest_bit_position(ctx, x, NORM_BITS, f"{tag}/norm", bits)


def _mantissa(ctx, d: np.ndarray, c: np.ndarray, f: int, tag: str) -> np.ndarray:
    """t = 4 m - 3 in [-1, 1) at scale f, for the mantissa m = x 2^K / 2^32 in [0.5, 1),
    from d = x f4 and c = f0 f1 f2 f3 (so d c = x 2^K): one fused product and truncation."""
    t = mul_trunc(ctx, d, c, NORM_BITS - 2 - f, f"{tag}/mantissa")          # 4 m at scale f
    t[0] -= const(3 << f)
    return t


def reciprocal(ctx, x: np.ndarray, f: int, extra_bits: int = 0, tag: str = "reciprocal") -> np.ndarray:
    """1/x for x in [2^-f, 2^(32-f)) real (at f = 18: [3.8e-6, 16384)), positive inputs.

    The result carries f + ``extra_bits`` fractional bits (0 <= extra_bits <=
    14): at f = 18, 1/10^4 is only 26 ulp, so callers that need 1e-3 relative
    precision for large x ask for extra bits (a finer output format).

    Normalise: x = m 2^(J+1-f) with m in [0.5, 1), from the position J of
    x's highest set bit (``protocols.boolean.highest_bit_position``), K = 31 - J:
    2^K = f0 f1 f2 f3 f4 with f_b = 1 + K_b (2^(2^b) - 1), as f0 f1, f2 f3 and
    x f4 (one round of integer products), (f0 f1)(f2 f3) (one), 2^K (one), and
    t = 4 m - 3 from x f4 times f0 f1 f2 f3 in one fused product.  Then 1/m
    as a degree-6 polynomial in t (relative error 2.4e-5, ``fit.py``;
    ``poly.evaluate``: three products) and 1/x = (1/m) 2^K 2^(f-32).
    Cost: 12 (position) + 3 + 2 (mantissa) + 6 (polynomial) + 2 = 25 rounds;
    261.3 B per element per server.
    """
    if not 0 <= extra_bits <= NORM_BITS - f:
        raise ValueError(f"{tag}: extra_bits must be in 0..{NORM_BITS - f}, got {extra_bits}")
    shape = x.shape[1:]
    xs = x.reshape(3, -1)
    pos = _position_bits(ctx, xs, tag)
    w = [2**(2**b) for b in range(5)]
    a, b, d = _factor_products(ctx, pos, xs, [((0, w[0]), (1, w[1])), ((2, w[2]), (3, w[3])), (None, (4, w[4]))],
                               f"{tag}/scale1")
    c = mul_ss(ctx, a, b, f"{tag}/scale2")
    F, = _factor_products(ctx, pos, c, [(None, (4, w[4]))], f"{tag}/scale3")
    t = _mantissa(ctx, d, c, f, tag)
    y = evaluate(ctx, t, coeffs.RECIPROCAL_POLY, f, (-1.0, 1.0), tag)
    out = mul_trunc(ctx, y, F, NORM_BITS - f - extra_bits, f"{tag}/rescale")
    return out.reshape((3,) + shape)


# relative to 1/x of the encoded input on [1e-3, 1e4] with extra_bits = 12 (f = 18);
# without extra bits the error is below 1e-3 relative or 2 ulp absolute, whichever is larger
RECIPROCAL_MAX_REL_ERR = 1e-4
RECIPROCAL_EXTRA_BITS = 12


def rsqrt(ctx, x: np.ndarray, f: int, tag: str = "rsqrt") -> np.ndarray:
    """1/sqrt(x) for x in [2^-f, 2^(32-f)) real, positive inputs.

    Normalise by an even power of two: with K = 31 - J as in ``reciprocal``,
    G = 2^(K >> 1) = g1 g2 g3 g4, g_b = 1 + K_b (2^(2^(b-1)) - 1), from the
    position's bits 1-4 only (bit 0 is not converted), makes x G^2 =
    m 2^32 with m in [0.25, 1).  g1 g2 and g3 g4 (one round of integer
    products), G (one), x G (one), then s = 8 m - 5 in [-3, 3) from x G
    times G in one fused product and truncation.  m^-1/2 as a degree-8
    polynomial in s (relative error 6.6e-5, ``fit.py``; ``poly.evaluate``:
    four products), carrying 16 - f // 2 more fractional bits, and
    1/sqrt(x) = m^-1/2 G 2^(f/2 - 16) by one product (sqrt 2 in the
    polynomial's coefficients when f is odd).
    Cost: 12 (position) + 3 + 2 (mantissa) + 6 (polynomial) + 2 = 25 rounds;
    264.0 B per element per server.
    """
    shape = x.shape[1:]
    xs = x.reshape(3, -1)
    pos = _position_bits(ctx, xs, tag, bits=(1, 2, 3, 4))             # J_1 .. J_4
    v = [2**(2**(b - 1)) for b in range(1, 5)]
    g12, g34 = _factor_products(ctx, pos, xs, [((0, v[0]), (1, v[1])), ((2, v[2]), (3, v[3]))], f"{tag}/scale1")
    G = mul_ss(ctx, g12, g34, f"{tag}/scale2")
    d = mul_ss(ctx, xs, G, f"{tag}/scale3")
    s = mul_trunc(ctx, d, G, NORM_BITS - 3 - f, f"{tag}/mantissa")         # 8 m at scale f
    s[0] -= const(5 << f)
    root2 = math.sqrt(2.0) if f % 2 else 1.0
    g = 16 - f // 2
    r = evaluate(ctx, s, [c * root2 for c in coeffs.RSQRT_POLY], f, (-3.0, 3.0), tag, out_bits=g)
    out = mul_trunc(ctx, r, G, 2 * g, f"{tag}/rescale")
    return out.reshape((3,) + shape)


RSQRT_MAX_REL_ERR = 5e-4       # relative, on [1e-3, 1e4] (f = 18; measured 3.6e-4: 1 ulp of 1/sqrt(1e4))


__all__ = ["exp", "reciprocal", "rsqrt"]
