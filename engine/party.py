"""Party mode: one party's view of a run, with real messages to the other parties.

In the one-process simulation a shared array [3, ...] holds all three share
components and ``Channel`` hands each payload over in place.  In party mode
every party (S0, S1, S2, the client, the model owner) runs the *same*
protocol code on arrays of the same shapes, but only what it holds is real:

- server i holds components i and i + 1 of every sharing and computes the
  slots of the per-server arrays that belong to it; the other slots are
  filled from zeros and are never sent;
- draws from keystreams it does not hold are zeros (``prg.NullStream``);
- in ``PartyChannel.exchange`` it sends the messages it is the sender of
  over its links, receives those addressed to it, keeps its own payloads
  as sent, and sees zeros for messages between two other parties.

A protocol is correct in party mode when every component is computed by
both of its holders from data they hold; the tests run each protocol with
the parties as threads and compare with the simulation (same seed, same
keys: the opened values are identical).

``Link`` is one direction-pair between two parties: ``send(tag, payload)``
and ``recv(tag, like)``.  ``QueueLink`` connects threads of one process
(for tests); ``transport.TlsLink`` connects processes over TCP with mutual TLS.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Sequence

import numpy as np

from .comm import NPARTIES, PARTY_NAMES, Channel, Message
from .context import Context, EngineConfig
from .prg import Randomness, held_labels


class LinkError(RuntimeError):
    """A message that did not arrive as the protocol expects; names the peer and the step."""


class QueueLink:
    """An in-process link (threads): frames are (seq, tag, bytes) on a queue per direction."""

    def __init__(self, me: int, peer: int, out_q: queue.Queue, in_q: queue.Queue, timeout: float = 60.0):
        self.me, self.peer = me, peer
        self._out, self._in = out_q, in_q
        self.timeout = timeout
        self.sent_seq = self.recv_seq = 0
        self.bytes_sent = self.bytes_received = 0

    def send(self, tag: str, payload: np.ndarray) -> None:
        data = np.ascontiguousarray(payload).tobytes()
        self._out.put((self.sent_seq, tag, data))
        self.sent_seq += 1
        self.bytes_sent += len(data)

    def recv(self, tag: str, like: np.ndarray) -> np.ndarray:
        try:
            seq, got_tag, data = self._in.get(timeout=self.timeout)
        except queue.Empty:
            raise LinkError(f"{PARTY_NAMES[self.me]}: no message from {PARTY_NAMES[self.peer]} within "
                            f"{self.timeout} s at step {tag!r}") from None
        check_frame(self.me, self.peer, tag, self.recv_seq, like.nbytes, got_tag, seq, len(data))
        self.recv_seq += 1
        self.bytes_received += len(data)
        return np.frombuffer(data, dtype=like.dtype).reshape(like.shape).copy()


def check_frame(me: int, peer: int, tag: str, seq: int, nbytes: int, got_tag: str, got_seq: int,
                got_nbytes: int) -> None:
    """The checks every received frame passes: its step, its place in the sequence, its size."""
    where = f"{PARTY_NAMES[me]}: message from {PARTY_NAMES[peer]} at step {tag!r}"
    if got_seq != seq:
        raise LinkError(f"{where}: sequence number {got_seq}, expected {seq} (a message was lost or reordered)")
    if got_tag != tag:
        raise LinkError(f"{where}: the peer is at step {got_tag!r} (the parties run different programs)")
    if got_nbytes != nbytes:
        raise LinkError(f"{where}: {got_nbytes} bytes, expected {nbytes}")


class PartyChannel(Channel):
    """``Channel`` for one party: the same counting, real messages over ``links``.

    Every party counts every message (the shapes are public), so the cost
    accounting is the simulation's; ``links[p].bytes_sent`` is what actually
    left this party for p.
    """

    def __init__(self, me: int, links: dict, on_round_end=None):
        super().__init__()
        self.me = me
        self.links = links
        self.on_round_end = on_round_end      # e.g. flush what this round wrote to sockets

    def exchange(self, messages: Sequence[Message], tag: str, foreign_none: bool = False) -> list[np.ndarray]:
        messages = self._count(messages, tag)
        if not messages:
            return []
        for m in messages:
            if m.src == self.me:
                self._link(m.dst, tag).send(tag, m.payload)
        delivered = []
        for m in messages:
            if m.src == self.me:
                delivered.append(m.payload)
            elif m.dst == self.me:
                delivered.append(self._link(m.src, tag).recv(tag, m.payload))
            else:
                delivered.append(None if foreign_none else np.zeros_like(m.payload))
        for m, got in zip(messages, delivered):
            if m.dst == self.me and self.me in self._taps:
                self._taps[self.me].append((tag, m.src, np.array(got, copy=True)))
        if self.on_round_end is not None:
            self.on_round_end()
        return delivered

    def _link(self, peer: int, tag: str):
        link = self.links.get(peer)
        if link is None:
            raise LinkError(f"{PARTY_NAMES[self.me]}: no link to {PARTY_NAMES[peer]} (step {tag!r})")
        return link


def party_context(me: int, links: dict, config: EngineConfig = EngineConfig(), keys: dict | None = None,
                  on_round_end=None) -> Context:
    """A ``Context`` for party ``me``: its own keystreams only, its channel over ``links``.

    Keys come from ``keys`` (agreed at start-up) or from ``config.seed``; a
    party without either would draw keys the others do not share.
    """
    held = held_labels(me)
    missing = [lbl for lbl in held if config.seed is None and lbl not in (keys or {})]
    if missing:
        raise ValueError(f"{PARTY_NAMES[me]}: no key for streams {sorted(missing)} (give a seed or agreed keys)")
    ctx = Context(config)
    ctx.rand = Randomness(config.seed, held=held, keys=keys)
    ctx.chan = PartyChannel(me, links, on_round_end)
    return ctx


def run_threads(program: Callable[[Context, int], object], config: EngineConfig,
                parties: Sequence[int] = tuple(range(NPARTIES)), timeout: float = 120.0) -> dict:
    """Run ``program(ctx, me)`` once per party, each in a thread with its own party
    context and queue links to the others; returns {party: result}.  An exception in
    any party is re-raised (the others then fail on a timed-out link)."""
    qs = {(a, b): queue.Queue() for a in parties for b in parties if a != b}
    results, errors = {}, {}

    def body(me):
        links = {p: QueueLink(me, p, qs[(me, p)], qs[(p, me)], timeout) for p in parties if p != me}
        try:
            results[me] = program(party_context(me, links, config), me)
        except BaseException as e:       # reported after all threads end
            errors[me] = e

    threads = [threading.Thread(target=body, args=(p,), name=PARTY_NAMES[p]) for p in parties]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        first = min(errors, key=lambda p: isinstance(errors[p], LinkError))
        raise errors[first]
    return results
