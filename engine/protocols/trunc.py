"""Exact fixed-point truncation (Escudero et al., CRYPTO 2020, adapted to 3 servers).

Goal: shares of floor(x / 2^m) or floor(x / 2^m) + 1 from shares of x, for
every ring value |x| < 2^62, with no catastrophic failure and unbiased
rounding.

Roles (spread over the servers by ``Rotation``): role 0 knows part A, role 1
part B, role 2 optionally part C, with x = A + B + C.  Role 2 is the helper.

1. Roles 0 and 2 draw r_a, roles 1 and 2 draw r_b (pairwise streams), so
   role 2 knows r = r_a + r_b.  It splits r = r_63 2^63 + r_low, and sends to
   role 1 its additive halves of r_low >> m and r_63 (role 0's halves come
   from the stream it shares with role 2).
   Simultaneously role 0 sends A + 2^62 + r_a to role 1, role 1 sends B + r_b
   to role 0 (and role 2 sends C to both).  Roles 0 and 1 now know
   c = x + 2^62 + r mod 2^64: uniform, since r is.               [1 round]
2. With x' = x + 2^62 in [0, 2^63), the carry w = c_63 xor r_63 tells whether
   x' + r_low wrapped past 2^63, and
       (c_low >> m) - (r_low >> m) + w 2^(63-m) = floor(x'/2^m) + e,
   e = [x' mod 2^m + r_low mod 2^m >= 2^m] in {0, 1}, P(e = 1) =
   (x' mod 2^m) / 2^m: stochastic rounding, so E[result] = x / 2^m exactly.
   w is linear in the shares of r_63 because c is known; roles 0 and 1 hold
   2-out-of-2 shares of the result and reshare them to replicated form with
   masks from the streams they share with role 2.              [1 round]

No step can fail for |x| < 2^62: the error is at most 1 ulp, always.  The
failure probability per element is 0 (the issue asks for below 2^-40).

Cost per element: 2 rounds; with C (fused multiply) role 2 sends 32 B and
roles 0 and 1 16 B; without C all three send 16 B.  Rotated over the three
servers: 64/3 B and 16 B per server.
"""

from __future__ import annotations

import numpy as np

from ..ring import const
from .arith import mul_local
from .roles import Rotation

TRUNC_INPUT_BITS = 62  # |x| < 2^62 in ring units
_LOW63 = const((1 << 63) - 1)


def trunc_roles(ctx, rot: Rotation, A, B, C, m: int, tag: str) -> np.ndarray:
    """Role-view replicated shares of (A + B + C) >> m; parts are flat [n] arrays."""
    if not (0 < m < TRUNC_INPUT_BITS):
        raise ValueError(f"{tag}: truncation by {m} bits is out of range")
    rand = ctx.rand
    ra = rot.draw(rand, 0)        # roles 0, 2
    rb = rot.draw(rand, 2)        # roles 1, 2
    a0 = rot.draw(rand, 0)        # role 0's half of r_low >> m
    b0 = rot.draw(rand, 0)        # role 0's half of r_63
    rho = rot.draw(rand, 0)       # output component 0 (roles 0, 2)
    sigma = rot.draw(rand, 2)     # output component 2 (roles 1, 2)
    sm = np.uint64(m)

    # role 2 (helper)
    r = ra + rb
    a1 = ((r & _LOW63) >> sm) - a0
    b1 = (r >> np.uint64(63)) - b0

    sends = [
        (0, 1, A + const(1 << 62) + ra),
        (1, 0, B + rb),
        (2, 1, np.stack([a1, b1], axis=1)),
    ]
    if C is not None:
        sends += [(2, 0, C), (2, 1, C)]
    got = rot.exchange(ctx.chan, sends, tag=f"{tag}/trunc-open")
    # c = x + 2^62 + r is opened to roles 0 and 1, masked by the uniform r.
    receivers = sorted({(role + k) % 3 for k, _, _ in rot.chunks for role in (0, 1)})
    ctx.chan.record_opening(f"{tag}/trunc-masked", A.shape, receivers, masked=True)
    # roles 0 and 1 both know c (each adds what it received to what it has)
    c = got[0] + got[1]
    if C is not None:
        c = c + got[3]
    a1_r, b1_r = got[2][:, 0], got[2][:, 1]

    c_msb = c >> np.uint64(63)
    c_low = (c & _LOW63) >> sm
    hi = np.uint64(63 - m)
    coef = (np.uint64(1) - (c_msb << np.uint64(1))) << hi   # (1 - 2 c_63) 2^(63-m)
    y0 = c_low + (c_msb << hi) - const(1 << (62 - m)) - a0 + coef * b0   # role 0
    y1 = coef * b1_r - a1_r                                               # role 1

    got2 = rot.exchange(ctx.chan, [(0, 1, y0 - rho), (1, 0, y1 - sigma)], tag=f"{tag}/trunc-reshare")
    return np.stack([rho, got2[0] + got2[1], sigma])


def trunc(ctx, x: np.ndarray, m: int, tag: str = "trunc") -> np.ndarray:
    """Replicated shares of x >> m (signed, stochastic rounding) for |x| < 2^62.

    Cost: 2 rounds, 16 B/elem per server.
    """
    shape = x.shape[1:]
    flat = x.reshape(3, -1)
    rot = Rotation(flat.shape[1])
    xr = rot.to_roles(flat)
    out = trunc_roles(ctx, rot, xr[0] + xr[1], xr[2], None, m, tag)
    return rot.to_real(out).reshape((3,) + shape)


def trunc_additive(ctx, z: np.ndarray, m: int, tag: str) -> np.ndarray:
    """Truncate 3-out-of-3 additive shares (z_i at server i, already masked).

    Used after a local multiplication, so the product is resharing and
    truncated in the same two rounds.  Cost: 2 rounds, 64/3 B/elem per server.
    """
    shape = z.shape[1:]
    flat = z.reshape(3, -1)
    rot = Rotation(flat.shape[1])
    zr = rot.to_roles(flat)
    out = trunc_roles(ctx, rot, zr[0], zr[1], zr[2], m, tag)
    return rot.to_real(out).reshape((3,) + shape)


def mul_trunc(ctx, x: np.ndarray, y: np.ndarray, m: int, tag: str = "mul") -> np.ndarray:
    """Fixed-point product: shares of (x * y) >> m in 2 rounds."""
    z = mul_local(x, y)
    z += ctx.rand.zero_sharing(z.shape[1:])
    return trunc_additive(ctx, z, m, tag)
