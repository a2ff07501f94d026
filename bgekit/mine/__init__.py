"""Hard-negative mining: the engine every miner plugin shares.

- :mod:`bgekit.mine.settings`: the shared parameters (window, count, sampling, filters, seed);
- :mod:`bgekit.mine.pool`: the candidate pool (pool file or the dataset's passages);
- :mod:`bgekit.mine.retriever`: what a miner plugin supplies (:class:`Retriever`);
- :mod:`bgekit.mine.select` and :mod:`bgekit.mine.engine`: window, exclusions, filters, fill;
- :mod:`bgekit.mine.vector_index`: FAISS Flat / IVF / HNSW search, on the GPU when present;
- :mod:`bgekit.mine.cache`: encoded pools on disk, keyed by model and data fingerprint;
- :mod:`bgekit.mine.run`: mining a file (``bgekit mine``); :mod:`bgekit.mine.mine_task`: ``task: mine``.

No concrete miner lives here; they are plugins (``plugins/bgekit_miners``).
"""

from __future__ import annotations

import importlib
from typing import Any

#: name -> module; imported on first use, so that a plugin reading ``bgekit.mine.settings`` (the miners'
#: parameter schema, needed to list plugins and build ``bgekit --help``) does not pull in numpy
_EXPORTS = {"MiningStats": "engine", "mine_examples": "engine", "Pool": "pool", "MiningContext": "retriever",
            "Retriever": "retriever", "MiningSettings": "settings"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bgekit.mine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bgekit.mine.{_EXPORTS[name]}"), name)
