"""Give freed memory back to the system after a large image.

glibc keeps freed heap memory for reuse; after a 40-megapixel decode (Pillow's 16 MB
blocks come from the heap once glibc's mmap threshold has grown) a worker would keep
hundreds of megabytes it no longer uses. `malloc_trim(0)` returns the free pages. Other C
libraries (musl, macOS) return large blocks themselves: there it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def give_back_memory() -> None:
    """Return free heap pages to the system (glibc), so a worker shrinks after a peak."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
