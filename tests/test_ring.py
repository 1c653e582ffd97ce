import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from secptune.engine.gemm import u64_matmul
from secptune.engine.ring import as_ring, const

EDGES = [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 2**21, 2**43 - 1, 2**44]
ring_values = st.one_of(st.sampled_from(EDGES), st.integers(0, 2**64 - 1))


def ring_arrays(shape):
    return hnp.arrays(np.uint64, shape, elements=ring_values)


@given(st.data(), st.integers(1, 6), st.integers(1, 30), st.integers(1, 6), st.integers(0, 62))
def test_u64_matmul_with_small_public_entries_is_exact(data, m, k, n, bits):
    a = data.draw(ring_arrays((m, k)))
    lim = 2**bits
    w = as_ring(data.draw(hnp.arrays(np.int64, (k, n), elements=st.integers(-lim, lim - 1))))
    assert np.array_equal(u64_matmul(a, w), a @ w)


def test_long_inner_dimension_is_exact():
    rng = np.random.default_rng(0)
    a = np.full((3, 5000), np.uint64(2**64 - 1), dtype=np.uint64)
    a[1] = rng.integers(0, 2**64, size=5000, dtype=np.uint64)
    b = rng.integers(0, 2**64, size=(5000, 4), dtype=np.uint64)
    assert np.array_equal(u64_matmul(a, b), a @ b)


def test_ring_helpers():
    assert as_ring(np.array([-1]))[0] == np.uint64(2**64 - 1)
    assert const(-2) == np.uint64(2**64 - 2)
    with pytest.raises(TypeError):
        as_ring(np.array([0.5]))


# -- the direct uint64 kernel (engine/gemm.py) ---------------------------------

@given(st.data(), st.integers(1, 11), st.integers(1, 40), st.integers(1, 19))
def test_u64_matmul_is_exact(data, m, k, n):
    a = data.draw(ring_arrays((m, k)))
    b = data.draw(ring_arrays((k, n)))
    assert np.array_equal(u64_matmul(a, b), a @ b)


@pytest.mark.parametrize("sa, sb", [((2, 3, 5, 7), (2, 3, 7, 9)), ((2, 1, 5, 3), (4, 3, 6)), ((5, 3), (2, 3, 4)),
                                    ((1, 1), (1, 1)), ((0, 3), (3, 4)), ((3, 0), (0, 4)),
                                    ((70, 260), (260, 250))])      # the last one runs the parallel kernel
def test_u64_matmul_batches_edges_and_threads(sa, sb):
    from secptune.engine import gemm

    rng = np.random.default_rng(2)
    a = rng.integers(0, 2**64, size=sa, dtype=np.uint64)
    b = rng.integers(0, 2**64, size=sb, dtype=np.uint64)
    want = a @ b
    got = gemm.u64_matmul(a, b)
    assert got.shape == want.shape and np.array_equal(got, want)
    out = np.full(want.shape, 7, np.uint64)                  # written in place, every word (zeros if K = 0)
    assert gemm.u64_matmul(a, b, out=out) is out and np.array_equal(out, want)
    if sa == (70, 260):
        assert 70 * 260 * 250 >= gemm.PARALLEL_MIN_MACS


def test_u64_matmul_rejects_mismatched_operands():
    with pytest.raises(ValueError, match="inner dimensions"):
        u64_matmul(np.zeros((2, 3), np.uint64), np.zeros((4, 2), np.uint64))
    with pytest.raises(ValueError, match="two axes"):
        u64_matmul(np.zeros(3, np.uint64), np.zeros((3, 2), np.uint64))
    with pytest.raises(ValueError, match=r"out must be C-contiguous uint64 of shape \(2, 4\)"):
        u64_matmul(np.zeros((2, 3), np.uint64), np.zeros((3, 4), np.uint64), out=np.zeros((4, 2), np.uint64))


def test_gemm_kernels_file_is_generated_from_the_current_source():
    from pathlib import Path

    from secptune.engine import gemm

    path = Path(gemm.__file__).parent / "gemm_kernels.py"
    assert path.read_text() == gemm.kernel_source(), "run python tools/make_gemm_kernels.py"


@pytest.mark.parametrize("preset,want", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_wait_passively_unless_the_user_says_otherwise(preset, want):
    """Spinning OpenMP threads slowed the single-threaded code after each parallel product."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    out = subprocess.run([sys.executable, "-c", "import os, secptune.engine; print(os.environ['OMP_WAIT_POLICY'])"],
                         capture_output=True, text=True, env=env, check=True).stdout.strip()
    assert out == want
