import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from secptune.engine import CLIENT, Context, EngineConfig, FixedPoint, SharedTensor
from secptune.engine.protocols import arith

CTX = Context(EngineConfig(seed=11))
ints = st.integers(-(2**63), 2**63 - 1)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=5)


@given(hnp.arrays(np.int64, shapes, elements=ints))
def test_share_open_round_trip_is_exact(v):
    for make in (
        lambda: SharedTensor.from_client(CTX, v, fmt=None),
        lambda: SharedTensor.from_server(CTX, 2, v, fmt=None),
        lambda: SharedTensor.from_public(CTX, v, fmt=None),
    ):
        t = make()
        assert np.array_equal(t.reveal("rt"), v)
        assert np.array_equal(t.reveal("rt", to=CLIENT), v)
        assert np.array_equal(t.reveal("rt", to=1), v)


@given(st.data(), shapes)
def test_linearity_is_exact(data, shape):
    a = data.draw(hnp.arrays(np.int64, shape, elements=ints))
    b = data.draw(hnp.arrays(np.int64, shape, elements=ints))
    c = data.draw(st.integers(-(2**40), 2**40))
    x = SharedTensor.from_client(CTX, a, fmt=None)
    y = SharedTensor.from_client(CTX, b, fmt=None)
    with np.errstate(over="ignore"):
        want = (a.view(np.uint64) * np.uint64(c % 2**64) + a.view(np.uint64) - b.view(np.uint64)).view(np.int64)
        got = (x * c + x - y).reveal("lin")
    assert np.array_equal(got, want)
    assert np.array_equal((-x).reveal("neg"), (np.uint64(0) - a.view(np.uint64)).view(np.int64))


def test_shares_are_random_and_components_match_owners():
    v = np.arange(6)
    t = SharedTensor.from_client(CTX, v, fmt=None)
    # no single component equals the secret, and the components sum to it
    for j in range(3):
        assert not np.array_equal(t.shares[j], v.astype(np.uint64))
    assert np.array_equal(t.shares.sum(axis=0, dtype=np.uint64), v.astype(np.uint64))


def test_openings_are_logged_with_tag_shape_and_receiver(ctx):
    t = SharedTensor.from_client(ctx, np.zeros((2, 3)))
    t.reveal("scores", to=CLIENT)
    t.reveal("public-check")
    log = ctx.chan.openings
    assert [(o.tag, o.shape, o.receivers, o.masked) for o in log] == [
        ("scores", (2, 3), (CLIENT,), False),
        ("public-check", (2, 3), (0, 1, 2), False),
    ]


def test_mixing_contexts_formats_or_shapes_is_an_error():
    a = Context(EngineConfig(seed=1))
    b = Context(EngineConfig(seed=1))
    x = SharedTensor.from_client(a, np.ones(3))
    with pytest.raises(ValueError, match="different contexts"):
        x + SharedTensor.from_client(b, np.ones(3))
    with pytest.raises(ValueError, match="formats differ"):
        x + SharedTensor.from_client(a, np.ones(3, int), fmt=None)
    with pytest.raises(ValueError, match="formats differ"):
        x * SharedTensor.from_client(a, np.ones(3), fmt=FixedPoint(12))
    with pytest.raises(ValueError, match=r"shapes \(3,\) and \(4,\) do not broadcast"):
        x + SharedTensor.from_client(a, np.ones(4))
    with pytest.raises(ValueError, match="do not chain"):
        SharedTensor.from_client(a, np.ones((2, 3))) @ np.ones((4, 2))
    with pytest.raises(ValueError, match="prompt: value .* outside the fixed-point range"):
        SharedTensor.from_client(a, np.array([1e30]), name="prompt")
    with pytest.raises(TypeError, match="integer tensor needs integer data"):
        SharedTensor.from_client(a, np.array([0.5]), fmt=None)


def test_shape_operations(ctx, rng):
    v = rng.normal(size=(2, 3, 4))
    t = SharedTensor.from_client(ctx, v)
    fx = ctx.fixed
    e = fx.decode(fx.encode(v))
    assert np.array_equal(t.reshape(6, 4).reveal("r"), e.reshape(6, 4))
    assert np.array_equal(t.transpose(2, 0, 1).reveal("r"), e.transpose(2, 0, 1))
    assert np.array_equal(t.swapaxes(0, 2).reveal("r"), e.swapaxes(0, 2))
    assert np.array_equal(t[1, :, 2:].reveal("r"), e[1, :, 2:])
    assert np.array_equal(SharedTensor.concat([t, t[:1]], axis=0).reveal("r"), np.concatenate([e, e[:1]]))
    assert np.array_equal(t.sum(axis=(0, 2)).reveal("r"), e.sum(axis=(0, 2)))
    assert np.array_equal(t.sum().reveal("r"), e.sum())
    assert np.abs(t.mean(axis=-1).reveal("r") - e.mean(axis=-1)).max() <= 2 * fx.ulp


def test_share_from_server_sends_only_from_the_owner(ctx):
    with ctx.chan.measure() as m:
        SharedTensor.from_server(ctx, 1, np.ones(10))
    assert m.cost.rounds == 1
    assert m.cost.bytes_sent == (0, 160, 0, 0, 0)


def test_reveal_rejects_unknown_receiver(ctx):
    with pytest.raises(ValueError, match="cannot open to party"):
        arith.reveal(ctx, np.zeros((3, 2), np.uint64), "x", to=7)


def test_broadcasting_never_aligns_the_party_axis(ctx, rng):
    """[3, d] against [3, b, n, d]: with n == 3 a naive broadcast would silently mix parties."""
    x = rng.normal(size=(2, 3, 4))
    b = rng.normal(size=(4,))
    sx, sb = SharedTensor.from_client(ctx, x), SharedTensor.from_client(ctx, b)
    fx = ctx.fixed
    e = lambda v: fx.decode(fx.encode(v))  # noqa: E731
    assert np.abs((sx + sb).reveal("a") - (e(x) + e(b))).max() <= 2 * fx.ulp
    assert np.abs((sx - sb).reveal("s") - (e(x) - e(b))).max() <= 2 * fx.ulp
    assert np.abs((sx * sb).reveal("m") - e(x) * e(b)).max() <= 4 * fx.ulp
    assert np.abs((sb * sx).reveal("m") - e(x) * e(b)).max() <= 4 * fx.ulp


def test_random_shares_open_to_fresh_uniform_values():
    a = SharedTensor.random(Context(EngineConfig(seed=1)), (4096,)).reveal("r").view(np.uint64)
    b = SharedTensor.random(Context(EngineConfig(seed=2)), (4096,)).reveal("r").view(np.uint64)
    assert not np.array_equal(a, b)
    top = (a >> np.uint64(60)).astype(np.int64)            # 16 buckets
    counts = np.bincount(top, minlength=16)
    assert ((counts - 256) ** 2 / 256).sum() < 45          # 15 degrees of freedom, p ~ 1e-4
