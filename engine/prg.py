"""Correlated randomness from AES-128 counter-mode keystreams (the ``cryptography`` package).

Streams, each with its own key and counter:

- ``own(i)``: private to server i.
- ``component(j)``: known to the two servers that hold share component j, that
  is servers j and j - 1 (server i holds components i and i + 1).  A draw from
  it can be used directly as component j of a sharing, with no communication;
  differences of two such draws give zero sharings.
- ``common``: known to all three servers (public coins, for example random
  projections that need not be secret).
- ``client``: private to the client (data owner); ``model_owner``: private to
  the model owner.

With a seed, every key is derived from it and a label (SHA-256), so a run
replays exactly; without a seed, keys come from the OS (``os.urandom``).  In a
deployment the pairwise keys are agreed between the two servers that hold them;
in this one-process simulation both holders draw from the same stream object,
which keeps them in lockstep by construction.

The keystream of a stream is cut into segments of ``SEGMENT`` bytes; segment s
is AES-128 in counter mode under the stream's key with the 16-byte counter
blocks s || i (s a 96-bit big-endian number, i a 32-bit one from 2 up).  That
is the keystream AES-GCM encrypts with under the nonce s, and the bytes come
from OpenSSL's GCM code (the authentication tag is never computed to the end,
nor used): on this machine (AMD Zen 5, VAES) it runs at 24-28 GB/s per core
for draws of a MiB and more, where OpenSSL's CTR mode runs at 12-13 GB/s.
A segment uses 2^16 of the 2^32 counter values one nonce allows.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_DTYPES = {np.dtype(np.uint64), np.dtype(np.uint32), np.dtype(np.uint16), np.dtype(np.uint8)}

# The keystream is the cipher applied to zeros; one shared zero buffer serves every
# draw (allocating fresh zeros per draw cost more than the encryption itself).  No
# piece is longer than a segment, so the buffer never grows (the parallel runs read
# it from several threads).
SEGMENT = 1 << 20
_zeros = memoryview(bytes(SEGMENT))
_PENDING = object()                 # a stream's encryptor while a write of it is under way


def _zero_bytes(n: int) -> memoryview:
    if n > len(_zeros):
        raise ValueError(f"keystream pieces are at most {len(_zeros)} bytes, asked for {n}")
    return _zeros[:n]


def derive_key(seed: int | bytes | None, label: str) -> bytes:
    """A 16-byte AES key: from os.urandom without a seed, else SHA-256(seed || label)."""
    if seed is None:
        return os.urandom(16)
    if isinstance(seed, int):
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        seed = seed.to_bytes((seed.bit_length() + 8) // 8, "little")
    return hashlib.sha256(b"secptune/prg/v1|" + seed + b"|" + label.encode()).digest()[:16]


# Large draws are split over the cores at segment boundaries: every segment can
# start on its own, and the ``cryptography`` package releases the GIL while it
# encrypts, so the keystream of one draw comes out in parallel and is the same
# bytes as the serial one (a test compares them).  On the 2 cores here one 25 MB
# draw took half the time; keystreams were 13% of a MiniLM forward.
PARALLEL_MIN_BYTES = 2 * SEGMENT
_THREADS = max(1, min(4, os.cpu_count() or 1))
_pool = ThreadPoolExecutor(max_workers=_THREADS - 1, thread_name_prefix="prg") if _THREADS > 1 else None


def _segment(key: bytes, s: int):
    """An encryptor whose output on zeros is segment s of the stream, from its first byte."""
    return Cipher(algorithms.AES(key), modes.GCM(s.to_bytes(12, "big"))).encryptor()


def _fill_run(key: bytes, enc, pos: int, raw: np.ndarray, offset: int, nbytes: int, label: str):
    """Keystream bytes pos .. pos + nbytes into raw[offset:]; ``enc`` is the encryptor
    standing at pos, or None when pos is a segment's first byte.  Returns the encryptor
    standing at pos + nbytes (None at a segment boundary)."""
    if enc is _PENDING:
        raise RuntimeError(f"stream {label!r}: an earlier write did not finish")
    while nbytes:
        if enc is None:
            if pos % SEGMENT:
                raise RuntimeError(f"stream {label!r}: no encryptor at byte {pos}, inside a segment")
            enc = _segment(key, pos // SEGMENT)
        take = min(nbytes, SEGMENT - pos % SEGMENT)
        written = enc.update_into(_zero_bytes(take), raw[offset:])
        if written != take:
            raise RuntimeError(f"stream {label!r}: AES wrote {written} of {take} bytes")
        pos, offset, nbytes = pos + take, offset + take, nbytes - take
        if pos % SEGMENT == 0:
            enc = None                      # the segment's counter range is used up
    return enc


class Stream:
    """An AES-128 counter-mode keystream read as unsigned integers (see the module
    docstring for its layout).

    ``words(shape, dtype)`` returns the next bytes of the keystream; the
    counter advances by exactly the bytes drawn.
    """

    def __init__(self, key: bytes, label: str = ""):
        if len(key) != 16:
            raise ValueError(f"AES-128 key for stream {label!r} must be 16 bytes, got {len(key)}")
        self.label = label
        self._key = key
        self._enc = None                    # the encryptor standing at bytes_drawn (None: at a boundary)
        self.bytes_drawn = 0

    def _write(self, raw: np.ndarray, offset: int, nbytes: int) -> None:
        """Keystream bytes into raw[offset:offset + nbytes]; raw must extend 15 bytes
        further (``update_into`` may ask for block-size slack; the slack is overwritten
        by whatever is written next)."""
        write_pieces(raw, [(self, offset, nbytes)])

    def _reserve(self, nbytes: int) -> tuple:
        """Take the next nbytes of the stream: (their first position, the encryptor
        standing there or None at a segment boundary).  The caller writes them
        (``_fill_run``) and hands back the encryptor that stands at their end."""
        start, enc = self.bytes_drawn, self._enc
        self.bytes_drawn += nbytes
        self._enc = _PENDING
        return start, enc

    def words(self, shape, dtype=np.uint64) -> np.ndarray:
        dtype = np.dtype(dtype)
        if dtype not in _DTYPES:
            raise TypeError(f"stream {self.label!r}: unsupported dtype {dtype}")
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        out = np.empty(n + 16, dtype=np.uint8)        # update_into may want block-size slack
        self._write(out, 0, n)
        return out[:n].view(dtype).reshape(shape)


class NullStream(Stream):
    """A stream a party does not hold (party mode): draws are zeros, so the computations
    that use them fill slots of the shared arrays that belong to other parties."""

    def __init__(self, label: str = ""):
        self.label = label
        self.bytes_drawn = 0

    def _write(self, raw: np.ndarray, offset: int, nbytes: int) -> None:
        raw[offset:offset + nbytes] = 0


def _runs(start: int, nbytes: int, size: int) -> list:
    """[lo, hi) byte ranges covering start .. start + nbytes, cut only at segment
    boundaries, each about ``size`` bytes (at least one segment but the first)."""
    end = start + nbytes
    out, lo = [], start
    while lo < end:
        hi = min(end, max(-(-lo // SEGMENT) * SEGMENT, (lo + size) // SEGMENT * SEGMENT))
        hi = hi if hi > lo else min(end, lo + SEGMENT)
        out.append((lo, hi))
        lo = hi
    return out


def write_pieces(raw: np.ndarray, pieces) -> None:
    """Keystream into raw for (stream, offset, nbytes) pieces, each the next bytes of its
    stream (a stream at most once).

    Small writes run in this thread.  From PARALLEL_MIN_BYTES in all, every piece
    is cut at segment boundaries (every segment can start on its own) into runs
    of about a quarter of total / threads bytes (at least a segment), and the
    runs of all pieces are spread over the threads at once, largest first, so a
    draw from three streams waits on one dispatch, not three.  The bytes are the
    serial keystream's either way (tests compare them).
    """
    pieces = [(st, off, n) for st, off, n in pieces if n]
    total = sum(n for _, _, n in pieces)
    if len({id(st) for st, _, _ in pieces}) != len(pieces):
        raise ValueError("write_pieces: a stream may give one piece per write")
    real = []
    for st, off, n in pieces:
        if isinstance(st, NullStream):
            st._write(raw, off, n)
        else:
            real.append((st, off, n))
    if total < PARALLEL_MIN_BYTES or _pool is None:
        for st, off, n in real:
            start, enc = st._reserve(n)
            st._enc = _fill_run(st._key, enc, start, raw, off, n, st.label)
        return
    jobs = []                               # (bytes, stream, encryptor or None, position, offset, last)
    for st, off, n in real:
        start, enc = st._reserve(n)
        runs = _runs(start, n, max(SEGMENT, total // (4 * _THREADS)))
        for i, (lo, hi) in enumerate(runs):
            jobs.append((hi - lo, st, enc if i == 0 else None, lo, off + lo - start, i == len(runs) - 1))
    loads = _balance(jobs)

    def work(batch):
        return [(st, _fill_run(st._key, enc, pos, raw, off, n, st.label), last) for n, st, enc, pos, off, last in batch]

    futures = [_pool.submit(work, batch) for batch in loads[1:] if batch]
    done = work(loads[0]) + [r for f in futures for r in f.result()]
    for st, enc, last in done:
        if last:
            st._enc = enc                   # the encryptor standing at the piece's end


def _balance(jobs: list) -> list:
    """The jobs in _THREADS batches of about equal bytes (largest first, each to the lightest)."""
    batches = [[] for _ in range(_THREADS)]
    load = [0] * _THREADS
    for job in sorted(jobs, key=lambda j: -j[0]):
        t = load.index(min(load))
        batches[t].append(job)
        load[t] += job[0]
    return batches


def draw_concat(parts, dtype, inner: tuple = ()) -> np.ndarray:
    """One array [sum of counts, *inner] drawn piecewise from (stream, count) parts, in order,
    written in place (no concatenation copy), the parts' keystreams in one parallel write."""
    dtype = np.dtype(dtype)
    per = int(np.prod(inner, dtype=np.int64)) * dtype.itemsize
    total = sum(c for _, c in parts)
    raw = np.empty(total * per + 16, np.uint8)
    pieces, off = [], 0
    for stream, count in parts:
        pieces.append((stream, off, count * per))
        off += count * per
    write_pieces(raw, pieces)
    return raw[:total * per].view(dtype).reshape((total,) + tuple(inner))


LABELS = ("own/0", "own/1", "own/2", "component/0", "component/1", "component/2", "common", "client",
          "model-owner")


def held_labels(party: int) -> set:
    """The streams a party holds: server i its own, components i and i + 1 and the common
    stream; the client (3) and the model owner (4) their own."""
    if party in (0, 1, 2):
        return {f"own/{party}", f"component/{party}", f"component/{(party + 1) % 3}", "common"}
    return {("client", "model-owner")[party - 3]}


class Randomness:
    """All keystreams of one three-server run (plus the client's).

    Party mode (``held``): only the streams in ``held`` are real, the others
    are ``NullStream``s; their keys come from ``keys`` (agreed at start-up) or
    are derived from the seed.
    """

    def __init__(self, seed: int | bytes | None = None, held: set | None = None, keys: dict | None = None):
        self.seeded = seed is not None
        keys = keys or {}

        def make(label: str) -> Stream:
            if held is not None and label not in held:
                return NullStream(label)
            return Stream(keys[label] if label in keys else derive_key(seed, label), label)

        self._own = tuple(make(f"own/{i}") for i in range(3))
        self._component = tuple(make(f"component/{j}") for j in range(3))
        self.common = make("common")
        self.client = make("client")
        self.model_owner = make("model-owner")

    def own(self, i: int) -> Stream:
        return self._own[i]

    def component(self, j: int) -> Stream:
        """The stream known to servers j and j - 1 (the holders of component j)."""
        return self._component[j % 3]

    def components(self, shape, dtype=np.uint64) -> np.ndarray:
        """One draw from each component stream, stacked: [3, *shape]."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return draw_concat([(self._component[j], 1) for j in range(3)], dtype, shape)

    def zero_sharing(self, shape, dtype=np.uint64, boolean: bool = False) -> np.ndarray:
        """A 3-out-of-3 sharing of zero: alpha_i = r_i - r_{i+1} (or r_i ^ r_{i+1}).

        Server i computes alpha_i from the component streams i and i + 1, which
        it holds; no communication.
        """
        r = self.components(shape, dtype)
        nxt = np.roll(r, -1, axis=0)
        return r ^ nxt if boolean else r - nxt
