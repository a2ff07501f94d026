"""The vector index's recipe keys (``miner.index``, ``nlist``, ...), apart from the index itself.

Kept free of numpy and FAISS: the dense miner's parameter schema is built from
them whenever plugins are listed (``bgekit --help`` included).
"""

from __future__ import annotations

from typing import Any

INDEX_TYPES = ("Flat", "IVF", "HNSW")

PARAMS: dict[str, dict[str, Any]] = {
    "index": {"enum": list(INDEX_TYPES), "default": "Flat",
              "description": "FAISS index: Flat (exact inner product), IVF or HNSW (approximate, for large pools)"},
    "nlist": {"type": ["integer", "null"], "minimum": 1, "default": None,
              "description": "IVF clusters; null: 4 * sqrt(pool size)"},
    "nprobe": {"type": "integer", "minimum": 1, "default": 32, "description": "IVF clusters searched per query"},
    "hnsw_m": {"type": "integer", "minimum": 2, "default": 32, "description": "HNSW links per node"},
    "ef_construction": {"type": "integer", "minimum": 1, "default": 200, "description": "HNSW build beam width"},
    "ef_search": {"type": "integer", "minimum": 1, "default": 256,
                  "description": "HNSW search beam width (raised to the search depth when smaller)"},
    "use_gpu": {"enum": ["auto", True, False], "default": "auto",
                "description": "search on the GPU: auto uses one when present"},
}
