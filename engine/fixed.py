"""Fixed-point encoding: the only place that scales between reals and the ring.

A real x is stored as the ring element round(x * 2^f) (two's complement).  The
product of two encodings carries 2f fractional bits and is brought back to f
by truncation (``protocols.trunc``), whose exactness needs the product's ring
value below 2^62 in magnitude: |x * y| < 2^(62 - 2f) in real units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_FRAC_BITS = 18
ENCODE_BITS = 62  # |encoded value| < 2^62, so a truncation of it is exact


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
        arr = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ValueError(f"{name}: non-finite value at index {tuple(int(i) for i in bad)}")
        if arr.size and float(np.abs(arr).max()) >= self.max_abs:
            idx = np.unravel_index(int(np.abs(arr).argmax()), arr.shape)
            raise ValueError(
                f"{name}: value {float(arr[idx])!r} at index {tuple(int(i) for i in idx)} is outside "
                f"the fixed-point range |x| < 2^{ENCODE_BITS - self.frac_bits} "
                f"(f = {self.frac_bits} fractional bits)"
            )
        return np.rint(arr * self.scale).astype(np.int64).view(np.uint64)

    def decode(self, v: np.ndarray) -> np.ndarray:
        """Ring elements (two's complement) as float64 reals."""
        return np.asarray(v, dtype=np.uint64).view(np.int64).astype(np.float64) / self.scale
