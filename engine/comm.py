"""The one path across parties: ``Channel``.

Every value that leaves a party goes through ``Channel.exchange``: a list of
messages (sender, receiver, payload) sent simultaneously, which costs one
round.  The channel counts rounds and bytes sent per party, always; ``measure``
gives the difference over a block.  Every opening of a value to anyone (also of
values masked by fresh randomness, marked ``masked=True``) is logged with a
tag, its shape and receivers by ``record_opening``.

Parties are numbered 0, 1, 2 (the servers), ``CLIENT`` (the data owner) and
``MODEL_OWNER`` (who secret-shares the weights once).
In this one-process simulation a delivered payload is the sent array itself;
a deployment replaces ``_deliver`` with sockets and keeps the rest.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Sequence

import numba
import numpy as np

from .kernels import elementwise

CLIENT = 3
MODEL_OWNER = 4
NPARTIES = 5
PARTY_NAMES = ("S0", "S1", "S2", "client", "model-owner")


@elementwise(0)
def _pack(flat, bits, out):
    per = 8 // bits
    for i in numba.prange(out.size):
        v = np.uint8(0)
        for k in range(per):
            j = i * per + k
            if j < flat.size:
                v |= flat[j] << np.uint8(bits * k)
        out[i] = v


@elementwise(0)
def _unpack(packed, bits, out):
    per = 8 // bits
    mask = np.uint8((1 << bits) - 1)
    for i in numba.prange(packed.size):
        v = packed[i]
        for k in range(per):
            j = i * per + k
            if j < out.size:
                out[j] = (v >> np.uint8(bits * k)) & mask


def pack_bits(v: np.ndarray, bits: int) -> np.ndarray:
    """Wire encoding of uint8 values below 2^bits (bits in 1, 2, 4): 8 // bits per byte."""
    if bits not in (1, 2, 4):
        raise ValueError(f"pack_bits: bits must be 1, 2 or 4, got {bits}")
    size = -(-np.size(v) // (8 // bits))
    if _is_placeholder(v):                  # counted, never read: no bytes to pack
        return placeholder((size,), np.uint8)
    flat = np.ascontiguousarray(v, dtype=np.uint8).reshape(-1)
    out = np.empty(size, dtype=np.uint8)
    _pack(flat, bits, out)
    return out


def unpack_bits(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    """Inverse of ``pack_bits`` for n values."""
    if packed.size * (8 // bits) < n:
        raise ValueError(f"unpack_bits: {packed.size} bytes hold fewer than {n} values of {bits} bits")
    if _is_placeholder(packed):
        return placeholder((n,), np.uint8)
    out = np.empty(n, dtype=np.uint8)
    _unpack(np.ascontiguousarray(packed, dtype=np.uint8), bits, out)
    return out


def placeholder(shape, dtype=np.uint64) -> np.ndarray:
    """A zero-stride stand-in of a message's real shape and type: the one-pass simulation
    (``Channel.simulated``) hands these to ``exchange``, which counts them; nobody reads them."""
    return np.broadcast_to(np.dtype(dtype).type(0), shape)


def _is_placeholder(v: np.ndarray) -> bool:
    """An array of zeros with every stride zero, as ``placeholder`` makes them (packed or
    unpacked, its zeros are again such an array, so packing may skip the bytes)."""
    return isinstance(v, np.ndarray) and v.size > 1 and not any(v.strides) and not v.flat[0]


class Message(NamedTuple):
    src: int
    dst: int
    payload: np.ndarray


@dataclass(frozen=True)
class Cost:
    """Rounds and bytes sent by each party (S0, S1, S2, client, model owner)."""

    rounds: int = 0
    bytes_sent: tuple = (0, 0, 0, 0, 0)

    def __sub__(self, other: "Cost") -> "Cost":
        return Cost(
            self.rounds - other.rounds,
            tuple(a - b for a, b in zip(self.bytes_sent, other.bytes_sent)),
        )

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(
            self.rounds + other.rounds,
            tuple(a + b for a, b in zip(self.bytes_sent, other.bytes_sent)),
        )

    @property
    def max_server_bytes(self) -> int:
        return max(self.bytes_sent[:3])

    def server_bytes_per_element(self, n: int) -> tuple:
        """Bytes per element sent by each server."""
        return tuple(b / n for b in self.bytes_sent[:3])


@dataclass(frozen=True)
class Opening:
    """One logged opening: who received what (by tag and shape)."""

    tag: str
    shape: tuple
    receivers: tuple
    masked: bool


@dataclass
class Measurement:
    """Filled in when a ``Channel.measure()`` block ends."""

    cost: Cost = field(default_factory=Cost)
    openings: list = field(default_factory=list)


class Channel:
    """Counts every exchange; the only way data crosses between parties.

    ``me`` is None here (one process plays every party); ``party.PartyChannel``
    sets it to the party whose view the process holds.
    """

    me: int | None = None

    def __init__(self):
        self.rounds = 0
        self.bytes_sent = [0] * NPARTIES
        self.openings: list[Opening] = []
        self._taps: dict[int, list] = {}

    def cost(self) -> Cost:
        return Cost(self.rounds, tuple(self.bytes_sent))

    def _count(self, messages: Sequence[Message], tag: str) -> list:
        """The non-empty messages of one round, their routes checked and their bytes and
        the round counted (every party counts every message: the shapes are public)."""
        messages = [m for m in messages if m.payload.size]
        for m in messages:
            if not (0 <= m.src < NPARTIES and 0 <= m.dst < NPARTIES) or m.src == m.dst:
                raise ValueError(f"{tag}: bad message route {m.src} -> {m.dst}")
            self.bytes_sent[m.src] += m.payload.nbytes
        if messages:
            self.rounds += 1
        return messages

    def exchange(self, messages: Sequence[Message], tag: str, foreign_none: bool = False) -> list[np.ndarray]:
        """Send all messages at once (one round) and return what each receiver gets.

        ``foreign_none``: in party mode a message this party neither sends nor
        receives comes back as None instead of zeros of its shape (here, where
        one process plays every party, nothing is foreign)."""
        messages = self._count(messages, tag)
        if not messages:
            return []
        delivered = [self._deliver(m) for m in messages]
        for m, got in zip(messages, delivered):
            if m.dst in self._taps:
                self._taps[m.dst].append((tag, m.src, np.array(got, copy=True)))
        return delivered

    def _deliver(self, m: Message) -> np.ndarray:
        return m.payload

    def simulated(self) -> bool:
        """True when this one process plays every party and no delivery is tapped: a
        protocol may then compute all parties' steps in one pass, passing placeholders
        of the real sizes to ``exchange`` so that every message is still counted."""
        return self.me is None and not self._taps and type(self)._deliver is Channel._deliver

    def held(self, own: np.ndarray, prev: np.ndarray) -> np.ndarray:
        """Components [3, ...] as their holders have them, where server j's copy of
        component j is own[j] and server j - 1's is prev[j] (two deliveries of one
        value).  Here both are the same; party mode takes each from its own view."""
        if self.me is None or self.me > 2:
            return own
        out = np.zeros_like(own)
        nxt = (self.me + 1) % 3
        out[self.me] = own[self.me]
        out[nxt] = prev[nxt]
        return out

    def pick(self, per_server: np.ndarray) -> np.ndarray:
        """The value a server computed for itself, from per-server results [3, ...] that
        agree across servers (here: server 0's; party mode: this party's)."""
        return per_server[self.me if self.me is not None and self.me < 3 else 0]

    def record_opening(self, tag: str, shape, receivers, masked: bool = False) -> None:
        self.openings.append(Opening(tag, tuple(shape), tuple(receivers), masked))

    @contextmanager
    def measure(self) -> Iterator[Measurement]:
        before = self.cost()
        n_open = len(self.openings)
        result = Measurement()
        try:
            yield result
        finally:
            result.cost = self.cost() - before
            result.openings = self.openings[n_open:]

    @contextmanager
    def tap(self, party: int) -> Iterator[list]:
        """Record (tag, sender, payload copy) of every message ``party`` receives."""
        if party in self._taps:
            raise RuntimeError(f"party {party} is already tapped")
        log: list = []
        self._taps[party] = log
        try:
            yield log
        finally:
            del self._taps[party]
