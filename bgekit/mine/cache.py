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


def _pack(encoded: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """Each head's encodings as plain arrays, by their shape rather than the head's name: one array
    (a vector per text), a list of arrays (token vectors per text) or a list of ``{key: weight}``
    dicts (lexical weights). ``None`` when a head's output is none of these (not cached)."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in encoded.items():
        if isinstance(value, np.ndarray):
            arrays[f"{name}.array"] = value
        elif isinstance(value, list) and all(isinstance(r, dict) for r in value):
            arrays[f"{name}.indptr"] = np.cumsum([0] + [len(r) for r in value]).astype(np.int64)
            arrays[f"{name}.keys"] = np.array([str(k) for r in value for k in r], dtype=str)
            arrays[f"{name}.values"] = np.array([w for r in value for w in r.values()], dtype=np.float32)
        elif isinstance(value, list) and value and all(isinstance(r, np.ndarray) for r in value) \
                and len({r.shape[1:] for r in value}) == 1:
            arrays[f"{name}.offsets"] = np.cumsum([0] + [len(r) for r in value]).astype(np.int64)
            arrays[f"{name}.rows"] = np.concatenate(value)
        else:
            return None
    return arrays


def _unpack(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in arrays.items():
        name, _, part = key.rpartition(".")
        if part == "array":
            out[name] = value
        elif part == "indptr":
            keys, weights = arrays[f"{name}.keys"], arrays[f"{name}.values"]
            out[name] = [{str(k): float(w) for k, w in zip(keys[a:b], weights[a:b])}
                         for a, b in zip(value[:-1], value[1:])]
        elif part == "offsets":
            rows = arrays[f"{name}.rows"]
            out[name] = [rows[a:b] for a, b in zip(value[:-1], value[1:])]
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
        """Store ``encoded``; a head output of a shape :func:`_pack` does not know is not cached."""
        arrays = _pack(encoded)
        if arrays is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".partial", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
            os.replace(tmp, self.path(key))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
