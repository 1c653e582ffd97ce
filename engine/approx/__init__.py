"""Nonlinear functions on fixed-point shares (the last layer of the engine).

Modules, in dependency order: ``fit`` (reproducible polynomial fits) ->
``coeffs`` (its output) -> ``poly`` (batched powers, one-truncation
combination) -> ``elementary`` (exp, reciprocal, rsqrt) -> ``trig`` (masked
cosine and sine) -> ``activations`` (GELU, softmax, LayerNorm).

The functions here take and return ``SharedTensor``; each docstring in the
modules states the domain, the error bound (a named constant), the cost and
where the coefficients come from.  Declared costs are in ``engine/costs.py``.
"""

from __future__ import annotations

import numpy as np

from ..fixed import FixedPoint
from ..tensor import SharedTensor
from . import activations as _act
from . import elementary as _el
from . import trig as _trig
from .activations import (  # noqa: F401  (bounds, re-exported for callers and tests)
    GELU_MAX_ABS_ERR,
    GELU_MAX_INPUT_COARSE,
    GELU_POLY_MAX_ABS_ERR,
    GELU_POLY_RANGE,
    LAYERNORM_MAX_REL_ERR,
    LAYERNORM_MIN_VAR,
    SOFTMAX_MAX_ABS_ERR,
)
from .elementary import (  # noqa: F401
    EXP_HI,
    EXP_LO,
    EXP_MAX_ABS_ERR,
    EXP_MIN_INPUT,
    EXP_MAX_REL_ERR,
    EXP_REL_FLOOR,
    RECIPROCAL_EXTRA_BITS,
    RECIPROCAL_MAX_REL_ERR,
    RSQRT_MAX_REL_ERR,
)
from .trig import COS_MAX_ABS_ERR_ULP  # noqa: F401


def _fixed(x: SharedTensor, name: str) -> int:
    if not isinstance(x, SharedTensor):
        raise TypeError(f"{name}: expected a SharedTensor, got {type(x).__name__}")
    if x.fmt is None:
        raise TypeError(f"{name}: needs a fixed-point tensor, got an integer one")
    return x.fmt.frac_bits


def exp(x: SharedTensor, clamp: bool = True, tag: str = "exp") -> SharedTensor:
    """e^x; see ``elementary.exp``."""
    return x._new(_el.exp(x.ctx, x.shares, _fixed(x, tag), clamp, tag))


def reciprocal(x: SharedTensor, extra_bits: int = 0, tag: str = "reciprocal") -> SharedTensor:
    """1/x for positive x; with ``extra_bits`` the result has a finer format."""
    f = _fixed(x, tag)
    out = _el.reciprocal(x.ctx, x.shares, f, extra_bits, tag)
    return x._new(out, FixedPoint(f + extra_bits) if extra_bits else x.fmt)


def rsqrt(x: SharedTensor, tag: str = "rsqrt") -> SharedTensor:
    """1/sqrt(x) for positive x; see ``elementary.rsqrt``."""
    return x._new(_el.rsqrt(x.ctx, x.shares, _fixed(x, tag), tag))


def gelu(x: SharedTensor, tag: str = "gelu", coarse: bool = False) -> SharedTensor:
    """GELU on the whole real line (``coarse``: for |x| < GELU_MAX_INPUT_COARSE); see
    ``activations.gelu``."""
    return x._new(_act.gelu(x.ctx, x.shares, _fixed(x, tag), tag, coarse))


def gelu_poly(x: SharedTensor, tag: str = "gelu-poly") -> SharedTensor:
    """Comparison-free GELU for inputs in [-4, 4]; see ``activations.gelu_poly``."""
    return x._new(_act.gelu_poly(x.ctx, x.shares, _fixed(x, tag), tag))


def softmax(x: SharedTensor, mask=None, tag: str = "softmax") -> SharedTensor:
    """Softmax along the last axis; ``mask`` (public 0/1) drops entries."""
    if mask is not None:
        mask = np.asarray(mask)
        np.broadcast_shapes(mask.shape, x.shape)
    return x._new(_act.softmax(x.ctx, x.shares, _fixed(x, tag), mask, tag))


def layernorm(x: SharedTensor, gamma=None, beta=None, eps: float = 1e-12, tag: str = "layernorm") -> SharedTensor:
    """LayerNorm over the last axis; gamma/beta public arrays or SharedTensors."""
    g = gamma.shares if isinstance(gamma, SharedTensor) else gamma
    b = beta.shares if isinstance(beta, SharedTensor) else beta
    return x._new(_act.layernorm(x.ctx, x.shares, _fixed(x, tag), g, b, eps, tag))


def cos_sin(u: SharedTensor, want=("cos", "sin"), tag: str = "cos") -> dict:
    """{'cos': cos 2 pi u, 'sin': sin 2 pi u} for angles u in turns (masked, 3 rounds)."""
    res = _trig.cos_sin(u.ctx, u.shares, _fixed(u, tag), tuple(want), tag)
    return {k: u._new(v) for k, v in res.items()}


def cos(u: SharedTensor, tag: str = "cos") -> SharedTensor:
    """cos 2 pi u for angles in turns."""
    return cos_sin(u, ("cos",), tag)["cos"]
