"""What a party receives: uniform, seed-dependent, and useless without the mask.

The strongest check subtracts from a received message everything the
receiver can compute itself; the rest must be uniform.  A multiplication
without its zero-share mask leaves a rest of zero (CrypTen issue 518), and
the check must catch that.
"""

import numpy as np
import pytest

from secptune.engine import Context, EngineConfig, SharedTensor
from secptune.engine.protocols import arith

N = 4096


def chi2_bytes(a: np.ndarray) -> float:
    b = np.ascontiguousarray(a).view(np.uint8)
    counts = np.bincount(b.ravel(), minlength=256)
    exp = b.size / 256
    return float(((counts - exp) ** 2 / exp).sum())


UNIFORM_CHI2 = 360.0   # 255 degrees of freedom: p < 1e-4 above this


def looks_uniform(a: np.ndarray) -> bool:
    return chi2_bytes(a) < UNIFORM_CHI2


def received_by(ctx, party, fn):
    with ctx.chan.tap(party) as log:
        fn()
    return log


def mul_residual_seen_by_s0(ctx, x=None) -> np.ndarray:
    """S0 receives z_1 from S1; it knows x_0, x_1, y_0, y_1, and here x = y = 0."""
    zero = np.zeros(N, dtype=np.int64)
    x = SharedTensor.from_client(ctx, zero, fmt=None) if x is None else x
    y = x
    log = received_by(ctx, 0, lambda: arith.mul_ss(ctx, x.shares, y.shares))
    [(tag, sender, z1)] = log
    assert sender == 1 and tag.endswith("reshare")
    x0, x1 = x.shares[0], x.shares[1]
    y0, y1 = y.shares[0], y.shares[1]
    x2, y2 = np.uint64(0) - x0 - x1, np.uint64(0) - y0 - y1   # S0 knows the secrets are zero
    prediction = x1 * y2 + x2 * (y1 + y2)      # z_1 as in arith.mul_local
    return z1 - prediction


def test_multiplication_view_is_uniform_after_subtracting_what_s0_knows():
    ctx = Context(EngineConfig(seed=5))
    rest = mul_residual_seen_by_s0(ctx)
    assert looks_uniform(rest)
    assert np.count_nonzero(rest) > N - 5


def test_sum_of_products_view_is_uniform_after_subtracting_what_s0_knows():
    """mul_sum sends one masked word per element: S0's view of S1's word minus S1's two
    product terms (which S0 can compute when every secret is zero) is the mask alone."""
    ctx = Context(EngineConfig(seed=6))
    x = SharedTensor.from_client(ctx, np.zeros(N, dtype=np.int64), fmt=None)
    y = SharedTensor.from_client(ctx, np.zeros(N, dtype=np.int64), fmt=None)
    log = received_by(ctx, 0, lambda: arith.mul_sum(ctx, [(x.shares, x.shares), (y.shares, x.shares)]))
    [(tag, sender, z1)] = log
    assert sender == 1 and tag.endswith("reshare")
    x0, x1, y0, y1 = x.shares[0], x.shares[1], y.shares[0], y.shares[1]
    x2, y2 = np.uint64(0) - x0 - x1, np.uint64(0) - y0 - y1
    rest = z1 - (x1 * x2 + x2 * (x1 + x2)) - (y1 * x2 + y2 * (x1 + x2))
    assert looks_uniform(rest) and np.count_nonzero(rest) > N - 5


def test_missing_zero_share_mask_is_caught(monkeypatch):
    ctx = Context(EngineConfig(seed=5))
    # the product's mask is the zero sharing r_s - r_{s+1} of three component draws
    x = SharedTensor.from_client(ctx, np.zeros(N, dtype=np.int64), fmt=None)
    monkeypatch.setattr(ctx.rand, "components", lambda shape, *a, **k: np.zeros((3,) + tuple(np.atleast_1d(shape)), np.uint64))
    rest = mul_residual_seen_by_s0(ctx, x)
    assert not looks_uniform(rest)
    assert not np.any(rest)


def trunc_product_residual_seen_by_s0(ctx) -> np.ndarray:
    """In a fixed-point product S0 plays role 0 on the first third of the elements and
    receives there the helper's (S2's) product term C, masked; with x = y = 0 it knows
    every component, so what is left after subtracting C is the mask alone."""
    from secptune.engine.protocols.trunc import mul_trunc

    x = SharedTensor.from_client(ctx, np.zeros(3 * N, dtype=np.int64), fmt=None)
    log = received_by(ctx, 0, lambda: mul_trunc(ctx, x.shares, x.shares, 16))
    # round 1 to S0: S2's masked sum (chunk 2), S1's masked sum (chunk 0), S1's halves (chunk 2),
    # then C from S2 (chunk 0, role 0) and C from S1 (chunk 2, role 1)
    from_s2 = [p for t, src, p in log if t.endswith("trunc-open") and src == 2]
    c_masked = from_s2[-1]
    x0, x1 = (c[:N] for c in x.shares[:2])
    x2 = np.uint64(0) - x0 - x1
    return c_masked - (x2 * x0 + x0 * x2)                         # S2's term of mul_local


def test_truncated_product_masks_the_helpers_term():
    rest = trunc_product_residual_seen_by_s0(Context(EngineConfig(seed=5)))
    assert looks_uniform(rest) and np.count_nonzero(rest) > N - 5


def test_missing_helper_mask_is_caught(monkeypatch):
    from secptune.engine.protocols.roles import Rotation

    ctx = Context(EngineConfig(seed=5))
    monkeypatch.setattr(Rotation, "draw_own", lambda self, rand, role, *a, **k: np.zeros(self.n, np.uint64))
    rest = trunc_product_residual_seen_by_s0(ctx)
    assert not np.any(rest)


def test_received_messages_change_with_the_seed():
    def view(seed):
        ctx = Context(EngineConfig(seed=seed))
        x = SharedTensor.from_client(ctx, np.ones(64))
        return received_by(ctx, 2, lambda: x * x)
    a, b, a2 = view(1), view(2), view(1)
    assert [t for t, _, _ in a] == [t for t, _, _ in b]
    assert all(np.array_equal(p, q) for (_, _, p), (_, _, q) in zip(a, a2))   # replay
    assert all(not np.array_equal(p, q) for (_, _, p), (_, _, q) in zip(a, b))


@pytest.mark.parametrize("op", ["mul", "matmul", "trunc", "relu", "lt"])
def test_every_message_a_server_receives_looks_uniform_for_a_constant_secret(op):
    ctx = Context(EngineConfig(seed=9))
    const = np.full(N, 3.0)
    x = SharedTensor.from_client(ctx, const)
    m = SharedTensor.from_client(ctx, np.full((64, 64), 0.5))
    fns = {
        "mul": lambda: x * x,
        "matmul": lambda: m @ m,
        "trunc": lambda: x.truncate(),
        "relu": lambda: x.relu(),
        "lt": lambda: x.lt(1.0),
    }
    for party in range(3):
        log = received_by(ctx, party, fns[op])
        assert log, f"S{party} received nothing in {op}"
        for tag, sender, payload in log:
            if payload.nbytes >= 2048:
                assert looks_uniform(payload), (op, party, tag, sender, chi2_bytes(payload))


def test_truncation_opens_a_uniform_value():
    """c = x + 2^62 + r is what two servers learn in a truncation: uniform for a fixed x."""
    ctx = Context(EngineConfig(seed=4))
    x = SharedTensor.from_client(ctx, np.full(N, 7.25))
    log = received_by(ctx, 1, lambda: x.truncate())
    first_round = [p for t, _, p in log if t.endswith("trunc-open")]
    assert first_round and all(looks_uniform(p) for p in first_round if p.nbytes >= 2048)
    assert [o.masked for o in ctx.chan.openings] == [True]
