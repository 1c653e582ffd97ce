"""Scoring heads: class scores from the encoder's output.

- ``anchor_scores``: the embedding head for sentence-embedding models (no
  masked-LM head): cosine similarity between the mean-pooled sentence
  embedding and the embedding of one anchor text per class, times a
  temperature.
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
