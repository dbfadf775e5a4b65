"""Giving freed memory back to the operating system.

glibc's allocator raises its mmap threshold after large blocks are freed, so later
blocks of that size come from the heap, whose free pages it keeps. Reading a large log
allocates and frees many such blocks (one decoded batch after another), and without a
trim the process's resident memory ends up well above what it holds. ``malloc_trim``
returns those pages; elsewhere than glibc this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from functools import cache


@cache
def _trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None
    return trim


def release_free_memory() -> None:
    """Return the allocator's free pages to the operating system (glibc only)."""
    trim = _trim()
    if trim is not None:
        trim(0)
