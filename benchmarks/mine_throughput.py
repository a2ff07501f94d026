"""Dense-miner throughput: queries/s of the search + selection, passages encoded/s.

Search part: synthetic L2-normalised vectors (no model) for pools of a few
sizes; each index type (FAISS Flat / IVF / HNSW on the CPU, and exact search
on the GPU when CUDA is present) is built, then the full mining path runs —
``search`` for the top ``range[1]``, window, exclusions, sampling — through
:func:`bgekit.mine.mine_examples`, so queries/s is what ``bgekit mine`` gets
once the queries are encoded.

Encoding part: a randomly initialised XLM-RoBERTa of a named shape (no
download; ``large`` is BGE-M3's shape) encodes passages of ``--passage-len``
tokens through :meth:`bgekit.models.Embedder.encode`.

    python benchmarks/mine_throughput.py --pools 10000 100000 --queries 1000
    python benchmarks/mine_throughput.py --encode-shape large --encode-passages 2048 --dtype bf16   # a GPU

Prints one JSON line per measurement as it finishes (HNSW builds are slow on
few CPU cores; ``--indexes Flat IVF`` skips them).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

import numpy as np


class VectorTable:
    """Stands in for an embedder: text ``"p<i>"`` or ``"q<i>"`` -> row i of a fixed table."""

    heads = {"dense": None}
    head_configs = [{"name": "dense"}]

    def __init__(self, passages: np.ndarray, queries: np.ndarray) -> None:
        self.tables = {"p": passages, "q": queries}

    def encode(self, texts, *, heads=None, **_):
        return {"dense": np.stack([self.tables[t[0]][int(t[1:])] for t in texts])}


def unit_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def bench_search(pool_size: int, n_queries: int, dim: int, index: str, use_gpu, window) -> dict:
    from bgekit.data.example import Example
    from bgekit.mine import MiningContext, Pool, mine_examples
    from bgekit.mine.run import build_retriever

    rng = np.random.default_rng(0)
    passages, queries = unit_vectors(pool_size, dim, rng), unit_vectors(n_queries, dim, rng)
    examples = [Example(query=f"q{i}", pos=[f"p{i}"]) for i in range(n_queries)]
    pool = Pool.build(examples, [f"p{i}" for i in range(pool_size)])
    params = {"index": index, "use_gpu": use_gpu, "range": list(window), "num_negatives": 15, "sampling": "top"}
    retriever = build_retriever("dense", params, MiningContext(embedder=VectorTable(passages, queries)))
    _, stats = mine_examples(examples, retriever, pool, retriever.settings)
    return {"pool": pool_size, "queries": n_queries, "dim": dim, "index": index,
            "backend": retriever.describe().get("search_backend"), "build_s": round(stats.index_seconds, 3),
            "queries_per_s": round(stats.queries_per_second, 1)}


def bench_encode(shape: str, n_passages: int, passage_len: int, batch_size: int, device: str, dtype: str) -> dict:
    import torch
    from transformers import AutoConfig, AutoModel

    from bgekit.models import Embedder
    from bgekit.testing import TRAINING_TEXT, tiny_encoder

    shapes = {"small": (384, 6, 12), "base": (768, 12, 12), "large": (1024, 24, 16)}
    hidden, layers, attention = shapes[shape]
    with tempfile.TemporaryDirectory() as tmp:
        tiny_encoder(tmp, max_position=passage_len + 8)  # its tokenizer; the encoder is replaced below
        config = AutoConfig.from_pretrained(tmp)
        config.update(dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=attention,
                           intermediate_size=4 * hidden))
        AutoModel.from_config(config).save_pretrained(tmp)
        model = Embedder.from_pretrained(tmp, heads=[{"name": "dense"}]).to(device).eval()
    if dtype != "fp32":
        model = model.to(torch.bfloat16 if dtype == "bf16" else torch.float16)
    text = " ".join(TRAINING_TEXT)
    passages = [text[i % 50:] for i in range(n_passages)]  # truncated to passage_len tokens by encode
    model.encode(passages[:batch_size], batch_size=batch_size, max_length=passage_len)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    model.encode(passages, batch_size=batch_size, max_length=passage_len)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"shape": shape, "device": device, "dtype": dtype, "passages": n_passages, "passage_len": passage_len,
            "batch_size": batch_size, "passages_per_s": round(n_passages / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=1024, help="vector size (BGE-M3 dense: 1024)")
    parser.add_argument("--indexes", nargs="+", default=["Flat", "IVF", "HNSW"])
    parser.add_argument("--range", type=int, nargs=2, default=[10, 210])
    parser.add_argument("--encode-shape", choices=["small", "base", "large", "none"], default="small")
    parser.add_argument("--encode-passages", type=int, default=64)
    parser.add_argument("--passage-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32")
    args = parser.parse_args()

    import faiss
    import torch

    cuda = torch.cuda.is_available()
    show = lambda kind, result: print(json.dumps({kind: result}), flush=True)  # noqa: E731
    show("machine", {"platform": platform.platform(), "torch": torch.__version__, "faiss": faiss.__version__,
                     "faiss_gpus": faiss.get_num_gpus(), "cpu_threads": torch.get_num_threads(),
                     "cuda": torch.cuda.get_device_name(0) if cuda else None})
    if args.encode_shape != "none":
        show("encode", bench_encode(args.encode_shape, args.encode_passages, args.passage_len,
                                    args.batch_size, "cpu", "fp32"))
        if cuda:
            show("encode", bench_encode(args.encode_shape, args.encode_passages, args.passage_len,
                                        args.batch_size, "cuda", args.dtype))
    for size in args.pools:
        for index in args.indexes:
            show("search", bench_search(size, args.queries, args.dim, index, False, args.range))
        if cuda:
            show("search", bench_search(size, args.queries, args.dim, "Flat", True, args.range))


if __name__ == "__main__":
    main()
