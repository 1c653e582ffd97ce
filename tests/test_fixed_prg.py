import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secptune.engine import FixedPoint
from secptune.engine.prg import Randomness, Stream, derive_key


@given(st.integers(8, 24), st.floats(-1e6, 1e6, allow_nan=False))
def test_encode_decode_round_trip_within_half_ulp(f, x):
    fx = FixedPoint(f)
    got = fx.decode(fx.encode(np.array([x])))[0]
    assert abs(got - x) <= fx.ulp / 2 + abs(x) * 1e-15


def test_encode_errors_name_the_tensor_and_problem():
    fx = FixedPoint(18)
    with pytest.raises(ValueError, match=r"weights: non-finite value nan at index \(1,\)"):
        fx.encode(np.array([0.0, np.nan]), "weights")
    with pytest.raises(ValueError, match=r"acts: value .* outside the fixed-point range"):
        fx.encode(np.array([2.0**44]), "acts")
    fx.encode(np.array([2.0**44 - 1]), "acts")
    with pytest.raises(ValueError, match="frac_bits"):
        FixedPoint(0)


def test_fixed_point_constants():
    fx = FixedPoint(18)
    assert fx.ulp == 2.0**-18
    assert fx.max_product == 2.0**26
    assert fx.decode(fx.encode(np.array([-1.5])))[0] == -1.5


def test_seeded_streams_replay_and_unseeded_differ():
    a, b = Randomness(5), Randomness(5)
    assert np.array_equal(a.component(1).words(100), b.component(1).words(100))
    assert not np.array_equal(Randomness(None).own(0).words(8), Randomness(None).own(0).words(8))
    assert not np.array_equal(Randomness(5).own(0).words(8), Randomness(6).own(0).words(8))


def test_streams_have_distinct_keys_and_independent_counters():
    labels = ["own/0", "own/1", "own/2", "component/0", "component/1", "component/2", "common", "client"]
    keys = {derive_key(1, lab) for lab in labels}
    assert len(keys) == len(labels)
    r = Randomness(9)
    first = r.component(0).words(4)
    r.component(1).words(1000)               # another stream's counter moves ...
    s = Randomness(9)
    assert np.array_equal(first, s.component(0).words(4))
    assert np.array_equal(r.component(0).words(4), s.component(0).words(4))   # ... this one's does not


def _keystream(key: bytes, nbytes: int) -> bytes:
    """The stream's layout written out with OpenSSL's CTR mode: segment s is AES-128-CTR
    from the counter block s (96 bits) || 2 (32 bits)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from secptune.engine.prg import SEGMENT

    out = b""
    for s in range(-(-nbytes // SEGMENT)):
        block = s.to_bytes(12, "big") + (2).to_bytes(4, "big")
        out += Cipher(algorithms.AES(key), modes.CTR(block)).encryptor().update(bytes(SEGMENT))
    return out[:nbytes]


def test_stream_is_the_aes_counter_mode_keystream_of_its_segments():
    from secptune.engine.prg import SEGMENT

    key = bytes(range(16))
    assert np.array_equal(Stream(key).words(8), np.frombuffer(_keystream(key, 64), np.uint64))
    # small draws across a segment boundary: the next segment's counter blocks take over
    s = Stream(key)
    sizes = [SEGMENT - 5, 3, 7, 1]
    got = b"".join(s.words(n, np.uint8).tobytes() for n in sizes)
    assert got == _keystream(key, sum(sizes))


def test_large_draws_split_over_threads_give_the_serial_keystream():
    """Draws from PARALLEL_MIN_BYTES on are cut at segment boundaries into runs encrypted
    in parallel; the bytes, and every draw after them, are the single keystream's."""
    from secptune.engine import prg

    key = bytes(range(16))
    sizes = [3, prg.PARALLEL_MIN_BYTES + 5, 1, 2 * prg.PARALLEL_MIN_BYTES + 7, 9, prg.PARALLEL_MIN_BYTES,
             prg.SEGMENT - 12, 3 * prg.SEGMENT]
    s = Stream(key)
    got = b"".join(s.words(n, np.uint8).tobytes() for n in sizes)
    assert got == _keystream(key, sum(sizes)) and s.bytes_drawn == sum(sizes)


def test_draws_from_several_streams_in_one_parallel_write_give_each_serial_keystream():
    """draw_concat writes the pieces of several streams in one dispatch, cut at their own
    segment boundaries; each piece is its stream's keystream and each stream continues
    from where its piece ended (also mid-segment)."""
    from secptune.engine import prg

    keys = [bytes([k]) * 16 for k in range(3)]
    streams = [Stream(k) for k in keys]
    lead = [5, prg.SEGMENT - 3, 0]                         # start mid-segment, near a boundary, at one
    for st, n in zip(streams, lead):
        st.words(n, np.uint8)
    counts = [prg.SEGMENT // 8 + 1, 3 * prg.SEGMENT // 8 + 3, 2 * prg.SEGMENT // 8]   # uint64 words
    got = prg.draw_concat(list(zip(streams, counts)), np.uint64)
    after = [st.words(7, np.uint8).tobytes() for st in streams]
    at = 0
    for key, n0, c, tail in zip(keys, lead, counts, after):
        want = _keystream(key, n0 + 8 * c + 7)
        assert got[at:at + c].tobytes() == want[n0:n0 + 8 * c] and tail == want[n0 + 8 * c:]
        at += c
    with pytest.raises(ValueError, match="one piece per write"):
        prg.draw_concat([(streams[0], 4), (streams[0], 4)], np.uint64)


def test_stream_output_looks_uniform():
    w = Randomness(3).common.words(1 << 16, np.uint8)
    counts = np.bincount(w, minlength=256)
    chi2 = float(((counts - w.size / 256) ** 2 / (w.size / 256)).sum())
    assert chi2 < 350  # 255 degrees of freedom: p ~ 1e-4


def test_zero_sharing_sums_to_zero():
    r = Randomness(2)
    z = r.zero_sharing((50,))
    assert np.all(z.sum(axis=0, dtype=np.uint64) == 0)
    zb = r.zero_sharing((50,), np.uint32, boolean=True)
    assert np.all(zb[0] ^ zb[1] ^ zb[2] == 0)
    assert np.any(z[0] != 0)
