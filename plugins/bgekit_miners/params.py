"""Parameter schemas of the built-in miners, kept free of heavy imports for schema generation."""

from __future__ import annotations

from typing import Any

DENSE_PARAMS: dict[str, dict[str, Any]] = {
    "mode": {"type": "string", "default": "dense",
             "description": "which score ranks the pool: a head of the model (dense, sparse, colbert, or a "
                            "plugin head), or hybrid (weighted sum of heads)"},
    "weights": {
        "type": "object", "default": {}, "additionalProperties": {"type": "number", "minimum": 0},
        "description": "hybrid weights by head name; heads not named keep their own (BGE-M3's "
                       "dense 1, sparse 0.3, colbert 1)",
    },
    "rescore_depth": {"type": "integer", "minimum": 1, "default": 400,
                      "description": "re-scoring modes (colbert, hybrid): candidates taken from each "
                                     "retrieving head's search"},
}

BM25_PARAMS: dict[str, dict[str, Any]] = {
    "k1": {"type": "number", "minimum": 0, "default": 1.5, "description": "BM25 term-frequency saturation"},
    "b": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.75, "description": "BM25 length normalisation"},
}
