"""Multiplication, matmul and truncation against exact integer references."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from helpers import exact_ints, floor_div
from secptune.engine import Context, EngineConfig, SharedTensor
from secptune.engine.protocols.trunc import TRUNC_INPUT_BITS, trunc

CTX = Context(EngineConfig(seed=21))
FX = CTX.fixed
F = FX.frac_bits
bounded = st.floats(-1e3, 1e3, allow_nan=False, width=64)


def _ring(t: SharedTensor) -> np.ndarray:
    return t.shares.sum(axis=0, dtype=np.uint64)


@given(st.data(), hnp.array_shapes(min_dims=1, max_dims=2, max_side=6))
def test_fixed_mul_is_within_one_ulp_of_exact(data, shape):
    a = data.draw(hnp.arrays(np.float64, shape, elements=bounded))
    b = data.draw(hnp.arrays(np.float64, shape, elements=bounded))
    x, y = SharedTensor.from_client(CTX, a), SharedTensor.from_client(CTX, b)
    got = exact_ints(_ring(x * y))
    want = floor_div(exact_ints(FX.encode(a)) * exact_ints(FX.encode(b)), F)
    diff = got - want
    assert all(d in (0, 1) for d in diff.ravel())


@given(st.data(), st.integers(1, 5), st.integers(1, 20), st.integers(1, 5))
def test_fixed_matmul_secret_and_public_within_one_ulp(data, m, k, n):
    a = data.draw(hnp.arrays(np.float64, (m, k), elements=bounded))
    b = data.draw(hnp.arrays(np.float64, (k, n), elements=st.floats(-8, 8, allow_nan=False)))
    x = SharedTensor.from_client(CTX, a)
    want = floor_div(exact_ints(FX.encode(a)).dot(exact_ints(FX.encode(b))), F)
    for got in (_ring(x @ SharedTensor.from_client(CTX, b)), _ring(x @ b)):
        diff = exact_ints(got) - want
        assert all(d in (0, 1) for d in diff.ravel())


@given(st.data(), st.integers(1, 3), st.integers(1, 7), st.integers(1, 20), st.integers(1, 5))
def test_public_matmul_over_leading_axes_within_one_ulp(data, b, m, k, n):
    """Rows of every leading axis are cut into the truncation's three chunks (any row
    count, also fewer than three rows); each output is floor or floor + 1."""
    a = data.draw(hnp.arrays(np.float64, (b, m, k), elements=bounded))
    w = data.draw(hnp.arrays(np.float64, (k, n), elements=st.floats(-8, 8, allow_nan=False)))
    x = SharedTensor.from_client(CTX, a)
    with CTX.chan.measure() as cost:
        got = _ring(x @ w)
    want = floor_div(exact_ints(FX.encode(a)) @ exact_ints(FX.encode(w)), F)
    diff = exact_ints(got) - want
    assert got.shape == (b, m, n) and all(d in (0, 1) for d in diff.ravel())
    assert cost.cost.rounds == 2 and cost.cost.max_server_bytes <= 16 * b * m * n + 16


def test_batched_matmul_attention_shapes(rng):
    q = rng.normal(size=(2, 4, 16, 8))
    k = rng.normal(size=(2, 4, 8, 16))
    got = (SharedTensor.from_client(CTX, q) @ SharedTensor.from_client(CTX, k)).reveal("att")
    e = FX.decode(FX.encode(q)) @ FX.decode(FX.encode(k))
    assert np.abs(got - e).max() <= FX.ulp


@given(hnp.arrays(np.int64, st.integers(1, 50), elements=st.integers(-(2**40), 2**40)))
def test_integer_mul_is_exact(v):
    x = SharedTensor.from_client(CTX, v, fmt=None)
    with np.errstate(over="ignore"):
        assert np.array_equal((x * x).reveal("sq"), v * v)


EDGE = 2**TRUNC_INPUT_BITS
trunc_inputs = st.one_of(
    st.sampled_from([0, 1, -1, EDGE - 1, -EDGE, -EDGE + 1, 2**F, -(2**F), 2**F - 1]),
    st.integers(-EDGE, EDGE - 1),
)


@given(hnp.arrays(object, st.integers(1, 64), elements=trunc_inputs), st.integers(1, 40))
def test_truncation_is_floor_or_floor_plus_one_over_the_whole_range(vals, m):
    ring = np.array([v % 2**64 for v in vals], dtype=np.uint64)
    x = SharedTensor.from_client(CTX, ring.view(np.int64), fmt=None)
    got = exact_ints(trunc(CTX, x.shares, m).sum(axis=0, dtype=np.uint64))
    diff = got - floor_div(vals, m)
    assert all(d in (0, 1) for d in diff.ravel()), (vals, m, diff)


def test_truncation_rounding_is_unbiased():
    """x = k + 0.3 ulp: the mean of the truncated values is x / 2^f (stochastic rounding)."""
    n = 200_000
    frac = int(0.3 * 2**F)
    vals = np.full(n, 5 * 2**F + frac, dtype=np.int64)
    vals[n // 2:] = -vals[n // 2:]      # negative values too
    x = SharedTensor.from_client(CTX, vals, fmt=None)
    out = trunc(CTX, x.shares, F).sum(axis=0, dtype=np.uint64).view(np.int64)
    pos, neg = out[: n // 2], out[n // 2:]
    assert set(np.unique(pos)) <= {5, 6} and set(np.unique(neg)) <= {-6, -5}
    p = 0.3
    sigma = np.sqrt(p * (1 - p) / (n // 2))
    assert abs((pos - 5).mean() - p) < 5 * sigma
    assert abs((-5 - neg).mean() - p) < 5 * sigma


def test_truncation_rejects_bad_shift(ctx):
    x = SharedTensor.from_client(ctx, np.ones(3))
    with pytest.raises(ValueError, match="out of range"):
        trunc(ctx, x.shares, 63)


@given(hnp.arrays(object, st.integers(1, 40), elements=st.integers(-2**30, 2**30)), st.integers(1, 30))
def test_mul_trunc_with_an_addend_truncates_the_sum_once(vals, m):
    """(x y + a) >> m is floor or floor + 1 of the exact integer, the addend added
    before the only truncation."""
    from secptune.engine.protocols.trunc import mul_trunc
    rng = np.random.default_rng(len(vals) + m)
    xs = np.array(vals, dtype=np.int64)
    ys = rng.integers(-2**30, 2**30, size=xs.size)
    adds = rng.integers(-2**61, 2**61, size=xs.size)
    x, y, a = (SharedTensor.from_client(CTX, v, fmt=None) for v in (xs, ys, adds))
    got = exact_ints(mul_trunc(CTX, x.shares, y.shares, m, "t", add=a.shares).sum(axis=0, dtype=np.uint64))
    want = floor_div([int(p) * int(q) + int(r) for p, q, r in zip(xs, ys, adds)], m)
    assert all(d in (0, 1) for d in (got - want).ravel())


def test_sum_of_products_is_exact_with_one_resharing(ctx, rng):
    """mul_sum: sum_k a_k b_k exactly (integers mod 2^64), from operands with any strides,
    in one round and 8 B per element per server whatever the number of terms."""
    from secptune.engine.protocols.arith import mul_sum

    v = rng.integers(-2**20, 2**20, size=(3, 2, 500))
    t = [SharedTensor.from_client(ctx, v[k], fmt=None) for k in range(3)]
    pairs = [(t[0].shares[:, 0], t[1].shares[:, 0]), (t[1].shares[:, 1], t[2].shares[:, 1]),
             (t[2].shares[:, 0], t[2].shares[:, 1])]
    with ctx.chan.measure() as m:
        got = t[0]._new(mul_sum(ctx, pairs)).reveal("t").astype(np.int64)
    want = v[0, 0] * v[1, 0] + v[1, 1] * v[2, 1] + v[2, 0] * v[2, 1]
    assert np.array_equal(got, want)
    assert m.cost.rounds == 2                      # the sum's one round, the reveal's one
    with pytest.raises(ValueError, match="pairs of"):
        mul_sum(ctx, [(t[0].shares, t[1].shares)])


@given(st.integers(1, 700), st.integers(2, 4), st.integers(1, 30))
def test_a_batch_of_truncated_products_is_one_round_pair_and_floor_or_floor_plus_one(n, pairs, m):
    """mul_trunc_many: each pair's (x y) >> m is floor or floor + 1 of the exact product,
    in the two rounds and the bytes of one mul_trunc over the whole batch (sizes that
    do not divide into the rotation's thirds included)."""
    from secptune.engine.protocols.trunc import mul_trunc, mul_trunc_many

    rng = np.random.default_rng(n * 7 + pairs + m)
    vals = rng.integers(-2**30, 2**30, size=(pairs, 2, n))
    t = [(SharedTensor.from_client(CTX, a, fmt=None), SharedTensor.from_client(CTX, b, fmt=None)) for a, b in vals]
    with CTX.chan.measure() as batch:
        outs = mul_trunc_many(CTX, [(a.shares, b.shares) for a, b in t], m, "t")
    for (a, b), out in zip(vals, outs):
        got = exact_ints(out.sum(axis=0, dtype=np.uint64))
        want = floor_div([int(p) * int(q) for p, q in zip(a, b)], m)
        assert all(d in (0, 1) for d in (got - want).ravel())
    whole = np.concatenate([v[0] for v in vals]), np.concatenate([v[1] for v in vals])
    x, y = (SharedTensor.from_client(CTX, v, fmt=None) for v in whole)
    with CTX.chan.measure() as single:
        mul_trunc(CTX, x.shares, y.shares, m, "t")
    assert batch.cost.rounds == single.cost.rounds == 2
    assert batch.cost.bytes_sent == single.cost.bytes_sent


def test_a_fixed_right_operand_gives_the_same_products_and_is_kept_only_while_it_lives(rng):
    """``fix_operand`` (a model's weights): each server's operand is formed once and
    reused; the products must equal the unfixed ones word for word, for a batched
    left operand too and for a party computing only its own; the shares become
    read-only, and the kept operands go when the shares do."""
    import gc

    from secptune.engine.protocols import arith

    x = rng.integers(0, 2**64, (3, 2, 7, 5), dtype=np.uint64)
    y = rng.integers(0, 2**64, (3, 5, 4), dtype=np.uint64)
    want = arith.matmul_local(x, y)
    fixed = arith.fix_operand(y.copy())
    assert np.array_equal(arith.matmul_local(x, fixed), want)
    assert np.array_equal(arith.matmul_local(x, fixed), want)                    # from the kept operands
    assert np.array_equal(arith.matmul_local(x, fixed, me=1)[1], want[1])
    with pytest.raises(ValueError, match="read-only"):
        fixed[0, 0, 0] = 1
    key = id(fixed)
    assert key in arith._FIXED and len(arith._FIXED[key][1]) == 3
    del fixed
    gc.collect()
    assert key not in arith._FIXED
    with pytest.raises(ValueError, match=r"fix_operand: needs uint64 shares \[3, K, N\]"):
        arith.fix_operand(np.zeros((3, 2, 4, 4), np.uint64))
