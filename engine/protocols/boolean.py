"""Boolean replicated sharing on bit-sliced words, and the MSB circuit.

x = x_0 ^ x_1 ^ x_2 bitwise, on unsigned words of any width; server i holds
(x_i, x_{i+1}).  XOR and bit permutations are local; AND costs one round and
one word per server (packed to the bits actually used).

MSB of an arithmetic sharing x = x_0 + x_1 + x_2: role 0 knows
a = x_0 + x_1, roles 1 and 2 know y = x_2, and msb(x) = a_63 ^ y_63 ^ c_63,
where c_63 is the carry into bit 63 of a + y: the group generate of bits
0..62 in a parallel-prefix (Brent-Kung style) tree of (generate, propagate)
pairs.  Shifting the operands left by one puts a dummy (g, p) = (0, 0) at
position 0, so the tree has 64 leaves and 6 levels.

The first level is computed in the round that turns x into boolean shares: for
a pair of bits (h, l),
    G = a_h y_h ^ (a_h a_l) y_l ^ a_l (y_h y_l)
    P = (a_h a_l) ^ (y_h y_l) ^ a_h y_l ^ a_l y_h
are sums of (function of a) * (function of y).  Role 0 shares the three
32-bit words a_h, a_l, a_h a_l; roles 1 and 2 already hold y, so the terms
with role 0's share components 0 and 1 are computed by the one of them that
shares that component with role 0 and sent to role 0 under a mask both know.
One round: role 0 sends 24 B (+1 bit for a_63) to each of roles 1 and 2,
roles 1 and 2 send 8 B to role 0.  The remaining five levels use 4, 2, 1,
1/2 and 1/8 B per element.
"""

from __future__ import annotations

import numba
import numpy as np

from ..comm import Message, pack_bits, placeholder, unpack_bits
from ..kernels import elementwise
from .roles import Rotation

_U = np.uint64


_WORD = {64: np.uint64, 32: np.uint32, 16: np.uint16, 8: np.uint8, 4: np.uint8, 2: np.uint8, 1: np.uint8}


# ----------------------------------------------------------------------------
# AND

@numba.njit(inline="always")
def _and_term(xi, xj, yi, yj, ri, rj):
    """Server i's AND share from the components i and j = i + 1 it holds:
    x_i y_i ^ x_i y_j ^ x_j y_i ^ r_i ^ r_j."""
    return (xi & yi) ^ (xi & yj) ^ (xj & yi) ^ ri ^ rj


@elementwise()
def _and_local(x, y, r, mask, me, z):
    """z_i = ``_and_term`` & mask; server i uses only components i and i+1 of x, y and of
    the component streams r (``me`` >= 0: only z_me)."""
    n = x.shape[1]
    for k in numba.prange(n):
        for i in range(3):
            if me >= 0 and i != me:
                continue
            j = (i + 1) % 3
            z[i, k] = _and_term(x[i, k], x[j, k], y[i, k], y[j, k], r[i, k], r[j, k]) & mask


def _count_and(ctx, n: int, dtype, bits: int, tag: str) -> None:
    """The one-pass simulation's stand-in for an AND round's messages: each server's
    n words of ``bits`` bits (packed below 8), counted, not sent."""
    wire = placeholder((n,), dtype) if bits >= 8 else placeholder((-(-n // (8 // bits)),), np.uint8)
    ctx.chan.exchange([Message(i, (i - 1) % 3, wire) for i in range(3)], tag=f"{tag}/and")


def and_bb(ctx, x: np.ndarray, y: np.ndarray, bits: int, tag: str) -> np.ndarray:
    """Boolean AND of [3, n] word shares holding ``bits``-bit values.

    z_i = x_i y_i ^ x_i y_{i+1} ^ x_{i+1} y_i ^ alpha_i, z_i sent to server i-1.
    Cost: 1 round, bits/8 B per element per server.
    """
    n = x.shape[1]
    dtype = x.dtype
    r = ctx.rand.components((n,), dtype)
    me = ctx.chan.me
    z = np.empty((3, n), dtype) if me is None else np.zeros((3, n), dtype)
    _and_local(x, y, r, dtype.type((1 << bits) - 1 if bits < dtype.itemsize * 8 else ~dtype.type(0)),
               -1 if me is None else me, z)
    if ctx.chan.simulated():
        # z_i delivered to server i - 1 is z itself: count the messages (packed as on the wire)
        _count_and(ctx, n, dtype, bits, tag)
        return z
    if bits >= 8:
        got = ctx.chan.exchange([Message(i, (i - 1) % 3, z[i]) for i in range(3)], tag=f"{tag}/and")
        return np.stack(got) if got else z
    # a party packs only its own message (the others' are counted, never read)
    msgs = [Message(i, (i - 1) % 3, pack_bits(z[i] if me in (None, i) else placeholder((n,), dtype), bits))
            for i in range(3)]
    got = ctx.chan.exchange(msgs, tag=f"{tag}/and")
    if not got:
        return z
    return np.stack([unpack_bits(g, bits, n) for g in got])


# ----------------------------------------------------------------------------
# bit permutations (local)

@numba.njit(inline="always")
def _even_bits(x):
    """The bits of x at even positions, packed into the low half."""
    x = x & _U(0x5555555555555555)
    x = (x | (x >> _U(1))) & _U(0x3333333333333333)
    x = (x | (x >> _U(2))) & _U(0x0F0F0F0F0F0F0F0F)
    x = (x | (x >> _U(4))) & _U(0x00FF00FF00FF00FF)
    x = (x | (x >> _U(8))) & _U(0x0000FFFF0000FFFF)
    x = (x | (x >> _U(16))) & _U(0x00000000FFFFFFFF)
    return x


@elementwise()
def _tree_level(gh, t, hp, half, first, left, right, gh_out):
    """One tree level on flat arrays, from the previous level's AND.

    The previous level left group generate G = gh ^ (t & (2^hp - 1)) and
    propagate P = t >> hp (``first``: G = gh and P = t as given).  Writes the
    operands of this level's AND, left = Ph | Ph << half and right = Gl | Pl << half,
    and gh_out = Gh.
    """
    mask = (_U(1) << _U(hp)) - _U(1)
    for i in numba.prange(gh.size):
        if first:
            g = _U(gh[i])
            p = _U(t[i])
        else:
            g = _U(gh[i]) ^ (_U(t[i]) & mask)
            p = _U(t[i]) >> _U(hp)
        ph = _even_bits(p >> _U(1))
        gh_out[i] = _even_bits(g >> _U(1))
        if half == 0:                      # last level: only Ph & Gl is needed
            left[i] = ph
            right[i] = _even_bits(g)
        else:
            left[i] = ph | (ph << _U(half))
            right[i] = _even_bits(g) | (_even_bits(p) << _U(half))


# ----------------------------------------------------------------------------
# MSB

@numba.njit(inline="always")
def _pair_bits(w, width):
    """(h, l, h & l) of the ``width``-bit word w (64, or 32 or 16: the low bits) shifted
    left by one, as half-width words: h = bits at odd positions, l = bits at even
    positions (dummy 0 at position 0)."""
    if width < 64:
        m = (_U(1) << _U(width)) - _U(1)
        w = w & m
        h = _even_bits(w)
        l_ = _even_bits((w << _U(1)) & m)
    else:
        h = _even_bits(w)
        l_ = _even_bits(w << _U(1))
    return h, l_, h & l_


@elementwise()
def _role0_share(a, F0, F1, t0, t1, width, F2, t2):
    """Role 0: the third components of a_h, a_l, a_h a_l (F2) and of its top bit (t2)."""
    top = _U(width - 1)
    for i in numba.prange(a.size):
        h, l_, hl = _pair_bits(a[i], width)
        F2[i, 0] = h ^ F0[i, 0] ^ F1[i, 0]
        F2[i, 1] = l_ ^ F0[i, 1] ^ F1[i, 1]
        F2[i, 2] = hl ^ F0[i, 2] ^ F1[i, 2]
        t2[i] = np.uint8((a[i] >> top) & _U(1)) ^ t0[i] ^ t1[i]


@numba.njit(inline="always")
def _gp_terms(fh, fl, fhl, yh, yl, yhl):
    """The (G, P) cross terms of a share component (fh, fl, fhl) of (a_h, a_l, a_h a_l)
    with y's (Y_h, Y_l, Y_h Y_l): G = F_h Y_h ^ F_hl Y_l ^ F_l Y_hl, P = F_hl ^ F_h Y_l ^ F_l Y_h."""
    return (fh & yh) ^ (fhl & yl) ^ (fl & yhl), fhl ^ (fh & yl) ^ (fl & yh)


@elementwise(1)
def _cross(F, y, mg, mp, add_yhl, width, out):
    """``_gp_terms`` of a share component F with y, masked by mg and mp (and P ^ Y_hl
    with ``add_yhl``)."""
    for i in numba.prange(y.size):
        yh, yl, yhl = _pair_bits(y[i], width)
        g, p = _gp_terms(F[i, 0], F[i, 1], F[i, 2], yh, yl, yhl)
        out[i, 0] = g ^ mg[i]
        if add_yhl:
            p ^= yhl
        out[i, 1] = p ^ mp[i]


@elementwise(0)
def _chunk_addends(xa, xb, xy, c, c_on_y, shift, mask, a, y):
    """The adder's two addends for one chunk of x - c: a = xa + xb (role 0's two real
    components), y = xy (the third), c (a public ring value, held in real component
    0) taken off y where that is the third component (``c_on_y``), else off a;
    both shifted right by ``shift`` and cut to the adder's width (``mask``)."""
    for i in numba.prange(xa.size):
        va = xa[i] + xb[i]
        vy = xy[i]
        if c_on_y:
            vy -= c
        else:
            va -= c
        a[i] = (va >> _U(shift)) & mask
        y[i] = (vy >> _U(shift)) & mask


def _adder_inputs(x: np.ndarray, rot: Rotation, c, lo: int, a: np.ndarray, y: np.ndarray, shift: int, mask) -> None:
    """The adder's addends in role layout for x - c (x real components [3, n']), written
    to elements lo .. lo + n' of a and y (cut by ``rot`` over all of them): in chunk k
    role 0 holds real components k and k + 1 (a = their sum), roles 1 and 2 component
    k + 2 (y).  One kernel per chunk piece, on contiguous rows."""
    n = x.shape[1]
    for k, c_lo, c_hi in rot.chunks:
        e0, e1 = max(c_lo, lo), min(c_hi, lo + n)             # this chunk's elements among lo .. lo + n
        if e0 >= e1:
            continue
        cols = slice(e0 - lo, e1 - lo)
        # real component 0 is role component 0 (k = 0), 2 (k = 1) or 1 (k = 2)
        _chunk_addends(x[k, cols], x[(k + 1) % 3, cols], x[(k + 2) % 3, cols], c, k == 1, shift, mask,
                       a[e0:e1], y[e0:e1])


@numba.njit(inline="always")
def _first_level_terms(h, l_, hl, yh, yl, yhl, f0h, f0l, f0hl, f1h, f1l, f1hl, m0, m1, m2, m3):
    """The three real components' level-1 (G, P) of one element (or of eight, bytes of
    64-bit words): role 2's term (F0), role 1's (F1) and that of roles 1 and 2 (role 0's
    third components F2 = (h, l, hl) ^ F0 ^ F1), masked as ``_cross`` masks them."""
    g0, p0 = _gp_terms(f0h, f0l, f0hl, yh, yl, yhl)
    g1, p1 = _gp_terms(f1h, f1l, f1hl, yh, yl, yhl)
    g2, p2 = _gp_terms(h ^ f0h ^ f1h, l_ ^ f0l ^ f1l, hl ^ f0hl ^ f1hl, yh, yl, yhl)
    return g0 ^ m0, p0 ^ m2, g1 ^ m1, p1 ^ m3, g2 ^ m0 ^ m1, p2 ^ m2 ^ m3 ^ yhl


@numba.njit(inline="always")
def _first_level_at(i, k, a, y, F0, F1, t0, t1, mask, width, G, P, top):
    """``_first_level_all``'s steps for element i of chunk k."""
    tb = _U(width - 1)
    h, l_, hl = _pair_bits(a[i], width)
    yh, yl, yhl = _pair_bits(y[i], width)
    c0, c1, c2 = k, (k + 1) % 3, (k + 2) % 3
    G[c0, i], P[c0, i], G[c1, i], P[c1, i], G[c2, i], P[c2, i] = _first_level_terms(
        h, l_, hl, yh, yl, yhl, F0[i, 0], F0[i, 1], F0[i, 2], F1[i, 0], F1[i, 1], F1[i, 2],
        mask[i, 0], mask[i, 1], mask[i, 2], mask[i, 3])
    top[c0, i] = t0[i]
    top[c1, i] = t1[i]
    top[c2, i] = np.uint8((a[i] >> tb) & _U(1)) ^ t0[i] ^ t1[i] ^ np.uint8((y[i] >> tb) & _U(1))


@elementwise(1)
def _first_level_all(cuts, a, y, F0, F1, t0, t1, mask, width, G, P, top):
    """Every role's steps of ``_msb_first_level`` for one element in one pass (the
    in-process simulation): ``_role0_share`` and the three ``_cross`` terms, written
    in the real layout (role component j of chunk k is real component j + k)."""
    for i in numba.prange(a.size):
        _first_level_at(i, 0 if i < cuts[1] else (1 if i < cuts[2] else 2), a, y, F0, F1, t0, t1, mask, width,
                        G, P, top)


# eight elements of a 16-bit adder at once: their bytes in one word

@numba.njit(inline="always")
def _bytes8(v, i, col):
    """v[i .. i + 8, col] (v uint8 [n, c]) as one word, element i in the low byte."""
    w = _U(0)
    for j in range(8):
        w |= _U(v[i + j, col]) << _U(8 * j)
    return w


@numba.njit(inline="always")
def _flat_bytes8(v, i):
    """v[i .. i + 8] (v uint8 [n]) as one word, element i in the low byte."""
    w = _U(0)
    for j in range(8):
        w |= _U(v[i + j]) << _U(8 * j)
    return w


@numba.njit(inline="always")
def _put8(out, row, i, w):
    """The eight bytes of w into out[row, i .. i + 8] (out uint8 [r, n])."""
    for j in range(8):
        out[row, i + j] = np.uint8((w >> _U(8 * j)) & _U(0xFF))


@numba.njit(inline="always")
def _lane_bytes(x):
    """The low bytes of the four 16-bit lanes of x packed into its low 32 bits."""
    x = (x | (x >> _U(8))) & _U(0x0000FFFF0000FFFF)
    return (x | (x >> _U(16))) & _U(0xFFFFFFFF)


@numba.njit(inline="always")
def _pair_bits16x4(w):
    """``_pair_bits`` of the four 16-bit words in the lanes of w, and their top bits, as
    bytes in the low 32 bits (the even-bit steps stay inside the lanes: each mask
    clears what a shift moves across a lane boundary)."""
    l_in = (w << _U(1)) & _U(0xFFFEFFFEFFFEFFFE)
    h = w & _U(0x5555555555555555)
    l_ = l_in & _U(0x5555555555555555)
    for s, m in ((1, 0x3333333333333333), (2, 0x0F0F0F0F0F0F0F0F), (4, 0x00FF00FF00FF00FF)):
        h = (h | (h >> _U(s))) & _U(m)
        l_ = (l_ | (l_ >> _U(s))) & _U(m)
    h, l_ = _lane_bytes(h), _lane_bytes(l_)
    return h, l_, h & l_, _lane_bytes((w >> _U(15)) & _U(0x0001000100010001))


@numba.njit(inline="always")
def _pair_bits16x8(v, i):
    """(h, l, h & l, top bit) of the 16-bit words v[i .. i + 8], one byte per element."""
    w0 = _U(v[i]) | (_U(v[i + 1]) << _U(16)) | (_U(v[i + 2]) << _U(32)) | (_U(v[i + 3]) << _U(48))
    w1 = _U(v[i + 4]) | (_U(v[i + 5]) << _U(16)) | (_U(v[i + 6]) << _U(32)) | (_U(v[i + 7]) << _U(48))
    h0, l0, hl0, t0 = _pair_bits16x4(w0)
    h1, l1, hl1, t1 = _pair_bits16x4(w1)
    return h0 | (h1 << _U(32)), l0 | (l1 << _U(32)), hl0 | (hl1 << _U(32)), t0 | (t1 << _U(32))


@elementwise(1)
def _first_level16_all(cuts, a, y, F0, F1, t0, t1, mask, G, P, top):
    """``_first_level_all`` for a 16-bit adder (byte-wide (G, P) words), eight elements
    of one chunk per step as the bytes of 64-bit words (every step is bitwise, so
    the bytes never mix): 5.0 -> 3.1 ms at 10^6.  Groups of eight that straddle a
    chunk boundary, and the last n mod 8 elements, go element by element."""
    n = a.size
    for g in numba.prange((n + 7) // 8):
        i = 8 * g
        k = 0 if i < cuts[1] else (1 if i < cuts[2] else 2)
        if i + 8 > cuts[k + 1]:
            for e in range(i, min(i + 8, n)):
                _first_level_at(e, 0 if e < cuts[1] else (1 if e < cuts[2] else 2), a, y, F0, F1, t0, t1, mask,
                                16, G, P, top)
            continue
        h, l_, hl, at = _pair_bits16x8(a, i)
        yh, yl, yhl, yt = _pair_bits16x8(y, i)
        c0, c1, c2 = k, (k + 1) % 3, (k + 2) % 3
        terms = _first_level_terms(h, l_, hl, yh, yl, yhl,
                                   _bytes8(F0, i, 0), _bytes8(F0, i, 1), _bytes8(F0, i, 2),
                                   _bytes8(F1, i, 0), _bytes8(F1, i, 1), _bytes8(F1, i, 2),
                                   _bytes8(mask, i, 0), _bytes8(mask, i, 1), _bytes8(mask, i, 2), _bytes8(mask, i, 3))
        _put8(G, c0, i, terms[0])
        _put8(P, c0, i, terms[1])
        _put8(G, c1, i, terms[2])
        _put8(P, c1, i, terms[3])
        _put8(G, c2, i, terms[4])
        _put8(P, c2, i, terms[5])
        T0, T1 = _flat_bytes8(t0, i), _flat_bytes8(t1, i)
        _put8(top, c0, i, T0)
        _put8(top, c1, i, T1)
        _put8(top, c2, i, at ^ T0 ^ T1 ^ yt)


def _share_sends(F2, gp1, gp0, t2) -> list:
    """The first level's role messages: role 0's third components of (a_h, a_l, a_h a_l)
    and of a's top bit (t2, packed bits) to roles 1 and 2, the cross terms of roles 1
    and 2 to role 0."""
    return [(0, (1, 2), F2), (1, 0, gp1), (2, 0, gp0), (0, (1, 2), t2, 1)]


def _msb_first_level(ctx, rot: Rotation, a: np.ndarray, y: np.ndarray, width: int, tag: str):
    """Boolean shares (real layout) of level-1 (G, P) words (width/2 bits) and of
    a_top ^ y_top (uint8), from the adder's addends a (role 0) and y (roles 1 and 2)."""
    rand = ctx.rand
    n = a.size
    half = _WORD[width // 2]

    F0 = rot.draw(rand, 0, half, width=3)               # roles 0, 2
    F1 = rot.draw(rand, 1, half, width=3)               # roles 0, 1
    t0 = rot.draw(rand, 0, np.uint8) & np.uint8(1)
    t1 = rot.draw(rand, 1, np.uint8) & np.uint8(1)
    mask = rot.draw(rand, 2, half, width=4)             # roles 1, 2: mu0, mu1, nu0, nu1
    if ctx.chan.simulated():
        # one process plays every role, nobody taps: one pass, the messages only counted
        G, P = np.empty((3, n), half), np.empty((3, n), half)
        top = np.empty((3, n), np.uint8)
        if width == 16:
            _first_level16_all(rot.cuts, a, y, F0, F1, t0, t1, mask, G, P, top)
        else:
            _first_level_all(rot.cuts, a, y, F0, F1, t0, t1, mask, width, G, P, top)
        pair = placeholder((n, 2), half)
        rot.exchange(ctx.chan, _share_sends(placeholder((n, 3), half), pair, pair, placeholder((n,), np.uint8)),
                     tag=f"{tag}/msb-share")
        return G, P, top
    # each role's step on the chunk where this party plays it (everything when one process
    # plays every party); the rest stays zero: never sent, never read
    me = ctx.chan.me
    new = np.empty if me is None else np.zeros
    r0, r1, r2 = (rot.span(me, r) for r in range(3))
    m0, m1, m2, m3 = (np.ascontiguousarray(mask[:, j]) for j in range(4))
    F2 = new((n, 3), half)
    t2 = new(n, np.uint8)
    _role0_share(a[r0], F0[r0], F1[r0], t0[r0], t1[r0], width, F2[r0], t2[r0])       # role 0
    gp0 = new((n, 2), half)
    _cross(F0[r2], y[r2], m0[r2], m2[r2], False, width, gp0[r2])                       # role 2
    gp1 = new((n, 2), half)
    _cross(F1[r1], y[r1], m1[r1], m3[r1], False, width, gp1[r1])                       # role 1
    got = rot.exchange(ctx.chan, _share_sends(F2, gp1, gp0, t2), tag=f"{tag}/msb-share")
    gp2 = new((n, 2), half)
    for r in ((r1, r2) if me is not None else (slice(None),)):                        # roles 1 and 2
        _cross(got[0][r], y[r], m0[r] ^ m1[r], m2[r] ^ m3[r], True, width, gp2[r])
    G = np.stack([got[2][:, 0], got[1][:, 0], gp2[:, 0]])
    P = np.stack([got[2][:, 1], got[1][:, 1], gp2[:, 1]])
    top = np.stack([t0, t1, got[3] ^ ((y >> _U(width - 1)) & _U(1)).astype(np.uint8)])
    return rot.to_real(G), rot.to_real(P), rot.to_real(top)


MSB_WIDTHS = (64, 32, 16)
_TREE_LEVELS = {64: (32, 16, 8, 4, 2), 32: (16, 8, 4, 2), 16: (8, 4, 2)}


def msb_bool(ctx, x: np.ndarray, tag: str = "msb", width: int = 64, shift: int = 0,
             offsets=None) -> np.ndarray:
    """Boolean shares [3, n] (uint8, one bit each) of the MSB of flat arithmetic shares [3, n].

    ``offsets`` (public ring values c_1..c_m): the MSBs of x - c_1, ..., x - c_m
    in one batch, [3, m n], without materialising the differences.

    ``width`` 32 or 16: the MSB of x mod 2^width (reducing shares mod 2^width
    is a ring homomorphism), which is the sign of x for |x| < 2^(width-1)
    ring units; the adder is narrower and the tree one or two levels shorter.

    ``shift`` k > 0 makes the comparison coarse: the adder sums the two
    addends (role 0's x_0 + x_1 and x_2) each shifted right by k bits, which
    is (x >> k) - c with a carry c in {0, 1} from the dropped bits.  The
    result is 1 for -2^(width-1+k) + 2^k <= x < 0, 0 for 2^k <= x <
    2^(width-1+k) - 2^k, and either in [0, 2^k): for callers that tolerate
    a band of 2^k ring units above zero, a 16-bit adder covers what a 32-bit
    one did.  No value is opened (the shifts are local).
    Cost (64): 6 rounds; per element per server about 13.4 B (first level,
    rotated) + 7.625 B (five tree levels).  Cost (32): 5 rounds, half the
    bytes; (16): 4 rounds, a quarter.
    """
    if width not in MSB_WIDTHS:
        raise ValueError(f"{tag}: msb width must be one of {MSB_WIDTHS}, got {width}")
    if not 0 <= shift <= 64 - width:
        raise ValueError(f"{tag}: msb shift must be in 0..{64 - width} for width {width}, got {shift}")
    offs = np.zeros(1, np.uint64) if offsets is None else np.asarray(offsets, np.uint64).reshape(-1)
    n = x.shape[1] * offs.size
    rot = Rotation(n)
    word = _WORD[width]
    a, y = np.empty(n, word), np.empty(n, word)
    mask = _U((1 << width) - 1) if width < 64 else ~_U(0)
    xc = np.ascontiguousarray(x)
    for j, c in enumerate(offs):                    # x - c_j fills elements j n' .. (j + 1) n'
        _adder_inputs(xc, rot, c, j * x.shape[1], a, y, shift, word(mask))
    G, P, top = _msb_first_level(ctx, rot, a, y, width, tag)
    gh, t, hp, first = G.reshape(-1), P.reshape(-1), 0, True
    for w in _TREE_LEVELS[width]:          # width of the (G, P) words entering the level
        half = w // 2 if w > 2 else 0
        dt = _WORD[w]
        left = np.empty(3 * n, dt)
        right = np.empty(3 * n, dt)
        gh_out = np.empty(3 * n, dt)
        _tree_level(gh, t, hp, half, first, left, right, gh_out)
        bits = w if w > 2 else 1
        t = and_bb(ctx, left.reshape(3, n), right.reshape(3, n), bits, tag=f"{tag}/tree{w}").reshape(-1)
        gh, hp, first = gh_out, half, False
    # after the last level the group generate is gh ^ t (one bit)
    return top ^ (gh ^ t).reshape(3, n).astype(np.uint8)


@numba.njit(inline="always")
def _b2a_round1(u, yi, u0, u1, mu0, mu1):
    """Round 1 of ``bit_to_arith`` for one bit: role 0's third component u2 of u, and the
    masked cross terms w0 = u0 y + mu0 (role 2) and w1 = u1 y + mu1 (role 1)."""
    return u - u0 - u1, u0 * yi + mu0, u1 * yi + mu1


@numba.njit(inline="always")
def _b2a_round2(u0, u1, u2, yi, w0, w1, mu0, mu1):
    """Round 2: the role components (u0 - 2 w0, u1 - 2 w1, u2 + y - 2 w2), w2 = u2 y - mu0 - mu1."""
    two = _U(2)
    return u0 - two * w0, u1 - two * w1, u2 + yi - two * (u2 * yi - mu0 - mu1)


@elementwise(2)
def _b2a_share(b, cuts, u0, u1, mu, u2, w0, w1, y):
    """Round 1 of ``bit_to_arith`` in role layout (``_b2a_round1``): u = b_r0 ^ b_r1
    (role 0), y = b_r2 (roles 1, 2); role component j of chunk k is real component j + k."""
    for i in numba.prange(u0.size):
        k = 0 if i < cuts[1] else (1 if i < cuts[2] else 2)
        c0, c1, c2 = k, (k + 1) % 3, (k + 2) % 3
        yi = _U(b[c2, i])
        y[i] = yi
        u2[i], w0[i], w1[i] = _b2a_round1(_U(b[c0, i] ^ b[c1, i]), yi, u0[i], u1[i], mu[i, 0], mu[i, 1])


@elementwise(1)
def _b2a_finish(cuts, u0, u1, u2r, w0r, w1r, y, mu, out):
    """Round 2 (``_b2a_round2``), written in the real layout."""
    for i in numba.prange(u0.size):
        k = 0 if i < cuts[1] else (1 if i < cuts[2] else 2)
        out[k, i], out[(k + 1) % 3, i], out[(k + 2) % 3, i] = _b2a_round2(
            u0[i], u1[i], u2r[i], y[i], w0r[i], w1r[i], mu[i, 0], mu[i, 1])


@elementwise(2)
def _b2a_all(b, cuts, u0, u1, mu, out):
    """Both rounds of ``bit_to_arith`` for every role in one pass (the in-process
    simulation): ``_b2a_round1`` then ``_b2a_round2`` on what was sent unchanged."""
    for i in numba.prange(u0.size):
        k = 0 if i < cuts[1] else (1 if i < cuts[2] else 2)
        c0, c1, c2 = k, (k + 1) % 3, (k + 2) % 3
        yi = _U(b[c2, i])
        u2, w0, w1 = _b2a_round1(_U(b[c0, i] ^ b[c1, i]), yi, u0[i], u1[i], mu[i, 0], mu[i, 1])
        out[c0, i], out[c1, i], out[c2, i] = _b2a_round2(u0[i], u1[i], u2, yi, w0, w1, mu[i, 0], mu[i, 1])


def _b2a_sends(u2, w1, w0) -> list:
    """``bit_to_arith``'s role messages: role 0's third component of u to roles 1 and 2,
    the masked cross terms of roles 1 and 2 to role 0."""
    return [(0, (1, 2), u2), (1, 0, w1), (2, 0, w0)]


def bit_to_arith(ctx, b: np.ndarray, tag: str = "b2a") -> np.ndarray:
    """Arithmetic shares [3, n] of boolean-shared bits [3, n].

    b = u ^ y with u = b_0 ^ b_1 (role 0) and y = b_2 (roles 1, 2), so
    b = u + y - 2 u y.  Role 0 shares u; the cross product u y is assembled
    as in ``_msb_first_level``.  Cost: 1 round; role 0 sends 16 B, roles 1
    and 2 send 8 B (rotated: 32/3 B per element per server).
    """
    n = b.shape[1]
    rot = Rotation(n)
    rand = ctx.rand
    u0 = rot.draw(rand, 0)
    u1 = rot.draw(rand, 1)
    mu = rot.draw(rand, 2, width=2)
    if ctx.chan.simulated():
        # one process plays every role, nobody taps: one pass, the messages only counted
        out = np.empty((3, n), np.uint64)
        _b2a_all(np.ascontiguousarray(b, dtype=np.uint8), rot.cuts, u0, u1, mu, out)
        word = placeholder((n,))
        rot.exchange(ctx.chan, _b2a_sends(word, word, word), tag=f"{tag}/b2a")
        return out
    u2, w0, w1, y = (np.empty(n, np.uint64) for _ in range(4))
    _b2a_share(np.ascontiguousarray(b, dtype=np.uint8), rot.cuts, u0, u1, mu, u2, w0, w1, y)
    u2r, w1r, w0r = rot.exchange(ctx.chan, _b2a_sends(u2, w1, w0), tag=f"{tag}/b2a")
    out = np.empty((3, n), np.uint64)
    _b2a_finish(rot.cuts, u0, u1, np.ascontiguousarray(u2r), np.ascontiguousarray(w0r),
                np.ascontiguousarray(w1r), y, mu, out)
    return out


def a2b(ctx, x: np.ndarray, tag: str = "a2b") -> np.ndarray:
    """Boolean shares [3, n] (uint64 words) of flat arithmetic shares [3, n].

    x = a + y with a = x_0 + x_1 (role 0) and y = x_2 (roles 1, 2).  Round 1
    shares a and the generate word g = a & y as in ``_msb_first_level``;
    then a Kogge-Stone prefix over the 64 bit positions, one round per
    distance 1, 2, ..., 32 (both ANDs of a level in one exchange; the last
    level needs only the generate), and x = a ^ y ^ (carries << 1).
    Cost: 7 rounds; 32/3 B (rotated first round) + 5 * 16 + 8 B per element
    per server.
    """
    return a2b_word(ctx, x, 64, tag)


@elementwise(1)
def _a2b_share(x, cuts, a0, a1, mu, mask, a2, y, g0, g1):
    """Round 1 of ``a2b_word`` in role layout, cut to the adder's width (``mask``):
    a = x_r0 + x_r1 and a2 = a ^ a0 ^ a1 (role 0), y = x_r2 (roles 1 and 2),
    g0 = (a0 & y) ^ mu0 (role 2), g1 = (a1 & y) ^ mu1 (role 1); role component j
    of chunk k is real component j + k."""
    for i in numba.prange(y.size):
        k = 0 if i < cuts[1] else (1 if i < cuts[2] else 2)
        a = (x[k, i] + x[(k + 1) % 3, i]) & mask
        yi = x[(k + 2) % 3, i] & mask
        y[i] = yi
        a2[i] = a ^ a0[i] ^ a1[i]
        g0[i] = (a0[i] & yi) ^ mu[i, 0]
        g1[i] = (a1[i] & yi) ^ mu[i, 1]


@elementwise(1)
def _a2b_finish(cuts, g0r, g1r, a2r, y, a0, a1, mu, G, P):
    """Real components of the generate word G = a & y (role components: role 2's and
    role 1's masked terms, and (a2 & y) ^ mu0 ^ mu1 of roles 1 and 2) and the propagate
    word P = a ^ y (role components a0, a1, a2 ^ y)."""
    for i in numba.prange(y.size):
        k = 0 if i < cuts[1] else (1 if i < cuts[2] else 2)
        c0, c1, c2 = k, (k + 1) % 3, (k + 2) % 3
        G[c0, i] = g0r[i]
        G[c1, i] = g1r[i]
        G[c2, i] = (a2r[i] & y[i]) ^ mu[i, 0] ^ mu[i, 1]
        P[c0, i] = a0[i]
        P[c1, i] = a1[i]
        P[c2, i] = a2r[i] ^ y[i]


@elementwise(1)
def _ks_operands(G, P, d, left, right):
    """One Kogge-Stone level's AND operands: left = [P | P], right = [G << d | P << d]
    ([3, 2n]; with [3, n] outputs, only the first halves: the last level needs G alone)."""
    n = G.shape[1]
    both = left.shape[1] == 2 * n
    for i in numba.prange(n):
        for c in range(3):
            p = P[c, i]
            left[c, i] = p
            right[c, i] = G[c, i] << d
            if both:
                left[c, n + i] = p
                right[c, n + i] = p << d


@numba.njit(inline="always")
def _and3(x0, x1, x2, y0, y1, y2, r0, r1, r2):
    """The three servers' AND shares (``_and_term``), for the one-pass kernels, where
    z_i is also what server i - 1 receives."""
    return (_and_term(x0, x1, y0, y1, r0, r1), _and_term(x1, x2, y1, y2, r1, r2),
            _and_term(x2, x0, y2, y0, r2, r0))


@elementwise(0)
def _ks_level_all(G, P, r, d, both):
    """One Kogge-Stone level for every server in one pass, in place (the simulation):
    G ^= P & (G << d) and, with ``both``, P = P & (P << d), the ANDs as ``and_bb`` on the
    operands of ``_ks_operands`` with the component draws r [3, 2n] (r [3, n] without)."""
    n = G.shape[1]
    for i in numba.prange(n):
        p0, p1, p2 = P[0, i], P[1, i], P[2, i]
        t0, t1, t2 = _and3(p0, p1, p2, G[0, i] << d, G[1, i] << d, G[2, i] << d, r[0, i], r[1, i], r[2, i])
        G[0, i] ^= t0
        G[1, i] ^= t1
        G[2, i] ^= t2
        if both:
            P[0, i], P[1, i], P[2, i] = _and3(p0, p1, p2, p0 << d, p1 << d, p2 << d,
                                              r[0, n + i], r[1, n + i], r[2, n + i])


def _ks_level(ctx, G: np.ndarray, P: np.ndarray, d: int, both: bool, width: int, tag: str):
    """One Kogge-Stone level: (G ^ P & (G << d), P & (P << d)) (only G without ``both``),
    both ANDs in one round."""
    dt = G.dtype.type
    n = G.shape[1]
    if ctx.chan.simulated():
        r = ctx.rand.components((2 * n if both else n,), G.dtype)
        _ks_level_all(G, P, r, dt(d), both)
        _count_and(ctx, 2 * n if both else n, G.dtype, width, tag)
        return G, P
    left, right = np.empty((3, 2 * n if both else n), G.dtype), np.empty((3, 2 * n if both else n), G.dtype)
    _ks_operands(G, P, dt(d), left, right)
    t = and_bb(ctx, left, right, width, tag=tag)
    G ^= t[:, :n]
    return G, (np.ascontiguousarray(t[:, n:]) if both else P)


def a2b_word(ctx, x: np.ndarray, width: int, tag: str = "a2b") -> np.ndarray:
    """Boolean shares [3, n] of x mod 2^width (width 32 or 64) from arithmetic shares.

    Reducing shares modulo 2^width is a ring homomorphism, so a value known to
    be below 2^width needs only a width-bit adder (see ``a2b``).
    Cost (width 32): 6 rounds; 16/3 B + 4 * 8 + 4 B per element per server.
    """
    if width not in (32, 64):
        raise ValueError(f"{tag}: a2b_word supports widths 32 and 64, got {width}")
    dt = np.uint32 if width == 32 else np.uint64
    n = x.shape[1]
    rot = Rotation(n)
    rand = ctx.rand
    a0 = rot.draw(rand, 0, dt)
    a1 = rot.draw(rand, 1, dt)
    mu = rot.draw(rand, 2, dt, width=2)
    a2, y, g0, g1 = (np.empty(n, dt) for _ in range(4))
    _a2b_share(np.ascontiguousarray(x), rot.cuts, a0, a1, mu, _U((1 << width) - 1) if width < 64 else ~_U(0),
               a2, y, g0, g1)
    got = rot.exchange(ctx.chan, [(0, (1, 2), a2), (1, 0, g1), (2, 0, g0)], tag=f"{tag}/share")
    G, P = np.empty((3, n), dt), np.empty((3, n), dt)
    _a2b_finish(rot.cuts, *(np.ascontiguousarray(v) for v in (got[2], got[1], got[0])), y, a0, a1, mu, G, P)
    p = P.copy()                  # the propagate word a ^ y (the levels update P in place)
    d = 1
    while d < width:
        G, P = _ks_level(ctx, G, P, d, 2 * d < width, width, f"{tag}/prefix{d}")
        d *= 2
    G <<= dt(1)
    return p ^ G


def prefix_or_down(ctx, b: np.ndarray, width: int, tag: str = "prefix-or") -> np.ndarray:
    """p_j = OR of bits j..width-1 of boolean words b (so p = all ones below the highest set bit).

    a | c = a ^ c ^ (a & c); log2(width) rounds of one AND each.
    """
    p = b.copy()                            # updated in place below
    d = 1
    while d < width:
        if ctx.chan.simulated():
            _or_level_all(p, ctx.rand.components((p.shape[1],), p.dtype), p.dtype.type(d))
            _count_and(ctx, p.shape[1], p.dtype, width, f"{tag}{d}")
        else:
            q = p >> p.dtype.type(d)
            r = and_bb(ctx, p, q, width, tag=f"{tag}{d}")
            _xor3(p, q, r)                  # p ^= q ^ r
        d *= 2
    return p


@elementwise(0)
def _or_level_all(p, r, d):
    """One prefix-OR level for every server in one pass, in place (the simulation):
    p |= p >> d as p ^ q ^ (p & q), q = p >> d, the AND as ``and_bb`` with draws r."""
    for i in numba.prange(p.shape[1]):
        p0, p1, p2 = p[0, i], p[1, i], p[2, i]
        q0, q1, q2 = p0 >> d, p1 >> d, p2 >> d
        a0, a1, a2 = _and3(p0, p1, p2, q0, q1, q2, r[0, i], r[1, i], r[2, i])
        p[0, i] = p0 ^ q0 ^ a0
        p[1, i] = p1 ^ q1 ^ a1
        p[2, i] = p2 ^ q2 ^ a2


@elementwise(0)
def _xor3(p, q, r):
    """p ^= q ^ r over [3, n] words, in place."""
    for i in numba.prange(p.shape[1]):
        for c in range(3):
            p[c, i] ^= q[c, i] ^ r[c, i]


# _INDEX_XOR[k, v]: the XOR of the indices 8 k + j of the set bits j of byte v (the bits of
# byte k of a word), so that the XOR of the indices of a word's set bits is the XOR of eight lookups
_INDEX_XOR = np.array([[np.bitwise_xor.reduce([8 * k + j for j in range(8) if (v >> j) & 1] + [0])
                        for v in range(256)] for k in range(8)], dtype=np.uint8)


@elementwise(0)
def _position_bits(p, table, out):
    """From prefix-OR words p [3, n] (all ones from the highest set bit down): the one-hot
    word h = p ^ (p >> 1), and out[c, i] = the position of h's set bit.  The position is
    the XOR of the indices of h's set bits, which is XOR-linear, so it holds per share:
    one table lookup per byte (``_INDEX_XOR``)."""
    for i in numba.prange(p.shape[1]):
        for c in range(3):
            v = _U(p[c, i])
            h = v ^ (v >> _U(1))
            x = np.uint8(0)
            for k in range(p.itemsize):
                x ^= table[k, (h >> _U(8 * k)) & _U(255)]
            out[c, i] = x


def highest_bit_position(ctx, x: np.ndarray, width: int = 32, tag: str = "hbit", bits=None) -> np.ndarray:
    """Arithmetic shares [len(bits), 3, n] of bits ``bits`` (default: all log2(width)) of the
    position of x's highest set bit.

    x: flat arithmetic shares [3, n] of values in [1, 2^width).  Bits of x by a
    width-bit adder, a prefix OR from the top, the one-hot word h = p ^ (p >> 1),
    and the position's bits as XORs of bits of h (local); then one
    bit-to-arithmetic round for the bits asked for.
    """
    n = x.shape[1]
    nbits = int(np.log2(width))
    bits = tuple(range(nbits)) if bits is None else tuple(bits)
    if not bits or any(not 0 <= b < nbits for b in bits):
        raise ValueError(f"{tag}: position bits must be in 0..{nbits - 1}, got {bits}")
    words = a2b_word(ctx, x, width, tag)
    p = prefix_or_down(ctx, words, width, tag=f"{tag}/or")
    packed = np.empty((3, n), np.uint8)
    _position_bits(np.ascontiguousarray(p), _INDEX_XOR, packed)
    pos = np.empty((3, len(bits) * n), np.uint8)
    for k, b in enumerate(bits):      # numpy passes: a Numba loop storing to k rows ran 4x slower
        np.bitwise_and(np.right_shift(packed, b), 1, out=pos[:, k * n:(k + 1) * n])
    arith = bit_to_arith(ctx, pos, tag)
    return arith.reshape(3, len(bits), n).transpose(1, 0, 2)
