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
   to role 0 (and role 2 sends C to both, masked by r_c from its private
   stream, which it adds to r).  Roles 0 and 1 now know
   c = x + 2^62 + r mod 2^64: uniform, since r is.               [1 round]
2. With x' = x + 2^62 in [0, 2^63), the carry w = c_63 xor r_63 tells whether
   x' + r_low wrapped past 2^63, and
       (c_low >> m) - (r_low >> m) + w 2^(63-m) = floor(x'/2^m) + e,
   e = [x' mod 2^m + r_low mod 2^m >= 2^m] in {0, 1}, P(e = 1) =
   (x' mod 2^m) / 2^m: stochastic rounding, so E[result] = x / 2^m exactly.
   w is linear in the shares of r_63 because c is known; roles 0 and 1 hold
   2-out-of-2 shares of the result and reshare them to replicated form with
   masks from the streams they share with role 2.              [1 round]

No step can fail for |x| < 2^62: the error is below 1 ulp, always.  The
failure probability per element is 0 (the issue asks for below 2^-40).

In one process with no tapped channel (``Channel.simulated``) every role's
steps run as one pass (``_all_roles``) and the messages are only counted;
otherwise (party mode, or a tapped channel) role by role, each role only on
its own chunk.

Cost per element: 2 rounds; with C (fused multiply) role 2 sends 32 B and
roles 0 and 1 16 B; without C all three send 16 B.  Rotated over the three
servers: 64/3 B and 16 B per server.
"""

from __future__ import annotations

import numba
import numpy as np

from ..comm import placeholder
from ..gemm import u64_matmul
from ..kernels import elementwise
from .arith import _server_term, components_flat, masked_products, matmul_public
from .roles import Rotation

TRUNC_INPUT_BITS = 62  # |x| < 2^62 in ring units
_U = np.uint64


# -- per-element steps, shared by the role kernels and the one-pass kernels ---

@numba.njit(inline="always")
def _halves(r, a0, b0, m):
    """Role 2: role 1's halves of r_low >> m and of r_63, from the mask r and role 0's halves."""
    return ((r & _U((1 << 63) - 1)) >> _U(m)) - a0, (r >> _U(63)) - b0


@numba.njit(inline="always")
def _corrected(c, a, b, const_term, m, mask):
    """Roles 0 and 1: from the opened c, their share of the result, masked.

    Role 0 passes const_term = 1 (it adds the public terms), role 1 passes 0.
    [const_term * (c_low + c_63 2^(63-m) - 2^(62-m))] - a + (1 - 2 c_63) 2^(63-m) b - mask
    """
    hi = _U(63 - m)
    c63 = c >> _U(63)
    v = ((_U(1) - (c63 << _U(1))) << hi) * b - a - mask
    if const_term:
        v += ((c & _U((1 << 63) - 1)) >> _U(m)) + (c63 << hi) - (_U(1) << _U(62 - m))
    return v


# -- party-local steps (one kernel per role and step) ----------------------

@elementwise()
def _helper_step(ra, rb, rc, has_rc, a0, b0, m, out_a, out_b):
    """Role 2: role 1's halves of r_low >> m (out_a) and r_63 (out_b), r = ra + rb (+ rc)."""
    for i in numba.prange(ra.size):
        r = ra[i] + rb[i]
        if has_rc:
            r += rc[i]
        out_a[i], out_b[i] = _halves(r, a0[i], b0[i], m)


@elementwise()
def _mask_step(part, r, offset, out):
    """Roles 0 and 1: their part of x plus the mask (and role 0's offset 2^62)."""
    for i in numba.prange(part.size):
        out[i] = part[i] + r[i] + offset


@elementwise()
def _correct_step(mine, got, extra, has_extra, a, b, const_term, m, mask, out):
    """Roles 0 and 1: from c = mine + got (+ extra), their share of the result, masked
    (``_corrected``)."""
    for i in numba.prange(mine.size):
        c = mine[i] + got[i]
        if has_extra:
            c += extra[i]
        out[i] = _corrected(c, a[i], b[i], const_term, m, mask[i])


@elementwise(1)
def _assemble(cuts, rho, y0, y1, sigma, out):
    """Real components out [3, N] from the role components (rho, y0 + y1, sigma) over
    flat elements (cuts in the same units): role j of chunk k is component j + k."""
    for e in numba.prange(rho.size):
        k = 0 if e < cuts[1] else (1 if e < cuts[2] else 2)
        out[k, e] = rho[e]
        out[(k + 1) % 3, e] = y0[e] + y1[e]
        out[(k + 2) % 3, e] = sigma[e]


@numba.njit(inline="always")
def _reshared_sum(A, B, C, r, ra, rb, a0, b0, rho, sigma, m):
    """The middle output component y0 + y1 of one element's truncation, every role's
    steps in turn (``_helper_step``, ``_mask_step``, ``_correct_step``): parts A, B,
    C (C already masked), the helper's mask r = ra + rb (+ C's mask)."""
    half_a, half_b = _halves(r, a0, b0, m)                        # role 2 -> role 1
    c = (A + ra + _U(1 << 62)) + (B + rb) + C                     # roles 0 and 1
    return _corrected(c, a0, b0, 1, m, rho) + _corrected(c, half_a, half_b, 0, m, sigma)


@numba.njit(inline="always")
def _roles_into(out, e, k, A, B, C, r, ra, rb, a0, b0, rho, sigma, m):
    """Element e (in chunk k) of the truncation of the role parts A + B + C (C masked,
    r the helper's mask) into the real components out[:, e]: rho, the reshared middle
    component (``_reshared_sum``) and sigma, as ``_assemble`` places them."""
    out[k, e] = rho
    out[(k + 1) % 3, e] = _reshared_sum(A, B, C, r, ra, rb, a0, b0, rho, sigma, m)
    out[(k + 2) % 3, e] = sigma


@elementwise(1)
def _all_roles(cuts, A, B, C, has_c, cm, has_cm, ra, rb, a0, b0, rho, sigma, m, out):
    """Every role's steps of ``trunc_roles`` for one element in one pass (the in-process
    simulation, where one process computes all of them): the same arithmetic as
    ``_helper_step``, ``_mask_step``, ``_correct_step`` and ``_assemble`` in turn."""
    for e in numba.prange(A.size):
        k = 0 if e < cuts[1] else (1 if e < cuts[2] else 2)
        r = ra[e] + rb[e]
        if has_cm:
            r += cm[e]
        _roles_into(out, e, k, A[e], B[e], C[e] if has_c else _U(0), r, ra[e], rb[e], a0[e], b0[e], rho[e],
                    sigma[e], m)


@numba.njit(inline="always")
def _truncated_into(out, e, k, t0, t1, t2, cm, ra, rb, a0, b0, rho, sigma, m):
    """Element e (in chunk k) of the truncation of t0 + t1 + t2, server s's additive
    share in t_s (role j of chunk k is server j + k; role 2's part masked here by
    cm, which joins the helper's mask), into the real components out[:, e]
    (``_roles_into``) without the parts written out."""
    t = (t0, t1, t2)
    _roles_into(out, e, k, t[k], t[(k + 1) % 3], t[(k + 2) % 3] + cm, ra + rb + cm, ra, rb, a0, b0, rho, sigma, m)


@elementwise(1)
def _products_all_roles(cuts, x, y, add, has_add, cm, ra, rb, a0, b0, rho, sigma, m, out):
    """``mul_trunc`` for one element in one pass (the in-process simulation): the
    three servers' product terms (``arith.masked_products``, plus their components
    of ``add``), then the truncation (``_truncated_into``)."""
    for e in numba.prange(x.shape[1]):
        k = 0 if e < cuts[1] else (1 if e < cuts[2] else 2)
        x0, x1, x2 = x[0, e], x[1, e], x[2, e]
        y0, y1, y2 = y[0, e], y[1, e], y[2, e]
        t0 = _server_term(0, x0, x1, x2, y0, y1, y2)
        t1 = _server_term(1, x0, x1, x2, y0, y1, y2)
        t2 = _server_term(2, x0, x1, x2, y0, y1, y2)
        if has_add:
            t0, t1, t2 = t0 + add[0, e], t1 + add[1, e], t2 + add[2, e]
        _truncated_into(out, e, k, t0, t1, t2, cm[e], ra[e], rb[e], a0[e], b0[e], rho[e], sigma[e], m)


@elementwise(1)
def _additive_all_roles(cuts, z, cm, ra, rb, a0, b0, rho, sigma, m, out):
    """``trunc_additive`` for one element in one pass (the in-process simulation): the
    servers' additive shares z[s] go straight into the truncation (``_truncated_into``)
    without the role layout written out."""
    for e in numba.prange(z.shape[1]):
        k = 0 if e < cuts[1] else (1 if e < cuts[2] else 2)
        _truncated_into(out, e, k, z[0, e], z[1, e], z[2, e], cm[e], ra[e], rb[e], a0[e], b0[e], rho[e], sigma[e], m)


def _draws(ctx, rot: Rotation, m: int, tag: str, k=None) -> tuple:
    """The truncation's correlated randomness, in the order every party draws it."""
    if not (0 < m < TRUNC_INPUT_BITS):
        raise ValueError(f"{tag}: truncation by {m} bits is out of range")
    rand = ctx.rand
    ra = rot.draw(rand, 0, width=k)        # roles 0, 2
    rb = rot.draw(rand, 2, width=k)        # roles 1, 2
    a0 = rot.draw(rand, 0, width=k)        # role 0's half of r_low >> m
    b0 = rot.draw(rand, 0, width=k)        # role 0's half of r_63
    rho = rot.draw(rand, 0, width=k)       # output component 0 (roles 0, 2)
    sigma = rot.draw(rand, 2, width=k)     # output component 2 (roles 1, 2)
    return ra, rb, a0, b0, rho, sigma


def _open_sends(msg0, msg1, half_a, half_b, C=None) -> list:
    """The first round's role messages: masked parts between roles 0 and 1, the
    helper's halves to role 1, and (fused multiply) the helper's part C to both."""
    sends = [(0, 1, msg0), (1, 0, msg1), (2, 1, half_a), (2, 1, half_b)]
    return sends + ([(2, 0, C), (2, 1, C)] if C is not None else [])


def _count(ctx, rot: Rotation, shape, has_c: bool, tag: str) -> None:
    """The one-pass path's messages, counted through placeholders of their real sizes
    (the routes of ``trunc_roles``' role-by-role path), and the log entry."""
    word = placeholder(shape)
    rot.exchange(ctx.chan, _open_sends(word, word, word, word, word if has_c else None), tag=f"{tag}/trunc-open")
    ctx.chan.record_opening(f"{tag}/trunc-masked", shape, rot.players(0, 1), masked=True)
    rot.exchange(ctx.chan, [(0, 1, word), (1, 0, word)], tag=f"{tag}/trunc-reshare")


def trunc_roles(ctx, rot: Rotation, A, B, C, m: int, tag: str, C_mask=None) -> np.ndarray:
    """Real components [3, *A.shape] of (A + B + C) >> m.

    Parts are [n] or [n, k] arrays (k values per element, one role per element
    as ``rot`` assigns it).  A and B need no masking (they are sent masked by
    r_a and r_b); C is sent as given, so it must arrive masked: by C_mask, a
    draw from role 2's private stream that role 2 adds to the truncation's
    mask (c = x + r_a + r_b + C_mask is what roles 0 and 1 then learn).
    """
    shape = A.shape
    k = shape[1] if A.ndim == 2 else None
    ra, rb, a0, b0, rho, sigma = _draws(ctx, rot, m, tag, k)
    has_c, has_mask = C is not None, C_mask is not None
    if ctx.chan.simulated():
        # one process plays every role and nobody taps a delivery: every role's steps in
        # one pass, and the messages only counted (their sizes and routes)
        out = np.empty((3,) + shape, np.uint64)
        flat = [np.ascontiguousarray(v).reshape(-1) for v in
                (A, B, C if has_c else A, C_mask if has_mask else A, ra, rb, a0, b0, rho, sigma)]
        _all_roles(rot.cuts * (k or 1), flat[0], flat[1], flat[2], has_c, flat[3], has_mask, *flat[4:], m,
                   out.reshape(3, -1))
        _count(ctx, rot, shape, has_c, tag)
        return out
    # each step runs where its role is played: everywhere in the simulation, on the
    # party's own chunk in party mode (the rest of these arrays is never sent or used).
    # Unit-step slices of flat arrays stay contiguous: numba keeps its fast kernels.
    me = ctx.chan.me
    new = np.empty if me is None else np.zeros
    r0, r1, r2 = (rot.span(me, r, k or 1) for r in range(3))

    def at(v, r):
        """The flat elements r of v (a view of v itself where v is contiguous, so outputs write through)."""
        return np.ascontiguousarray(v).reshape(-1)[r]

    half_a = new(shape, np.uint64)
    half_b = new(shape, np.uint64)
    cm = C_mask if has_mask else ra
    _helper_step(at(ra, r2), at(rb, r2), at(cm, r2), has_mask, at(a0, r2), at(b0, r2), m,    # role 2
                 at(half_a, r2), at(half_b, r2))
    msg0 = new(shape, np.uint64)
    _mask_step(at(A, r0), at(ra, r0), _U(1 << 62), at(msg0, r0))                     # role 0
    msg1 = new(shape, np.uint64)
    _mask_step(at(B, r1), at(rb, r1), _U(0), at(msg1, r1))                           # role 1

    got = rot.exchange(ctx.chan, _open_sends(msg0, msg1, half_a, half_b, C), tag=f"{tag}/trunc-open")
    # c = x + 2^62 + r is opened to roles 0 and 1, masked by the uniform r.
    ctx.chan.record_opening(f"{tag}/trunc-masked", shape, rot.players(0, 1), masked=True)

    y0 = new(shape, np.uint64)                                # role 0: c = msg0 + got(msg1) [+ C]
    _correct_step(at(msg0, r0), at(got[1], r0), at(got[4] if has_c else msg0, r0), has_c,
                  at(a0, r0), at(b0, r0), 1, m, at(rho, r0), at(y0, r0))
    y1 = new(shape, np.uint64)                                # role 1: c = got(msg0) + msg1 [+ C]
    _correct_step(at(got[0], r1), at(msg1, r1), at(got[5] if has_c else msg1, r1), has_c,
                  at(got[2], r1), at(got[3], r1), 0, m, at(sigma, r1), at(y1, r1))

    got2 = rot.exchange(ctx.chan, [(0, 1, y0), (1, 0, y1)], tag=f"{tag}/trunc-reshare")
    out = np.empty((3,) + shape, np.uint64)
    width = k or 1
    flat = [np.ascontiguousarray(v).reshape(-1) for v in (rho, got2[0], got2[1], sigma)]
    _assemble(rot.cuts * width, *flat, out.reshape(3, -1))
    return out


def trunc(ctx, x: np.ndarray, m: int, tag: str = "trunc") -> np.ndarray:
    """Replicated shares of x >> m (signed, stochastic rounding) for |x| < 2^62.

    Cost: 2 rounds, 16 B/elem per server.
    """
    shape = x.shape[1:]
    flat = x.reshape(3, -1)
    rot = Rotation(flat.shape[1])
    A = rot.role(flat, 0) + rot.role(flat, 1)     # role 0 holds components 0 and 1
    B = np.ascontiguousarray(rot.role(flat, 2))   # role 1 holds component 2
    return trunc_roles(ctx, rot, A, B, None, m, tag).reshape((3,) + shape)


def trunc_additive(ctx, z: np.ndarray, m: int, tag: str) -> np.ndarray:
    """Truncate 3-out-of-3 additive shares (z_i at server i, unmasked: the helper's
    part is masked here, see ``trunc_roles``).

    Used after a local multiplication, so the product is reshared and
    truncated in the same two rounds.  Cost: 2 rounds, 64/3 B/elem per server.
    """
    shape = z.shape[1:]
    flat = z.reshape(3, -1)
    if ctx.chan.simulated():
        def fill(cuts, mask, draws, out):
            _additive_all_roles(cuts, flat, mask, *draws, m, out)

        return mul_trunc_formed(ctx, flat.shape[1], m, tag, fill).reshape((3,) + shape)
    rot = Rotation(flat.shape[1])
    parts = [np.ascontiguousarray(rot.role(flat, j)) for j in range(3)]
    mask = rot.draw_own(ctx.rand, 2)
    parts[2] += mask
    return trunc_roles(ctx, rot, parts[0], parts[1], parts[2], m, tag, C_mask=mask).reshape((3,) + shape)


def mul_trunc(ctx, x: np.ndarray, y: np.ndarray, m: int, tag: str = "mul",
              add: np.ndarray | None = None) -> np.ndarray:
    """Fixed-point product: shares of (x * y) >> m in 2 rounds.

    The local products (``arith.mul_local``) and role 2's mask are formed
    directly in the role layout of the truncation, in one pass
    (``arith.masked_products``).  ``add``:
    replicated shares added to the product before the truncation (each server
    adds one component it holds), so (x * y + add) >> m costs what the
    product alone does.
    """
    shape = np.broadcast_shapes(x.shape, y.shape)[1:]
    if ctx.chan.simulated():
        return _mul_trunc_simulated(ctx, [(x, y)], shape, m, tag, add).reshape((3,) + shape)
    rot = Rotation(int(np.prod(shape, dtype=np.int64)))
    shape, parts, mask = masked_products(ctx, x, y, rot, add)
    return trunc_roles(ctx, rot, parts[0], parts[1], parts[2], m, tag, C_mask=mask).reshape((3,) + shape)


def mul_trunc_formed(ctx, n: int, m: int, tag: str, fill) -> np.ndarray:
    """The one-process path (``Channel.simulated``) of n truncations of additive
    shares that a kernel forms as it goes (products, or shares given as they are):
    the draws of ``mul_trunc`` and ``trunc_additive`` on n elements, in their
    order (role 2's mask, then ``_draws``); ``fill(cuts, mask, draws, out)`` writes
    the real components out [3, n] (``_truncated_into`` per element); the
    messages counted as theirs.  Returns out."""
    if not ctx.chan.simulated():
        raise ValueError(f"{tag}: operands formed inside the kernel need the one-process channel")
    rot = Rotation(n)
    mask = rot.draw_own(ctx.rand, 2)
    draws = _draws(ctx, rot, m, tag)
    out = np.empty((3, n), np.uint64)
    fill(rot.cuts, mask, draws, out)
    _count(ctx, rot, (n,), True, tag)
    return out


def _mul_trunc_simulated(ctx, pairs: list, shape: tuple, m: int, tag: str, add=None) -> np.ndarray:
    """One process plays every role and nobody taps: the products of ``pairs`` (each
    broadcast to ``shape``, pair j at elements j n .. (j + 1) n of one batch) and the
    truncation in one pass, the parts never written out (``mul_trunc_formed``).
    Returns [3, len(pairs) n]."""
    if add is not None and len(pairs) > 1:
        raise ValueError(f"{tag}: an addend goes with a single product, not a batch of {len(pairs)}")
    n = int(np.prod(shape, dtype=np.int64))

    def fill(cuts, mask, draws, out):
        for j, (a, b) in enumerate(pairs):     # pair j: elements j n .. (j + 1) n of the batch, in place
            at = slice(j * n, (j + 1) * n)
            xa = components_flat(a, shape)
            _products_all_roles(np.clip(cuts - j * n, 0, n), xa, components_flat(b, shape),
                                xa if add is None else components_flat(add, shape), add is not None,
                                mask[at], *(v[at] for v in draws), m, out[:, at])

    return mul_trunc_formed(ctx, n * len(pairs), m, tag, fill)


def mul_trunc_many(ctx, pairs: list, m: int, tag: str = "mul") -> list:
    """``mul_trunc`` of several (x, y) pairs of one shape in one batch (2 rounds in all).
    In one process the operands are read where they are (``_mul_trunc_simulated``);
    in party mode they are concatenated for the role steps."""
    shape = np.broadcast_shapes(*(np.broadcast_shapes(a.shape, b.shape) for a, b in pairs))[1:]
    n = int(np.prod(shape, dtype=np.int64))
    if ctx.chan.simulated():
        out = _mul_trunc_simulated(ctx, pairs, shape, m, tag)
    else:
        left = np.concatenate([components_flat(a, shape) for a, _ in pairs], axis=1)
        right = np.concatenate([components_flat(b, shape) for _, b in pairs], axis=1)
        out = mul_trunc(ctx, left, right, m, tag)
    return [out[:, j * n:(j + 1) * n].reshape((3,) + shape) for j in range(len(pairs))]


def matmul_public_trunc(ctx, x: np.ndarray, w: np.ndarray, m: int, tag: str = "matmul") -> np.ndarray:
    """Shares of (x @ w) >> m for a public ring matrix w [K, N]: 2 rounds, 16 B per
    output element per server (the truncation's cost; the product is local).

    The truncation needs only two additive parts, x = A + B with A at role 0
    (components 0 and 1) and B at role 1 (component 2), and the product is
    linear, so the parts are the products of (x_0 + x_1) and of x_2: two
    products of the rows instead of one per component (three in the
    simulation, two per server in party mode).  The rotation cuts at whole
    rows, so in party mode a server multiplies only the third of the rows
    where it plays role 0 and the third where it plays role 1.  A batched w
    takes ``matmul_public`` (all three components) and ``trunc``.
    """
    if x.ndim < 3:
        raise ValueError(f"{tag}: shares of x need a matrix axis, got shape {x.shape[1:]}")
    w = np.asarray(w, dtype=np.uint64)
    if w.ndim != 2:
        return trunc(ctx, matmul_public(x, w, ctx.chan.me), m, tag)
    K, N = w.shape
    if x.shape[-1] != K:
        raise ValueError(f"{tag}: shapes {x.shape[1:]} and {w.shape} do not chain")
    lead = x.shape[1:-1]
    R = int(np.prod(lead, dtype=np.int64))
    rows = x.reshape(3, R, K)
    rows_rot = Rotation(R)
    me = ctx.chan.me
    blocks = []                         # (role, first row, end row, rows to multiply)
    for k, lo, hi in rows_rot.chunks:
        for role in (0, 1):
            if me is not None and (role + k) % 3 != me:
                continue
            src = rows[k, lo:hi] + rows[(k + 1) % 3, lo:hi] if role == 0 else rows[(k + 2) % 3, lo:hi]
            blocks.append((role, lo, hi, src))
    parts = np.zeros((2, R, N), np.uint64)
    if blocks:
        out = u64_matmul(np.concatenate([b[3] for b in blocks]), w)
        at = 0
        for role, lo, hi, _ in blocks:
            parts[role, lo:hi] = out[at:at + hi - lo]
            at += hi - lo
    rot = Rotation(R * N, unit=N)
    res = trunc_roles(ctx, rot, parts[0].reshape(-1), parts[1].reshape(-1), None, m, tag)
    return res.reshape((3,) + lead + (N,))
