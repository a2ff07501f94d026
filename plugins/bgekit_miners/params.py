"""Parameter schemas of the built-in miners, kept free of heavy imports for schema generation."""

from __future__ import annotations

from typing import Any

MODES = ("dense", "sparse", "colbert", "hybrid")

DENSE_PARAMS: dict[str, dict[str, Any]] = {
    "mode": {"enum": list(MODES), "default": "dense",
             "description": "which score ranks the pool: one head, or hybrid (weighted sum of heads)"},
    "weights": {
        "type": "object", "additionalProperties": False, "default": {"dense": 1.0, "sparse": 0.3, "colbert": 1.0},
        "properties": {h: {"type": "number", "minimum": 0} for h in ("dense", "sparse", "colbert")},
        "description": "hybrid weights per head (BGE-M3's dense + 0.3 * sparse + colbert)",
    },
    "rescore_depth": {"type": "integer", "minimum": 1, "default": 400,
                      "description": "colbert/hybrid: candidates taken from each of dense and sparse search"},
}

BM25_PARAMS: dict[str, dict[str, Any]] = {
    "k1": {"type": "number", "minimum": 0, "default": 1.5, "description": "BM25 term-frequency saturation"},
    "b": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.75, "description": "BM25 length normalisation"},
}
