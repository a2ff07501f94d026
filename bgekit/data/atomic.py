"""Writing a file so that its final name only ever holds a complete file.

A write that fails (read-only folder, full disk, ``ulimit -f``, quota) is
reported as one :class:`BgekitError` naming the file and the reason; the temp
file is removed and whatever was at the path before stays untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from bgekit.errors import BgekitError


def write_failed(path: str | Path, exc: OSError) -> BgekitError:
    """The one-line error for an output that could not be written."""
    reason = exc.strerror or str(exc)
    return BgekitError(f"cannot write {path}: {reason}; nothing was replaced there (free space, fix the "
                       "folder's permissions, or choose another output path)")


class _Output:
    """The text file handed to the caller; a failing write becomes :func:`write_failed`'s error."""

    def __init__(self, fh: IO[str], path: Path) -> None:
        self._fh = fh
        self._path = path

    def write(self, text: str) -> int:
        try:
            return self._fh.write(text)
        except OSError as exc:
            raise write_failed(self._path, exc) from exc

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._fh.flush()
        except OSError as exc:
            raise write_failed(self._path, exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


@contextlib.contextmanager
def atomic_write(path: str | Path, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Write text to a temp file beside ``path``, renamed over it on success.

    An exception (or Ctrl-C) inside the block deletes the temp file and leaves
    whatever was at ``path`` before untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise write_failed(path, exc) from exc
    try:
        try:
            fh = os.fdopen(fd, "w", encoding=encoding, newline="\n")
        except BaseException:
            os.close(fd)
            raise
        try:
            yield _Output(fh, path)  # type: ignore[misc]
            try:
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                raise write_failed(path, exc) from exc
        finally:
            with contextlib.suppress(OSError):
                fh.close()  # a failed flush is already reported; the temp file goes below
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except OSError as exc:
            raise write_failed(path, exc) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
