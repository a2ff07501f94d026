"""Open a data file through the format registry: detect, then stream rows."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from bgekit.data.example import Example, RowError
from bgekit.errors import BgekitError
from bgekit.registry import FormatSpec, Registry

SAMPLE_BYTES = 64 * 1024


@dataclass
class Sample:
    """The head of a file, for format detection."""

    path: str
    raw: bytes
    text: str

    @classmethod
    def of(cls, path: str | Path, encoding: str = "utf-8-sig") -> "Sample":
        with open(path, "rb") as fh:
            raw = fh.read(SAMPLE_BYTES)
        text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(raw)
        return cls(str(path), raw, text)


def detect_format(path: str | Path, registry: Registry, role: str = "train") -> FormatSpec:
    """The format whose detector is most confident about ``path``."""
    sample = Sample.of(path)
    scored = []
    for spec in registry.all("data_format"):
        if isinstance(spec, FormatSpec) and spec.role == role:
            try:
                scored.append((float(spec.detect(sample)), spec.name, spec))
            except Exception:
                continue
    scored.sort(key=lambda t: (-t[0], t[1]))
    if not scored or scored[0][0] <= 0.0:
        raise BgekitError(
            f"{path}: could not tell the data format; pass it explicitly "
            f"(known: {', '.join(registry.names('data_format'))})"
        )
    return scored[0][2]


def read_examples(path: str | Path, registry: Registry, fmt: str = "auto",
                  **params) -> Iterator[Example | RowError]:
    """Stream examples (and row errors) from ``path`` in format ``fmt``."""
    if not Path(path).exists():
        raise BgekitError(f"{path}: no such file")
    spec = detect_format(path, registry) if fmt == "auto" else registry.get("data_format", fmt)
    reader = spec.create(**params)
    yield from reader.read(str(path))
