"""GELU, softmax and LayerNorm on fixed-point shares.

Share-level functions ([3, ...] arrays, f fractional bits); ``SharedTensor``
methods wrap them.  Bounds are named constants the tests import.
"""

from __future__ import annotations

import numpy as np

from ..protocols.arith import mul_local, mul_ss
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

GELU_MAX_ABS_ERR = 1e-3        # on the whole line (float fit 4.7e-4, tail 1.9e-4, f = 18)
# coarse=True: |x| below this (x and x -+ 4 are compared, with a band of 1/16)
GELU_MAX_INPUT_COARSE = coarse_limit(fit.GELU_BAND_BITS) - fit.GELU_T - fit.GELU_BAND
GELU_POLY_RANGE = fit.GELU_POLY_R
GELU_POLY_MAX_ABS_ERR = 4e-3   # on [-4, 4] (float fit 2.1e-3, f = 18); no guarantee outside


def gelu(ctx, x: np.ndarray, f: int, tag: str = "gelu", coarse: bool = False) -> np.ndarray:
    """GELU(x) = x Phi(x) on the whole real line (every value the ring encodes), max
    abs error GELU_MAX_ABS_ERR.

    GELU(x) = ReLU(x) - e(|x|) with e(t) = t Phi(-t), an even correction that
    is below 1.9e-4 for |x| >= 3.9375.  e is a degree-8 polynomial in t = |x|
    fitted on [-1/16, 4 + 1/16] (``fit.py``; ``poly.evaluate``: four products),
    used where -4 <= x < 4 and 0 elsewhere.  The three comparisons (x < 0,
    x < 4, x < -4) run as one batch; [-4 <= x < 4] is the XOR of the last two
    (x < -4 implies x < 4), so two bits are converted to arithmetic.

    ``coarse``: the comparisons are ``compare.coarse`` with a band of 1/16 (a
    16-bit adder, about a quarter of the bytes) for |x| <
    GELU_MAX_INPUT_COARSE (2043.9), which a transformer's pre-activations are
    by orders of magnitude (``nn.encoder.gelu_input_bound``).  Each may err
    within 1/16 above its threshold, which the fit interval absorbs: x in
    [0, 1/16) taken as negative gives t = -x and ReLU 0, and 0 - e(-x) =
    GELU(x); x in [4, 4.0625) taken as inside evaluates e at t < 4.0625; x in
    [-4, -3.9375) taken as outside drops e(t) < 1.9e-4.
    Cost: 6 (comparisons; coarse 4) + 1 (bits to arithmetic) + 1 (|x|, ReLU)
    + 6 (polynomial) + 1 (select) = 15 rounds (coarse 13).
    """
    shape = x.shape[1:]
    flat = x.reshape(3, -1)
    n = flat.shape[1]
    T = fit.GELU_T
    width, shift = coarse_cmp(f, fit.GELU_BAND_BITS) if coarse else (64, 0)
    offsets = [0, const(round(T * 2**f)), const(round(-T * 2**f))]      # x, x - T, x + T
    bits = msb_bool(ctx, flat, f"{tag}/cmp", width, shift, offsets)
    bits = bit_to_arith(ctx, np.concatenate([bits[:, :n], bits[:, n:2 * n] ^ bits[:, 2 * n:]], axis=1), f"{tag}/cmp")
    neg, inside = bits[:, :n], bits[:, n:]                    # [x < 0], [-4 <= x < 4]
    xs = mul_ss(ctx, neg, flat, f"{tag}/sign")                # x [x < 0]
    relu = flat - xs
    t = flat - const(2) * xs                                  # |x|
    tail = evaluate(ctx, t, coeffs.GELU_TAIL_POLY, f, (-fit.GELU_BAND, T + fit.GELU_BAND), tag)
    out = relu - mul_ss(ctx, inside, tail, f"{tag}/select")
    return out.reshape((3,) + shape)


def gelu_poly(ctx, x: np.ndarray, f: int, tag: str = "gelu-poly") -> np.ndarray:
    """Comparison-free GELU for inputs the caller keeps in [-4, 4].

    GELU(x) = x/2 + g(s), s = x^2/16, g the even part (x/2) erf(x/sqrt 2) as a
    degree-6 polynomial in s on [0, 1] (``poly.evaluate``: three products).
    Outside [-4, 4] the result is meaningless.  Cost: 2 (s) + 6 (polynomial) = 8 rounds.
    """
    R2 = fit.GELU_POLY_R**2
    if R2 != 2 ** int(np.log2(R2)):
        raise ValueError("gelu_poly: the range squared must be a power of two")
    s = mul_trunc(ctx, x, x, f + int(np.log2(R2)), f"{tag}/square")
    return evaluate(ctx, s, coeffs.GELU_EVEN_POLY, f, (0.0, 1.0), tag, extra=(x, 0.5))


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
    entry.  Cost: max (6 rounds per halving of the row: a coarse comparison
    and a select) + exp (20) + reciprocal of the row sums (27) + product (2).
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
    in [1e-3, 1e4] at f = 18).  Cost: 2 (mean) + 2 + 2 (variance) + 31 (rsqrt)
    + 2 (scale) + 2 (gamma) rounds.
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
