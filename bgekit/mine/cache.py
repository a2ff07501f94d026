"""An on-disk cache of encoded pools, keyed by model and data fingerprint.

Encoding a large pool is the slow part of mining; re-running with other
window or filter settings should not redo it. The key covers the model
files (name, size and modification time of each), the heads and encoding
settings, and the exact passage texts in order, so any change misses the
cache rather than returning stale vectors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np


def model_fingerprint(directory: str | os.PathLike) -> str:
    """A hash of a model directory's file names, sizes and modification times."""
    digest = hashlib.sha256()
    root = Path(directory)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        info = path.stat()
        digest.update(f"{path.relative_to(root)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def texts_fingerprint(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def cache_key(model: str, settings: Mapping[str, Any], texts: Sequence[str]) -> str:
    payload = json.dumps({"model": model, "settings": settings, "texts": texts_fingerprint(texts)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _pack(encoded: Mapping[str, Any]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    if "dense" in encoded:
        arrays["dense"] = np.asarray(encoded["dense"], dtype=np.float32)
    if "sparse" in encoded:
        rows = encoded["sparse"]
        arrays["sparse_indptr"] = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
        arrays["sparse_tokens"] = np.array([int(t) for r in rows for t in r], dtype=np.int64)
        arrays["sparse_weights"] = np.array([w for r in rows for w in r.values()], dtype=np.float32)
    if "colbert" in encoded:
        mats = encoded["colbert"]
        arrays["colbert_offsets"] = np.cumsum([0] + [len(m) for m in mats]).astype(np.int64)
        dim = next((m.shape[1] for m in mats if m.ndim == 2), 0)
        arrays["colbert_vectors"] = (np.concatenate([m.reshape(-1, dim) for m in mats]).astype(np.float32)
                                     if mats else np.zeros((0, dim), np.float32))
    return arrays


def _unpack(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "dense" in arrays:
        out["dense"] = arrays["dense"]
    if "sparse_indptr" in arrays:
        ptr, tokens, weights = arrays["sparse_indptr"], arrays["sparse_tokens"], arrays["sparse_weights"]
        out["sparse"] = [{str(int(t)): float(w) for t, w in zip(tokens[a:b], weights[a:b])}
                         for a, b in zip(ptr[:-1], ptr[1:])]
    if "colbert_offsets" in arrays:
        off, vectors = arrays["colbert_offsets"], arrays["colbert_vectors"]
        out["colbert"] = [vectors[a:b] for a, b in zip(off[:-1], off[1:])]
    return out


class EmbeddingCache:
    """``get``/``put`` encoded pools as ``.npz`` files in ``directory``."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path) as arrays:
                return _unpack({k: arrays[k] for k in arrays.files})
        except (OSError, ValueError, KeyError):
            return None  # a damaged cache file is a miss, and is overwritten

    def put(self, key: str, encoded: Mapping[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".partial", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **_pack(encoded))
            os.replace(tmp, self.path(key))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
