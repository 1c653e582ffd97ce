"""Micro-benchmark of the engine's operations, all three servers in one process.

    python -m bench.ops [--quick] [--out FILE] [--stress N]

One JSON object per case: op, shape, median_s (and min/max over repeats after
a warm-up), ref_median_s (float64 numpy doing the same computation in the
same run), ratio, for the nonlinear functions x_2relu (their time over twice
ReLU's, the two timed in alternation), rounds, bytes_per_elem_party (max
over servers; per server in bytes_per_elem_servers), declared cost and
measured/declared, and
max_abs_err against float64 on the encoded inputs.  A stress case runs
truncations at values near the documented bound and counts failures.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from math import erf

from secptune.engine import Context, EngineConfig, SharedTensor, approx
from secptune.engine.costs import DECLARED, layernorm_cost, softmax_cost
from secptune.engine.protocols.boolean import bit_to_arith, highest_bit_position, msb_bool
from secptune.engine.protocols.compare import coarse, relu
from secptune.engine.protocols.trunc import TRUNC_INPUT_BITS, trunc

from .common import git_commit, machine, table, timed, write_jsonl


def _case(ctx, op, shape, fn, ref_fn, want, n_out, repeats, decl=None, rel=False):
    med, lo, hi = timed(fn, repeats)
    ref_med, _, _ = timed(ref_fn, max(repeats, 5))
    with ctx.chan.measure() as m:
        out = fn()
    got = out.reveal(f"bench/{op}") if isinstance(out, SharedTensor) else out
    err = float(np.max(np.abs(np.asarray(got, np.float64) - want))) if want is not None else None
    rel_err = float(np.max(np.abs(np.asarray(got, np.float64) - want) / np.abs(want))) if rel else None
    per = m.cost.server_bytes_per_element(n_out)
    row = {
        "op": op,
        "shape": shape,
        "median_s": med,
        "min_s": lo,
        "max_s": hi,
        "ref_median_s": ref_med,
        "ratio": med / ref_med,
        "rounds": m.cost.rounds,
        "bytes_per_elem_party": max(per),
        "bytes_per_elem_servers": list(per),
        "max_abs_err": err,
        "max_rel_err": rel_err,
        "frac_bits": ctx.fixed.frac_bits,
    }
    if decl is not None:
        d = DECLARED[decl] if isinstance(decl, str) else decl
        row["declared_rounds"] = d.rounds
        row["declared_bytes_per_elem_party"] = d.max_server_bytes
        row["measured_over_declared_bytes"] = max(per) / d.max_server_bytes if d.max_server_bytes else None
    return row


def run_ops(quick: bool, repeats: int) -> list:
    ctx = Context(EngineConfig(seed=2026))
    fx = ctx.fixed
    rng = np.random.default_rng(0)
    enc = lambda v: fx.decode(fx.encode(v))  # noqa: E731
    n = 10**5 if quick else 10**6
    M, K, N = (32, 256, 256) if quick else (128, 768, 768)
    rows = []

    a = rng.normal(size=(M, K))
    w = rng.normal(size=(K, N)) * 0.05
    xa = SharedTensor.from_client(ctx, a)
    xw = SharedTensor.from_client(ctx, w)
    want = enc(a) @ enc(w)
    rows.append(_case(ctx, "matmul_ss", [M, K, N], lambda: xa @ xw, lambda: a @ w, want, M * N, repeats, "matmul_ss"))
    rows.append(_case(ctx, "matmul_sp", [M, K, N], lambda: xa @ w, lambda: a @ w, want, M * N, repeats, "matmul_sp"))

    u = rng.normal(size=n) * 10
    v = rng.normal(size=n) * 10
    xu, xv = SharedTensor.from_client(ctx, u), SharedTensor.from_client(ctx, v)
    eu, ev = enc(u), enc(v)
    rows.append(_case(ctx, "mul", [n], lambda: xu * xv, lambda: u * v, eu * ev, n, repeats, "mul"))
    # x * 2^f (free) carries 2f fractional bits; truncating it gives x back
    xs = SharedTensor(xu.shares * np.uint64(fx.scale), ctx, fx)
    rows.append(_case(ctx, "trunc", [n], lambda: xs.truncate(), lambda: u * (1.0 / fx.scale), eu, n, repeats, "trunc"))
    rows.append(_case(ctx, "lt", [n], lambda: xu.lt(xv), lambda: u < v, (eu < ev), n, repeats, "lt"))
    rows.append(_case(ctx, "relu", [n], lambda: xu.relu(), lambda: np.maximum(u, 0), np.maximum(eu, 0), n, repeats, "relu"))
    rows += run_components(ctx, xu, eu, n, repeats)

    R = 32 if quick else 128
    mtx = rng.normal(size=(R, R)) * 10
    xm = SharedTensor.from_client(ctx, mtx)
    rows.append(_case(ctx, "max", [R, R], lambda: xm.max(axis=-1), lambda: mtx.max(axis=-1), enc(mtx).max(axis=-1), R, repeats))
    rows += run_functions(ctx, n, repeats)
    return rows


def run_components(ctx, xu: SharedTensor, eu: np.ndarray, n: int, repeats: int) -> list:
    """The pieces the nonlinear functions are made of, on n elements, so that the README's
    account of their cost is reproducible: the coarse 16-bit ReLU (exp's clamp, the
    maximum's levels; either answer within 2^-2 above zero, so its error is up to 1/4
    there), bit-to-arithmetic conversion, and the position of the highest set bit with
    its five bits converted (reciprocal's and rsqrt's normalisation)."""
    fx = ctx.fixed
    f = fx.frac_bits
    width, shift = coarse(f)
    rows = [_case(ctx, "relu_coarse", [n],
                  lambda: SharedTensor(relu(ctx, xu.shares, "bench/relu_coarse", width, shift), ctx, fx),
                  lambda: np.maximum(eu, 0), np.maximum(eu, 0), n, repeats, "relu_coarse")]
    bits = msb_bool(ctx, xu.shares, "bench/bits")                          # boolean shares of [u < 0]
    rows.append(_case(ctx, "b2a", [n], lambda: SharedTensor(bit_to_arith(ctx, bits, "bench/b2a"), ctx, None),
                      lambda: eu < 0, (eu < 0).astype(np.float64), n, repeats, "b2a"))
    v = np.exp(np.random.default_rng(3).uniform(np.log(1e-3), np.log(1e4), size=n))
    sv = SharedTensor.from_client(ctx, v)
    ring = sv.shares.sum(axis=0)                                          # the ring values, to check against

    def position():
        pos = highest_bit_position(ctx, sv.shares, 32, "bench/hbit")        # [5, 3, n] arithmetic bits
        return SharedTensor(sum(pos[b] << np.uint64(b) for b in range(5)), ctx, None)

    rows.append(_case(ctx, "hbit", [n], position, lambda: np.floor(np.log2(v)),
                      np.floor(np.log2(ring.astype(np.float64))), n, repeats, "hbit"))
    return rows


def _against_relu(row: dict, fn, relu, repeats: int) -> dict:
    """The nonlinear-functions issue's yardstick measured next to the function: ``fn`` and
    the engine's ReLU on as many elements timed in alternation (a slower spell of the
    machine slows both), ``x_2relu`` = median(fn) / (2 median(ReLU)); the target is at
    most 1."""
    import time

    fn(), relu()
    ts, rs = [], []
    for _ in range(repeats):
        for f, acc in ((fn, ts), (relu, rs)):
            t0 = time.perf_counter()
            f()
            acc.append(time.perf_counter() - t0)
    row["alternating_median_s"] = float(np.median(ts))
    row["relu_alternating_median_s"] = float(np.median(rs))
    row["x_2relu"] = row["alternating_median_s"] / (2 * row["relu_alternating_median_s"])
    return row


def run_functions(ctx, n: int, repeats: int) -> list:
    """The nonlinear functions on n elements each, inputs spread over their domains; each
    also timed in alternation with ReLU on n elements (``_against_relu``)."""
    fx = ctx.fixed
    rng = np.random.default_rng(1)
    enc = lambda v: fx.decode(fx.encode(v))  # noqa: E731
    erf_v = np.vectorize(erf)
    rows = []
    xr = SharedTensor.from_client(ctx, np.random.default_rng(2).normal(size=n))      # ReLU's input

    def timed_case(op, shape, fn, ref_fn, want, n_out, decl, rel=False):
        row = _case(ctx, op, shape, fn, ref_fn, want, n_out, repeats, decl, rel=rel)
        return _against_relu(row, fn, xr.relu, repeats)

    x = rng.uniform(approx.EXP_LO, 0.0, size=n)
    sx, ex = SharedTensor.from_client(ctx, x), enc(x)
    rows.append(timed_case("exp", [n], lambda: approx.exp(sx), lambda: np.exp(x), np.exp(ex), n, "exp"))

    x = np.exp(rng.uniform(np.log(1e-3), np.log(1e4), size=n))
    sx, ex = SharedTensor.from_client(ctx, x), enc(x)
    rows.append(timed_case("reciprocal", [n], lambda: approx.reciprocal(sx, extra_bits=approx.RECIPROCAL_EXTRA_BITS),
                           lambda: 1.0 / x, 1.0 / ex, n, "reciprocal", rel=True))
    rows.append(timed_case("rsqrt", [n], lambda: approx.rsqrt(sx), lambda: 1.0 / np.sqrt(x), 1.0 / np.sqrt(ex),
                           n, "rsqrt", rel=True))

    x = rng.normal(size=n) * 3
    sx, ex = SharedTensor.from_client(ctx, x), enc(x)
    gelu = lambda v: v * 0.5 * (1 + erf_v(v / np.sqrt(2)))  # noqa: E731
    rows.append(timed_case("gelu", [n], lambda: approx.gelu(sx), lambda: x * 0.5 * (1 + np.tanh(x)),
                           gelu(ex), n, "gelu"))
    rows.append(timed_case("gelu_coarse", [n], lambda: approx.gelu(sx, coarse=True),
                           lambda: x * 0.5 * (1 + np.tanh(x)), gelu(ex), n, "gelu_coarse"))
    xp = np.clip(x, -approx.GELU_POLY_RANGE, approx.GELU_POLY_RANGE)
    sp, ep = SharedTensor.from_client(ctx, xp), enc(xp)
    rows.append(timed_case("gelu_poly", [n], lambda: approx.gelu_poly(sp), lambda: xp * 0.5 * (1 + np.tanh(xp)),
                           gelu(ep), n, "gelu_poly"))

    u = rng.uniform(-4, 4, size=n)
    su, eu = SharedTensor.from_client(ctx, u), enc(u)
    rows.append(timed_case("cos", [n], lambda: approx.cos(su), lambda: np.cos(2 * np.pi * u),
                           np.cos(2 * np.pi * eu), n, "cos"))

    d = 768
    h = rng.normal(size=(n // d, d)) * 2 + rng.normal(size=(n // d, 1))
    sh, eh = SharedTensor.from_client(ctx, h), enc(h)

    def ln_ref(v):
        return (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-12)

    rows.append(timed_case("layernorm", [n // d, d], lambda: approx.layernorm(sh), lambda: ln_ref(h),
                           ln_ref(eh), h.size, layernorm_cost(d)))

    L = 128
    s = rng.normal(size=(n // L, L)) * 3
    ss_, es = SharedTensor.from_client(ctx, s), enc(s)

    def sm_ref(v):
        e = np.exp(v - v.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    rows.append(timed_case("softmax", [n // L, L], lambda: approx.softmax(ss_), lambda: sm_ref(s),
                           sm_ref(es), s.size, softmax_cost(L)))
    return rows


def run_trunc_stress(total: int, chunk: int = 2_000_000) -> dict:
    """Truncate ``total`` values within 2^-4 of the bound |x| < 2^62; count failures.

    A failure is any result other than floor(x / 2^f) or floor(x / 2^f) + 1.
    Also reports the mean rounding error in ulp (0 for unbiased rounding) and
    the time.
    """
    ctx = Context(EngineConfig(seed=7))
    fx = ctx.fixed
    f = fx.frac_bits
    rng = np.random.default_rng(1)
    bound = 2**TRUNC_INPUT_BITS
    failures = 0
    done = 0
    err_sum = 0.0
    err_max = 0.0
    ref_secs = 0.0
    import time

    t0 = time.perf_counter()
    c0 = ctx.chan.cost()
    while done < total:
        k = min(chunk, total - done)
        mag = rng.integers(bound - bound // 16, bound, size=k, dtype=np.int64)
        sign = rng.integers(0, 2, size=k, dtype=np.int64) * 2 - 1
        x = mag * sign
        x[x == bound] = bound - 1
        shares = ctx.rand.components(k)     # any sharing of x works: fix the third component
        shares[2] = x.view(np.uint64) - shares[0] - shares[1]
        out = trunc(ctx, shares, f).sum(axis=0, dtype=np.uint64).view(np.int64)
        d = out - (x >> f)
        failures += int(np.count_nonzero((d != 0) & (d != 1)))
        err = d - (x & (2**f - 1)) / 2**f           # result - x / 2^f, in output ulp
        err_sum += float(err.sum())
        err_max = max(err_max, float(np.abs(err).max()))
        r0 = time.perf_counter()
        _ = x * (1.0 / 2**f)                        # float64 doing the same division
        ref_secs += time.perf_counter() - r0
        done += k
    secs = time.perf_counter() - t0
    cost = ctx.chan.cost() - c0
    return {
        "op": "trunc_stress",
        "shape": [total],
        "median_s": secs,
        "ref_median_s": ref_secs,
        "rounds": cost.rounds,
        "bytes_per_elem_party": max(cost.server_bytes_per_element(total)),
        "max_abs_err": err_max * fx.ulp,
        "bound_ring": f"|x| < 2^{TRUNC_INPUT_BITS}",
        "failures": failures,
        "mean_rounding_error_ulp": err_sum / total,
        "max_error_ulp": err_max,
        "seconds": secs,
        "frac_bits": f,
    }


COLUMNS = [
    ("op", "op", "{}"),
    ("shape", "shape", "{}"),
    ("median_s", "median s", "{:.4f}"),
    ("ref_median_s", "float64 s", "{:.5f}"),
    ("ratio", "x float64", "{:.1f}"),
    ("x_2relu", "x 2 ReLU", "{:.2f}"),
    ("rounds", "rounds", "{}"),
    ("bytes_per_elem_party", "B/elem/party", "{:.2f}"),
    ("declared_bytes_per_elem_party", "declared", "{:.2f}"),
    ("max_abs_err", "max abs err", "{:.2e}"),
    ("max_rel_err", "max rel err", "{:.2e}"),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ops", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small shapes, finishes in well under a minute")
    p.add_argument("--out", help="write JSON lines here")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per case (default 7, quick 3)")
    p.add_argument("--stress", type=int, default=None,
                   help="truncations in the stress case (default 1e8, quick 1e6; 0 skips)")
    args = p.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    stress = args.stress if args.stress is not None else (10**6 if args.quick else 10**8)

    rows = run_ops(args.quick, repeats)
    meta = {"commit": git_commit(), **machine(), "quick": args.quick}
    for r in rows:
        r.update(meta)
    print(table(rows, COLUMNS))
    if stress:
        s = run_trunc_stress(stress)
        s.update(meta)
        rows.append(s)
        print(f"\ntruncation stress: {s['shape'][0]:,} values near {s['bound_ring']}: "
              f"{s['failures']} failures, max error {s['max_error_ulp']:.6f} ulp, mean rounding error "
              f"{s['mean_rounding_error_ulp']:+.2e} ulp, {s['seconds']:.1f} s")
    write_jsonl(rows, args.out)
    if args.out:
        print(f"\nwrote {len(rows)} JSON lines to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
