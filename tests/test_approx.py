"""Nonlinear functions against float64 over their whole domains, edges included."""

from math import erf

import numpy as np
import pytest

from secptune.engine import Context, EngineConfig, SharedTensor, approx
from secptune.engine.approx import coeffs, fit
from secptune.engine.costs import DECLARED, layernorm_cost, softmax_cost

CTX = Context(EngineConfig(seed=77))
FX = CTX.fixed
_erf = np.vectorize(erf)


def enc(v):
    return FX.decode(FX.encode(v))


def share(v):
    return SharedTensor.from_client(CTX, v)


def test_coefficients_are_reproduced_by_the_fitting_script():
    for name, (fitted, _) in fit.fit_all().items():
        np.testing.assert_allclose(getattr(coeffs, name), fitted, rtol=1e-9, atol=1e-12, err_msg=name)


def test_exp_over_its_domain_and_below():
    x = np.concatenate([np.linspace(-40, approx.EXP_HI, 6000), np.linspace(approx.EXP_MIN_INPUT, -40, 2000),
                        [approx.EXP_MIN_INPUT, -1e3, approx.EXP_LO, 0.0, approx.EXP_HI, -FX.ulp]])
    got = approx.exp(share(x)).reveal("t")
    want = np.exp(np.maximum(enc(x), approx.EXP_LO))
    big = want >= approx.EXP_REL_FLOOR
    assert (np.abs(got - want) / want)[big].max() <= approx.EXP_MAX_REL_ERR
    nonpos = enc(x) <= 0
    assert np.abs(got - want)[nonpos].max() <= approx.EXP_MAX_ABS_ERR
    # below EXP_LO the polynomial and squarings compute garbage (their products wrap far
    # below -40); the clamp's selection must make every such output exactly 0
    assert np.all(got[enc(x) < approx.EXP_LO] == 0.0)


def test_reciprocal_relative_error_over_1e_minus_3_to_1e4():
    x = np.concatenate([np.geomspace(1e-3, 1e4, 4000), [1e-3, 1.0, 0.5, 2.0, 1e4, 16383.0]])
    xe = enc(x)
    fine = approx.reciprocal(share(x), extra_bits=approx.RECIPROCAL_EXTRA_BITS)
    assert fine.fmt.frac_bits == FX.frac_bits + approx.RECIPROCAL_EXTRA_BITS
    assert (np.abs(fine.reveal("t") - 1 / xe) * xe).max() <= approx.RECIPROCAL_MAX_REL_ERR
    plain = approx.reciprocal(share(x)).reveal("t")
    assert np.all(np.abs(plain - 1 / xe) <= np.maximum(1e-3 / xe, 2 * FX.ulp))


def test_rsqrt_relative_error_over_1e_minus_3_to_1e4():
    x = np.concatenate([np.geomspace(1e-3, 1e4, 4000), [1e-3, 1.0, 2.0, 3.0, 1e4, 16383.0]])
    xe = enc(x)
    got = approx.rsqrt(share(x)).reveal("t")
    assert (np.abs(got - 1 / np.sqrt(xe)) * np.sqrt(xe)).max() <= approx.RSQRT_MAX_REL_ERR


@pytest.mark.parametrize("frac_bits", [14, 17, 20])
def test_rsqrt_at_other_formats_odd_ones_included(frac_bits):
    """Other fixed-point formats, where an odd f puts sqrt 2 into the polynomial: the error
    stays within the relative bound plus one ulp of the result, over [1e-3, 1e4] or as much
    of it as the format holds (inputs below 2^(32 - f))."""
    ctx = Context(EngineConfig(seed=5, frac_bits=frac_bits))
    hi = min(1e4, 2.0 ** (32 - frac_bits) * 0.999)
    x = np.concatenate([np.geomspace(1e-3, hi, 2000), [1.0, 2.0, 3.0, hi]])
    xe = ctx.fixed.decode(ctx.fixed.encode(x))
    got = approx.rsqrt(SharedTensor.from_client(ctx, x)).reveal("t")
    want = 1 / np.sqrt(xe)
    assert np.all(np.abs(got - want) <= approx.RSQRT_MAX_REL_ERR * want + ctx.fixed.ulp)


def gelu_ref(x):
    return x * 0.5 * (1 + _erf(x / np.sqrt(2)))


def test_gelu_on_the_whole_line_and_the_coarse_variant_on_its_domain():
    edges = [-4.0, 4.0, 0.0, 3.999, -4.001, 4.0624, -3.9376, 0.0624, FX.ulp, -FX.ulp]
    x = np.concatenate([np.linspace(-12, 12, 6000), edges, [-1e4, 1e4, -2.0**43, 2.0**43]])
    got = approx.gelu(share(x)).reveal("t")
    assert np.abs(got - gelu_ref(enc(x))).max() <= approx.GELU_MAX_ABS_ERR
    m = approx.GELU_MAX_INPUT_COARSE - FX.ulp
    # the coarse comparisons' bands (inputs near 0 and +-4) are where a wrong answer could show
    bands = np.concatenate([np.linspace(-0.1, 0.1, 4001), np.linspace(3.9, 4.1, 4001), np.linspace(-4.1, -3.9, 4001)])
    x = np.concatenate([np.linspace(-12, 12, 6000), np.linspace(-m, m, 101), bands, edges, [-m, m]])
    for seed in range(3):   # the carries (and so the answers in the bands) depend on the shares
        got = approx.gelu(SharedTensor.from_client(Context(EngineConfig(seed=seed)), x), coarse=True).reveal("t")
        assert np.abs(got - gelu_ref(enc(x))).max() <= approx.GELU_MAX_ABS_ERR


def test_comparison_free_gelu_on_its_interval():
    r = approx.GELU_POLY_RANGE
    x = np.concatenate([np.linspace(-r, r, 6000), [-r, r, 0.0]])
    got = approx.gelu_poly(share(x)).reveal("t")
    assert np.abs(got - gelu_ref(enc(x))).max() <= approx.GELU_POLY_MAX_ABS_ERR


def test_softmax_with_padding_mask(rng):
    s = rng.normal(size=(6, 32)) * 4
    s[0] = 0.0                      # all equal
    s[1, 3] = 40.0                  # one dominant entry, others far below EXP_LO after shifting
    mask = np.ones((6, 32))
    mask[2:, 20:] = 0
    got = approx.softmax(share(s), mask=mask).reveal("t")
    se = enc(s)
    ref = np.exp(se - np.where(mask > 0, se, -np.inf).max(-1, keepdims=True)) * mask
    ref /= ref.sum(-1, keepdims=True)
    assert np.abs(got - ref).max() <= approx.SOFTMAX_MAX_ABS_ERR
    assert np.all(got[mask == 0] == 0)


def test_softmax_of_long_rows_does_not_add_up_exp_errors(rng):
    """A row sums its exponentials, so a systematic error of exp on moderately negative
    inputs grows with the row: 512 entries spread like attention scores stay within
    the bound (an exp 3e-5 off there put 128-entry rows 3.6e-3 off)."""
    s = rng.normal(size=(16, 512)) * 3
    got = approx.softmax(share(s)).reveal("t")
    se = enc(s)
    ref = np.exp(se - se.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    assert np.abs(got - ref).max() <= approx.SOFTMAX_MAX_ABS_ERR / 4


def test_layernorm_error_over_the_variance_range(rng):
    for var in (approx.LAYERNORM_MIN_VAR, 1e-1, 10.0, 1e3, 1e4):
        h = rng.normal(size=(8, 384)) * np.sqrt(var)
        he = enc(h)
        ref = (he - he.mean(-1, keepdims=True)) / np.sqrt(he.var(-1, keepdims=True) + 1e-12)
        got = approx.layernorm(share(h)).reveal("t")
        assert (np.abs(got - ref).max(-1) / np.abs(ref).max(-1)).max() <= approx.LAYERNORM_MAX_REL_ERR, var


def test_layernorm_on_bert_like_activations(rng):
    h = rng.normal(size=(12, 384)) * rng.uniform(0.3, 3.0, size=(12, 1)) + rng.normal(size=(12, 1))
    h[:, 7] *= 25.0                 # an outlier dimension, as BERT has
    gamma = rng.normal(size=384) * 0.2 + 1
    beta = rng.normal(size=384) * 0.1
    he = enc(h)
    norm = (he - he.mean(-1, keepdims=True)) / np.sqrt(he.var(-1, keepdims=True) + 1e-12)
    got = approx.layernorm(share(h)).reveal("t")
    rel = np.abs(got - norm).max(-1) / np.abs(norm).max(-1)
    assert rel.max() <= approx.LAYERNORM_MAX_REL_ERR
    affine = approx.layernorm(share(h), gamma=gamma, beta=beta).reveal("t")
    ref = norm * enc(gamma) + enc(beta)
    assert (np.abs(affine - ref).max(-1) / np.abs(ref).max(-1)).max() <= 2 * approx.LAYERNORM_MAX_REL_ERR
    shared_gamma = approx.layernorm(share(h), gamma=share(gamma), beta=share(beta)).reveal("t")
    assert np.abs(shared_gamma - affine).max() <= 1e-3


def test_cos_and_sin_exact_to_a_few_ulp():
    u = np.concatenate([np.linspace(-5, 5, 6000), [0.0, 0.25, 0.5, 0.75, -0.25, 1e3 + 0.125, 2.0**20 + 0.5]])
    r = approx.cos_sin(share(u))
    ue = enc(u)
    bound = approx.COS_MAX_ABS_ERR_ULP * FX.ulp
    assert np.abs(r["cos"].reveal("c") - np.cos(2 * np.pi * ue)).max() <= bound
    assert np.abs(r["sin"].reveal("s") - np.sin(2 * np.pi * ue)).max() <= bound
    assert np.abs(approx.cos(share(u)).reveal("c") - np.cos(2 * np.pi * ue)).max() <= bound


@pytest.mark.parametrize("value", [0.0, 0.37, -123.456])
def test_masked_angle_is_uniform_whatever_the_input(value):
    """What servers learn in the masked cosine: delta = frac(u + t), uniform for any fixed u."""
    ctx = Context(EngineConfig(seed=5))
    n = 24 * 2000
    u = SharedTensor.from_client(ctx, np.full(n, value))
    seen = []
    for party in range(3):
        with ctx.chan.tap(party) as log:
            approx.cos(u)
        seen += [p for tag, _, p in log if tag.endswith("/mask") and p.dtype == np.uint32]
    vals = np.concatenate(seen)
    top = (vals >> np.uint32(FX.frac_bits - 6)).astype(np.int64)     # 64 buckets of [0, 1)
    counts = np.bincount(top, minlength=64)
    exp = vals.size / 64
    chi2 = float(((counts - exp) ** 2 / exp).sum())
    assert chi2 < 120.0   # 63 degrees of freedom: p ~ 3e-5 above this
    assert [o.masked for o in ctx.chan.openings if o.tag.endswith("masked-angle")] == [True] * 3


def _measure(fn, n):
    with CTX.chan.measure() as m:
        fn()
    return m.cost.rounds, m.cost.server_bytes_per_element(n)


@pytest.mark.parametrize("name,make", [
    ("exp", lambda x: approx.exp(x)),
    ("reciprocal", lambda x: approx.reciprocal(x + 2.0)),
    ("rsqrt", lambda x: approx.rsqrt(x + 2.0)),
    ("gelu", lambda x: approx.gelu(x)),
    ("gelu_coarse", lambda x: approx.gelu(x, coarse=True)),
    ("gelu_poly", lambda x: approx.gelu_poly(x)),
    ("cos", lambda x: approx.cos(x)),
    ("cos_sin", lambda x: approx.cos_sin(x)),
])
def test_declared_costs(name, make, rng):
    n = 24 * 20
    x = share(rng.uniform(-1, 1, size=n))
    rounds, per = _measure(lambda: make(x), n)
    assert rounds == DECLARED[name].rounds
    assert per == pytest.approx(DECLARED[name].server_bytes, abs=1e-9)


def test_every_approximation_cost_is_tested():
    tested = {"exp", "reciprocal", "rsqrt", "gelu", "gelu_coarse", "gelu_poly", "cos", "cos_sin"}
    assert {k for k, v in DECLARED.items() if v.where.startswith("approx.")} == tested


def test_softmax_and_layernorm_declared_costs(rng):
    x = share(rng.normal(size=(48, 8)))
    rounds, per = _measure(lambda: approx.softmax(x), x.size)
    assert rounds == softmax_cost(8).rounds
    assert per == pytest.approx(softmax_cost(8).server_bytes, abs=1e-9)
    h = share(rng.normal(size=(48, 16)))
    rounds, per = _measure(lambda: approx.layernorm(h, gamma=np.ones(16)), h.size)
    assert rounds == layernorm_cost(16, gamma=True).rounds
    assert per == pytest.approx(layernorm_cost(16, gamma=True).server_bytes, abs=1e-9)


def test_wrong_inputs_are_reported():
    xi = SharedTensor.from_client(CTX, np.ones(3, int), fmt=None)
    with pytest.raises(TypeError, match="exp: needs a fixed-point tensor"):
        approx.exp(xi)
    with pytest.raises(ValueError, match="extra_bits"):
        approx.reciprocal(share(np.ones(3)), extra_bits=20)
    with pytest.raises(ValueError):
        approx.softmax(share(np.ones((2, 3))), mask=np.ones((2, 4)))


@pytest.mark.parametrize("degree,domain", [(4, (-3.0, 3.0)), (5, (-16.0, 4.0)), (6, (0.0, 1.0)), (7, (-0.25, 4.25)), (8, (-0.0625, 4.0625)),
                                           (9, (-1.0, 1.0)), (10, (0.0, 2.0)),
                                           (7, (-100.0, 100.0))])
def test_split_polynomial_evaluation_against_float64(degree, domain, rng):
    """``poly.evaluate`` on random coefficients of size 1 / k!-like, over the whole domain and its
    ends: within 5e-5 relative to the sum of |terms| (fixed point at f = 18)."""
    from secptune.engine.approx.poly import evaluate
    lo, hi = domain
    scale = max(abs(lo), abs(hi))
    c = rng.normal(size=degree + 1) / np.array([scale**k for k in range(degree + 1)])
    x = np.concatenate([np.linspace(lo, hi, 3001), [lo, hi, 0.0] if lo <= 0 <= hi else [lo, hi]])
    s = share(x)
    got = s._new(evaluate(CTX, s.shares, list(c), FX.frac_bits, domain, "t")).reveal("t")
    e = enc(x)
    want = np.polyval(c[::-1], e)
    size = sum(abs(ck) * np.abs(e) ** k for k, ck in enumerate(c))
    assert np.max(np.abs(got - want) / np.maximum(size, 1.0)) <= 5e-5


def test_every_function_states_its_declared_bytes_per_element():
    """The issue asks each function's docstring for its cost in bytes per element per
    party: the number stated (one decimal) must be the declared table's."""
    from secptune.engine.approx import activations, elementary, trig

    stated = {"exp": elementary.exp, "reciprocal": elementary.reciprocal, "rsqrt": elementary.rsqrt,
              "gelu": activations.gelu, "gelu_coarse": activations.gelu, "gelu_poly": activations.gelu_poly,
              "cos": trig, "cos_sin": trig}
    for name, where in stated.items():
        assert f"{DECLARED[name].max_server_bytes:.1f} B" in where.__doc__ or \
            f"{DECLARED[name].max_server_bytes:.0f} B per server" in where.__doc__, name
    assert f"{softmax_cost(128).max_server_bytes:.1f} B" in activations.softmax.__doc__
    assert f"{layernorm_cost(768).max_server_bytes:.1f} B" in activations.layernorm.__doc__
