"""Fits of every polynomial the approximations use: run this to reproduce ``coeffs.py``.

    python -m secptune.engine.approx.fit          # print the coefficients and errors
    python -m secptune.engine.approx.fit --write  # rewrite coeffs.py

Chebyshev least-squares fits on dense grids (numpy.polynomial; exp's reweighted
toward a weighted minimax), converted to monomial coefficients in the variable
the secure code evaluates.  The errors printed are those of the float64
polynomial alone; the secure functions add fixed-point error, and their bounds
(in the modules that use them) cover both.
"""

from __future__ import annotations

import argparse
from math import erf
from pathlib import Path

import numpy as np
from numpy.polynomial import chebyshev as C

_erf = np.vectorize(erf)


def _fit(f, lo, hi, deg, relative=False, n=40001, weight=None):
    """Monomial coefficients of the degree-``deg`` fit of f on [lo, hi] and its max error
    (relative if ``relative``); ``weight``: a function of x weighting the residuals."""
    x = np.linspace(lo, hi, n)
    y = f(x)
    w = 1.0 / np.abs(y) if relative else (weight(x) if weight is not None else None)
    mono = C.cheb2poly(C.chebfit(x, y, deg, w=w))
    err = np.abs(np.polyval(mono[::-1], x) - y)
    if relative:
        err = err / np.abs(y)
    return mono, float(err.max())


def _fit_lawson(f, lo, hi, deg, tol, n=20001, iters=300):
    """Monomial coefficients of the degree-``deg`` polynomial p that (nearly) minimises
    max |p - f| / tol on [lo, hi] (Lawson's iteratively reweighted least squares), and
    that maximum."""
    x = np.linspace(lo, hi, n)
    y, t = f(x), tol(x)
    w = np.ones_like(x)
    for _ in range(iters):
        c = C.chebfit(x, y, deg, w=np.sqrt(w) / t)
        r = np.abs(C.chebval(x, c) - y) / t
        w = w * r
        w /= w.sum()
    return C.cheb2poly(c), float(r.max())


# exp: e^x = p(x / 2^k)^(2^k) on [EXP_LO, EXP_HI], p fitted on z = x / 2^k to the errors
# the function promises, carried back through the k squarings (to first order: the
# error of p^K is K p^(K-1) dp): relative EXP_FIT_REL where x > 0, absolute EXP_FIT_ABS
# (or that relative error, if smaller) for x <= 0, where outputs are at most 1 and
# below 2^-6 only the absolute error is promised (``elementary.exp``).  The absolute
# error is systematic and a softmax row adds it up over its entries: degree 4 can
# keep it near 1e-5 only at 4.7e-4 relative (softmax of 128 entries: 3.6e-3 off at
# 3e-5), degree 5 keeps it below 1e-6
EXP_LO, EXP_HI, EXP_SQUARINGS, EXP_DEGREE = -16.0, 4.0, 3, 5
EXP_FIT_REL, EXP_FIT_ABS = 3e-4, 3e-6


def _exp_tolerance(z):
    K = 2**EXP_SQUARINGS
    x = K * z
    final = np.where(x > 0, EXP_FIT_REL * np.exp(x), np.minimum(EXP_FIT_REL * np.exp(x), EXP_FIT_ABS))
    final = np.where(x < np.log(2.0**-6), EXP_FIT_ABS, final)
    return final / (K * np.exp((K - 1) * z))


# GELU on [-R, R]: x/2 + g(t), g the even part (x/2) erf(x / sqrt 2) as a polynomial in
# t = 2 x^2 / R^2 - 1 (in [-1, 1] on [-R, R], where its monomial coefficients stay below 1.5),
# fitted on |x| <= R + GELU_BAND (a coarse comparison may take x a band above R as inside)
# with residuals weighted by 1 / (0.1 + |x|): small near 0, where pre-activations gather,
# so the bias that a layer's units add up stays small (mean error 1e-6 on N(0, 1) inputs,
# 5e-5 for an unweighted fit; max 2.0e-4 instead of 1.3e-4); beyond R, GELU is x or 0 to
# within R Phi(-R) = 1.3e-4
GELU_POLY_R, GELU_POLY_DEGREE, GELU_BAND_BITS = 4.0, 8, 4
GELU_BAND = 2.0**-GELU_BAND_BITS
GELU_POLY_T_HI = 2.0 * (1.0 + GELU_BAND / GELU_POLY_R) ** 2 - 1.0
# reciprocal on the normalised mantissa m in [0.5, 1), as a polynomial in t = 4 m - 3 in
# [-1, 1] (monomial coefficients below 1.4; in m they reach 128), relative error
MANTISSA_DEGREE = 6
# rsqrt on a mantissa normalised by an even power of two, m in [0.25, 1), as a polynomial in
# s = 8 m - 5 in [-3, 3] (fitted in s / 3, whose coefficients stay below 1.3), relative error
RSQRT_DEGREE = 8


def fit_all() -> dict:
    k = 2**EXP_SQUARINGS
    exp_p, _ = _fit_lawson(np.exp, EXP_LO / k, EXP_HI / k, EXP_DEGREE, _exp_tolerance)
    z = np.linspace(np.log(2.0**-6) / k, EXP_HI / k, 40001)        # the error printed: of p^K, relative,
    exp_err = float(np.max(np.abs(np.polyval(exp_p[::-1], z) ** k / np.exp(k * z) - 1.0)))  # outputs >= 2^-6

    def gelu_x(t):  # t = 2 x^2 / R^2 - 1
        return np.sqrt((t + 1.0) / 2.0) * GELU_POLY_R

    def even(t):
        x = gelu_x(t)
        return x / 2 * _erf(x / np.sqrt(2))

    gpoly_p, gpoly_err = _fit(even, -1.0, GELU_POLY_T_HI, GELU_POLY_DEGREE, weight=lambda t: 1.0 / (0.1 + gelu_x(t)))
    recip_p, recip_err = _fit(lambda t: 4.0 / (t + 3.0), -1.0, 1.0, MANTISSA_DEGREE, relative=True)
    rsqrt_t, rsqrt_err = _fit(lambda t: ((3.0 * t + 5.0) / 8.0) ** -0.5, -1.0, 1.0, RSQRT_DEGREE, relative=True)
    rsqrt_p = rsqrt_t / 3.0 ** np.arange(RSQRT_DEGREE + 1)        # in s = 3 t
    return {
        "EXP_POLY": (exp_p, exp_err),
        "GELU_EVEN_POLY": (gpoly_p, gpoly_err),
        "RECIPROCAL_POLY": (recip_p, recip_err),
        "RSQRT_POLY": (rsqrt_p, rsqrt_err),
    }


def render(fits: dict) -> str:
    lines = [
        '"""Polynomial coefficients (lowest degree first).  Generated by',
        "``python -m secptune.engine.approx.fit --write``; do not edit by hand.",
        '"""',
        "",
    ]
    for name, (coeffs, err) in fits.items():
        lines.append(f"# float64 fit error: {err:.3e}")
        lines.append(f"{name} = (")
        lines += [f"    {float(c)!r}," for c in coeffs]
        lines.append(")")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m secptune.engine.approx.fit")
    p.add_argument("--write", action="store_true", help="rewrite coeffs.py next to this file")
    args = p.parse_args(argv)
    text = render(fit_all())
    if args.write:
        Path(__file__).with_name("coeffs.py").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
