"""Multi-head attention: exact softmax, or random-feature attention (RFA).

Functions of (q, k, v, key_mask, cfg) over arrays shaped [..., heads, n, dh];
they run on float arrays (float64 reference) and on ``SharedTensor`` alike
through ``nn.ops``.  ``key_mask`` is a public 0/1 array [..., n] (1 = a real
token, 0 = padding), broadcast over heads and queries.

RFA (random Fourier features of the Gaussian kernel).  With q' = q / dh^(1/4)
and k' = k / dh^(1/4),
    exp(q . k / sqrt dh) = exp(|q'|^2 / 2) exp(|k'|^2 / 2) exp(-|q' - k'|^2 / 2),
and exp(-|x - y|^2 / 2) = E_w[cos(w . (x - y))] = E_w[phi_w(x) . phi_w(y)] for
w ~ N(0, I), phi_w(x) = (cos w.x, sin w.x).  With M draws stacked in W,
phi(x) = (cos Wx, sin Wx) / sqrt(M).  The query factor exp(|q'|^2/2) is the
same for every key of a query and cancels in the normalisation; the key factor
a_j = exp(|k'_j|^2 / 2 - c) (c a constant that also cancels) does not.  Then
    out_i = phi(q_i) S / phi(q_i) z,  S = sum_j a_j phi(k_j) v_j^T,  z = sum_j a_j phi(k_j),
linear in n (a_j multiplies v_j and 1, dh + 1 values, rather than the 2M
features).  On shares: the angles W x / (2 pi) (in turns, the 1/(2 pi dh^1/4)
folded into the public W) go through the masked cosine; c is the per-head
maximum of |k'|^2/2 over real keys, found on coarse comparisons (within
log2(n)/4 of it; or a public calibrated constant), so the exponentials stay
in (0, e^(log2(n)/4)]; the normaliser is floored at ``guard`` before its
reciprocal, since random features can make it tiny or negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import ops


@dataclass(frozen=True)
class AttentionConfig:
    """``kind``: softmax or rfa.  RFA: ``features`` M per head, ``feature_map``
    trig (cos/sin, the masked cosine on shares) or positive (exp(w.x - |x|^2/2),
    Performer's FAVOR+: never a negative normaliser, but one exp per feature), projections drawn
    from the public ``seed`` (``orthogonal``: blocks of orthogonal rows with
    chi-distributed norms, lower variance), ``key_offset`` c (None: per-head
    maximum, computed securely), ``guard`` floor of the normaliser.
    ``layers``: the encoder layers (from 0) that use ``kind``, the others
    softmax attention; None: every layer (which layers can take RFA is a
    measured choice: ``bench.rfa_layers``).  ``centre_keys``: the features
    see k - c, c the mean of q + k over the sequence's real tokens
    (``_centred_keys``: exact for softmax, lower variance for the estimator)."""

    kind: Literal["softmax", "rfa"] = "softmax"
    features: int = 64
    feature_map: Literal["trig", "positive"] = "trig"
    seed: int = 0
    orthogonal: bool = True
    key_offset: float | None = None
    guard: float = 1e-3
    layers: tuple | None = None
    centre_keys: bool = False

    def __post_init__(self):
        if self.kind not in ("softmax", "rfa"):
            raise ValueError(f"AttentionConfig.kind must be 'softmax' or 'rfa', got {self.kind!r}")
        if self.features < 1:
            raise ValueError(f"AttentionConfig.features must be >= 1, got {self.features}")
        if self.feature_map not in ("trig", "positive"):
            raise ValueError(f"AttentionConfig.feature_map must be 'trig' or 'positive', got {self.feature_map!r}")
        if self.layers is not None:
            layers = tuple(self.layers)
            if not layers or any(not isinstance(i, int) or i < 0 for i in layers) or len(set(layers)) != len(layers):
                raise ValueError(f"AttentionConfig.layers must be distinct layer indices >= 0, got {self.layers!r}")
            object.__setattr__(self, "layers", tuple(sorted(layers)))

    @classmethod
    def from_options(cls, kind: str, features: int = 64, feature_map: str = "trig", layers: str = "",
                     centre_keys: bool = False, seed: int = 0) -> "AttentionConfig":
        """From command-line style options: ``layers`` a comma-separated list ("0,1"), "" for every layer."""
        idx = None
        if layers.strip():
            try:
                idx = tuple(int(t) for t in layers.split(","))
            except ValueError:
                raise ValueError(f"--rfa-layers: expected comma-separated layer indices like '0,1', got {layers!r}")
        return cls(kind, features=int(features), feature_map=feature_map, seed=int(seed), layers=idx,
                   centre_keys=bool(centre_keys))

    def for_layer(self, i: int, n_layers: int) -> "AttentionConfig":
        """The attention layer i (of n_layers) runs: this one, or softmax outside ``layers``."""
        if self.layers is not None and self.layers[-1] >= n_layers:
            raise ValueError(f"AttentionConfig.layers {self.layers} names a layer beyond the model's {n_layers}")
        return self if self.layers is None or i in self.layers else SOFTMAX


SOFTMAX = AttentionConfig()


def random_projection(m: int, dh: int, seed: int, orthogonal: bool = True) -> np.ndarray:
    """W [m, dh] with rows distributed as N(0, I) (public; not secret).

    Orthogonal random features (Yu et al. 2016): each block of dh rows is
    orthogonal, with norms drawn as those of Gaussian vectors.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    if not orthogonal:
        return rng.standard_normal((m, dh))
    blocks = []
    for _ in range(-(-m // dh)):
        q, _ = np.linalg.qr(rng.standard_normal((dh, dh)))
        norms = np.sqrt(rng.chisquare(dh, size=dh))
        blocks.append(q.T * norms[:, None])
    return np.concatenate(blocks, axis=0)[:m]


def attention(q, k, v, key_mask, cfg: AttentionConfig):
    """Softmax or random-feature attention per ``cfg.kind``: [..., h, n, dh] -> same."""
    if cfg.kind == "softmax":
        return softmax_attention(q, k, v, key_mask)
    return rfa_attention(q, k, v, key_mask, cfg)


def _mask4(key_mask):
    """[..., n] -> [..., 1, 1, n] for broadcasting over heads and queries."""
    m = np.asarray(key_mask, np.float64)
    return m[..., None, None, :]


def softmax_attention(q, k, v, key_mask):
    """softmax(q k^T / sqrt dh, masked) v."""
    dh = q.shape[-1]
    scores = ops.matmul(ops.scale(q, 1.0 / np.sqrt(dh)), ops.swap_last(k))     # [..., h, n, n]
    mask = None if key_mask is None else np.broadcast_to(_mask4(key_mask), scores.shape)
    return ops.matmul(ops.softmax(scores, mask), v)


def rfa_attention(q, k, v, key_mask, cfg: AttentionConfig):
    """Random-feature attention (see the module docstring)."""
    if cfg.centre_keys:
        k = _centred_keys(q, k, key_mask)
    if cfg.feature_map == "positive":
        return _positive_rfa(q, k, v, key_mask, cfg)
    dh = q.shape[-1]
    n = k.shape[-2]
    M = cfg.features
    W = random_projection(M, dh, cfg.seed, cfg.orthogonal)
    Wt = (W / (2 * np.pi * dh**0.25)).T                                         # [dh, M], turns
    inv_sqrt_m = 1.0 / np.sqrt(M)

    def phi(x):                                                                  # [..., n, 2M]
        c, s = ops.cos_sin_turns(ops.matmul(x, Wt))
        return ops.concat([c, s], axis=-1)

    norm = ops.row_sq_norm(k, 0.5 / np.sqrt(dh))                                 # |k'|^2 / 2, [..., h, n]
    mask = np.ones(norm.shape) if key_mask is None else np.broadcast_to(
        np.asarray(key_mask, np.float64)[..., None, :], norm.shape)
    if cfg.key_offset is None:
        # per-head maximum over real keys; padded keys are pushed down first
        low = np.where(mask > 0, 0.0, -1e3)
        offset = ops.max_last(ops.add(norm, low), coarse=True)                  # [..., h]
        shifted = ops.add(norm, ops.scale(_repeat(offset, n), -1.0))
    else:
        shifted = ops.add(norm, -cfg.key_offset)
    a = ops.mul(ops.exp(shifted), mask)                                          # [..., h, n]
    # a_j weighs key j's row of [v | 1], not its 2M features: S = phi(K)^T (a [v | 1]) is the
    # same sum with dh products per key instead of 2M (a_j 1 = a_j needs none)
    return _normalised_readout(phi(q), phi(k), v, inv_sqrt_m * inv_sqrt_m, cfg.guard, key_weight=a)


def _centred_keys(q, k, key_mask):
    """k - c, c = the mean of q + k over the real tokens of each sequence and head.

    Softmax attention is unchanged (q . (k - c) = q . k - q . c, a per-query
    constant).  The estimators are not: with FAVOR+ features the relative
    second moment of a feature for the pair (q, k) is exp(|q' + k'|^2), and
    after the shift exp(|q' + k' - c'|^2), c' = c / dh^(1/4) the mean of
    q' + k' over the pairs.  This is importance sampling of w around c' (w ~
    N(c', I) with the weight exp(-w . c' + |c'|^2 / 2) split between the two
    sides), written as a shift of the keys.  On shares: the masked sum is
    local (the mask is a public integer), then one truncation per head and
    coordinate (the public 1 / count).
    """
    n = k.shape[-2]
    lead = k.shape[:-3]
    mask = np.ones(lead + (n,), np.int64) if key_mask is None else np.asarray(key_mask).astype(np.int64)
    count = mask.sum(axis=-1)
    if np.any(count < 1):
        raise ValueError("attention: every sequence needs a real token (key_mask is all zero for some row)")
    total = ops.sum_(ops.mul(ops.add(q, k), mask[..., None, :, None]), axis=-2)            # [..., h, dh]
    centre = ops.mul(total, np.broadcast_to((1.0 / count)[..., None, None], total.shape))
    return ops.add(k, ops.scale(_repeat(centre, n, before_last=True), -1.0))


def _normalised_readout(pq, pk, v, scale: float, guard: float, key_weight=None):
    """out_i = phi(q_i) S / phi(q_i) z with S = pk^T v and z = pk^T 1, computed as one
    product against [v | 1] (or a [v | 1], ``key_weight`` a [..., n]); the normaliser is
    floored at ``guard``."""
    dh = v.shape[-1]
    if key_weight is None:
        v1 = ops.concat([v, _as_like(np.ones(v.shape[:-1] + (1,)), v)], axis=-1)   # [..., n, dh + 1]
    else:
        v1 = ops.concat([ops.mul(v, _repeat(key_weight, dh)), _repeat(key_weight, 1)], axis=-1)
    S = ops.matmul(ops.swap_last(pk), v1)                                        # [..., features, dh + 1]
    out = ops.matmul(pq, S)
    if scale != 1.0:
        out = ops.scale(out, scale)
    num, den = out[..., :dh], out[..., dh]
    den = ops.add(ops.relu(ops.add(den, -guard)), guard)                         # den >= guard
    return ops.mul(num, _repeat(ops.reciprocal(den), dh))


def _positive_rfa(q, k, v, key_mask, cfg: AttentionConfig):
    """FAVOR+ features: phi(x) = exp(W x' - |x'|^2 / 2) / sqrt(M), E[phi(q) . phi(k)] = exp(q' . k').

    Per-query and per-head stabilisers (maxima, which cancel) keep every
    exponent at or below 0; the query norm term cancels and is dropped.
    """
    dh = q.shape[-1]
    n = k.shape[-2]
    M = cfg.features
    W = random_projection(M, dh, cfg.seed, cfg.orthogonal)
    Wt = (W / dh**0.25).T                                                        # [dh, M]
    norm = ops.row_sq_norm(k, 0.5 / np.sqrt(dh))                                 # |k'|^2 / 2
    mask = np.ones(norm.shape) if key_mask is None else np.broadcast_to(
        np.asarray(key_mask, np.float64)[..., None, :], norm.shape)
    uk = ops.add(ops.matmul(k, Wt), ops.scale(_repeat(norm, M), -1.0))          # [..., h, n, M]
    low = np.where(mask > 0, 0.0, -1e3)[..., None]
    mk = ops.max_last(ops.max_last(ops.add(uk, np.broadcast_to(low, uk.shape))))  # [..., h]
    shift_k = _repeat(_repeat(mk, n), M)
    pk = ops.mul(ops.exp(ops.add(uk, ops.scale(shift_k, -1.0))), _repeat(mask, M))
    uq = ops.matmul(q, Wt)
    mq = ops.max_last(uq)                                                        # [..., h, n]
    pq = ops.exp(ops.add(uq, ops.scale(_repeat(mq, M), -1.0)))
    return _normalised_readout(pq, pk, v, 1.0, cfg.guard)


def _repeat(x, n, before_last: bool = False):
    """[..., d] -> [..., d, n] by repetition, or [..., n, d] with ``before_last``."""
    arr = x.shares if ops.is_shared(x) else x
    new = arr[..., None, :] if before_last else arr[..., None]
    shape = arr.shape[:-1] + ((n,) + arr.shape[-1:] if before_last else arr.shape[-1:] + (n,))
    if ops.is_shared(x):
        return x._new(np.ascontiguousarray(np.broadcast_to(new, shape)))
    return np.broadcast_to(new, shape)


def _as_like(public: np.ndarray, like):
    """A public array as shares when ``like`` is shared (no communication)."""
    if ops.is_shared(like):
        from secptune.engine import SharedTensor
        return SharedTensor.from_public(like.ctx, public, fmt=like.fmt)
    return public
