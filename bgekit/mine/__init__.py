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

from bgekit.mine.engine import MiningStats, mine_examples
from bgekit.mine.pool import Pool
from bgekit.mine.retriever import MiningContext, Retriever
from bgekit.mine.settings import MiningSettings

__all__ = ["MiningContext", "MiningSettings", "MiningStats", "Pool", "Retriever", "mine_examples"]
