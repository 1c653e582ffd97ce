"""Comparisons over the whole fixed-point range, edges included."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from secptune.engine import Context, EngineConfig, SharedTensor
from secptune.engine.protocols.boolean import a2b, bit_to_arith, highest_bit_position, msb_bool

CTX = Context(EngineConfig(seed=31))
FX = CTX.fixed
LIM = FX.max_abs
edges = [0.0, FX.ulp, -FX.ulp, 1.0, -1.0, LIM - 1.0, -(LIM - 1.0), 2.0**20, -(2.0**20)]
values = st.one_of(st.sampled_from(edges), st.floats(-(LIM - 1), LIM - 1, allow_nan=False))
arrays = hnp.arrays(np.float64, st.integers(1, 60), elements=values)


def enc(v):
    return FX.decode(FX.encode(v))


@given(arrays)
def test_msb_on_raw_ring_values_including_extremes(v):
    """The MSB circuit itself works for every ring value, not only encodings."""
    rng = np.random.default_rng(len(v))
    ring = rng.integers(0, 2**64, size=len(v) + 6, dtype=np.uint64)
    ring[-6:] = [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 2**62]
    x = SharedTensor.from_client(CTX, ring.view(np.int64), fmt=None)
    b = msb_bool(CTX, x.shares)
    assert np.array_equal((b[0] ^ b[1] ^ b[2]), (ring >> np.uint64(63)).astype(np.uint8))


@given(arrays)
def test_relu_abs_sign(v):
    x = SharedTensor.from_client(CTX, v)
    e = enc(v)
    assert np.array_equal(x.relu().reveal("relu"), np.maximum(e, 0))
    assert np.array_equal(x.abs().reveal("abs"), np.abs(e))
    assert np.array_equal(x.sign_bit().reveal("msb"), (e < 0).astype(np.int64))


@given(st.data(), st.integers(1, 40))
def test_less_than_secret_and_public(data, n):
    half = st.floats(-(LIM / 2 - 1), LIM / 2 - 1, allow_nan=False)
    a = data.draw(hnp.arrays(np.float64, n, elements=st.one_of(st.sampled_from([0.0, FX.ulp, -FX.ulp]), half)))
    b = data.draw(hnp.arrays(np.float64, n, elements=st.one_of(st.sampled_from([0.0, FX.ulp]), half)))
    b[: n // 3] = a[: n // 3]                    # ties
    x, y = SharedTensor.from_client(CTX, a), SharedTensor.from_client(CTX, b)
    ea, eb = enc(a), enc(b)
    assert np.array_equal(x.lt(y).reveal("lt"), (ea < eb).astype(np.int64))
    assert np.array_equal(x.lt(b).reveal("lt"), (ea < eb).astype(np.int64))
    assert np.array_equal(x.gt(b).reveal("gt"), (ea > eb).astype(np.int64))


def test_select_and_max(rng):
    v = rng.normal(size=(5, 13)) * 50
    v[0, 3] = v[0, 7] = v[0].max() + 1     # repeated maximum
    x = SharedTensor.from_client(CTX, v)
    e = enc(v)
    assert np.array_equal(x.max(axis=-1).reveal("max"), e.max(axis=-1))
    assert np.array_equal(x.max(axis=0).reveal("max"), e.max(axis=0))
    c = x.lt(0.0)
    y = SharedTensor.from_client(CTX, -v)
    assert np.array_equal(c.where(y, x).reveal("sel"), np.abs(e))
    with pytest.raises(TypeError, match="condition must be an integer"):
        x.where(x, y)


def test_max_of_one_column_and_odd_lengths(rng):
    for n in (1, 2, 3, 7):
        v = rng.normal(size=(4, n))
        assert np.array_equal(SharedTensor.from_client(CTX, v).max(-1).reveal("m"), enc(v).max(-1))


@given(arrays)
def test_a2b_decomposes_every_bit_and_b2a_inverts_a_bit(v):
    rng = np.random.default_rng(len(v) + 1)
    ring = rng.integers(0, 2**64, size=len(v) + 5, dtype=np.uint64)
    ring[-5:] = [0, 1, 2**63, 2**64 - 1, 2**32 - 1]
    x = SharedTensor.from_client(CTX, ring.view(np.int64), fmt=None)
    b = a2b(CTX, x.shares)
    assert np.array_equal(b[0] ^ b[1] ^ b[2], ring)
    bit = (b & np.uint64(1)).astype(np.uint8)
    arith = bit_to_arith(CTX, bit)
    assert np.array_equal(arith.sum(axis=0, dtype=np.uint64), ring & np.uint64(1))


def test_highest_bit_position_every_bit_and_a_chosen_few(rng):
    """Every position 0..31 with its neighbours (2^j - 1, 2^j, 2^j + 1) and random
    values; all five bits, then bits 1-4 alone (what rsqrt converts)."""
    edge = [v for j in range(32) for v in (2**j - 1, 2**j, 2**j + 1) if 1 <= v < 2**32]
    ring = np.array(edge + list(rng.integers(1, 2**32, size=200)), dtype=np.uint64)
    x = SharedTensor.from_client(CTX, ring.view(np.int64), fmt=None)
    want = np.floor(np.log2(ring.astype(np.float64))).astype(np.uint64)
    got = highest_bit_position(CTX, x.shares).sum(axis=1, dtype=np.uint64)   # [5, n]
    assert np.array_equal(got, (want[None] >> np.arange(5, dtype=np.uint64)[:, None]) & np.uint64(1))
    some = highest_bit_position(CTX, x.shares, bits=(1, 2, 3, 4)).sum(axis=1, dtype=np.uint64)
    assert np.array_equal(some, got[1:])
    with pytest.raises(ValueError, match="position bits must be in 0..4"):
        highest_bit_position(CTX, x.shares, bits=(5,))


@given(st.integers(0, 2**32 - 1), st.sampled_from([(16, 0), (16, 5), (16, 16), (32, 0), (32, 20), (16, 48)]))
def test_coarse_msb_is_exact_outside_its_band(seed, ws):
    """Shares shifted right by k before a w-bit adder: exact for x < 0 and for x >= 2^k
    within the range, either answer only in [0, 2^k); the carries (so the band's
    answers) depend on the random shares, hence several share seeds."""
    width, shift = ws
    rng = np.random.default_rng(seed)
    lim = 2 ** (width - 1 + shift) - 2**shift
    x = rng.integers(-lim, lim, size=400, endpoint=False)
    band_lo = [0, 2**shift - 1] if shift else [0]
    x = np.concatenate([x, [-lim, lim - 1, -1, 2**shift, -(2**shift)] + band_lo]).astype(np.int64)
    ctx = Context(EngineConfig(seed=seed))
    b = msb_bool(ctx, SharedTensor.from_client(ctx, x, fmt=None).shares, "t", width, shift)
    got = b[0] ^ b[1] ^ b[2]
    band = (x >= 0) & (x < 2**shift)
    assert np.array_equal(got[~band], (x[~band] < 0).astype(np.uint8))


def test_coarse_parameters_and_bad_widths():
    from secptune.engine.protocols.compare import coarse, coarse_limit
    for band_bits in (2, 4):
        width, shift = coarse(FX.frac_bits, band_bits)
        assert 2.0 ** (width - 1 + shift - FX.frac_bits) == coarse_limit(band_bits)
        assert 2.0 ** (shift - FX.frac_bits) == 2.0**-band_bits
    x = SharedTensor.from_client(CTX, np.zeros(3)).shares
    with pytest.raises(ValueError, match="msb width must be one of"):
        msb_bool(CTX, x, "t", width=8)
    with pytest.raises(ValueError, match="msb shift must be in 0..48"):
        msb_bool(CTX, x, "t", width=16, shift=49)


def test_coarse_max_is_an_input_within_the_band_of_the_maximum(rng):
    from secptune.engine.protocols.compare import coarse, max_
    v = rng.normal(size=(64, 37)) * 100
    v[:8] = rng.normal(size=(8, 37)) * 0.05            # rows of near-ties, where the band matters
    width, shift = coarse(FX.frac_bits)
    m = SharedTensor.from_client(CTX, v)
    got = m._new(max_(CTX, m.shares, -1, "t", width, shift)).reveal("t")
    e = enc(v)
    assert (got[:, None] == e).any(axis=1).all()       # one of the row's own values
    assert np.all(got >= e.max(-1) - 6 * 0.25)         # ceil(log2 37) = 6 levels of a quarter each
    assert np.all(got <= e.max(-1))


def test_coarse_max_method_needs_fixed_point(rng):
    v = rng.normal(size=(6, 9)) * 10
    got = SharedTensor.from_client(CTX, v).max(-1, coarse=True).reveal("t")
    e = enc(v)
    assert ((got[:, None] == e).any(axis=1).all() and np.all(got >= e.max(-1) - 4 * 0.25))
    with pytest.raises(TypeError, match="coarse maximum needs a fixed-point tensor"):
        SharedTensor.from_client(CTX, np.arange(4), fmt=None).max(coarse=True)
