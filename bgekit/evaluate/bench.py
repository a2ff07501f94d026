"""Inference benchmark of an embedder or a reranker: throughput, latency percentiles, peak memory.

Each measured call is one ``model.encode`` of one batch of texts (an
embedder: tokenisation, forward pass with every head the model has, copy back
to the host) or one ``model.score`` of one batch of (query, passage) pairs (a
reranker), end to end, timed with ``time.perf_counter`` after ``warmup`` untimed calls and a
device synchronisation. Tokens/s counts real (non-padding) tokens after
truncation to ``max_length``. Peak memory is the device's peak allocation
where the backend reports one (CUDA, Ascend), else the process's peak
resident set size as the CPU backend reports it (``ru_maxrss``: a high-water
mark since the process started, so it includes the model and everything
loaded before).
"""

from __future__ import annotations

import platform
import time
from typing import Any, Callable, Sequence

import numpy as np

from bgekit.errors import BgekitError

#: Mixed Chinese/English sentences repeated into benchmark texts when none are given.
SAMPLE_SENTENCES = [
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "The Yangtze is the longest river in China, about 6,300 km long.",
    "红楼梦是中国古典四大名著之一，作者是曹雪芹。",
    "Dense, sparse and multi-vector retrieval with BGE-M3 embeddings.",
    "机器学习是人工智能的一个分支，研究计算机如何从数据中学习。",
    "Fine-tuning a retriever on in-domain data usually beats the general model.",
]
PERCENTILES = (50, 90, 95, 99)


def sample_texts(count: int, sentences_per_text: int = 8) -> list[str]:
    """``count`` texts of a few sentences each, varied so that batches differ."""
    n = len(SAMPLE_SENTENCES)
    return [" ".join(SAMPLE_SENTENCES[(i + j) % n] for j in range(sentences_per_text)) for i in range(count)]


def _check(warmup: int, iterations: int, batch_sizes: Sequence[int]) -> None:
    if warmup < 0 or iterations < 1:
        raise BgekitError("--warmup must be >= 0 and --iterations >= 1")
    for batch_size in batch_sizes:
        if batch_size < 1:
            raise BgekitError(f"batch sizes must be at least 1, not {batch_size}")


def _measure(call: Callable[[list], Any], batches: Sequence[list], tokens: Sequence[int], backend: Any,
             warmup: int) -> dict[str, Any]:
    """Time ``call(batch)`` over ``batches[warmup:]`` after untimed ``batches[:warmup]``; one row of results."""
    batch_size, iterations = len(batches[0]), len(batches) - warmup
    backend.reset_peak_memory()
    for batch in batches[:warmup]:
        call(batch)
    backend.synchronize()
    latencies = []
    for batch in batches[warmup:]:
        start = time.perf_counter()
        call(batch)
        backend.synchronize()
        latencies.append(time.perf_counter() - start)
    seconds = float(np.sum(latencies))
    stats = backend.memory_stats()
    if "peak_allocated" in stats:
        peak, source = stats["peak_allocated"], "device peak allocated"
    else:
        peak, source = stats.get("peak_rss"), "process peak RSS"
    row = {
        "batch_size": batch_size,
        "iterations": iterations,
        "items_per_s": batch_size * iterations / seconds,
        "tokens_per_s": sum(tokens[warmup:]) / seconds,
        "mean_tokens_per_item": float(np.mean(tokens[warmup:])) / batch_size,
        "peak_memory_mib": None if peak is None else float(peak),
        "peak_memory_source": source,
    }
    row.update({f"latency_p{p}_ms": float(np.percentile(latencies, p) * 1000) for p in PERCENTILES})
    return row


def _report(model: Any, backend: Any, kind: str, max_length: int, warmup: int, rows: list) -> dict[str, Any]:
    return {
        "kind": kind,
        "items": "texts" if kind == "retriever" else "pairs",
        "device": {"backend": backend.name, "device": str(model.device), **backend.device_info(model.device)},
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "max_length": max_length,
        "warmup": warmup,
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "results": rows,
    }


def _cycle(items: Sequence[Any], batch_size: int, count: int) -> list[list[Any]]:
    """``count`` batches of ``batch_size`` items, going round ``items`` so that batches differ."""
    return [[items[(i * batch_size + j) % len(items)] for j in range(batch_size)] for i in range(count)]


def bench_embedder(model: Any, backend: Any, texts: Sequence[str], batch_sizes: Sequence[int], *,
                   max_length: int = 512, warmup: int = 3, iterations: int = 20) -> dict[str, Any]:
    """Measure ``model.encode`` (every head) per batch size; returns a JSON-ready dict."""
    if not texts:
        raise BgekitError("no texts to benchmark with")
    _check(warmup, iterations, batch_sizes)
    heads = list(model.heads)
    rows = []
    for batch_size in batch_sizes:
        batches = _cycle(texts, batch_size, warmup + iterations)
        tokens = [sum(len(ids) for ids in model.tokenizer(b, truncation=True, max_length=max_length)["input_ids"])
                  for b in batches]
        rows.append(_measure(lambda b: model.encode(b, batch_size=len(b), max_length=max_length, heads=heads),
                             batches, tokens, backend, warmup))
    return {**_report(model, backend, "retriever", max_length, warmup, rows), "heads": heads}


def sample_pairs(count: int) -> list[tuple[str, str]]:
    """``count`` (query, passage) pairs: one sample sentence as the query, a few as the passage."""
    n = len(SAMPLE_SENTENCES)
    return [(SAMPLE_SENTENCES[i % n], text) for i, text in enumerate(sample_texts(count))]


def bench_reranker(model: Any, backend: Any, pairs: Sequence[tuple[str, str]], batch_sizes: Sequence[int], *,
                   max_length: int = 512, warmup: int = 3, iterations: int = 20) -> dict[str, Any]:
    """Measure ``model.score`` (a :class:`~bgekit.models.CrossEncoder`) per batch size; items are pairs.

    Tokens count each pair as the reranker sees it (query within its budget,
    passage cut to fill ``max_length``, special tokens included).
    """
    if not pairs:
        raise BgekitError("no pairs to benchmark with")
    _check(warmup, iterations, batch_sizes)
    rows = []
    for batch_size in batch_sizes:
        batches = _cycle(pairs, batch_size, warmup + iterations)
        tokens = [sum(len(row["input_ids"]) for row in model.tokenize_pairs([q for q, _ in b], [p for _, p in b],
                                                                             max_length=max_length))
                  for b in batches]
        rows.append(_measure(lambda b: model.score(b, batch_size=len(b), max_length=max_length),
                             batches, tokens, backend, warmup))
    return _report(model, backend, "reranker", max_length, warmup, rows)
