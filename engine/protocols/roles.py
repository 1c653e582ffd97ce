"""Spreading an asymmetric protocol's roles over the three servers.

Some protocols give the three servers different jobs (one shares a value it
alone knows, one helps with correlated randomness).  Running them with fixed
roles makes one server send more than the others.  ``Rotation`` cuts the
elements into three chunks; in chunk k, role r is played by server r + k and
role component j is share component j + k (mod 3).  Role component j is held
by roles j and j - 1, exactly as real components are, so a protocol written
for roles runs unchanged on every chunk, and all chunks share each round.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..comm import Message, pack_bits, placeholder, unpack_bits
from ..prg import draw_concat


class Rotation:
    """Role bookkeeping for n flattened elements (``rotate=False``: identity).

    ``unit``: chunks are cut at multiples of ``unit`` elements (whole rows of a
    matrix product, so that a server's rows are its chunk's)."""

    def __init__(self, n: int, rotate: bool = True, unit: int = 1):
        self.n = n
        if rotate:
            if unit < 1 or n % unit:
                raise ValueError(f"Rotation: {n} elements are not whole units of {unit}")
            rows = n // unit
            cuts = [0, rows // 3 * unit, (2 * rows) // 3 * unit, n]
        else:
            cuts = [0, n, n, n]
        self.cuts = np.array(cuts, dtype=np.int64)     # chunk k is [cuts[k], cuts[k+1])
        self.chunks = [(k, cuts[k], cuts[k + 1]) for k in range(3) if cuts[k + 1] > cuts[k]]

    def span(self, me: int | None, role: int, width: int = 1) -> slice:
        """The flat elements (times ``width`` values each) where server ``me`` plays
        ``role``: its one chunk; everything in the simulation (``me`` None), nothing
        for a party that is no server."""
        if me is None:
            return slice(None)
        if me > 2:
            return slice(0, 0)
        k = (me - role) % 3
        return slice(int(self.cuts[k]) * width, int(self.cuts[k + 1]) * width)

    def players(self, *roles: int) -> list:
        """The servers that play any of ``roles`` in some chunk (for an opening's log entry)."""
        return sorted({(role + k) % 3 for k, _, _ in self.chunks for role in roles})

    def to_real(self, r: np.ndarray) -> np.ndarray:
        """[3, n, ...] role components -> real components."""
        out = np.empty_like(r)
        for k, lo, hi in self.chunks:
            out[:, lo:hi] = np.roll(r[:, lo:hi], k, axis=0) if k else r[:, lo:hi]
        return out

    def role(self, x: np.ndarray, j: int) -> np.ndarray:
        """Role component j of real components x [3, n, ...]: one array [n, ...]."""
        if len(self.chunks) == 1 and self.chunks[0][0] == 0:
            return x[j % 3]
        out = np.empty(x.shape[1:], dtype=x.dtype)
        for k, lo, hi in self.chunks:
            out[lo:hi] = x[(j + k) % 3, lo:hi]
        return out

    def draw(self, rand, role_component: int, dtype=np.uint64, width: int | None = None) -> np.ndarray:
        """A draw from the stream of role component j: [n] (or [n, width])."""
        inner = () if width is None else (width,)
        return draw_concat([(rand.component((role_component + k) % 3), hi - lo) for k, lo, hi in self.chunks],
                           dtype, inner)

    def draw_own(self, rand, role: int, dtype=np.uint64, width: int | None = None) -> np.ndarray:
        """A draw from the private stream of the server playing ``role``."""
        inner = () if width is None else (width,)
        return draw_concat([(rand.own((role + k) % 3), hi - lo) for k, lo, hi in self.chunks], dtype, inner)

    def exchange(self, chan, sends: Sequence[tuple], tag: str) -> list:
        """Send role messages in one round and return what each receiver got.

        A message is (src_role, dst_role, payload[n, ...]) or, for uint8 values
        narrower than a byte, (src_role, dst_role, payload[n], bits): each
        chunk is then packed ``8 // bits`` values to a byte on the wire.
        ``dst_role`` may be a tuple: the same payload to several roles, returned
        once (each receiver's own delivery).  Payloads come back reassembled
        over chunks.
        """
        real, index = [], []
        for s, send in enumerate(sends):
            src, dsts, payload = send[:3]
            bits = send[3] if len(send) > 3 else None
            for k, lo, hi in self.chunks:
                piece = payload[lo:hi]
                if bits is not None:              # a party packs only what it sends (others: counted)
                    mine = chan.me is None or (src + k) % 3 == chan.me
                    piece = pack_bits(piece if mine else placeholder(piece.shape, np.uint8), bits)
                for dst in (dsts if isinstance(dsts, tuple) else (dsts,)):
                    real.append(Message((src + k) % 3, (dst + k) % 3, piece))
                    index.append((s, k, hi - lo))
        got = chan.exchange(real, tag, foreign_none=True)
        if len(got) != len(real):  # empty payloads are dropped by the channel
            return [np.asarray(send[2]) for send in sends]
        chosen: dict = {}
        for (s, k, count), g, m in zip(index, got, real):
            # of several deliveries of one chunk, keep the one this party is an end of
            if (s, k) not in chosen or (chan.me is not None and chan.me in (m.src, m.dst)):
                chosen[(s, k)] = (g, m, count)
        out = []
        for s, send in enumerate(sends):
            bits = send[3] if len(send) > 3 else None
            parts = [chosen[(s, k)] for k, _, _ in self.chunks]
            if bits is None and all(g is m.payload for g, m, _ in parts):
                # delivered unchanged (in-process channel): the chunks are views of the
                # sent array, so reassembling them would only copy it
                out.append(send[2])
                continue
            pieces = [g if bits is None or g is None else unpack_bits(g, bits, count) for g, _, count in parts]
            if all(p is not None for p in pieces):
                out.append(pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=0))
                continue
            # party mode: its own deliveries copied into place, zeros in the chunks this
            # party is no end of (each element written once)
            payload = np.asarray(send[2])
            whole = np.empty(payload.shape, payload.dtype)
            for (k, lo, hi), piece in zip(self.chunks, pieces):
                whole[lo:hi] = 0 if piece is None else piece
            out.append(whole)
        return out
