"""Host memory: let glibc keep freed NumPy buffers for reuse instead of returning them to the OS.

A training step allocates and frees the same large arrays (activations, gradients, GEMM outputs)
over and over. glibc serves a large request with a fresh ``mmap`` and returns it to the kernel on
``free`` (and trims the heap top above a threshold), so the next step's array of the same size
page-faults on every 4 KiB page it touches: a transformer-layer step measured 13,700 minor faults
and ran 1.9x slower than with the settings below (docs/benchmarks.md, issue 12). PyTorch's CPU
allocator and oneDNN avoid this with their own caching; NumPy arrays come from ``malloc``, so the
equivalent here is two ``mallopt`` settings, applied once when chainrule is imported:

* ``M_MMAP_THRESHOLD`` = 32 MiB (glibc's largest allowed value): requests below it come from the
  heap, whose freed blocks are reused;
* ``M_TRIM_THRESHOLD`` = 1 GiB: free memory at the heap's top goes back to the OS only above that.

The cost is that the process keeps up to that much freed memory (its RSS does not shrink after a
peak), as every framework's caching allocator does. Only glibc Linux is affected; elsewhere, or with
``CHAINRULE_MALLOC_TUNING=0`` in the environment, nothing is changed. :func:`tuned` tells which.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune_allocator", "tuned"]

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024

_applied = False  # written once at import, read by tuned(): not state on any hot path


def tune_allocator() -> bool:
    """Apply the two ``mallopt`` settings (module docstring) once; True when they are in effect."""
    global _applied
    if _applied:
        return True
    switched_off = os.environ.get("CHAINRULE_MALLOC_TUNING", "1") == "0"
    if switched_off or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt  # glibc; musl has no mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied


def tuned() -> bool:
    """Whether this process runs with the allocator settings of :func:`tune_allocator`."""
    return _applied
