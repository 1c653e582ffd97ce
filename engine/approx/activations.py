"""GELU, softmax and LayerNorm on fixed-point shares.

Share-level functions ([3, ...] arrays, f fractional bits); ``SharedTensor``
methods wrap them.  Bounds are named constants the tests import.
"""

from __future__ import annotations

import numpy as np

from ..protocols.arith import mul_local, mul_sum
from ..protocols.boolean import bit_to_arith, msb_bool
from ..protocols.compare import coarse_limit, max_
from ..protocols.compare import coarse as coarse_cmp
from ..protocols.trunc import mul_trunc, trunc, trunc_additive
from ..ring import const
from . import coeffs, fit
from .elementary import exp, reciprocal, rsqrt
from .poly import evaluate

# ----------------------------------------------------------------------------
# GELU

GELU_MAX_ABS_ERR = 3e-4        # on the whole line (float fit 2.0e-4 on [-4.0625, 4.0625], 1.3e-4 beyond; f = 18; measured 1.9e-4)
# coarse=True: |x| below this (x -+ 4 are compared, with a band of 1/16)
GELU_MAX_INPUT_COARSE = coarse_limit(fit.GELU_BAND_BITS) - fit.GELU_POLY_R - fit.GELU_BAND
GELU_POLY_RANGE = fit.GELU_POLY_R
GELU_POLY_MAX_ABS_ERR = 3e-4   # on [-4, 4] (float fit 2.0e-4, f = 18; measured 1.9e-4); no guarantee outside


def gelu(ctx, x: np.ndarray, f: int, tag: str = "gelu", coarse: bool = False) -> np.ndarray:
    """GELU(x) = x Phi(x) on the whole real line (every value the ring encodes), max
    abs error GELU_MAX_ABS_ERR.

    GELU(x) = x [x >= 4] + [-4 <= x < 4] P(x), P the comparison-free
    ``gelu_poly`` (fitted to |x| <= 4 + 1/16); GELU is within 4 Phi(-4) = 1.3e-4
    of x above 4 and of 0 below -4.  Two comparisons, c1 = [x < 4] and
    c2 = [x < -4], run as one batch; c2 implies c1, so [-4 <= x < 4] = c1 ^ c2
    and [x >= 4] = 1 ^ c1 are local on the bits, and both go to arithmetic in
    one conversion.  P does not depend on the comparisons.

    ``coarse``: the comparisons are ``compare.coarse`` with a band of 1/16 (a
    16-bit adder, about a quarter of the bytes) for |x| <
    GELU_MAX_INPUT_COARSE (2043.9), which a transformer's pre-activations are
    by orders of magnitude (``nn.encoder.gelu_input_bound``).  Each may say
    "below" within 1/16 above its threshold, which the fit interval absorbs:
    x in [4, 4.0625) taken as inside evaluates P there; x in [-4, -3.9375)
    taken as outside gives 0 instead of GELU(x) > -1.3e-4 (c2 still implies
    c1: c2 = 1 means x < -3.9375).
    Cost: comparisons 6 (coarse 4) + bits to arithmetic 1 + selection 1, and
    P 8 rounds = 16 rounds (coarse 14).  The two selections x [x >= 4] + [-4 <= x < 4] P
    are one sum of products (``arith.mul_sum``): one resharing, 8 B per element.
    In all 178.1 B per element per server (coarse 146.1 B).
    """
    shape = x.shape[1:]
    flat = x.reshape(3, -1)
    n = flat.shape[1]
    R = fit.GELU_POLY_R
    width, shift = coarse_cmp(f, fit.GELU_BAND_BITS) if coarse else (64, 0)
    offsets = [const(round(R * 2**f)), const(round(-R * 2**f))]             # x - R, x + R
    c = msb_bool(ctx, flat, f"{tag}/cmp", width, shift, offsets)              # [x < R], [x < -R]
    c[:, n:] ^= c[:, :n]                                                      # [-4 <= x < 4]: c1 ^ c2
    c[0, :n] ^= np.uint8(1)                                                   # [x >= R]: 1 ^ c1
    bits = bit_to_arith(ctx, c, f"{tag}/cmp")
    p = gelu_poly(ctx, flat, f, f"{tag}/poly")
    sel = mul_sum(ctx, [(bits[:, :n], flat), (bits[:, n:], p.reshape(3, -1))], f"{tag}/select")
    return sel.reshape((3,) + shape)


def gelu_poly(ctx, x: np.ndarray, f: int, tag: str = "gelu-poly") -> np.ndarray:
    """Comparison-free GELU for inputs the caller keeps in [-4, 4].

    GELU(x) = x/2 + g(t), t = x^2/8 - 1, g the even part (x/2) erf(x/sqrt 2) as
    a degree-8 polynomial in t fitted on |x| <= 4 + 1/16 (``fit.py``: in t
    its monomial coefficients stay below 1.5, so the fixed-point rounding of
    the powers is not amplified; ``poly.evaluate``: four products, on powers
    of t at f + 3 fractional bits).  Outside that interval the result is
    meaningless.
    Cost: 2 (t) + 6 (polynomial) = 8 rounds; 106.7 B per element per server.
    """
    R = fit.GELU_POLY_R
    k = int(np.log2(R**2 / 2))
    if 2**k != R**2 / 2:
        raise ValueError("gelu_poly: the range squared must be a power of two")
    # v = 2^k t = x^2 - 2^k: t at scale f + k, for 2^k times finer powers (g'(t) is about 3)
    v = mul_trunc(ctx, x, x, f, f"{tag}/square")
    v[0] -= const(1 << (f + k))
    c = [ck / 2.0 ** (k * j) for j, ck in enumerate(coeffs.GELU_EVEN_POLY)]
    extra = (x, 0.5, R + fit.GELU_BAND)
    return evaluate(ctx, v, c, f, (-2.0**k, 2.0**k * fit.GELU_POLY_T_HI), tag, extra=extra)


# ----------------------------------------------------------------------------
# softmax

SOFTMAX_MAX_ABS_ERR = 2e-3     # per probability (f = 18)


def softmax(ctx, x: np.ndarray, f: int, mask: np.ndarray | None = None, tag: str = "softmax") -> np.ndarray:
    """Softmax along the last axis: max subtraction, exp, one reciprocal per row.

    Inputs within 4096 of each other: the maximum's comparisons and the exp
    clamp are coarse (``compare.coarse``): the maximum found may be up to
    log2(n) / 4 below the true one, which the shift-invariance of softmax
    absorbs (the exponent stays below EXP_HI = 4 for n up to 2^16).
    ``mask``: public 0/1 array broadcastable to x; masked entries get
    probability 0 (their exponentials are multiplied by 0, so no large
    negative constant enters the arithmetic).  Every row needs one unmasked
    entry.  Cost: max (6 rounds per halving of the row: a coarse ReLU of the
    difference) + exp (18) + reciprocal of the row sums (25) + product (2);
    bytes per element per server in ``costs.softmax_cost`` (198.6 B for rows
    of 128).
    """
    width, shift = coarse_cmp(f)
    m = max_(ctx, x, axis=-1, tag=f"{tag}/max", width=width, shift=shift)
    d = x - m[..., None]
    e = exp(ctx, d, f, clamp=True, tag=f"{tag}/exp")
    if mask is not None:
        e = e * np.asarray(mask).astype(np.uint64)
    s = e.sum(axis=-1, dtype=np.uint64)
    r = reciprocal(ctx, s, f, tag=f"{tag}/recip")
    return mul_trunc(ctx, e, np.broadcast_to(r[..., None], e.shape), f, f"{tag}/normalise")


# ----------------------------------------------------------------------------
# LayerNorm

LAYERNORM_MAX_REL_ERR = 1e-3   # of the normalised output, before the affine map, for rows with
                               # variance in [5e-3, 1e4] (f = 18).  Below, one ulp of the variance
                               # dominates: measured 1.6e-3 at variance 3e-3, 3.8e-3 at 1e-3.
LAYERNORM_MIN_VAR = 5e-3


def layernorm(ctx, x: np.ndarray, f: int, gamma=None, beta=None, eps: float = 1e-12,
              tag: str = "layernorm") -> np.ndarray:
    """LayerNorm over the last axis, then x * gamma + beta (public float arrays or shares).

    mean by a public multiplication; the variance as one dot product per row
    (products summed before a single truncation, so only one value per row
    crosses the channel), times 1/d; 1/sqrt(var + eps) by ``rsqrt`` (variance
    in [1e-3, 1e4] at f = 18).  Cost: 2 (mean) + 2 + 2 (variance) + 25 (rsqrt)
    + 2 (scale) + 2 (gamma) rounds; bytes per element per server in
    ``costs.layernorm_cost`` (21.7 B for rows of 768).
    """
    d = x.shape[-1]
    inv_d = 1.0 / d
    mean = trunc(ctx, x.sum(axis=-1, dtype=np.uint64) * const(round(inv_d * 2**f)), f, f"{tag}/mean")
    c = x - mean[..., None]
    z = mul_local(c, c).sum(axis=-1, dtype=np.uint64)
    ss = trunc_additive(ctx, z, f, f"{tag}/sumsq")
    var = trunc(ctx, ss * const(round(inv_d * 2**f)), f, f"{tag}/var")
    if eps:
        var = var.copy()
        var[0] += const(max(1, round(eps * 2**f)))
    inv = rsqrt(ctx, var, f, f"{tag}/rsqrt")
    y = mul_trunc(ctx, c, np.broadcast_to(inv[..., None], c.shape), f, f"{tag}/scale")
    def lift(shares):   # [3, *s] -> [3, 1, ..., *s], to broadcast against y
        return shares.reshape((3,) + (1,) * (y.ndim - shares.ndim) + shares.shape[1:])

    if gamma is not None:
        if isinstance(gamma, np.ndarray) and gamma.dtype == np.uint64 and gamma.shape[:1] == (3,):
            y = mul_trunc(ctx, y, np.broadcast_to(lift(gamma), y.shape), f, f"{tag}/gamma")
        else:
            g = np.rint(np.asarray(gamma, np.float64) * 2**f).astype(np.int64).view(np.uint64)
            y = trunc(ctx, y * g, f, f"{tag}/gamma")
    if beta is not None:
        if isinstance(beta, np.ndarray) and beta.dtype == np.uint64 and beta.shape[:1] == (3,):
            y = y + lift(beta)
        else:
            y = y.copy()
            y[0] += np.rint(np.asarray(beta, np.float64) * 2**f).astype(np.int64).view(np.uint64)
    return y
