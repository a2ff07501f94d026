"""`bgekit bench`: how fast an embedder encodes, or a reranker scores, and how much memory it takes."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from bgekit.commands.params import MODEL_DIR


def _read_texts(path: str) -> list[str]:
    """One text per line of a .txt file, or the ``text`` of each line of a .jsonl file."""
    from bgekit.data.encoding import iter_lines
    from bgekit.data.jsonlines import iter_json_lines
    from bgekit.errors import BgekitError

    if not path.endswith(".jsonl"):
        return [line for _, line in iter_lines(path) if line.strip()]
    texts = []
    for lineno, obj, _ in iter_json_lines(path):
        if not isinstance(obj, dict) or "text" not in obj:
            raise BgekitError(f"{path}:{lineno}: expected a JSON object with a 'text'")
        texts.append(str(obj["text"]))
    return texts


@click.command("bench")
@click.option("--model", "model_path", required=True, type=MODEL_DIR,
              help="a saved embedder or reranker directory")
@click.option("--kind", type=click.Choice(["auto", "retriever", "reranker"]), default="auto", show_default=True,
              help="what the model is; auto: a sequence-classification checkpoint is a reranker, else a retriever")
@click.option("--batch-sizes", default="1,8,32", show_default=True, help="comma-separated batch sizes")
@click.option("--max-length", type=click.IntRange(min=1), default=512, show_default=True,
              help="tokens per text (longer texts are truncated)")
@click.option("--texts", "texts_path", type=click.Path(exists=True, dir_okay=False),
              help="texts to encode (.txt one per line, or .jsonl with 'text'); for a reranker, .jsonl with "
                   "'query' and 'passage'; default: built-in mixed zh/en")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="untimed calls first")
@click.option("--iterations", type=click.IntRange(min=1), default=20, show_default=True,
              help="timed calls per batch size")
@click.option("--device", default="auto", show_default=True, help="device backend: auto, cpu, cuda, ascend")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True,
              help="weights dtype for inference")
@click.option("--output", "output_path", type=click.Path(dir_okay=False), help="also write the JSON here")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def bench(model_path: str, kind: str, batch_sizes: str, max_length: int, texts_path: str | None, warmup: int,
          iterations: int, device: str, dtype: str, output_path: str | None, as_json: bool) -> None:
    """Throughput (items/s, tokens/s), latency p50/p90/p95/p99 and peak memory of an embedder or a reranker.

    Every call encodes one batch of texts end to end (tokenise, all heads,
    copy back), or, for a reranker, scores one batch of (query, passage)
    pairs, after --warmup untimed calls. A reranker's items are pairs.

    \b
    Examples:
      bgekit bench --model runs/m3/model --batch-sizes 1,8,32 --max-length 512
      bgekit bench --model runs/reranker/model --kind reranker --device cuda --dtype fp16 --json
    """
    import torch

    from bgekit.data.atomic import atomic_write
    from bgekit.devices import select_backend
    from bgekit.errors import BgekitError
    from bgekit.evaluate.bench import (
        bench_embedder,
        bench_reranker,
        sample_pairs,
        sample_texts,
    )
    from bgekit.evaluate.display import show_table
    from bgekit.evaluate.reranking import model_kind
    from bgekit.plugins import get_registry

    try:
        sizes = [int(s) for s in batch_sizes.split(",") if s.strip()]
    except ValueError:
        raise BgekitError(f"--batch-sizes '{batch_sizes}': expected whole numbers such as 1,8,32") from None
    if not sizes:
        raise BgekitError("--batch-sizes: give at least one batch size")
    backend = select_backend(get_registry(), device)
    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    kind = model_kind(model_path) if kind == "auto" else kind
    if kind == "reranker":
        from bgekit.models.cross_encoder import CrossEncoder
        from bgekit.rerank import read_pairs

        model = CrossEncoder.from_pretrained(model_path, max_length=max_length)
        model.to(backend.device(), dtype=torch_dtype).eval()
        pairs = ([(r["query"], r["passage"]) for r in read_pairs(texts_path)] if texts_path
                 else sample_pairs(max(sizes) * 2))
        report = bench_reranker(model, backend, pairs, sizes, max_length=max_length, warmup=warmup,
                                iterations=iterations)
    else:
        from bgekit.models import Embedder

        model = Embedder.from_pretrained(model_path).to(backend.device(), dtype=torch_dtype).eval()
        texts = _read_texts(texts_path) if texts_path else sample_texts(max(sizes) * 2)
        report = bench_embedder(model, backend, texts, sizes, max_length=max_length, warmup=warmup,
                                iterations=iterations)
    report["model"] = str(model_path)
    if output_path:
        with atomic_write(Path(output_path)) as fh:
            fh.write(json.dumps(report, indent=2) + "\n")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    dev = report["device"]
    what = f"heads {'+'.join(report['heads'])}" if "heads" in report else "reranker"
    table = Table(title=f"{model_path} on {dev['backend']} ({dev['name']}), {report['dtype']}, "
                        f"max_length {max_length}, {what}")
    items = "items/s" if report["items"] == "texts" else "pairs/s"
    for col in ("batch", items, "tokens/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "peak MiB"):
        table.add_column(col, justify="right")
    for row in report["results"]:
        peak = row["peak_memory_mib"]
        table.add_row(str(row["batch_size"]), f"{row['items_per_s']:.1f}", f"{row['tokens_per_s']:.0f}",
                      *(f"{row[f'latency_p{p}_ms']:.1f}" for p in (50, 90, 95, 99)),
                      "-" if peak is None else f"{peak:.0f}")
    table.caption = f"peak memory: {report['results'][-1]['peak_memory_source']}; latency per batch after warm-up"
    show_table(table, Console())
