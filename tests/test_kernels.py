"""The two compilations of an elementwise kernel agree, and the dispatcher picks by size."""

import numpy as np
import pytest

from secptune.engine import kernels
from secptune.engine.comm import pack_bits, placeholder, unpack_bits
from secptune.engine.protocols.arith import _mul_roles
from secptune.engine.protocols.trunc import _correct_step


def test_serial_and_parallel_compilations_write_the_same_words():
    rng = np.random.default_rng(0)
    n = 3000
    x, y, r, add = (rng.integers(0, 2**64, (3, n), dtype=np.uint64) for _ in range(4))
    cuts = np.array([0, 1000, 2000, n], np.int64)
    for me in (-1, 1):
        for zero_sharing in (True, False):
            a, b = np.zeros((3, n), np.uint64), np.zeros((3, n), np.uint64)
            _mul_roles.serial(x, y, r, cuts, me, add, True, zero_sharing, a)
            _mul_roles.parallel(x, y, r, cuts, me, add, True, zero_sharing, b)
            assert np.array_equal(a, b) and a.any()
    v = [rng.integers(0, 2**64, n, dtype=np.uint64) for _ in range(6)]
    outs = [np.zeros(n, np.uint64), np.zeros(n, np.uint64)]
    for kern, out in zip((_correct_step.serial, _correct_step.parallel), outs):
        kern(v[0], v[1], v[2], True, v[3], v[4], 1, 14, v[5], out)
    assert np.array_equal(*outs)


def test_dispatch_by_size(monkeypatch):
    calls = []

    @kernels.elementwise()
    def fill(a, value):
        for i in range(a.size):
            a[i] = value

    monkeypatch.setattr(fill, "serial", lambda *a: calls.append("serial"))
    monkeypatch.setattr(fill, "parallel", lambda *a: calls.append("parallel"))
    fill(np.zeros(kernels.PARALLEL_MIN_ITEMS - 1), 1.0)
    fill(np.zeros(kernels.PARALLEL_MIN_ITEMS), 1.0)
    assert calls == ["serial", "parallel"]


@pytest.mark.parametrize("bits", [1, 2, 4])
@pytest.mark.parametrize("n", [1, 7, 1001, 8 * kernels.PARALLEL_MIN_ITEMS + 3])
def test_bit_packing_round_trips(bits, n):
    v = np.random.default_rng(n).integers(0, 2**bits, n).astype(np.uint8)
    packed = pack_bits(v, bits)
    assert packed.size == -(-n // (8 // bits))
    assert np.array_equal(unpack_bits(packed, bits, n), v)
    if n == 7 and bits == 1:                       # low values first within a byte
        assert packed[0] == sum(int(b) << k for k, b in enumerate(v))
    with pytest.raises(ValueError, match="fewer than"):
        unpack_bits(packed, bits, packed.size * (8 // bits) + 1)
    # a placeholder (the one-pass simulation's counted stand-in) packs to one of the
    # packed size without touching bytes; a real array of zeros still packs to bytes
    held = pack_bits(placeholder((n,), np.uint8), bits)
    assert held.shape == packed.shape and (n == 1 or not any(held.strides)) and not held.any()
    assert unpack_bits(held, bits, n).shape == (n,)
    assert pack_bits(np.zeros(n, np.uint8), bits).strides == (1,)


def _run_truncations(ctx):
    """Truncating protocols (products, plain truncations, the additive and the public
    matmul forms, the masked cosine's paired truncation) and comparisons (whose AND
    rounds also take the one-pass path), outputs in a list."""
    from secptune.engine import SharedTensor, approx

    rng = np.random.default_rng(4)
    x = SharedTensor.from_client(ctx, rng.normal(size=(5, 7)) * 3)
    y = SharedTensor.from_client(ctx, rng.normal(size=(7, 4)))
    z = SharedTensor.from_client(ctx, rng.uniform(0.01, 100.0, size=(5, 7)))
    outs = [x * x, x.truncate(), x @ y, x @ rng.normal(size=(7, 3)), x.sum_squares(), approx.cos_sin(x)["sin"],
            x.relu(), x.lt(0.5), approx.gelu(x, coarse=True),      # comparisons: the AND rounds too
            approx.reciprocal(z), approx.rsqrt(z)]                   # bit decomposition and prefix OR
    return [t.shares for t in outs]


def test_the_one_pass_simulation_of_a_truncation_equals_the_role_by_role_steps():
    """In-process and untapped, ``trunc_roles`` runs every role in one kernel and only
    counts the messages (``and_bb`` keeps its local result and counts the packed
    ones); tapped (or in party mode) they run role by role and send them.
    The same seed gives the same shares bit for bit, the same rounds and bytes and the
    same logged openings."""
    from secptune.engine import Context, EngineConfig

    fused, stepped = Context(EngineConfig(seed=3)), Context(EngineConfig(seed=3))
    assert fused.chan.simulated()
    with fused.chan.measure() as mf:
        a = _run_truncations(fused)
    with stepped.chan.tap(0), stepped.chan.measure() as ms:
        assert not stepped.chan.simulated()
        b = _run_truncations(stepped)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert mf.cost == ms.cost and mf.openings == ms.openings


def test_the_one_pass_and_role_by_role_paths_agree_on_the_parallel_kernels():
    """Above PARALLEL_MIN_ITEMS both paths run the parallel compilations: a product,
    a coarse comparison's ReLU, a masked cosine and a reciprocal (bit decomposition,
    prefix OR) on 150,000 elements, both ways."""
    from secptune.engine import Context, EngineConfig, SharedTensor, approx

    n = kernels.PARALLEL_MIN_ITEMS + 19_000

    def run(ctx):
        x = SharedTensor.from_client(ctx, np.random.default_rng(5).normal(size=n) * 4)
        z = SharedTensor.from_client(ctx, np.random.default_rng(6).uniform(0.01, 100.0, size=n))
        return [t.shares for t in (x * x, x.relu(), approx.gelu(x, coarse=True), approx.cos_sin(x)["cos"],
                                   approx.reciprocal(z))]

    fused, stepped = Context(EngineConfig(seed=8)), Context(EngineConfig(seed=8))
    a = run(fused)
    with stepped.chan.tap(1):
        b = run(stepped)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("n", [1, 7, 8, 9, 23, 100, 1001, 3 * 8 * 37 + 5])
def test_the_sixteen_bit_first_level_eight_at_a_time_equals_the_element_wise_kernel(n):
    """``_first_level16_all`` packs eight elements' bytes per word; groups that straddle a
    chunk boundary and the last n mod 8 elements go element by element.  Every word
    must equal ``_first_level_all``'s, in both compilations."""
    from secptune.engine.protocols.boolean import _first_level16_all, _first_level_all
    from secptune.engine.protocols.roles import Rotation

    rng = np.random.default_rng(n)
    cuts = Rotation(n).cuts
    a, y = (rng.integers(0, 2**16, n).astype(np.uint16) for _ in range(2))
    F0, F1 = (rng.integers(0, 256, (n, 3)).astype(np.uint8) for _ in range(2))
    t0, t1 = (rng.integers(0, 2, n).astype(np.uint8) for _ in range(2))
    mask = rng.integers(0, 256, (n, 4)).astype(np.uint8)
    want = [np.full((3, n), 7, np.uint8) for _ in range(3)]
    _first_level_all.serial(cuts, a, y, F0, F1, t0, t1, mask, 16, *want)
    for kern in (_first_level16_all.serial, _first_level16_all.parallel):
        got = [np.full((3, n), 7, np.uint8) for _ in range(3)]
        kern(cuts, a, y, F0, F1, t0, t1, mask, *got)
        for w, g in zip(want, got):
            assert np.array_equal(w, g)
