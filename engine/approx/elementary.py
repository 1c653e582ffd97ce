"""exp, reciprocal and inverse square root on fixed-point shares.

All take and return [3, ...] share arrays with the context's format (f
fractional bits); ``SharedTensor`` methods wrap them.  Error bounds are
named constants that the tests import; costs are in ``engine/costs.py``.
"""

from __future__ import annotations

import math

import numpy as np

from ..protocols.arith import share_public
from ..protocols.boolean import highest_bit_position
from ..protocols.compare import coarse, relu
from ..protocols.trunc import mul_trunc, trunc
from ..ring import const
from . import coeffs, fit
from .poly import combine, evaluate, mul_many, powers

# ----------------------------------------------------------------------------
# exp

EXP_LO = fit.EXP_LO            # inputs below are clamped here (e^-16 = 1.1e-7 < 1 ulp at f = 18)
EXP_HI = fit.EXP_HI            # domain upper end
EXP_REL_FLOOR = 2.0**-6        # below this output the fixed-point ulp dominates the relative error
EXP_MAX_REL_ERR = 5e-4         # relative error for outputs >= EXP_REL_FLOOR on [EXP_LO, EXP_HI] (f = 18; measured 2.7e-4)
EXP_MAX_ABS_ERR = 1e-4         # absolute error for every input in [EXP_MIN_INPUT, 0] (f = 18; measured 6.8e-5)
EXP_MIN_INPUT = -8000.0        # the clamp's coarse comparison: x - EXP_LO > -2^13 + 1/4


def exp(ctx, x: np.ndarray, f: int, clamp: bool = True, tag: str = "exp") -> np.ndarray:
    """e^x for EXP_MIN_INPUT <= x <= EXP_HI (inputs below EXP_LO give e^EXP_LO ~ 0).

    e^x = p(x / 16)^16: a degree-5 polynomial fitted to e^z on z in
    [-1, 0.25] (relative error 5.6e-6, ``fit.py``; ``poly.evaluate``, three
    products), then four squarings.  ``clamp`` computes max(x, EXP_LO) first
    by a ReLU on a coarse comparison (``compare.coarse``: inputs within 1/4
    above EXP_LO may become EXP_LO, below one ulp of the result either way),
    which sets EXP_MIN_INPUT; callers that guarantee x >= EXP_LO may skip it.
    Cost: clamp 6 rounds + polynomial 6 + squarings 8 = 20 rounds.
    """
    if clamp:
        lo = share_public(np.full(x.shape[1:], const(round(EXP_LO * 2**f)), np.uint64))
        width, shift = coarse(f)
        x = lo + relu(ctx, x - lo, f"{tag}/clamp", width, shift)
    k = 2**fit.EXP_SQUARINGS
    c = [ck / k**j for j, ck in enumerate(coeffs.EXP_POLY)]
    y = evaluate(ctx, x, c, f, (EXP_LO, EXP_HI), tag)
    for i in range(fit.EXP_SQUARINGS):
        y = mul_trunc(ctx, y, y, f, f"{tag}/square{i}")
    return y


# ----------------------------------------------------------------------------
# normalisation by the highest set bit

NORM_BITS = 32                 # inputs below 2^32 in ring units: |x| < 2^(32 - f) real


def _factor_shares(bits: list, weights: list) -> list:
    """Integer shares of 1 + b (w - 1) for arithmetic bit shares b and public w."""
    out = []
    for b, w in zip(bits, weights):
        f = b * const(w - 1)
        f[0] += np.uint64(1)                 # the public 1 on component 0
        out.append(f)
    return out


def _exponent_bits(ctx, x: np.ndarray, tag: str) -> list:
    """For x in [1, 2^32) ring units: arithmetic shares of the bits K_b (b = 0..4) of
    K = 31 - J, J the position of x's highest set bit, so that x 2^K is in
    [2^31, 2^32).  Cost: 6 + 5 + 1 rounds (``highest_bit_position``)."""
    pos = highest_bit_position(ctx, x, NORM_BITS, f"{tag}/norm")
    K = np.uint64(0) - pos                   # 1 - pos, the public 1 on component 0
    K[:, 0] += np.uint64(1)
    return list(K)


def reciprocal(ctx, x: np.ndarray, f: int, extra_bits: int = 0, tag: str = "reciprocal") -> np.ndarray:
    """1/x for x in [2^-f, 2^(32-f)) real (at f = 18: [3.8e-6, 16384)), positive inputs.

    The result carries f + ``extra_bits`` fractional bits (0 <= extra_bits <=
    14): at f = 18, 1/10^4 is only 26 ulp, so callers that need 1e-3 relative
    precision for large x ask for extra bits (a finer output format).

    Normalise: x = m 2^(J+1-f) with m in [0.5, 1), from the position J of
    x's highest set bit (``protocols.boolean.highest_bit_position``); seed
    1/m ~ 2.9142 - 2m (relative error <= 0.086), two Newton steps
    y <- y (2 - m y) (error 0.086^4 = 5.4e-5), and 1/x = y 2^(31-J) 2^(f-32).
    Cost: 27 rounds.
    """
    shape = x.shape[1:]
    xs = x.reshape(3, -1)
    K = _exponent_bits(ctx, xs, tag)
    f0, f1, f2, f3, f4 = _factor_shares(K, [2**(2**b) for b in range(5)])
    a, b, c = mul_many(ctx, [(xs, f0), (f1, f2), (f3, f4)], None, f"{tag}/scale1")
    d, e = mul_many(ctx, [(a, b), (b, c)], None, f"{tag}/scale2")
    xn, F = mul_many(ctx, [(d, c), (e, f0)], None, f"{tag}/scale3")
    m = trunc(ctx, xn, NORM_BITS - f, f"{tag}/mantissa")
    y = share_public(np.full(m.shape[1:], const(round(2.9142 * 2**f)), np.uint64)) - const(2) * m
    two = share_public(np.full(m.shape[1:], const(2 << f), np.uint64))
    for i in range(2):
        t = mul_trunc(ctx, m, y, f, f"{tag}/newton{i}a")
        y = mul_trunc(ctx, y, two - t, f, f"{tag}/newton{i}b")
    if not 0 <= extra_bits <= NORM_BITS - f:
        raise ValueError(f"{tag}: extra_bits must be in 0..{NORM_BITS - f}, got {extra_bits}")
    out = mul_trunc(ctx, y, F, NORM_BITS - f - extra_bits, f"{tag}/rescale")
    return out.reshape((3,) + shape)


# relative to 1/x of the encoded input on [1e-3, 1e4] with extra_bits = 12 (f = 18);
# without extra bits the error is below 1e-3 relative or 2 ulp absolute, whichever is larger
RECIPROCAL_MAX_REL_ERR = 1e-4
RECIPROCAL_EXTRA_BITS = 12


def rsqrt(ctx, x: np.ndarray, f: int, tag: str = "rsqrt") -> np.ndarray:
    """1/sqrt(x) for x in [2^-f, 2^(32-f)) real, positive inputs.

    Same normalisation as ``reciprocal``; seed: degree-2 polynomial fitted to
    m^-1/2 on [0.5, 1] (relative error 5.8e-3), one Newton step
    r <- r (3 - m r^2) / 2 (error ~5e-5); then
    1/sqrt(x) = r 2^(K >> 1) sqrt(2)^(K mod 2) 2^(f/2 - 16), K = 31 - J.
    Cost: 31 rounds.
    """
    shape = x.shape[1:]
    xs = x.reshape(3, -1)
    K = _exponent_bits(ctx, xs, tag)
    f0, f1, f2, f3, f4 = _factor_shares(K, [2**(2**b) for b in range(5)])
    g1, g2, g3, g4 = _factor_shares(K[1:], [2**(2**(b - 1)) for b in range(1, 5)])
    a, b, c, g12, g34 = mul_many(ctx, [(xs, f0), (f1, f2), (f3, f4), (g1, g2), (g3, g4)], None, f"{tag}/scale1")
    d, G = mul_many(ctx, [(a, b), (g12, g34)], None, f"{tag}/scale2")
    (xn,) = mul_many(ctx, [(d, c)], None, f"{tag}/scale3")
    m = trunc(ctx, xn, NORM_BITS - f, f"{tag}/mantissa")
    pw = powers(ctx, m, 2, f, f"{tag}/seed")
    r = combine(ctx, pw, coeffs.RSQRT_SEED_POLY, f, 4.0, f"{tag}/seed")
    t = mul_trunc(ctx, m, r, f, f"{tag}/newton-a")
    t = mul_trunc(ctx, t, r, f, f"{tag}/newton-b")
    three = share_public(np.full(m.shape[1:], const(3 << f), np.uint64))
    r = mul_trunc(ctx, r, three - t, f + 1, f"{tag}/newton-c")
    # sqrt(2)^(K mod 2), with sqrt(2) more when f is odd; then 2^(K >> 1) and 2^-shift
    root2 = math.sqrt(2.0)
    base, step = (1.0, root2 - 1.0) if f % 2 == 0 else (root2, 2.0 - root2)
    s2 = share_public(np.full(m.shape[1:], const(round(base * 2**f)), np.uint64)) + K[0] * const(round(step * 2**f))
    r = mul_trunc(ctx, r, s2, f, f"{tag}/parity")
    shift = 16 - f // 2
    out = mul_trunc(ctx, r, G, shift, f"{tag}/rescale")
    return out.reshape((3,) + shape)


RSQRT_MAX_REL_ERR = 5e-4       # relative, on [1e-3, 1e4] (f = 18; measured 3.6e-4: 1 ulp of 1/sqrt(1e4))


__all__ = ["exp", "reciprocal", "rsqrt"]
