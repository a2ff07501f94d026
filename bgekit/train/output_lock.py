"""One run per output folder: an advisory lock file that says who holds it.

Two runs writing one ``output_dir`` would delete each other's temp folders
and checkpoints. ``bgekit run`` holds ``<output_dir>/.bgekit.lock`` with
``fcntl.flock`` for the whole run; the file records the holder's pid, host and
start time, which a second run prints in its one-line refusal. The kernel
drops the lock when the holder dies (even by ``kill -9``), so a stale file
never blocks. Where ``fcntl`` does not exist (Windows) there is no lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from bgekit.errors import BgekitError

LOCK_FILE = ".bgekit.lock"
#: descriptors of the locks this process holds: a forked child (a DataLoader worker) closes its copies
_held_fds: set[int] = set()


def drop_inherited_locks() -> None:
    """In a forked child: close the copies of this process's lock descriptors.

    ``flock`` belongs to the open file, which a fork shares: a DataLoader worker
    orphaned by a ``kill -9`` of its trainer would keep the output folder locked
    until it noticed, and the restarted run would be refused. The child never
    needs the lock, so it lets go at once.
    """
    for fd in list(_held_fds):
        with contextlib.suppress(OSError):
            os.close(fd)
    _held_fds.clear()


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def locked_output_dir(output_dir: str | Path) -> Iterator[Path]:
    """Hold the output folder's lock for the block; a one-line error when another live run holds it."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        yield Path(output_dir) / LOCK_FILE
        return
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BgekitError(f"output_dir {root} is in use by another bgekit run ({_holder(path)}; lock file "
                              f"{path}); wait for it to finish, stop it, or set another output_dir") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file as we opened it: lock the new one instead
    _held_fds.add(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode() + b"\n")
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # before unlocking, so nobody locks a file that is about to vanish
        _held_fds.discard(fd)
        os.close(fd)
