"""Process-wide memory allocator settings for the backend's command-line process.

Volumes at 1 mm are tens to hundreds of MB per tensor, and glibc serves every block above its
mmap threshold (at most 32 MB by default) with a fresh ``mmap``: each new tensor then pays a page
fault per 4 KB page on first touch, and ``munmap`` hands it back when freed. A registration at
160 x 192 x 224 allocates such tensors thousands of times: 2.1 million minor page faults and 6 s
of system time out of 18 s wall (one thread, ``accurate`` preset). Serving them from the heap
and keeping freed memory for reuse cut this to 0.6 million faults, 2 s and 14-16 s wall, for
about 1 GB more peak RSS (measured in ``docs/registration.md``).

Only the backend's own process calls this (``medfuse`` / ``python -m SlicerMedFuse``, which Slicer
starts out of process): it never runs inside Slicer's application process.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap; this much free memory at the heap's top is kept.
_THRESHOLD_BYTES = 1 << 30


def reuse_freed_memory() -> bool:
    """Ask glibc to serve large blocks from the heap and keep freed memory; False where that is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries: keep their defaults
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _THRESHOLD_BYTES))
