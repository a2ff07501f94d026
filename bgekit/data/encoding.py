"""Telling a text file's encoding: UTF-8 (with or without BOM), UTF-16, GB18030.

Statistical detectors (chardet, charset-normalizer) guess wrong on short
Chinese text, so the order here is deterministic: a byte-order mark decides;
a head with NUL bytes in every other position is BOM-less UTF-16; otherwise
the head must decode as strict UTF-8, else as strict GB18030 (a superset of
GBK and GB2312). Anything else asks the user for ``--encoding``.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import IO, Iterator

from bgekit.errors import BgekitError

SAMPLE_BYTES = 64 * 1024

#: Byte-order marks, longest first (UTF-32 LE starts with the UTF-16 LE mark).
BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]

#: Names users write that mean an encoding we decode with another codec.
ALIASES = {"gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030", "utf8": "utf-8",
           "utf-8-bom": "utf-8-sig", "utf8-bom": "utf-8-sig", "utf16": "utf-16"}


def detect_encoding_of_bytes(raw: bytes, complete: bool = False) -> str | None:
    """The codec name for ``raw`` (the head of a file), or None when unsure.

    ``complete`` says ``raw`` is the whole file, so a multi-byte character cut
    at the end of the sample is an error rather than the sample's edge.
    """
    for bom, name in BOMS:
        if raw.startswith(bom):
            return name
    even, odd = raw[0:4096:2], raw[1:4096:2]
    if len(raw) >= 4 and odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if len(raw) >= 4 and even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    if _strict_decodes(raw, "utf-8", complete):
        return "utf-8"
    if _strict_decodes(raw, "gb18030", complete):
        return "gb18030"
    return None


def _strict_decodes(raw: bytes, codec: str, complete: bool) -> bool:
    try:
        codecs.getincrementaldecoder(codec)(errors="strict").decode(raw, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def normalize_encoding(name: str) -> str:
    """The Python codec for a user-written encoding name, checked to exist."""
    key = name.strip().lower()
    codec = ALIASES.get(key, key)
    try:
        codecs.lookup(codec)
    except LookupError:
        raise BgekitError(f"unknown encoding '{name}'; try utf-8, utf-8-sig, gb18030 or utf-16") from None
    return codec


def detect_encoding(path: str | Path) -> str:
    """The codec to open ``path`` with; a clear error when it is none we know."""
    with open(path, "rb") as fh:
        raw = fh.read(SAMPLE_BYTES + 1)
    complete = len(raw) <= SAMPLE_BYTES
    found = detect_encoding_of_bytes(raw[:SAMPLE_BYTES], complete=complete)
    if found is None:
        raise BgekitError(
            f"{path}: not UTF-8, UTF-16 or GB18030/GBK text; pass the file's encoding "
            "with --encoding (e.g. --encoding big5)"
        )
    return found


def resolve_encoding(path: str | Path, encoding: str | None) -> str:
    """``encoding`` as a codec name, detecting it when it is None or ``auto``."""
    if encoding is None or encoding.lower() == "auto":
        return detect_encoding(path)
    return normalize_encoding(encoding)


def open_text(path: str | Path, encoding: str | None = "auto") -> IO[str]:
    """Open ``path`` for reading text with its (detected) encoding.

    Newlines are kept as written (``newline=""``) so line numbers count the
    way editors do; decode errors are strict and reported with a line by the
    callers through :func:`decode_error`.
    """
    return open(path, encoding=resolve_encoding(path, encoding), errors="strict", newline="")


def decode_error(path: str | Path, line: int | None, encoding: str, exc: UnicodeDecodeError) -> BgekitError:
    """The error for bytes that do not decode: where, and what to do."""
    where = f"{path}:{line}" if line else str(path)
    return BgekitError(
        f"{where}: cannot decode as {encoding} ({exc.reason}); "
        "pass the file's encoding, e.g. --encoding gb18030"
    )


def iter_lines(path: str | Path, encoding: str | None = "auto") -> Iterator[tuple[int, str]]:
    """``(line number, line without its newline)`` for each line of a text file.

    A byte sequence that does not decode raises a :class:`BgekitError` naming
    the line, instead of a bare ``UnicodeDecodeError`` from deep inside.
    """
    codec = resolve_encoding(path, encoding)
    with open(path, encoding=codec, errors="strict", newline="") as fh:
        lineno = 0
        while True:
            lineno += 1
            try:
                line = fh.readline()
            except UnicodeDecodeError as exc:
                raise decode_error(path, lineno, codec, exc) from None
            if not line:
                return
            if lineno == 1:
                line = line.lstrip("\ufeff")
            yield lineno, line.rstrip("\r\n")
