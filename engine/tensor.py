"""``SharedTensor``: replicated shares with their context and number format.

Operators go dunder -> named method -> protocol by operand kind (secret x
secret, secret x public).  Secret x public integer is free; secret x public
fixed point costs a truncation; secret x secret costs one resharing (integer)
or the fused multiply-truncate (fixed point).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .comm import CLIENT, MODEL_OWNER
from .context import Context
from .fixed import FixedPoint
from .protocols import arith, compare
from .protocols.trunc import matmul_public_trunc, trunc, trunc_additive
from .ring import as_ring, const


def _lift(shares: np.ndarray, ndim: int) -> np.ndarray:
    """Shares [3, *s] as [3, 1, ..., 1, *s] with ``ndim`` value axes, so that numpy
    broadcasting aligns value axes and never the party axis."""
    extra = ndim - (shares.ndim - 1)
    return shares.reshape((3,) + (1,) * extra + shares.shape[1:]) if extra > 0 else shares


def _aligned(a: np.ndarray, b: np.ndarray) -> tuple:
    nd = max(a.ndim, b.ndim) - 1
    return _lift(a, nd), _lift(b, nd)


def _check_shape(name: str, a, b) -> tuple:
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        raise ValueError(f"{name}: shapes {a} and {b} do not broadcast") from None


@dataclass(frozen=True, eq=False)
class SharedTensor:
    """Replicated 2-out-of-3 shares, party axis first.

    ``shares[j]`` is component j (uint64); server i holds components i and
    i + 1.  ``fmt`` is the fixed-point format, or None for ring integers
    (bits, counts, indices).
    """

    shares: np.ndarray
    ctx: Context
    fmt: FixedPoint | None

    def __post_init__(self):
        if self.shares.dtype != np.uint64 or self.shares.ndim < 1 or self.shares.shape[0] != 3:
            raise ValueError(
                f"SharedTensor needs uint64 shares with a leading party axis of 3, "
                f"got dtype {self.shares.dtype} and shape {self.shares.shape}"
            )

    # -- construction ------------------------------------------------------

    @classmethod
    def _encode(cls, ctx: Context, value, fmt, name: str) -> tuple:
        if fmt is None:
            arr = np.asarray(value)
            if arr.dtype.kind not in "iuO":
                raise TypeError(f"{name}: integer tensor needs integer data, got dtype {arr.dtype}")
            return as_ring(arr), None
        fmt = ctx.fixed if fmt == "default" else fmt
        return fmt.encode(value, name), fmt

    @classmethod
    def from_client(cls, ctx: Context, value, fmt="default", name: str = "input") -> "SharedTensor":
        """The client (data owner) shares a value; servers learn nothing."""
        ring, fmt = cls._encode(ctx, value, fmt, name)
        return cls(arith.share_from_client(ctx, ring, tag=name), ctx, fmt)

    @classmethod
    def from_model_owner(cls, ctx: Context, value, fmt="default", name: str = "weights") -> "SharedTensor":
        """The model owner shares a value (weights) once; servers learn nothing."""
        ring, fmt = cls._encode(ctx, value, fmt, name)
        return cls(arith.share_from_client(ctx, ring, tag=name, party=MODEL_OWNER), ctx, fmt)

    @classmethod
    def from_server(cls, ctx: Context, owner: int, value, fmt="default", name: str = "input") -> "SharedTensor":
        """Server ``owner`` shares a value it knows (for example model weights)."""
        if owner not in (0, 1, 2):
            raise ValueError(f"{name}: owner must be server 0, 1 or 2, got {owner!r}")
        ring, fmt = cls._encode(ctx, value, fmt, name)
        return cls(arith.share_from_server(ctx, owner, ring, tag=name), ctx, fmt)

    @classmethod
    def from_public(cls, ctx: Context, value, fmt="default", name: str = "public") -> "SharedTensor":
        """A public value as shares, no communication."""
        ring, fmt = cls._encode(ctx, value, fmt, name)
        return cls(arith.share_public(ring), ctx, fmt)

    @classmethod
    def random(cls, ctx: Context, shape, fmt=None) -> "SharedTensor":
        """A uniform ring element nobody knows."""
        return cls(arith.share_random(ctx, shape), ctx, ctx.fixed if fmt == "default" else fmt)

    def as_fixed_operand(self) -> "SharedTensor":
        """Mark these shares as a fixed right operand of secret products (a model's
        weights): read-only from now on, each server's operand formed once
        (``arith.fix_operand``).  Returns self."""
        arith.fix_operand(self.shares)
        return self

    # -- basic properties --------------------------------------------------

    @property
    def shape(self) -> tuple:
        return self.shares.shape[1:]

    @property
    def ndim(self) -> int:
        return self.shares.ndim - 1

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        f = "int" if self.fmt is None else f"fixed{self.fmt.frac_bits}"
        return f"SharedTensor(shape={self.shape}, {f})"

    def _new(self, shares: np.ndarray, fmt="same") -> "SharedTensor":
        return SharedTensor(shares, self.ctx, self.fmt if fmt == "same" else fmt)

    def _check_other(self, op: str, other: "SharedTensor") -> None:
        if other.ctx is not self.ctx:
            raise ValueError(f"{op}: tensors belong to different contexts")

    def _same_format(self, op: str, other: "SharedTensor") -> None:
        self._check_other(op, other)
        if self.fmt != other.fmt:
            raise ValueError(f"{op}: formats differ ({self.fmt} vs {other.fmt}); convert one first")

    def _public_ring(self, op: str, value) -> np.ndarray:
        """A public operand of add/sub in this tensor's format."""
        if self.fmt is None:
            arr = np.asarray(value)
            if arr.dtype.kind not in "iu":
                raise TypeError(f"{op}: integer tensor needs an integer public operand, got {arr.dtype}")
            return as_ring(arr)
        return self.fmt.encode(value, f"{op} operand")

    # -- opening -----------------------------------------------------------

    def reveal(self, tag: str, to: int | None = None):
        """Open to all servers (to=None), one server, or the client (to=CLIENT)."""
        ring = arith.reveal(self.ctx, self.shares, tag, to=to)
        return ring.view(np.int64) if self.fmt is None else self.fmt.decode(ring)

    def reveal_to_client(self, tag: str):
        return self.reveal(tag, to=CLIENT)

    # -- linear operations (local) -----------------------------------------

    def __add__(self, other):
        if isinstance(other, SharedTensor):
            self._same_format("add", other)
            _check_shape("add", self.shape, other.shape)
            a, b = _aligned(self.shares, other.shares)
            return self._new(a + b)
        pub = self._public_ring("add", other)
        _check_shape("add", self.shape, pub.shape)
        out = self.shares.copy() if pub.shape == self.shape else np.broadcast_to(
            self.shares, (3,) + np.broadcast_shapes(self.shape, pub.shape)).copy()
        out[0] += pub
        return self._new(out)

    __radd__ = __add__

    def __neg__(self):
        return self._new(np.uint64(0) - self.shares)

    def __sub__(self, other):
        if isinstance(other, SharedTensor):
            self._same_format("sub", other)
            _check_shape("sub", self.shape, other.shape)
            a, b = _aligned(self.shares, other.shares)
            return self._new(a - b)
        return self + _negate_public(other)

    def __rsub__(self, other):
        return (-self) + other

    # -- multiplication ----------------------------------------------------

    def __mul__(self, other):
        return self.mul(other)

    __rmul__ = __mul__

    def mul(self, other, tag: str = "mul") -> "SharedTensor":
        if isinstance(other, SharedTensor):
            self._check_other(tag, other)
            shape = _check_shape(tag, self.shape, other.shape)
            a, b = (np.ascontiguousarray(np.broadcast_to(s_, (3,) + shape))
                    for s_ in _aligned(self.shares, other.shares))
            if self.fmt is not None and other.fmt is not None:
                if self.fmt != other.fmt:
                    raise ValueError(f"{tag}: formats differ ({self.fmt} vs {other.fmt})")
                from .protocols.trunc import mul_trunc
                return self._new(mul_trunc(self.ctx, a, b, self.fmt.frac_bits, tag))
            fmt = self.fmt if self.fmt is not None else other.fmt
            return self._new(arith.mul_ss(self.ctx, a, b, tag), fmt)
        arr = np.asarray(other)
        _check_shape(tag, self.shape, arr.shape)
        if arr.dtype.kind in "iu" or isinstance(other, int):
            return self._new(self.shares * as_ring(arr))
        if self.fmt is None:
            raise TypeError(f"{tag}: integer tensor times a float: give the tensor a format first")
        prod = self.shares * self.fmt.encode(arr, f"{tag} operand")
        return self._new(trunc(self.ctx, prod, self.fmt.frac_bits, tag))

    def __matmul__(self, other):
        return self.matmul(other)

    def matmul(self, other, tag: str = "matmul") -> "SharedTensor":
        """Secret @ secret (one fused resharing + truncation) or secret @ public."""
        if self.ndim < 2:
            raise ValueError(f"{tag}: left operand needs rank >= 2, has shape {self.shape}")
        if isinstance(other, SharedTensor):
            self._check_other(tag, other)
            if other.ndim < 2 or self.shape[-1] != other.shape[-2]:
                raise ValueError(f"{tag}: shapes {self.shape} and {other.shape} do not chain")
            if self.fmt is not None and other.fmt is not None:
                if self.fmt != other.fmt:
                    raise ValueError(f"{tag}: formats differ ({self.fmt} vs {other.fmt})")
                z = arith.matmul_local(self.shares, other.shares, self.ctx.chan.me)
                return self._new(trunc_additive(self.ctx, z, self.fmt.frac_bits, tag))
            fmt = self.fmt if self.fmt is not None else other.fmt
            return self._new(arith.matmul_ss(self.ctx, self.shares, other.shares, tag), fmt)
        w = np.asarray(other)
        if w.ndim < 2 or self.shape[-1] != w.shape[-2]:
            raise ValueError(f"{tag}: shapes {self.shape} and {w.shape} do not chain")
        if w.dtype.kind in "iu":
            return self._new(arith.matmul_public(self.shares, as_ring(w), self.ctx.chan.me))
        if self.fmt is None:
            raise TypeError(f"{tag}: integer tensor times a float matrix: give the tensor a format first")
        w_ring = self.fmt.encode(w, f"{tag} operand")
        return self._new(matmul_public_trunc(self.ctx, self.shares, w_ring, self.fmt.frac_bits, tag))

    def sum_squares(self, weight: float = 1.0, tag: str = "sumsq") -> "SharedTensor":
        """weight * sum of x^2 over the last axis, with one truncation per row (``dot_last``)."""
        return self.dot_last(self, weight, tag)

    def dot_last(self, other: "SharedTensor", weight: float = 1.0, tag: str = "dot") -> "SharedTensor":
        """weight * sum of x * y over the last axis (shares of the same shape), one truncation per row.

        The products are summed as additive shares before the truncation, so
        only one value per row crosses the channel: 2 rounds, 64/3 B per row
        per server.  A ``weight`` other than 1 is folded in with 16 extra bits
        of precision.  Range: the sum (times the weight) below 2^(62 - 2f) in
        magnitude (2^26 at f = 18), or 2^(46 - 2f) = 1024 with a weight.
        """
        if self.fmt is None or other.fmt is None:
            raise TypeError(f"{tag}: needs fixed-point tensors")
        if self.shape != other.shape:
            raise ValueError(f"{tag}: shapes {self.shape} and {other.shape} differ")
        z = arith.mul_local(self.shares, other.shares).sum(axis=-1, dtype=np.uint64)
        extra = 0 if weight == 1.0 else 16
        if extra:
            z = z * const(round(weight * 2**extra))
        return self._new(trunc_additive(self.ctx, z, self.fmt.frac_bits + extra, tag))

    def truncate(self, bits: int | None = None, tag: str = "trunc") -> "SharedTensor":
        """Divide by 2^bits (default: the format's fractional bits), exact to 1 ulp."""
        m = self.fmt.frac_bits if bits is None else bits
        return self._new(trunc(self.ctx, self.shares, m, tag))

    # -- reductions and shape ----------------------------------------------

    def sum(self, axis=None, keepdims: bool = False) -> "SharedTensor":
        if axis is None:
            axes = tuple(range(1, self.shares.ndim))
        else:
            axes = tuple(a % self.ndim + 1 for a in (axis if isinstance(axis, tuple) else (axis,)))
        return self._new(self.shares.sum(axis=axes, keepdims=keepdims, dtype=np.uint64))

    def mean(self, axis=None, keepdims: bool = False, tag: str = "mean") -> "SharedTensor":
        if self.fmt is None:
            raise TypeError("mean: integer tensor; give it a format first")
        s = self.sum(axis, keepdims)
        count = self.size // max(1, s.size)
        return s.mul(1.0 / count, tag)

    def reshape(self, *shape) -> "SharedTensor":
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return self._new(self.shares.reshape((3,) + tuple(shape)))

    def transpose(self, *axes) -> "SharedTensor":
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if not axes:
            axes = tuple(reversed(range(self.ndim)))
        return self._new(self.shares.transpose((0,) + tuple(a % self.ndim + 1 for a in axes)))

    @property
    def T(self) -> "SharedTensor":
        return self.transpose()

    def swapaxes(self, a: int, b: int) -> "SharedTensor":
        return self._new(np.swapaxes(self.shares, a % self.ndim + 1, b % self.ndim + 1))

    def __getitem__(self, idx) -> "SharedTensor":
        idx = idx if isinstance(idx, tuple) else (idx,)
        return self._new(self.shares[(slice(None),) + idx])

    @staticmethod
    def concat(tensors, axis: int = 0) -> "SharedTensor":
        first = tensors[0]
        for t in tensors[1:]:
            first._same_format("concat", t)
        ax = axis % first.ndim + 1
        return first._new(np.concatenate([t.shares for t in tensors], axis=ax))

    # -- comparisons ---------------------------------------------------------

    def _bit(self, shares) -> "SharedTensor":
        return self._new(shares, fmt=None)

    def lt(self, other, tag: str = "lt") -> "SharedTensor":
        """[self < other] as an integer 0/1 tensor."""
        diff = self - other
        return self._bit(compare.msb(self.ctx, diff.shares, tag))

    def gt(self, other, tag: str = "gt") -> "SharedTensor":
        diff = (-self) + other if not isinstance(other, SharedTensor) else other - self
        return self._bit(compare.msb(self.ctx, diff.shares, tag))

    def sign_bit(self, tag: str = "msb") -> "SharedTensor":
        return self._bit(compare.msb(self.ctx, self.shares, tag))

    def relu(self, tag: str = "relu") -> "SharedTensor":
        return self._new(compare.relu(self.ctx, self.shares, tag))

    def abs(self, tag: str = "abs") -> "SharedTensor":
        return self._new(compare.abs_(self.ctx, self.shares, tag))

    def max(self, axis: int = -1, tag: str = "max", coarse: bool = False) -> "SharedTensor":
        """Maximum along ``axis``; ``coarse``: on coarse comparisons (``compare.coarse``), an
        input within ceil(log2 n) / 4 of the maximum, for callers that only subtract it."""
        if not coarse:
            return self._new(compare.max_(self.ctx, self.shares, axis, tag))
        if self.fmt is None:
            raise TypeError(f"{tag}: a coarse maximum needs a fixed-point tensor, got an integer one")
        width, shift = compare.coarse(self.fmt.frac_bits)
        return self._new(compare.max_(self.ctx, self.shares, axis, tag, width, shift))

    def where(self, a: "SharedTensor", b: "SharedTensor", tag: str = "select") -> "SharedTensor":
        """self (0/1 integer tensor) ? a : b."""
        if self.fmt is not None:
            raise TypeError("where: the condition must be an integer 0/1 tensor")
        self._check_other(tag, a)
        a._same_format(tag, b)
        return a._new(compare.select(self.ctx, self.shares, a.shares, b.shares, tag))


def _negate_public(value):
    arr = np.asarray(value)
    if arr.dtype.kind == "u":
        return np.uint64(0) - as_ring(arr)
    return -arr
