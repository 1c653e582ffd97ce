"""Scoring heads: class scores from the encoder's output.

- ``anchor_scores``: the embedding head for sentence-embedding models (no
  masked-LM head): cosine similarity between the mean-pooled sentence
  embedding and the embedding of one anchor text per class, times a
  temperature.
- ``pair_scores``: the sentence-pair head for two-sentence tasks (paraphrase,
  entailment) on sentence-embedding models: each sentence is encoded on its
  own and the score is the temperature times the cosine of the two pooled
  embeddings; the client turns it into class scores with a threshold it
  fits on its training examples (``tuning.loop.ClientHead``).
- ``encoder.mlm_logits`` (in ``encoder``) is the masked-LM head.
"""

from __future__ import annotations

import numpy as np

from . import ops


def normalise_rows(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def anchor_scores(pooled, anchors: np.ndarray, temperature: float = 20.0):
    """temperature * cos(pooled, anchor_c) for each class c: [b, d] -> [b, C].

    ``anchors`` are public unit-normalisable rows [C, d].  On shares the
    sentence norm comes from ``approx.rsqrt``; on floats it is exact.
    """
    a = normalise_rows(anchors).T                                   # [d, C]
    dots = ops.matmul(pooled, a)                                    # [b, C]
    if ops.is_shared(pooled):
        from secptune.engine import approx

        inv = approx.rsqrt(pooled.sum_squares(1.0))                 # 1 / |pooled|, [b]
        inv = inv.reshape(-1, 1)
        return ops.scale(ops.mul(dots, inv), temperature)
    return temperature * dots / np.linalg.norm(pooled, axis=-1, keepdims=True)


def pair_scores(a, b, temperature: float = 20.0):
    """temperature * cos(a_i, b_i) per row: two [n, d] -> [n, 1].

    On shares: the two dot products of each row (a.b, and the squared norms of
    a and b in one batch) are summed before one truncation per row, the norms
    come from ``approx.rsqrt``; on floats it is exact.
    """
    if ops.is_shared(a):
        from secptune.engine import SharedTensor, approx

        n = a.shape[0]
        dots = a.dot_last(b)                                            # [n]
        inv = approx.rsqrt(SharedTensor.concat([a, b], axis=0).sum_squares(1.0))    # [2n]
        cos = ops.mul(ops.mul(dots, inv[:n]), inv[n:])     # not inv_a inv_b first: too few bits when small
        return ops.scale(cos, temperature).reshape(n, 1)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return temperature * cos[:, None]
