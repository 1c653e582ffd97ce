"""Operations that run on float arrays (numpy, float32 or float64) and on ``SharedTensor`` alike.

Each function takes the same arguments for both kinds; on float arrays it
computes the exact function, on shares the engine's protocol or
approximation.  Public operands (weights, masks, projections) are always
float or integer numpy arrays.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from secptune.engine import SharedTensor, approx


def is_shared(x) -> bool:
    return isinstance(x, SharedTensor)


def matmul(a, b):
    """a @ b; either operand may be shared; a public b may be float.

    A batch of rows times one matrix ([..., m, k] @ [k, n]) runs as a single
    2-D product: one BLAS call (or one ring matmul) instead of a loop.
    """
    if is_shared(a) or is_shared(b):
        if not is_shared(a):
            raise TypeError("matmul: a public left operand times shares is not supported; transpose")
        if a.ndim > 2 and len(b.shape) == 2:
            lead = a.shape[:-1]
            return a.reshape(-1, a.shape[-1]).matmul(b).reshape(*lead, b.shape[-1])
        return a.matmul(b)
    if a.ndim > 2 and b.ndim == 2:
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + (b.shape[-1],))
    return np.matmul(a, b)


def mul(a, b):
    """Elementwise product with broadcasting (shares x shares, shares x public)."""
    if not is_shared(a) and is_shared(b):
        a, b = b, a
    if not is_shared(a):
        return np.multiply(a, b)
    shape = np.broadcast_shapes(a.shape, np.shape(b) if not is_shared(b) else b.shape)
    return _broadcast(a, shape).mul(b)


def _broadcast(x: SharedTensor, shape) -> SharedTensor:
    if x.shape == tuple(shape):
        return x
    return x._new(np.ascontiguousarray(np.broadcast_to(x.shares, (3,) + tuple(shape))))


def scale(x, c: float):
    """x times a public scalar (a Python float, so float32 arrays stay float32)."""
    return x.mul(float(c)) if is_shared(x) else x * float(c)


def add(a, b):
    return a + b if not is_shared(b) or is_shared(a) else b + a


def sum_(x, axis, keepdims=False):
    return x.sum(axis=axis, keepdims=keepdims) if is_shared(x) else np.sum(x, axis=axis, keepdims=keepdims)


def concat(xs, axis):
    return SharedTensor.concat(list(xs), axis=axis) if is_shared(xs[0]) else np.concatenate(xs, axis=axis)


def swap_last(x):
    return x.swapaxes(-1, -2) if is_shared(x) else np.swapaxes(x, -1, -2)


def exp(x):
    return approx.exp(x) if is_shared(x) else np.exp(x)


def reciprocal(x):
    return approx.reciprocal(x) if is_shared(x) else 1.0 / x


def relu(x):
    return x.relu() if is_shared(x) else np.maximum(x, 0.0)


def max_last(x, coarse: bool = False):
    """Maximum over the last axis; on shares with ``coarse``, an input within
    ceil(log2 n) / 4 of it (``SharedTensor.max``), for offsets that cancel."""
    return x.max(axis=-1, coarse=coarse) if is_shared(x) else np.max(x, axis=-1)


def softmax(x, mask=None):
    if is_shared(x):
        return approx.softmax(x, mask=mask)
    x = np.where(mask > 0, x, -np.inf) if mask is not None else x
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def cos_sin_turns(u):
    """(cos 2 pi u, sin 2 pi u)."""
    if is_shared(u):
        r = approx.cos_sin(u)
        return r["cos"], r["sin"]
    return np.cos(2 * np.pi * u), np.sin(2 * np.pi * u)


def row_sq_norm(x, weight: float):
    """weight * sum of squares over the last axis (one truncation per row on shares)."""
    if is_shared(x):
        return x.sum_squares(weight)
    return weight * np.sum(x * x, axis=-1)


@numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
def _gelu_exact(x):
    return 0.5 * x * (1.0 + math.erf(x * 0.7071067811865476))


def gelu(x, coarse: bool = False):
    """Exact GELU (erf) on floats; on shares the whole-line approximation, or with
    ``coarse`` the one for |x| < approx.GELU_MAX_INPUT_COARSE (the caller's guarantee)."""
    if is_shared(x):
        return approx.gelu(x, coarse=coarse)
    return _gelu_exact(np.asarray(x))


def layernorm(x, gamma, beta, eps: float):
    if is_shared(x):
        return approx.layernorm(x, gamma=gamma, beta=beta, eps=eps)
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def reshape(x, shape):
    return x.reshape(shape) if is_shared(x) else np.reshape(x, shape)


def transpose(x, axes):
    return x.transpose(axes) if is_shared(x) else np.transpose(x, axes)
