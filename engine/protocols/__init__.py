"""Protocols over replicated shares: pure functions of (ctx, share arrays, ...).

One protocol family per module, in dependency order:

- ``roles``: spreading an asymmetric protocol's roles over the three servers.
- ``arith``: sharing, resharing, opening, multiplication and matmul.
- ``trunc``: exact fixed-point truncation (and the fused multiply-truncate).
- ``boolean``: AND on bit-sliced words, the masked A2B first level, the
  prefix tree, bit-to-arithmetic conversion.
- ``compare``: MSB, less-than, ReLU, select, abs, max.

A share array has the party axis first: ``x[j]`` is component j; server i
holds components i and i + 1.  Vectorised code that reads ``np.roll(x, -1,
axis=0)`` reads, for server i, its second component: data it holds.  Anything
else reaches a party through ``ctx.chan.exchange``.
"""
