"""Process-level settings for the compute-heavy commands (train, evaluate, demo, predict, benchmarks).

On Linux, glibc's ``malloc`` serves every block above its mmap threshold (at most 32 MB) with a fresh
``mmap`` and gives it back with ``munmap`` on free. SAM's global attention at 1024 tokens allocates and
frees score tensors of ~200 MB (batch 8) several times per step, so each step pays for hundreds of
thousands of page faults that zero the same memory again: on this project's 2-core CPU a ``sam_tiny``
training step spent as much time in the kernel as in PyTorch. Serving large blocks from the heap and
keeping freed memory for reuse removes that work (measured with ``medseg-r train``: 0.46 -> 0.68 batch-8
steps/s in fp32; README) at the cost of a higher resident size (the peak is kept instead of returned).

Set ``MEDSEG_R_MALLOC=default`` to leave the allocator as it is.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt(3) parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_done = False


def keep_freed_memory() -> bool:
    """Make glibc reuse freed large blocks instead of unmapping them; returns whether it was applied.

    A no-op (``False``) outside Linux/glibc, when ``MEDSEG_R_MALLOC=default``, or when ``mallopt``
    refuses. Safe to call more than once; affects only allocations made afterwards.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("MEDSEG_R_MALLOC", "").lower() == "default":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    _done = bool(ok)
    return _done


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(probe() for probe in probes if probe is not None)
    except RuntimeError:
        return False


def cpu_model() -> str:
    """This machine's CPU as ``lscpu`` names it, and whether it has bfloat16 instructions: every
    timing is stated beside it (CPUs of one kind differ)."""
    import platform

    name = platform.processor() or platform.machine() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name}, {cpus} CPUs, {'with' if cpu_has_bf16() else 'without'} bfloat16 instructions"
