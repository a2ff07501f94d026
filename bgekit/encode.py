"""Encode a JSONL file of texts with an embedder, one JSON line out per line in.

Input lines are objects with ``text`` (and optionally ``id``); output lines
carry ``id`` and, per requested head, ``dense`` (list of floats),
``sparse`` (token id as a string -> weight, special tokens dropped, only
weights > 0) and ``colbert`` (list of token vectors). Texts are encoded in
chunks, each sorted longest first inside :meth:`Embedder.encode`, so memory
stays bounded on large files. The output appears atomically when complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from bgekit.data.atomic import atomic_write
from bgekit.data.example import RowError
from bgekit.data.jsonlines import iter_jsonl_records
from bgekit.errors import BgekitError

#: Texts handed to ``Embedder.encode`` at once, in batches of ``batch_size``.
CHUNK_BATCHES = 64


@dataclass
class TextRecord:
    id: Any
    text: str


def read_text_records(path: str | os.PathLike) -> list[TextRecord]:
    """Parse the input JSONL; a bad line is an error naming the file and line.

    Blank lines are skipped; a record without ``id`` gets its 0-based
    position among the records.
    """
    records: list[TextRecord] = []
    for item in iter_jsonl_records(path):
        if isinstance(item, RowError):
            raise BgekitError(f"{item}; each line looks like {{\"id\": ..., \"text\": ...}}")
        line_number, row = item
        where = f"{path}:{line_number}"
        text = row.get("text")
        if not isinstance(text, str):
            raise BgekitError(f"{where}: field 'text' must be a string, got "
                              f"{'nothing' if text is None else type(text).__name__}")
        identifier = row.get("id", len(records))
        if not isinstance(identifier, (str, int)) or isinstance(identifier, bool):
            raise BgekitError(f"{where}: field 'id' must be a string or an integer")
        records.append(TextRecord(identifier, text))
    return records


def _json_value(value: Any) -> Any:
    """numpy outputs as plain JSON: arrays to (nested) lists of floats."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64).tolist()
    return value


def encoded_rows(model: Any, records: list[TextRecord], heads: list[str], *, batch_size: int, max_length: int,
                 is_query: bool, progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """One output object per record, in input order."""
    chunk = max(batch_size * CHUNK_BATCHES, 1)
    for start in range(0, len(records), chunk):
        part = records[start:start + chunk]
        out = model.encode([r.text for r in part], is_query=is_query, batch_size=batch_size,
                           max_length=max_length, heads=heads, progress=progress)
        for i, record in enumerate(part):
            row: dict[str, Any] = {"id": record.id}
            for head in heads:
                row[head] = _json_value(out[head][i])
            yield row


def write_jsonl_atomically(path: str | os.PathLike, rows: Iterator[dict[str, Any]]) -> int:
    """Write rows to a temp file beside ``path``, then rename it into place."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def encode_file(model: Any, input_path: str | os.PathLike, output_path: str | os.PathLike, heads: list[str], *,
                batch_size: int = 32, max_length: int = 512, is_query: bool = False,
                on_start: Callable[[int], None] | None = None,
                progress: Callable[[int], None] | None = None) -> int:
    """Encode every record of ``input_path`` into ``output_path``; returns the count.

    ``on_start(total)`` is called once the input has been read (for a progress bar).
    """
    missing = [h for h in heads if h not in model.heads]
    if missing:
        raise BgekitError(f"the model has no {', '.join(missing)} head (it has {', '.join(model.heads)}); "
                          "drop that flag or use a model saved with that head")
    records = read_text_records(input_path)
    if on_start is not None:
        on_start(len(records))
    rows = encoded_rows(model, records, heads, batch_size=batch_size, max_length=max_length,
                        is_query=is_query, progress=progress)
    return write_jsonl_atomically(output_path, rows)
