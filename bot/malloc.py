"""glibc malloc settings for the long-running service, applied once at `vigil run`'s start.

Measured with bench/memory.py (the triage role alone, 10,000 watches, 100 trained models):
glibc raises its mmap threshold each time a large block mmapped is freed (up to 32 MB), after
which numpy's big arrays — the scoring bank rebuilt at each model update, a batch's feature
arrays — come from the heap, where a freed one is kept rather than returned: the resident set
only grows. A fixed threshold (`M_MMAP_THRESHOLD`, which also ends the dynamic adjustment)
returns them on free, and two arenas (`M_ARENA_MAX`) keep the worker threads of
`asyncio.to_thread` from each holding an arena of freed memory. Measured on the triage role
alone: 387 MB peak / 387 MB final before, see the README for after.

An operator's own `MALLOC_MMAP_THRESHOLD_` / `MALLOC_ARENA_MAX` wins; on a C library other
than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept fixed
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Apply the settings above; True if glibc took them."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = True
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        applied = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and applied
    if "MALLOC_ARENA_MAX" not in os.environ:
        applied = mallopt(M_ARENA_MAX, ARENA_MAX) == 1 and applied
    if not applied:
        log.debug("malloc: glibc refused a setting")
    return applied
