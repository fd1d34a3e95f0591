"""Keep freed memory in the process heap instead of handing it back to the operating system at once.

glibc serves large blocks with ``mmap`` and unmaps them when they are freed, so a network whose
activations are hundreds of MiB (the FID Inception at 299², I3D at 224²) faults every page of every
activation in again on each forward pass: ~1.1 M page faults and ~5 s of kernel time per 64 Inception
images on a 2-core machine. Raising glibc's mmap and trim thresholds lets freed blocks be reused:
those faults disappear and the features come ~1.3× faster (``benchmarks/heap.py``). The price is that
the process's resident memory stays near its peak until it exits. Elsewhere than glibc it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import platform

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap; up to 1 GiB of free heap top is kept


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap/trim thresholds to ``THRESHOLD`` once per process; True if it took effect."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD))
    if not done:
        log.debug("glibc refused the heap thresholds; freed memory goes back to the system as usual")
    return done
