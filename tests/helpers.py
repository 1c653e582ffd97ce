"""Exact references for fixed-point tests."""

import numpy as np


def exact_ints(ring: np.ndarray) -> np.ndarray:
    """uint64 ring values as Python ints (two's complement), object array."""
    return np.array([int(v) for v in ring.view(np.int64).ravel()], dtype=object).reshape(ring.shape)


def floor_div(a: np.ndarray, m: int) -> np.ndarray:
    """Exact floor(a / 2^m) for an object array of Python ints."""
    return np.vectorize(lambda v: v >> m, otypes=[object])(a)


def ulps(fx, got: np.ndarray, want: np.ndarray) -> float:
    """Largest difference in units of the last place."""
    return float(np.max(np.abs(np.asarray(got, np.float64) - want)) / fx.ulp) if np.size(want) else 0.0


def secure_follows_plain(plain, secure, labels, tc, tcs):
    """Tune with a plaintext and a secure scorer on the same examples and seeds; assert
    the secure run takes the plaintext one's CMA-ES path and opens only scores, to the
    client.  Returns (plain result, secure result, the unmasked openings)."""
    from secptune.engine import CLIENT
    from secptune.tuning.loop import tune

    rp = tune(plain, labels, tc)
    with secure.ctx.chan.measure() as m:
        rs = tune(secure, labels, tcs)
    for gp, gs in zip(rp["history"], rs["history"]):
        assert np.allclose(gp.losses, gs.losses, atol=2e-2)
    np.testing.assert_allclose(rp["z"], rs["z"])
    unmasked = [o for o in m.openings if not o.masked]
    assert unmasked and all(o.receivers == (CLIENT,) and o.tag.endswith("/scores") for o in unmasked)
    return rp, rs, unmasked
