"""The pooling a sentence-transformers model directory says it was trained with.

A plain encoder directory (no ``bgekit_heads.json``) that came from
sentence-transformers carries ``1_Pooling/config.json``; reading it lets the
dense head pool the way the model was trained (mean for all-MiniLM-L6-v2, CLS
for BGE-M3), so "the base model" in an evaluation really is the base model.
"""

from __future__ import annotations

import json
from typing import Any

from bgekit.models import flag_layout

POOLING_FILE = "1_Pooling/config.json"
#: sentence-transformers flag -> bgekit dense pooling
MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_lasttoken": "last-token",
}


def dense_pooling(name_or_path: str, revision: str | None = None) -> dict[str, Any]:
    """``{"pooling": ...}`` from the directory's pooling config, or ``{}`` when absent or unsupported."""
    path = flag_layout.resolve_file(name_or_path, POOLING_FILE, revision)
    if path is None:
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    chosen = [mode for flag, mode in MODES.items() if config.get(flag)]
    return {"pooling": chosen[0]} if len(chosen) == 1 else {}
