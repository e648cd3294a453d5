"""Run code inside the test engine's network namespace, where `--network host` containers live.

setns(2) moves only the calling thread; threads it starts inherit the namespace, so a stand-in started
inside :func:`network_namespace` keeps serving there after the block ends.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns(CLONE_NEWNET) failed: {os.strerror(errno)} (the tests need root)")


@contextmanager
def network_namespace(path: Path) -> Iterator[None]:
    """The calling thread joins the namespace at `path` (e.g. /proc/<pid>/ns/net) for the block."""
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(original)
    finally:
        os.close(target)
        os.close(original)
