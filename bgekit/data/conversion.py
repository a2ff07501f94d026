"""Converting any readable format to canonical JSONL, nothing dropped silently.

Valid rows go to ``OUT``; every rejected row goes, with its line and reason,
to ``OUT.rejected.jsonl``. Both are written atomically, so an interrupted run
never leaves half a file under either name.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bgekit.data.atomic import atomic_write
from bgekit.data.example import RowError
from bgekit.data.readers import open_data
from bgekit.errors import BgekitError
from bgekit.registry import Registry

TARGETS = ("jsonl",)


@dataclass
class ConvertReport:
    source: str
    out: str
    format: str
    encoding: str
    written: int = 0
    rejected: int = 0
    rejected_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def rejected_path_for(out: str | Path) -> Path:
    """``train.jsonl`` -> ``train.jsonl.rejected.jsonl``."""
    out = Path(out)
    return out.with_name(out.name + ".rejected.jsonl")


def json_line(obj: Any) -> str | None:
    """``obj`` as one line of strict UTF-8 JSON, or None when it holds something JSON
    cannot (NaN, an unpaired surrogate)."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return None
    return text + "\n"


def convert(src: str | Path, out: str | Path, registry: Registry | None = None, fmt: str = "auto",
            to: str = "jsonl", strict: bool = False, encoding: str | None = "auto",
            **params) -> ConvertReport:
    """Write the valid rows of ``src`` to ``out`` as canonical JSONL (UTF-8)."""
    if to not in TARGETS:
        raise BgekitError(f"cannot convert to '{to}'; targets: {', '.join(TARGETS)}")
    if Path(out).resolve() == Path(src).resolve():
        raise BgekitError(f"{out}: the output would overwrite the input; choose another name")
    data = open_data(src, registry, fmt, encoding)
    report = ConvertReport(str(src), str(out), data.spec.name, data.encoding)
    rejected = rejected_path_for(out)
    with atomic_write(out) as good, atomic_write(rejected) as bad:
        for item in data.rows(**params):
            if not isinstance(item, RowError):
                line = json_line(item.to_json())
                if line is not None:
                    good.write(line)
                    report.written += 1
                    continue
                item = RowError(str(src), item.line or 0, "holds text or numbers that canonical JSONL "
                                "cannot store (an unpaired surrogate, NaN or infinity)")
            if strict:
                raise BgekitError(f"{item}  (stopped by --strict; nothing was written)")
            report.rejected += 1
            bad.write(json_line(item.to_json()) or json.dumps(item.to_json(), ensure_ascii=True) + "\n")
    if report.rejected:
        report.rejected_path = str(rejected)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(rejected)  # an empty or stale rejects file would mislead
    return report
