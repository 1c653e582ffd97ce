"""Fixed-point encoding: the only place that scales between reals and the ring.

A real x is stored as the ring element round(x * 2^f) (two's complement).  The
product of two encodings carries 2f fractional bits and is brought back to f
by truncation (``protocols.trunc``), whose exactness needs the product's ring
value below 2^62 in magnitude: |x * y| < 2^(62 - 2f) in real units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

DEFAULT_FRAC_BITS = 18
ENCODE_BITS = 62  # |encoded value| < 2^62, so a truncation of it is exact


@numba.njit(cache=True, nogil=True)
def _encode_kernel(x, scale, limit, out):
    """out = round(x * scale) as int64; returns the first index that is non-finite
    or not below ``limit`` in magnitude, or -1."""
    for i in range(x.size):
        v = x[i]
        if not (abs(v) < limit):          # also catches NaN and inf
            return i
        out[i] = np.int64(np.rint(v * scale))
    return -1


@dataclass(frozen=True)
class FixedPoint:
    """Fixed point with ``frac_bits`` fractional bits in Z_2^64."""

    frac_bits: int = DEFAULT_FRAC_BITS

    def __post_init__(self):
        if not (0 < self.frac_bits <= 30):
            raise ValueError(f"FixedPoint.frac_bits must be in 1..30, got {self.frac_bits}")

    @property
    def scale(self) -> int:
        return 1 << self.frac_bits

    @property
    def ulp(self) -> float:
        """The real value of one unit in the last place: 2^-f."""
        return 1.0 / self.scale

    @property
    def max_abs(self) -> float:
        """Largest magnitude ``encode`` accepts: 2^(62 - f) real units."""
        return float(2 ** (ENCODE_BITS - self.frac_bits))

    @property
    def max_product(self) -> float:
        """Largest |x * y| whose truncation is exact: 2^(62 - 2f) real units."""
        return float(2 ** (ENCODE_BITS - 2 * self.frac_bits))

    def encode(self, x, name: str = "value") -> np.ndarray:
        """Round-to-nearest encoding of a float array; raises on NaN, inf or overflow."""
        arr = np.ascontiguousarray(x, dtype=np.float64)
        out = np.empty(arr.shape, dtype=np.int64)
        bad = _encode_kernel(arr.reshape(-1), float(self.scale), self.max_abs, out.reshape(-1))
        if bad >= 0:
            idx = tuple(int(i) for i in np.unravel_index(bad, arr.shape))
            v = float(arr.reshape(-1)[bad])
            if not np.isfinite(v):
                raise ValueError(f"{name}: non-finite value {v!r} at index {idx}")
            raise ValueError(
                f"{name}: value {v!r} at index {idx} is outside the fixed-point range "
                f"|x| < 2^{ENCODE_BITS - self.frac_bits} (f = {self.frac_bits} fractional bits)"
            )
        return out.view(np.uint64)

    def decode(self, v: np.ndarray) -> np.ndarray:
        """Ring elements (two's complement) as float64 reals."""
        return np.asarray(v, dtype=np.uint64).view(np.int64).astype(np.float64) / self.scale
