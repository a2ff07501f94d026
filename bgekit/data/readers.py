"""Open a data file through the format registry: detect, then stream rows."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from bgekit.data.encoding import SAMPLE_BYTES, detect_encoding_of_bytes, resolve_encoding
from bgekit.data.example import Example, RowError
from bgekit.errors import BgekitError
from bgekit.registry import FormatSpec, Registry


@dataclass
class Sample:
    """The head of a file (or the listing of a directory), for format detection.

    ``text`` is the head decoded with ``encoding`` (detected unless given);
    for a directory ``raw`` and ``text`` are empty and ``files`` lists the
    paths inside it, relative and with ``/``, two levels deep.
    """

    path: str
    raw: bytes
    text: str
    encoding: str = "utf-8"
    files: list[str] = field(default_factory=list)

    @property
    def is_dir(self) -> bool:
        return Path(self.path).is_dir()

    @property
    def suffix(self) -> str:
        return Path(self.path).suffix.lower()

    @classmethod
    def of(cls, path: str | Path, encoding: str | None = None) -> "Sample":
        path = Path(path)
        if path.is_dir():
            files = sorted(str(p.relative_to(path)).replace("\\", "/") for p in path.glob("*") if p.is_file())
            files += sorted(str(p.relative_to(path)).replace("\\", "/") for p in path.glob("*/*") if p.is_file())
            return cls(str(path), b"", "", "utf-8", files)
        with open(path, "rb") as fh:
            raw = fh.read(SAMPLE_BYTES)
        if encoding is None or encoding == "auto":
            encoding = detect_encoding_of_bytes(raw, complete=len(raw) < SAMPLE_BYTES) or "utf-8"
        else:
            encoding = resolve_encoding(path, encoding)
        text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(raw)
        return cls(str(path), raw, text.lstrip("\ufeff"), encoding)


def detect_format(path: str | Path, registry: Registry, role: str | None = "train",
                  encoding: str | None = None) -> FormatSpec:
    """The format whose detector is most confident about ``path``.

    ``role`` limits the candidates to training (``"train"``) or evaluation
    (``"eval"``) formats; None considers every format.
    """
    sample = Sample.of(path, encoding)
    scored = []
    for spec in registry.all("data_format"):
        if isinstance(spec, FormatSpec) and (role is None or spec.role == role):
            try:
                scored.append((float(spec.detect(sample)), spec.name, spec))
            except Exception:
                continue
    scored.sort(key=lambda t: (-t[0], t[1]))
    if not scored or scored[0][0] <= 0.0:
        raise BgekitError(
            f"{path}: could not tell the data format; pass it explicitly with --format/--from "
            f"(known: {', '.join(registry.names('data_format'))})"
        )
    return scored[0][2]


@dataclass
class OpenedData:
    """A data source with its format and encoding settled, ready to stream."""

    path: str
    spec: FormatSpec
    encoding: str  # the codec used, or "per file" for a directory
    params: dict[str, Any] = field(default_factory=dict)  # the reader's parameters (a recipe's data.format)

    def rows(self, **params) -> Iterator[Example | RowError]:
        params = {**self.params, **params}
        if "encoding" in self.spec.params_schema.get("properties", {}) and params.get("encoding") in (None, "auto"):
            # "auto" means what open_data settled (data.encoding, or detected)
            params["encoding"] = "auto" if Path(self.path).is_dir() else self.encoding
        reader = self.spec.create(**params)
        yield from reader.read(self.path)


#: a format as recipes and callers give it: a name (or "auto"), or ``{name: ..., PARAM: value, ...}``
FormatChoice = str | Mapping[str, Any] | None


def format_choice(fmt: FormatChoice) -> tuple[str, dict[str, Any]]:
    """``(name, params)`` of a recipe's ``data.format``, whether a name or a mapping with parameters."""
    if fmt is None:
        return "auto", {}
    if isinstance(fmt, Mapping):
        params = dict(fmt)
        name = params.pop("name", "auto")
        if name == "auto" and params:
            raise BgekitError(f"data.format: parameters ({', '.join(sorted(params))}) need a format name, not auto")
        return str(name), params
    return fmt, {}


def open_data(path: str | Path, registry: Registry | None = None, fmt: FormatChoice = "auto",
              encoding: str | None = "auto", role: str | None = None) -> OpenedData:
    """Settle format and encoding of ``path`` (detecting what is ``auto``).

    ``fmt`` is a format name, ``"auto"``, or a mapping ``{name: ..., PARAM: ...}`` whose
    parameters reach the reader's factory.
    """
    name, params = format_choice(fmt)
    if registry is None:
        from bgekit.plugins import get_registry

        registry = get_registry()
    path = Path(path)
    if not path.exists():
        raise BgekitError(f"{path}: no such file or directory")
    if path.is_dir():
        codec = "per file"
    else:
        codec = resolve_encoding(path, encoding)
    if name == "auto":
        spec = detect_format(path, registry, role=role, encoding=None if path.is_dir() else codec)
    else:
        spec = registry.get("data_format", name)
    assert isinstance(spec, FormatSpec)
    return OpenedData(str(path), spec, codec, params)


def read_examples(path: str | Path, registry: Registry | None = None, fmt: FormatChoice = "auto",
                  encoding: str | None = "auto", **params) -> Iterator[Example | RowError]:
    """Stream examples (and row errors) from ``path`` in format ``fmt`` (a name, or ``{name, **params}``)."""
    yield from open_data(path, registry, fmt, encoding).rows(**params)
