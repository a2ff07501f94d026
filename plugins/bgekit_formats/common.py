"""Pieces every built-in format shares: the encoding parameter, sample sniffing."""

from __future__ import annotations

from typing import Any

from bgekit.api import JsonProblem, parse_json

ENCODING_PARAM = {
    "encoding": {"type": "string", "default": "auto",
                 "description": "text encoding: auto (BOM, UTF-8, UTF-16, GB18030), or a codec name"},
}


def sample_lines(sample, limit: int = 20) -> list[str]:
    """The first non-empty lines of a sample, dropping the last one, which may be cut off."""
    lines = [ln for ln in sample.text.splitlines() if ln.strip()]
    complete = lines[:-1] if len(sample.raw) >= 64 * 1024 and len(lines) > 1 else lines
    return complete[:limit]


def json_objects(lines: list[str]) -> list[dict[str, Any]] | None:
    """The lines parsed as JSON objects, or None when any line is not one."""
    out = []
    for ln in lines:
        obj = parse_json(ln)
        if not isinstance(obj, dict):
            return None
        out.append(obj)
    return out


def parses_as_json(line: str) -> bool:
    """Whether ``line`` holds one complete JSON value (object, array, string, ...)."""
    return not isinstance(parse_json(line), JsonProblem)


def share(objs: list[dict[str, Any]], *keys: str) -> float:
    """The fraction of ``objs`` that have every key in ``keys``."""
    if not objs:
        return 0.0
    return sum(all(k in o for k in keys) for o in objs) / len(objs)
