"""The ring Z_2^64 on numpy uint64 arrays, and exact ring matmul over float64 BLAS.

numpy's uint64 arithmetic wraps modulo 2^64 silently, which is exactly the ring.
The one thing numpy does badly is integer matmul (no BLAS).  ``ring_matmul``
splits both operands into signed limbs of about 21 bits, multiplies limb
matrices with float64 BLAS and recombines modulo 2^64.  Every float partial sum
is kept at most 2^53 in magnitude (the inner dimension is chunked when needed),
so every float result is an exact integer and the ring result is exact.

Limbs of a ring element a (an integer modulo 2^64):

    a = l0 + l1 * 2^22 + l2 * 2^43   (mod 2^64),
    l0 in [-2^21, 2^21),  l1, l2 in [-2^20, 2^20).

a * b mod 2^64 needs the limb pairs whose shift is below 64 (l1 m2 and l2 m1
sit at shift 65 and drop out):

    l0 m0 (shift 0);  l0 m1 + l1 m0 (shift 22);  l0 m2 + l2 m0 (shift 43);
    l1 m1 (shift 44).

Six limb products (schoolbook), or five with Karatsuba on the shift-22 group:
l0 m1 + l1 m0 = (l0 + l1)(m0 + m1) - l0 m0 - l1 m1, where l1 m1 is needed anyway.  A public
matrix with small entries (fixed-point weights) has fewer non-zero limbs; with
one limb, a ring matmul costs three float products.

Left operands that share a right operand are stacked along rows, and all left
limbs that multiply the same right limb go into one BLAS call: tall calls run
BLAS nearer its peak than many small ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

RING_BITS = 64
LIMB_SHIFTS = (0, 22, 43)
_FLOAT_EXACT = 2.0**53
_U = np.uint64


def as_ring(x) -> np.ndarray:
    """Integer data as a uint64 array (negative values wrap modulo 2^64)."""
    arr = np.asarray(x)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64).view(np.uint64) if arr.dtype.kind == "i" else arr.astype(np.uint64)
    if arr.dtype.kind == "O":
        flat = [int(v) % (1 << 64) for v in arr.ravel()]
        return np.array(flat, dtype=np.uint64).reshape(arr.shape)
    raise TypeError(f"ring values must be integers, got dtype {arr.dtype}")


def to_signed(x: np.ndarray) -> np.ndarray:
    """Two's-complement view of ring elements as int64 (no copy)."""
    return x.view(np.int64)


def const(c: int) -> np.uint64:
    """A Python integer as a ring constant (reduced modulo 2^64)."""
    return _U(int(c) % (1 << 64))


# ----------------------------------------------------------------------------
# limb split: one pass over memory per operand

@numba.njit(cache=True, nogil=True)
def _split_kernel(a, l0, l1, l2, s01):
    m21 = np.uint64((1 << 21) - 1)
    h21 = np.uint64(1 << 20)
    m22 = np.uint64((1 << 22) - 1)
    h22 = np.uint64(1 << 21)
    for i in range(a.size):
        v = a[i]
        x0 = np.int64((v + h22) & m22) - np.int64(h22)
        v = (v - np.uint64(x0)) >> np.uint64(22)
        x1 = np.int64((v + h21) & m21) - np.int64(h21)
        v = (v - np.uint64(x1)) >> np.uint64(21)
        x2 = np.int64((v + h21) & m21) - np.int64(h21)
        l0[i] = x0
        l1[i] = x1
        l2[i] = x2
        s01[i] = x0 + x1


@numba.njit(cache=True, nogil=True)
def _max_abs(x):
    m = 0.0
    for i in range(x.size):
        m = max(m, abs(x[i]))
    return m


@dataclass(frozen=True)
class Limbs:
    """Float64 limbs of a uint64 array.

    ``limb[k]`` is limb k (None when known to be zero), ``bound[k]`` an upper
    bound on its magnitude; ``s01`` is l0 + l1 (for Karatsuba) with bound
    ``s01_bound``.
    """

    limb: tuple
    bound: tuple
    s01: np.ndarray | None
    s01_bound: float
    shape: tuple

    @property
    def nlimbs(self) -> int:
        return sum(x is not None for x in self.limb)


def split_limbs(a: np.ndarray, public: bool = False) -> Limbs:
    """Split a uint64 array into float64 limbs.

    ``public=True`` (a matrix everyone knows, such as public weights) measures
    the limbs and drops those that are zero; secret shares are uniform, so the
    worst-case bounds are used for them without looking at the data.
    """
    a = np.ascontiguousarray(a, dtype=np.uint64)
    flat = a.reshape(-1)
    outs = [np.empty(flat.size, dtype=np.float64) for _ in range(4)]
    _split_kernel(flat, *outs)
    l0, l1, l2, s01 = (o.reshape(a.shape) for o in outs)
    limb = [l0, l1, l2]
    bound = [2.0**21, 2.0**20, 2.0**20]
    s01_bound = 2.0**21 + 2.0**20
    if public:
        for k in range(3):
            bound[k] = _max_abs(outs[k])
            if bound[k] == 0.0:
                limb[k] = None
        s01_bound = _max_abs(outs[3])
    return Limbs(tuple(limb), tuple(bound), s01, s01_bound, a.shape)


# ----------------------------------------------------------------------------
# products

def _plan(A: Limbs, B: Limbs):
    """Which limb products to take: a list of (right, right_bound, [(left, left_bound, coeff)]).

    The ring result is sum over entries of coeff * (left @ right)."""
    full = A.nlimbs == 3 and B.nlimbs == 3
    if full:
        # Karatsuba on the shift-21 group; l1 m1 serves both c1 and c2.
        l0, l1, l2 = A.limb
        m0, m1, m2 = B.limb
        ba, bb = A.bound, B.bound
        s22, s43, s44 = 1 << 22, 1 << 43, 1 << 44
        return [
            (m0, bb[0], [(l0, ba[0], 1 - s22), (l2, ba[2], s43)]),
            (m1, bb[1], [(l1, ba[1], s44 - s22)]),
            (B.s01, B.s01_bound, [(A.s01, A.s01_bound, s22)]),
            (m2, bb[2], [(l0, ba[0], s43)]),
        ]
    plan = []
    for q in range(3):
        if B.limb[q] is None:
            continue
        lefts = [
            (A.limb[p], A.bound[p], 1 << (LIMB_SHIFTS[p] + LIMB_SHIFTS[q]))
            for p in range(3)
            if A.limb[p] is not None and LIMB_SHIFTS[p] + LIMB_SHIFTS[q] < RING_BITS
        ]
        if lefts:
            plan.append((B.limb[q], B.bound[q], lefts))
    return plan


@numba.njit(cache=True, nogil=True)
def _acc_kernel(out, prod, coeff):
    for i in range(out.size):
        out[i] += np.uint64(np.int64(prod[i])) * coeff


def _accumulate(out, prod, coeff, shape):
    """out += coeff * prod (mod 2^64); prod holds exact integers as float64."""
    if out is None:
        out = np.zeros(shape, dtype=np.uint64)
    _acc_kernel(out.reshape(-1), np.ascontiguousarray(prod).reshape(-1), const(coeff))
    return out


def limb_matmul_stacked(As: list, B: Limbs) -> list:
    """Exact [A_1 @ B, A_2 @ B, ...] mod 2^64, sharing B's limbs.

    Every A_i has shape (..., M_i, K) with the same batch shape; rows of all
    A_i and all their limbs go into one BLAS call per limb of B.
    """
    K = B.shape[-2]
    for A in As:
        if A.shape[-1] != K:
            raise ValueError(f"ring matmul: inner dimensions differ: {A.shape} @ {B.shape}")
    rows = [A.shape[-2] for A in As]
    out_shapes = [
        np.broadcast_shapes(A.shape[:-2], B.shape[:-2]) + (A.shape[-2], B.shape[-1]) for A in As
    ]
    outs = [None] * len(As)
    # Columns of the plan are the same for every A, so plan with the first
    # and substitute each A's limbs in the same positions.
    plans = [_plan(A, B) for A in As]
    if any(A.nlimbs != 3 for A in As):
        raise ValueError("ring matmul: left operands must be split as secret (full limbs)")
    for entry in range(len(plans[0])):
        right, rbound, _ = plans[0][entry]
        lefts = [(i, lft) for i in range(len(As)) for lft in plans[i][entry][2]]
        lbound = max(lb for _, (_, lb, _) in lefts)
        per_k = lbound * rbound
        chunk = K if per_k * K <= _FLOAT_EXACT else max(1, int(_FLOAT_EXACT // per_k))
        stacked = np.concatenate([lft[0] for _, lft in lefts], axis=-2) if len(lefts) > 1 else lefts[0][1][0]
        for k0 in range(0, K, chunk):
            k1 = min(K, k0 + chunk)
            if chunk == K:
                prod = np.matmul(stacked, right)
            else:
                prod = np.matmul(stacked[..., k0:k1], right[..., k0:k1, :])
            r0 = 0
            for i, (_, _, coeff) in lefts:
                r1 = r0 + rows[i]
                outs[i] = _accumulate(outs[i], prod[..., r0:r1, :], coeff, out_shapes[i])
                r0 = r1
    return [np.zeros(shape, np.uint64) if o is None else o for o, shape in zip(outs, out_shapes)]


def ring_matmul_stacked(As: list, b: np.ndarray, b_public: bool = False) -> list:
    """[a @ b for a in As] modulo 2^64, splitting b once."""
    B = split_limbs(b, public=b_public)
    limbs = [split_limbs(a) for a in As]
    return limb_matmul_stacked(limbs, B)


def ring_matmul(a: np.ndarray, b: np.ndarray, b_public: bool = False) -> np.ndarray:
    """Exact uint64 matmul modulo 2^64 (numpy broadcasting rules for batches)."""
    return ring_matmul_stacked([a], b, b_public)[0]
