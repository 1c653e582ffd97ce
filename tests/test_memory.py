"""The allocator settings the engine applies at import (engine/memory.py)."""

import platform
import resource

import numpy as np
import pytest

from secptune.engine.memory import tune_allocator

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's (mallopt)")


@glibc
def test_every_setting_takes_effect():
    # the first version asked for an mmap threshold glibc refuses and silently applied nothing
    assert tune_allocator() == {"mmap_max": True, "trim_threshold": True, "top_pad": True}


@glibc
def test_a_freed_large_block_is_reused_without_new_page_faults():
    n = 100 << 20                      # above glibc's largest mmap threshold (32 MiB)
    a = np.ones(n // 8, np.uint64)     # grows the heap once
    del a
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    b = np.ones(n // 8, np.uint64)     # touches every page again
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert b.sum() == n // 8
    # fresh memory would fault once per 4 KiB page (25,600) or per 2 MiB huge page (50)
    assert faults < 10, faults
