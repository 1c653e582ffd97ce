"""Masked cosine and sine on shares: exact up to fixed-point resolution, 3 rounds.

Angles are in turns: cos(2 pi u).  u's shares reduced modulo 2^f are shares
of frac(u) in Z_2^f (reduction is a ring homomorphism), so the integer part
never matters.

Roles (rotated over the servers): role 2 draws a uniform mask t in [0, 1)
(f bits) from its private stream, and a 2-out-of-2 sharing of cos 2 pi t and
sin 2 pi t between roles 0 and 1 (role 0's halves from the stream it shares
with role 2, role 1's sent).  Role 2 sends u_2 + t to role 0 and u_0 + t to
role 1 (each uniform, mod 2^f), so roles 0 and 1 both learn
delta = frac(u + t), uniform and independent of u, and never t; role 2 never
sees delta.  Then
    cos 2 pi u = cos 2 pi delta cos 2 pi t + sin 2 pi delta sin 2 pi t,
    sin 2 pi u = sin 2 pi delta cos 2 pi t - cos 2 pi delta sin 2 pi t,
where roles 0 and 1 compute cos/sin of delta in float64 and multiply them
into their halves: an additive sharing with 2f fractional bits, which the
truncation (role 2 as helper) brings back to f.                  [1 + 2 rounds]

This differs from the design note's variant (mask known to two servers,
delta opened to the third), which needs one more round for the cross products
of values known to different sides; here the server that knows the mask
plays the trusted dealer of the paper's two-party protocol.

Error: both encodings round to 1/2 ulp, the truncation adds < 1 ulp; no
approximation.  Cost per element, cos alone: 3 rounds; role 2 sends
4 + 4 + 16 + 16 B, roles 0 and 1 16 B (rotated 24 B per server); cos and
sin together: 40 B per server.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np

from ..comm import placeholder
from ..kernels import elementwise
from ..protocols.roles import Rotation
from ..protocols.trunc import trunc_roles

COS_MAX_ABS_ERR_ULP = 3.0       # in units of 2^-f
_TABLE_MAX_BITS = 20            # up to 2^20 angles: the encoded cos/sin tables take 16 MB


@lru_cache(maxsize=4)
def _table(f: int) -> tuple:
    """Encoded cos and sin of every f-bit angle in turns (a party's local lookup)."""
    a = 2.0 * np.pi * np.arange(1 << f, dtype=np.float64) / float(1 << f)
    enc = lambda v: np.rint(v * float(1 << f)).astype(np.int64).view(np.uint64)  # noqa: E731
    return enc(np.cos(a)), enc(np.sin(a))


def _encoded_cos_sin(angle: np.ndarray, f: int) -> tuple:
    """(round(cos(2 pi a / 2^f) 2^f), round(sin(...) 2^f)) as ring elements, for f-bit a."""
    if f <= _TABLE_MAX_BITS:
        c, s = _table(f)
        idx = angle.astype(np.intp)
        return c[idx], s[idx]
    a = 2.0 * np.pi * angle.astype(np.float64) / float(1 << f)
    enc = lambda v: np.rint(v * float(1 << f)).astype(np.int64).view(np.uint64)  # noqa: E731
    return enc(np.cos(a)), enc(np.sin(a))


@elementwise(1)
def _all_roles(cuts, t, u, half0, ctab, stab, mod, want_cos, want_sin, A, B):
    """Every role's local steps of ``cos_sin`` for one angle in one pass (the in-process
    simulation, table lookups): role 2's dealt halves, the masked angle delta that
    roles 0 and 1 both learn (looked up once), and their parts of the products."""
    for i in numba.prange(t.size):
        k = 0 if i < cuts[1] else (1 if i < cuts[2] else 2)
        ti = t[i]
        h0c, h0s = half0[i, 0], half0[i, 1]
        h1c, h1s = ctab[ti] - h0c, stab[ti] - h0s
        d = (np.uint32(u[k, i]) + np.uint32(u[(k + 1) % 3, i]) + np.uint32(u[(k + 2) % 3, i]) + ti) & mod
        C, S = ctab[d], stab[d]
        col = 0
        if want_cos:
            A[i, col] = C * h0c + S * h0s
            B[i, col] = C * h1c + S * h1s
            col += 1
        if want_sin:
            A[i, col] = S * h0c - C * h0s
            B[i, col] = S * h1c - C * h1s


def _mask_sends(to_role0, to_role1, halves1) -> list:
    """The dealer's (role 2's) messages: each masked angle part, and role 1's halves."""
    return [(2, 0, to_role0), (2, 1, to_role1), (2, 1, halves1)]


def cos_sin(ctx, u: np.ndarray, f: int, want=("cos", "sin"), tag: str = "cos") -> dict:
    """{'cos': shares of cos 2 pi u, 'sin': shares of sin 2 pi u} for fixed-point turns u."""
    if f > 32:
        raise ValueError(f"{tag}: masked cosine needs f <= 32, got {f}")
    shape = u.shape[1:]
    flat = u.reshape(3, -1)
    n = flat.shape[1]
    rot = Rotation(n)
    mod = np.uint32((1 << f) - 1) if f < 32 else np.uint32(0xFFFFFFFF)
    receivers = rot.players(0, 1)
    names = [name for name in ("cos", "sin") if name in want]
    if ctx.chan.simulated() and f <= _TABLE_MAX_BITS:
        # one process plays every role, nobody taps: one pass, the messages only counted
        t = rot.draw_own(ctx.rand, 2, np.uint32) & mod
        half0 = rot.draw(ctx.rand, 0, np.uint64, width=2)
        A, B = np.empty((n, len(names)), np.uint64), np.empty((n, len(names)), np.uint64)
        _all_roles(rot.cuts, t, np.ascontiguousarray(flat), half0, *_table(f), mod,
                   "cos" in want, "sin" in want, A, B)
        angle = placeholder((n,), np.uint32)
        rot.exchange(ctx.chan, _mask_sends(angle, angle, placeholder((n, 2))), tag=f"{tag}/mask")
        ctx.chan.record_opening(f"{tag}/masked-angle", shape, receivers, masked=True)
        out = trunc_roles(ctx, rot, A, B, None, f, f"{tag}/trunc")
        return {name: np.ascontiguousarray(out[:, :, i]).reshape((3,) + shape) for i, name in enumerate(names)}
    u0 = rot.role(flat, 0).astype(np.uint32)
    u1 = rot.role(flat, 1).astype(np.uint32)
    u2 = rot.role(flat, 2).astype(np.uint32)

    # role 2: the mask and the dealt halves
    t = rot.draw_own(ctx.rand, 2, np.uint32) & mod
    ct, st = _encoded_cos_sin(t, f)
    half0 = rot.draw(ctx.rand, 0, np.uint64, width=2)     # role 0's halves (roles 0, 2 know)
    half1 = np.stack([ct, st], axis=1) - half0            # role 1's halves

    got = rot.exchange(ctx.chan, _mask_sends((u2 + t) & mod, (u0 + t) & mod, half1), tag=f"{tag}/mask")
    ctx.chan.record_opening(f"{tag}/masked-angle", shape, receivers, masked=True)
    delta0 = (u0 + u1 + got[0]) & mod                     # role 0
    delta1 = (got[1] + u1 + u2) & mod                     # role 1 (the same value)
    h1 = got[2]

    C0, S0 = _encoded_cos_sin(delta0, f)                 # role 0
    C1, S1 = _encoded_cos_sin(delta1, f)                 # role 1
    parts_a, parts_b = [], []
    if "cos" in want:
        parts_a.append(C0 * half0[:, 0] + S0 * half0[:, 1])
        parts_b.append(C1 * h1[:, 0] + S1 * h1[:, 1])
    if "sin" in want:
        parts_a.append(S0 * half0[:, 0] - C0 * half0[:, 1])
        parts_b.append(S1 * h1[:, 0] - C1 * h1[:, 1])
    out = trunc_roles(ctx, rot, np.stack(parts_a, axis=1), np.stack(parts_b, axis=1), None, f, f"{tag}/trunc")
    return {name: np.ascontiguousarray(out[:, :, i]).reshape((3,) + shape) for i, name in enumerate(names)}
