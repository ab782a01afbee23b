"""Wake a waiting app when a file lands in a workspace folder (Linux inotify).

A registry's generator and discriminator hand each step over through the workspace
(signed statements, :class:`~synthreg.chain.anchor.StatementStore`); nothing on the
ledger tells the other app that the file is there. Polling found it 6-8 ms late on
average (1-20 ms back-off) on each of the two hand-overs of every step, about 14 ms
of a step's ~55 ms on this machine (issue 11). A :class:`DirWatch` on the folder
wakes the waiter when a file is renamed into it or closed after writing; where
inotify is not available (not Linux, or the per-user instance limit reached) the
waiter polls as before.

Only libc's three inotify calls are used (through :mod:`ctypes`); the events are
read and dropped: the waiter looks at the files itself, so a lost or merged event
can only make it wait for its next poll.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import select
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(None, use_errno=True)
            lib.inotify_init1.argtypes = [ctypes.c_int]
            lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            _libc = lib
        except (OSError, AttributeError):
            return None
    return _libc


class DirWatch:
    """Changes in one folder (created if missing), as a wake-up: :meth:`wait` returns
    True as soon as a file was moved into, created in or written in it since the last
    call (or construction), False after ``timeout``. ``active`` is False when inotify
    could not be set up; :meth:`wait` then just sleeps (the caller polls)."""

    def __init__(self, folder: Path) -> None:
        self.fd = -1
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        lib = _lib()
        if lib is None:
            return
        fd = lib.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            log.debug("inotify unavailable (%s): polling %s", os.strerror(ctypes.get_errno()), folder)
            return
        if lib.inotify_add_watch(fd, os.fsencode(folder), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0:
            log.debug("inotify watch of %s failed (%s): polling", folder, os.strerror(ctypes.get_errno()))
            os.close(fd)
            return
        self.fd = fd

    @property
    def active(self) -> bool:
        return self.fd >= 0

    def wait(self, timeout: float) -> bool:
        if not self.active:
            select.select([], [], [], max(timeout, 0.0))
            return False
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0.0))
        if not ready:
            return False
        while True:  # drop what was read: the waiter looks at the files itself
            try:
                if not os.read(self.fd, 65536):
                    break
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    break
                raise
        return True

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> DirWatch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
