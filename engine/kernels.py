"""Elementwise kernels compiled twice: on one thread for small arrays, on every core for large ones.

A kernel's outer loop is ``numba.prange`` over independent elements; compiled
without ``parallel`` that loop is a plain one.  Starting a parallel loop costs
tens of microseconds here (Numba's OpenMP threads wait passively, see
``gemm``), more than a serial pass over a few ten thousand words takes, so a
kernel runs serially below ``PARALLEL_MIN_ITEMS`` elements.  Above it the two
cores gave 1.7-2.0x on the product kernel (``arith._mul_roles``: 3 x 10^6
elements 10.7 -> 6.5 ms, 10^6 4.2 -> 2.0 ms); the passes are mostly bound by
memory bandwidth, which the second core only partly adds.

The parallel twin is a copy of the function under another name, so that
Numba's on-disk cache (keyed by the function's qualified name, not by the
``parallel`` flag) keeps the two compilations apart.
"""

from __future__ import annotations

import functools
import types

import numba

PARALLEL_MIN_ITEMS = 1 << 17


def twins(fn) -> tuple:
    """(serial, parallel): the two cached compilations of a function whose outer loop is
    ``numba.prange``, the parallel one from a renamed copy."""
    serial = numba.njit(cache=True, nogil=True)(fn)
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_parallel",
                              fn.__defaults__, fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + "_parallel"
    twin.__module__ = fn.__module__
    return serial, numba.njit(cache=True, nogil=True, parallel=True)(twin)


def elementwise(size_arg: int = 0):
    """Decorator: a dispatcher that runs the serial or the parallel compilation of the
    kernel, by the ``.size`` of its argument number ``size_arg``."""

    def wrap(fn):
        serial, parallel = twins(fn)

        @functools.wraps(fn)
        def call(*args):
            kernel = call.parallel if args[size_arg].size >= PARALLEL_MIN_ITEMS else call.serial
            return kernel(*args)

        call.serial, call.parallel = serial, parallel
        return call

    return wrap
