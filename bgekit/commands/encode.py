"""``bgekit encode``: texts in JSONL -> dense / sparse / colbert representations in JSONL."""

from __future__ import annotations

import click


@click.command("encode")
@click.option("--model", "model_path", required=True, metavar="DIR",
              help="model directory (as saved by bgekit or FlagEmbedding), hub id, or pkg:NAME")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="JSONL, one {\"id\": ..., \"text\": ...} per line (id optional)")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="JSONL to write, one line per input line")
@click.option("--dense", is_flag=True, help="write dense vectors")
@click.option("--sparse", is_flag=True, help="write lexical weights {token id: weight}")
@click.option("--colbert", is_flag=True, help="write colbert token vectors")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="texts per batch")
@click.option("--max-length", default=512, show_default=True, type=click.IntRange(min=2),
              help="tokens per text (longer texts are truncated)")
@click.option("--query", "is_query", is_flag=True, help="the texts are queries (uses the query instruction)")
@click.option("--device", default="auto", show_default=True, help="device backend: auto, cpu, cuda, ascend")
def encode(model_path: str, input_path: str, output_path: str, dense: bool, sparse: bool, colbert: bool,
           batch_size: int, max_length: int, is_query: bool, device: str) -> None:
    """Encode the texts of INPUT with MODEL into OUTPUT.

    Without --dense/--sparse/--colbert every head the model has is written.

    \b
    Example:
      bgekit encode --model runs/m3/model --input texts.jsonl --output vecs.jsonl --dense --sparse
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bgekit.devices import select_backend
    from bgekit.encode import encode_file
    from bgekit.models import Embedder
    from bgekit.plugins import get_registry

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bar is the one that matters
    registry = get_registry()
    backend = select_backend(registry, device)
    model = Embedder.from_pretrained(model_path, registry=registry)
    model.to(backend.device())
    heads = [name for name, wanted in (("dense", dense), ("sparse", sparse), ("colbert", colbert)) if wanted]
    heads = heads or list(model.heads)

    console = Console(stderr=True)
    columns = (TextColumn("encoding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("encode", total=None)
        count = encode_file(
            model, input_path, output_path, heads, batch_size=batch_size, max_length=max_length,
            is_query=is_query, on_start=lambda total: bar.update(task, total=total),
            progress=lambda n: bar.advance(task, n),
        )
    console.print(f"wrote {count} encodings ({', '.join(heads)}) to {output_path}")
