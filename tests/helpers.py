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
