"""The BERT / RoBERTa encoder as functions of (params, x), on floats and on shares.

    embed (client side, plaintext)  ->  add_prompt  ->  encoder_layer x L
    ->  mean_pool (embedding head) | mlm_logits (masked-LM head)

Post-LN layers: x = LN(x + Attn(x)); x = LN(x + W2 GELU(W1 x)).  Weights may be
float arrays (public) or ``SharedTensor`` (secret-shared by the model owner);
activations are float arrays (reference) or ``SharedTensor`` (secure).
"""

from __future__ import annotations

import numpy as np

from . import ops
from .attention import AttentionConfig, attention


def position_ids(ids: np.ndarray, pad_id: int, arch: str) -> np.ndarray:
    """BERT: 0, 1, 2, ...; RoBERTa: padding_idx + 1 + index among non-pad tokens, pads at padding_idx."""
    if arch == "roberta":
        keep = (ids != pad_id).astype(np.int64)
        return np.cumsum(keep, axis=-1) * keep + pad_id
    return np.broadcast_to(np.arange(ids.shape[-1]), ids.shape)


def embed(p, cfg, ids: np.ndarray, type_ids: np.ndarray | None = None) -> np.ndarray:
    """Embedding-layer output [b, n, d] in float64, computed by whoever holds the table
    (the client, in the default setting)."""
    ids = np.asarray(ids)
    if ids.max(initial=0) >= cfg.vocab_size or ids.min(initial=0) < 0:
        raise ValueError(f"token ids must be in [0, {cfg.vocab_size}), got [{ids.min()}, {ids.max()}]")
    pos = position_ids(ids, cfg.pad_token_id, cfg.arch)
    if pos.max(initial=0) >= cfg.max_positions:
        raise ValueError(f"sequence too long: position {pos.max()} >= max_position_embeddings {cfg.max_positions}")
    tt = np.zeros_like(ids) if type_ids is None else np.asarray(type_ids)
    x = (p.word_emb[ids].astype(np.float64) + p.pos_emb[pos].astype(np.float64)
         + p.type_emb[tt].astype(np.float64))
    return ops.layernorm(x, p.emb_ln_g.astype(np.float64), p.emb_ln_b.astype(np.float64), cfg.layer_norm_eps)


def add_prompt(x, prompts: np.ndarray):
    """Black-Box Tuning's injection: prompt rows added at positions 1..L.

    x [E, n, d] (E examples), prompts [P, L, d] -> [P * E, n, d], candidate-major.
    """
    P, L, d = prompts.shape
    E, n, _ = x.shape
    if 1 + L > n:
        raise ValueError(f"prompt length {L} does not fit sequences of {n} tokens")
    pad = np.zeros((P, 1, n, d), dtype=np.float64 if ops.is_shared(x) else x.dtype)
    pad[:, 0, 1:1 + L] = prompts
    tiled = ops.reshape(ops.concat([x] * P, axis=0), (P, E, n, d))     # candidate-major copies
    return ops.reshape(ops.add(tiled, pad), (P * E, n, d))


def linear(x, w, b):
    return ops.add(ops.matmul(x, w), b)


GELU_BOUND_SLACK = 1.05        # LayerNorm on shares is within 1e-3 relative; the matmul within ulps


def gelu_input_bound(lp) -> float:
    """An upper bound on |W1 y + b1| over every LayerNorm output y = g * z + b with
    sum z = 0 and sum z^2 <= d (Cauchy-Schwarz per unit j:
    sqrt(d) ||W1[:, j] * g|| + |W1[:, j] . b + b1[j]|), from plaintext weights."""
    w = np.asarray(lp.fc1_w, np.float64)
    g = np.asarray(lp.ln1_g, np.float64)
    b = np.asarray(lp.ln1_b, np.float64)
    d = w.shape[0]
    per_unit = np.sqrt(d) * np.linalg.norm(w * g[:, None], axis=0) + np.abs(b @ w + np.asarray(lp.fc1_b, np.float64))
    return float(per_unit.max()) * GELU_BOUND_SLACK


def _coarse_gelu(lp) -> bool:
    """Whether the layer's GELU may use coarse comparisons (inputs below
    approx.GELU_MAX_INPUT_COARSE): always with secret-shared weights, whose owner
    checked the bound before sharing (``share_weights``); with public weights when
    the bound holds (every party computes the same answer)."""
    if ops.is_shared(lp.fc1_w):
        return True
    from secptune.engine import approx
    return gelu_input_bound(lp) < approx.GELU_MAX_INPUT_COARSE


def encoder_layer(lp, x, key_mask, cfg, att: AttentionConfig):
    """One post-LN BERT layer: [b, n, d] -> [b, n, d]."""
    b, n, d = x.shape
    H, dh = cfg.heads, cfg.head_dim

    def heads(t):                                               # [b, n, d] -> [b, H, n, dh]
        return ops.transpose(ops.reshape(t, (b, n, H, dh)), (0, 2, 1, 3))

    q, k, v = (heads(linear(x, w, bb)) for w, bb in ((lp.q_w, lp.q_b), (lp.k_w, lp.k_b), (lp.v_w, lp.v_b)))
    a = attention(q, k, v, key_mask, att)                       # [b, H, n, dh]
    a = ops.reshape(ops.transpose(a, (0, 2, 1, 3)), (b, n, d))
    x = ops.layernorm(ops.add(x, linear(a, lp.o_w, lp.o_b)), lp.ln1_g, lp.ln1_b, cfg.layer_norm_eps)
    h = ops.gelu(linear(x, lp.fc1_w, lp.fc1_b), coarse=ops.is_shared(x) and _coarse_gelu(lp))
    return ops.layernorm(ops.add(x, linear(h, lp.fc2_w, lp.fc2_b)), lp.ln2_g, lp.ln2_b, cfg.layer_norm_eps)


def encode(p, x, key_mask, cfg, att: AttentionConfig = AttentionConfig()):
    """All layers: embedding output [b, n, d] -> last hidden state [b, n, d]; ``att``
    says which layers use which attention (``AttentionConfig.layers``)."""
    for i, lp in enumerate(p.layers):
        x = encoder_layer(lp, x, key_mask, cfg, att.for_layer(i, len(p.layers)))
    return x


def mean_pool(h, key_mask):
    """Mean of the hidden states over real tokens: [b, n, d] -> [b, d]."""
    m = np.asarray(key_mask, np.float64)
    counts = m.sum(-1, keepdims=True)
    if ops.is_shared(h):
        summed = ops.sum_(ops.mul(h, m[..., None].astype(np.int64)), axis=1)
        return ops.mul(summed, 1.0 / counts)
    return (h * m[..., None]).sum(1) / counts


def mlm_logits(head, h_mask, word_ids, eps: float):
    """Masked-LM logits at given positions restricted to ``word_ids``: h_mask [b, d] -> [b, len(word_ids)]."""
    t = ops.gelu(linear(h_mask, head.dense_w, head.dense_b))
    t = ops.layernorm(t, head.ln_g, head.ln_b, eps)
    return linear(t, head.decoder_w[:, word_ids], head.decoder_b[word_ids])


def restrict_mlm(head, word_ids):
    """The masked-LM head with the decoder cut to the columns of ``word_ids`` (in that
    order), which is all a verbalizer reads: [hidden, C] instead of [hidden, vocab]."""
    from dataclasses import replace

    ids = np.asarray(word_ids, np.int64)
    return replace(head, decoder_w=np.ascontiguousarray(np.asarray(head.decoder_w)[:, ids]),
                   decoder_b=np.asarray(head.decoder_b)[ids])


def share_weights(ctx, p, private: bool = True, word_ids=None):
    """The encoder's layer weights on the servers: secret-shared by the model owner
    (``private``, the default setting) or public float arrays.  Embedding tables
    stay with whoever embeds (the client holds a copy in the default setting).
    ``word_ids`` (public: a task's label words): the masked-LM head goes too,
    cut to those decoder columns (``restrict_mlm``), shared or public like the rest.

    Before sharing, the model owner checks that every layer's GELU inputs stay
    within the coarse GELU's domain (``gelu_input_bound``), since the servers,
    who cannot check it, use that variant on secret-shared weights (the head's
    GELU is the whole-line one)."""
    from dataclasses import fields, replace

    head = None
    if word_ids is not None:
        if p.mlm is None:
            raise ValueError("the masked-LM head was asked for, but this checkpoint has none")
        head = restrict_mlm(p.mlm, word_ids)
    if not private:
        return p if head is None else replace(p, mlm=head)
    from secptune.engine import SharedTensor, approx

    for i, lp in enumerate(p.layers):
        bound = gelu_input_bound(lp)
        if bound >= approx.GELU_MAX_INPUT_COARSE:
            raise ValueError(f"layer {i}: GELU inputs may reach {bound:.1f}, beyond the secure GELU's "
                             f"domain (|x| < {approx.GELU_MAX_INPUT_COARSE}); these weights cannot be shared")

    def share(name, a):
        t = SharedTensor.from_model_owner(ctx, np.asarray(a, np.float64), name=name)
        return t.as_fixed_operand() if t.ndim == 2 else t      # matrices: right operands of every pass

    layers = [
        type(lp)(**{f.name: share(f"layer{i}.{f.name}", getattr(lp, f.name)) for f in fields(lp)})
        for i, lp in enumerate(p.layers)
    ]
    if head is not None:
        head = type(head)(**{f.name: share(f"mlm.{f.name}", getattr(head, f.name)) for f in fields(head)})
    return replace(p, layers=layers, mlm=head)


def share_embeddings(ctx, p):
    """The embedding tables and their LayerNorm, secret-shared by the model owner
    (for the setting where the client has no copy of the table)."""
    from dataclasses import replace

    from secptune.engine import SharedTensor

    def share(name, a):
        return SharedTensor.from_model_owner(ctx, np.asarray(a, np.float64), name=name)

    return replace(p, word_emb=share("word_emb", p.word_emb), pos_emb=share("pos_emb", p.pos_emb),
                   type_emb=share("type_emb", p.type_emb), emb_ln_g=share("emb_ln_g", p.emb_ln_g),
                   emb_ln_b=share("emb_ln_b", p.emb_ln_b))


def embed_on_shares(ctx, sp, cfg, ids: np.ndarray, type_ids: np.ndarray | None = None):
    """Embedding-layer output on shares from secret-shared tables (``share_embeddings``).

    The client secret-shares the one-hot rows of its token ids (and type ids);
    one integer-by-fixed-point matmul per table selects the rows (a resharing,
    no truncation).  Positions are public, so their rows are read off the
    shared table locally.  Done once per dataset and cached as shares.
    Cost: the client sends 48 B per token per vocabulary entry (the one-hot);
    the servers 8 B per output element per table, plus the LayerNorm.
    """
    from secptune.engine import SharedTensor

    ids = np.asarray(ids)
    b, n = ids.shape
    if ids.max(initial=0) >= cfg.vocab_size or ids.min(initial=0) < 0:
        raise ValueError(f"token ids must be in [0, {cfg.vocab_size}), got [{ids.min()}, {ids.max()}]")
    tt = np.zeros_like(ids) if type_ids is None else np.asarray(type_ids)

    def onehot(idx, size, name):
        oh = np.zeros((idx.size, size), np.int64)
        oh[np.arange(idx.size), idx.reshape(-1)] = 1
        return SharedTensor.from_client(ctx, oh, fmt=None, name=name)

    words = onehot(ids, cfg.vocab_size, "token-onehot").matmul(sp.word_emb, tag="embed/words")
    types = onehot(tt, cfg.type_vocab_size, "type-onehot").matmul(sp.type_emb, tag="embed/types")
    pos = position_ids(ids, cfg.pad_token_id, cfg.arch).reshape(-1)
    rows = sp.pos_emb[pos]                                            # public positions: local
    x = (words + types + rows).reshape(b, n, cfg.hidden)
    return ops.layernorm(x, sp.emb_ln_g, sp.emb_ln_b, cfg.layer_norm_eps)
