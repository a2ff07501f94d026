"""Inner-product search over dense vectors: FAISS ``Flat`` (exact), ``IVF`` or ``HNSW``.

``Flat`` is exact and right up to a few hundred thousand passages; ``IVF``
(``nlist`` clusters, ``nprobe`` visited per query) and ``HNSW`` (graph with
``hnsw_m`` links, ``ef_construction`` / ``ef_search`` beam widths) trade a
little recall for speed on larger pools. On a GPU machine the index moves to
the GPU when FAISS was built with GPU support; with CPU-only FAISS, exact
search runs as a blocked matrix product on the torch CUDA device instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bgekit.errors import BgekitError

from bgekit.mine.index_params import INDEX_TYPES, PARAMS  # noqa: F401 - PARAMS: the miners' recipe keys


@dataclass
class IndexConfig:
    index: str = "Flat"
    nlist: int | None = None
    nprobe: int = 32
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 256
    use_gpu: Any = "auto"

    def __post_init__(self) -> None:
        if self.index not in INDEX_TYPES:
            raise BgekitError(f"miner.index '{self.index}': choose one of {', '.join(INDEX_TYPES)}")


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


class VectorIndex:
    """Vectors indexed once, searched many times; results best first, ``-1`` padded."""

    def __init__(self, vectors: np.ndarray, config: IndexConfig) -> None:
        import faiss

        self.config = config
        self.size, dim = vectors.shape
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.vectors = vectors  # kept for scoring given candidates exactly
        want_gpu = config.use_gpu is True or (config.use_gpu == "auto" and _cuda_available())
        faiss_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        if config.use_gpu is True and not (faiss_gpus or (config.index == "Flat" and _cuda_available())):
            raise BgekitError("miner.use_gpu is true but no GPU search is possible here "
                              "(no CUDA device, or an IVF/HNSW index without faiss-gpu)")
        self.backend = "faiss-cpu"
        self._torch_vectors = None
        if config.index == "Flat":
            index = faiss.IndexFlatIP(dim)
        elif config.index == "IVF":
            nlist = config.nlist or max(1, int(4 * math.sqrt(self.size)))
            nlist = min(nlist, max(1, self.size // 39))  # FAISS wants >= 39 training points per cluster
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.nprobe = min(config.nprobe, nlist)
        else:
            index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = config.ef_construction
        if want_gpu and faiss_gpus and config.index != "HNSW":
            index = faiss.index_cpu_to_all_gpus(index)
            self.backend = "faiss-gpu"
        elif want_gpu and config.index == "Flat" and _cuda_available():
            import torch

            self._torch_vectors = torch.from_numpy(vectors).cuda()
            self.backend = "torch-cuda"
        if self._torch_vectors is None:
            index.add(vectors)
        self._index = index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self.size)
        if self._torch_vectors is not None:
            return self._torch_search(queries, k)
        if self.config.index == "HNSW":
            self._index.hnsw.efSearch = max(self.config.ef_search, k)
        scores, ids = self._index.search(queries, k)
        return ids.astype(np.int64), scores.astype(np.float32)

    def _torch_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        block = max(1, (1 << 28) // max(self.size, 1))  # about 1 GiB of fp32 scores at a time
        out_ids, out_scores = [], []
        for start in range(0, len(queries), block):
            q = torch.from_numpy(queries[start:start + block]).to(self._torch_vectors.device)
            top = torch.topk(q @ self._torch_vectors.T, k, dim=1)
            out_scores.append(top.values.cpu().numpy())
            out_ids.append(top.indices.cpu().numpy().astype(np.int64))
        if not out_ids:
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return np.concatenate(out_ids), np.concatenate(out_scores)
