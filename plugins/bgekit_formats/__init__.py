"""Built-in data formats."""

from __future__ import annotations

import bgekit
from bgekit.registry import FormatSpec

from bgekit_formats.jsonl import JsonlReader, detect_jsonl

__version__ = bgekit.__version__


@bgekit.hookimpl
def bgekit_data_formats():
    yield FormatSpec(
        name="jsonl",
        summary="canonical JSONL: query, pos, neg, optional pos_scores/neg_scores/prompt/type",
        factory=JsonlReader,
        detect=detect_jsonl,
        params_schema={"properties": {"encoding": {"type": "string", "default": "utf-8-sig",
                                                    "description": "text encoding of the file"}}},
    )
