"""Arithmetic replicated sharing over Z_2^64 (ABY3, semi-honest, honest majority).

x = x_0 + x_1 + x_2 (mod 2^64); server i holds (x_i, x_{i+1}).
"""

from __future__ import annotations

import weakref

import numba
import numpy as np

from ..comm import CLIENT, MODEL_OWNER, PARTY_NAMES, Message
from ..gemm import u64_matmul, u64_matmul_bt
from ..kernels import elementwise


def _next(x: np.ndarray) -> np.ndarray:
    """For server i, its second component x_{i+1} (data it holds)."""
    return np.roll(x, -1, axis=0)


# ----------------------------------------------------------------------------
# creating shares

def share_public(v: np.ndarray) -> np.ndarray:
    """A public value as shares (v, 0, 0): no communication."""
    v = np.asarray(v, dtype=np.uint64)
    out = np.zeros((3,) + v.shape, dtype=np.uint64)
    out[0] = v
    return out


def share_random(ctx, shape) -> np.ndarray:
    """Shares of a uniform secret nobody knows: component j from stream j. No communication."""
    return ctx.rand.components(shape)


def share_from_server(ctx, owner: int, v: np.ndarray, tag: str) -> np.ndarray:
    """Server ``owner`` secret-shares v it knows.

    Components owner and owner+1 come from streams the owner holds; the third,
    v minus both, goes to its two holders.  Cost: 1 round, owner sends 16 B/elem.
    """
    v = np.asarray(v, dtype=np.uint64)
    o = owner % 3
    out = np.empty((3,) + v.shape, dtype=np.uint64)
    out[o] = ctx.rand.component(o).words(v.shape)
    out[(o + 1) % 3] = ctx.rand.component(o + 1).words(v.shape)
    third = v - out[o] - out[(o + 1) % 3]
    t = (o + 2) % 3
    got = ctx.chan.exchange(
        [Message(o, (o + 1) % 3, third), Message(o, t, third)], tag=f"{tag}/share-from-S{o}"
    )
    out[t] = got[0] if got else third
    return out


def share_from_client(ctx, v: np.ndarray, tag: str, party: int = CLIENT) -> np.ndarray:
    """An outside party (the client, or the model owner) secret-shares v:
    server i receives (x_i, x_{i+1}).

    Cost: 1 round; the sender sends 48 B/elem, servers send nothing.
    """
    if party not in (CLIENT, MODEL_OWNER):
        raise ValueError(f"{tag}: party {party!r} is not an outside party")
    stream = ctx.rand.client if party == CLIENT else ctx.rand.model_owner
    v = np.asarray(v, dtype=np.uint64)
    out = np.empty((3,) + v.shape, dtype=np.uint64)
    out[0] = stream.words(v.shape)
    out[1] = stream.words(v.shape)
    out[2] = v - out[0] - out[1]
    got = ctx.chan.exchange(
        [Message(party, i, np.stack([out[i], out[(i + 1) % 3]])) for i in range(3)],
        tag=f"{tag}/share-from-{PARTY_NAMES[party]}",
    )
    if got:   # component j: server j has it first in its message, server j - 1 second
        out = ctx.chan.held(np.stack([got[i][0] for i in range(3)]), np.stack([got[i - 1][1] for i in range(3)]))
    return out


# ----------------------------------------------------------------------------
# resharing and opening

def reshare(ctx, z: np.ndarray, tag: str) -> np.ndarray:
    """3-out-of-3 additive shares (z_i at server i, already masked) -> replicated.

    Server i sends z_i to server i-1.  Cost: 1 round, 8 B/elem per server.
    """
    msgs = [Message(i, (i - 1) % 3, z[i]) for i in range(3)]
    got = ctx.chan.exchange(msgs, tag=f"{tag}/reshare")
    if not got or all(g is m.payload for g, m in zip(got, msgs)):
        return z                   # delivered unchanged (in-process): component j is z_j already
    return np.stack(got)


def reveal(ctx, x: np.ndarray, tag: str, to: int | None = None, masked: bool = False) -> np.ndarray:
    """Open shares to all servers (``to=None``), to one server, or to the client.

    The one logged path for opening a value.  Cost: to all servers 1 round and
    8 B/elem per server; to the client 1 round, 8 B/elem per server; to one
    server 1 round, 8 B/elem from one server.
    """
    shape = x.shape[1:]
    if to is None:
        got = ctx.chan.exchange([Message(j, (j + 1) % 3, x[j]) for j in range(3)], tag=f"{tag}/open")
        receivers = (0, 1, 2)
        if got:       # server i: its components i, i + 1 and component i - 1 from server i - 1
            ctx.chan.record_opening(tag, shape, receivers, masked)
            return ctx.chan.pick(x + _next(x) + np.stack([got[i - 1] for i in range(3)]))
        parts = [x[0], x[1], x[2]]
    elif to == CLIENT:
        got = ctx.chan.exchange([Message(j, CLIENT, x[j]) for j in range(3)], tag=f"{tag}/open")
        receivers = (CLIENT,)
        parts = got if got else [x[0], x[1], x[2]]
    elif to in (0, 1, 2):
        missing = (to + 2) % 3
        got = ctx.chan.exchange([Message((to + 1) % 3, to, x[missing])], tag=f"{tag}/open")
        receivers = (to,)
        parts = [x[to], x[(to + 1) % 3], got[0] if got else x[missing]]
    else:
        raise ValueError(f"{tag}: cannot open to party {to!r}")
    ctx.chan.record_opening(tag, shape, receivers, masked)
    return parts[0] + parts[1] + parts[2]


# ----------------------------------------------------------------------------
# multiplication

def mul_local(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Additive shares of x*y, unmasked; local, no communication.

        z_0 = (x_0 + x_1)(y_0 + y_1)        terms 00 01 10 11
        z_1 = x_1 y_2 + x_2 (y_1 + y_2)     terms 12 21 22
        z_2 = x_2 y_0 + x_0 y_2             terms 20 02

    Server i uses only the components it holds.  Five ring products in all,
    one fewer than the symmetric (x_i + x_{i+1}) y_i + x_i y_{i+1}: over
    Z_2^64 no split into three single products exists (two servers' blocks
    share a diagonal term, which would need odd + odd = 1), so five is the
    least.  Server 0 does one product and servers 1 and 2 two each.
    """
    z = np.empty_like(x if x.size >= y.size else y, shape=np.broadcast_shapes(x.shape, y.shape))
    z[0] = (x[0] + x[1]) * (y[0] + y[1])
    z[1] = x[1] * y[2] + x[2] * (y[1] + y[2])
    z[2] = x[2] * y[0] + x[0] * y[2]
    return z


@numba.njit(inline="always")
def _server_term(s, x0, x1, x2, y0, y1, y2):
    """Server s's additive share of x * y (``arith.mul_local``)."""
    if s == 0:
        return (x0 + x1) * (y0 + y1)
    if s == 1:
        return x1 * y2 + x2 * (y1 + y2)
    return x2 * y0 + x0 * y2


@elementwise()
def _mul_roles(x, y, r, bounds, me, add, has_add, zero_sharing, parts):
    """parts[j, i] = role-j additive share of x_i * y_i (``mul_local``, plus component s
    of the replicated addend when ``has_add``), where role j of element i in chunk
    k is server s = j + k, masked: ``zero_sharing``: plus r_s - r_{s+1} (r [3, n],
    the component streams); else role 2's part plus r[0] (its own stream).
    ``me`` >= 0 (party mode): only server me's products (the rest stay as given)."""
    for i in numba.prange(x.shape[1]):
        k = 0 if i < bounds[1] else (1 if i < bounds[2] else 2)
        x0, x1, x2 = x[0, i], x[1, i], x[2, i]
        y0, y1, y2 = y[0, i], y[1, i], y[2, i]
        for j in range(3):
            s = (j + k) % 3
            if me >= 0 and s != me:     # server me plays role (me - k) in chunk k
                continue
            v = _server_term(s, x0, x1, x2, y0, y1, y2)
            if has_add:
                v += add[s, i]
            if zero_sharing:
                v += r[s, i] - r[(s + 1) % 3, i]
            elif j == 2:
                v += r[0, i]
            parts[j, i] = v


@numba.njit(inline="always")
def _zero_shared_terms(x0, x1, x2, y0, y1, y2, r0, r1, r2):
    """The three servers' additive shares of x * y (``_server_term`` at constant s)
    masked by the zero sharing r_s - r_{s+1}."""
    return (_server_term(0, x0, x1, x2, y0, y1, y2) + r0 - r1,
            _server_term(1, x0, x1, x2, y0, y1, y2) + r1 - r2,
            _server_term(2, x0, x1, x2, y0, y1, y2) + r2 - r0)


@elementwise()
def _mul_all_servers(x, y, r, parts):
    """``_mul_roles`` for every server, no rotation, no addend, under the zero sharing
    r_s - r_{s+1}: ``_server_term`` at constant s, straight-line code that the compiler
    vectorises (the general kernel's per-element role and party branches kept it scalar:
    3.7 ms per 10^6 elements for the kernel alone; ``mul_ss`` now takes 2.3 ms in all)."""
    for i in numba.prange(x.shape[1]):
        x0, x1, x2 = x[0, i], x[1, i], x[2, i]
        y0, y1, y2 = y[0, i], y[1, i], y[2, i]
        parts[0, i], parts[1, i], parts[2, i] = _zero_shared_terms(x0, x1, x2, y0, y1, y2,
                                                                   r[0, i], r[1, i], r[2, i])


def components_flat(v: np.ndarray, shape: tuple) -> np.ndarray:
    """Shares v broadcast to [3, *shape], contiguous, as [3, n]."""
    return np.ascontiguousarray(np.broadcast_to(v, (3,) + shape)).reshape(3, -1)


def masked_products(ctx, x: np.ndarray, y: np.ndarray, rot=None, add=None) -> tuple:
    """(shape, parts [3, n], mask): additive shares of x * y (+ ``add``) in one pass
    (``_mul_roles``).

    ``rot`` None: parts[j] is server j's share, masked by a zero sharing (for
    a resharing); mask None.  ``rot`` (a ``Rotation``, for the truncation):
    parts in its role layout; roles 0 and 1 send their parts masked by the
    truncation's own streams, so only role 2's part is masked here, by
    ``mask`` from role 2's private stream, which the truncation's helper
    (role 2) takes into its mask (``trunc.trunc_roles``): 8 B of keystream
    per element instead of a zero sharing's 24.
    """
    shape = np.broadcast_shapes(x.shape, y.shape)[1:]
    xf, yf = components_flat(x, shape), components_flat(y, shape)
    af = xf if add is None else components_flat(add, shape)
    n = xf.shape[1]
    if rot is None:
        cuts = np.array([0, n, n, n], dtype=np.int64)
        r = ctx.rand.components((n,))
        mask = None
    else:
        cuts = rot.cuts
        mask = rot.draw_own(ctx.rand, 2)
        r = mask.reshape(1, n)
    me = ctx.chan.me
    parts = np.empty((3, n), np.uint64) if me is None else np.zeros((3, n), np.uint64)
    if rot is None and me is None and add is None:
        _mul_all_servers(xf, yf, r, parts)
    else:
        _mul_roles(xf, yf, r, cuts, -1 if me is None else me, af, add is not None, rot is None, parts)
    return shape, parts, mask


def mul_ss(ctx, x: np.ndarray, y: np.ndarray, tag: str = "mul") -> np.ndarray:
    """Replicated product without truncation (ABY3 3.2): 1 round, 8 B/elem per server.

    ``mul_local`` and the zero sharing in one pass (``masked_products``)."""
    shape, z, _ = masked_products(ctx, x, y)
    return reshare(ctx, z, tag).reshape((3,) + shape)


@elementwise(0)
def _dot_term(x, y, r, first, me, parts):
    """parts[s, i] += server s's additive share of x_i * y_i (``mul_local``); ``first``:
    parts[s, i] = that share plus r_s - r_{s+1} instead.  ``me`` >= 0: only server me's."""
    for i in numba.prange(x.shape[1]):
        for s in range(3):
            if me >= 0 and s != me:
                continue
            v = _server_term(s, x[0, i], x[1, i], x[2, i], y[0, i], y[1, i], y[2, i])
            parts[s, i] = v + r[s, i] - r[(s + 1) % 3, i] if first else parts[s, i] + v


def mul_sum(ctx, pairs: list, tag: str = "dot") -> np.ndarray:
    """Replicated shares of sum_k a_k * b_k over pairs (a_k, b_k) of integer share arrays
    [3, n] (any strides) with one resharing: the sum of the servers' local terms is
    masked by one zero sharing, as in a matmul's inner product.  Cost: 1 round, 8 B per
    element per server, whatever the number of terms (``mul_ss`` per term: 8 B each)."""
    n = pairs[0][0].shape[1]
    if any(a.shape != (3, n) or b.shape != (3, n) for a, b in pairs):
        raise ValueError(f"{tag}: mul_sum takes pairs of [3, {n}] share arrays")
    r = ctx.rand.components((n,))
    me = -1 if ctx.chan.me is None else ctx.chan.me
    parts = np.empty((3, n), np.uint64) if me < 0 else np.zeros((3, n), np.uint64)
    for k, (a, b) in enumerate(pairs):
        _dot_term(a, b, r, k == 0, me, parts)
    return reshare(ctx, parts, tag)


# -- fixed right operands (a model's weights) --------------------------------

_FIXED: dict = {}        # id(y) -> (weak reference to y, {server: its operand, transposed})


def fix_operand(y: np.ndarray) -> np.ndarray:
    """Mark the shares y [3, K, N] of a matrix that is the right operand of many
    products (a model's weights, on every forward pass): y becomes read-only, and
    each server's operand of ``matmul_local`` (Y_0 + Y_1, [Y_2 ; Y_1 + Y_2] or
    [Y_0 ; Y_2]) is formed and transposed once, on first use, and kept while y
    lives.  Memory: 5/3 of y's in one process (a server keeps its own, 1/3 or
    2/3); saved: the sums, the concatenation and the transpose of every product
    (3-28% of a weight product at the MiniLM encoder's shapes).  Returns y."""
    if y.ndim != 3 or y.shape[0] != 3 or y.dtype != np.uint64:
        raise ValueError(f"fix_operand: needs uint64 shares [3, K, N] of one matrix, got {y.dtype} {y.shape}")
    y.flags.writeable = False
    key = id(y)
    _FIXED[key] = (weakref.ref(y), {})
    weakref.finalize(y, _FIXED.pop, key, None)
    return y


def _right_operand(y: np.ndarray, i: int) -> np.ndarray:
    """Server i's right operand in ``matmul_local``'s products."""
    if i == 0:
        return y[0] + y[1]
    if i == 1:
        return np.concatenate([y[2], y[1] + y[2]], axis=-2)
    return np.concatenate([y[0], y[2]], axis=-2)


def _fixed_operand(y: np.ndarray, i: int):
    """Server i's operand of a fixed y (``fix_operand``), transposed; None if y is not fixed."""
    entry = _FIXED.get(id(y))
    if entry is None or entry[0]() is not y:
        return None
    ops = entry[1]
    if i not in ops:
        ops[i] = np.ascontiguousarray(_right_operand(y, i).T)
    return ops[i]


def matmul_local(x: np.ndarray, y: np.ndarray, me: int | None = None) -> np.ndarray:
    """Additive shares of x @ y, unmasked: the matrix form of ``mul_local``.

        Z_0 = (X_0 + X_1)(Y_0 + Y_1),  Z_1 = [X_1 | X_2] [Y_2 ; Y_1 + Y_2],
        Z_2 = [X_2 | X_0] [Y_0 ; Y_2]:

    one product per server (``gemm.u64_matmul``), the two terms of servers 1
    and 2 as one product over the doubled inner dimension.
    Communication does not depend on the inner dimension.  ``me`` (party
    mode): only that server's Z_me (the client and the model owner compute
    none); the simulation computes all three the same way.
    """
    out_shape = np.broadcast_shapes(x.shape[1:-2], y.shape[1:-2]) + (x.shape[-2], y.shape[-1])
    # the products are written in place; party mode leaves the others' terms zero
    z = (np.empty if me is None else np.zeros)((3,) + out_shape, dtype=np.uint64)
    for i in range(3) if me is None else ([me] if me < 3 else []):
        if i == 0:
            a = x[0] + x[1]
        else:
            a = np.concatenate([x[1], x[2]] if i == 1 else [x[2], x[0]], axis=-1)
        bt = _fixed_operand(y, i)
        if bt is None:
            u64_matmul(a, _right_operand(y, i), out=z[i])
        else:
            u64_matmul_bt(a, bt, out=z[i])
    return z


def matmul_ss(ctx, x: np.ndarray, y: np.ndarray, tag: str = "matmul") -> np.ndarray:
    """Replicated matmul without truncation: 1 round, 8 B per output element per server."""
    z = matmul_local(x, y, ctx.chan.me)
    z += ctx.rand.zero_sharing(z.shape[1:])
    return reshare(ctx, z, tag)


def matmul_public(x: np.ndarray, w: np.ndarray, me: int | None = None) -> np.ndarray:
    """Shares of x @ w for a public ring matrix w: component-wise, local, no communication.

    ``me`` (party mode): only the two components that server holds (none for
    the client and the model owner)."""
    if x.ndim < 3:
        raise ValueError(f"matmul_public: shares of x need a matrix axis, got shape {x.shape[1:]}")
    w = np.asarray(w, dtype=np.uint64)
    comps = [0, 1, 2] if me is None else ([me, (me + 1) % 3] if me < 3 else [])
    res = np.zeros((3,) + np.broadcast_shapes(x.shape[1:-2], w.shape[:-2]) + (x.shape[-2], w.shape[-1]), np.uint64)
    for j in comps:
        u64_matmul(x[j], w, out=res[j])
    return res
