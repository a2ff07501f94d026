"""``bgekit encode``: texts in JSONL -> dense / sparse / colbert representations in JSONL."""

from __future__ import annotations

import click


@click.command("encode")
@click.option("--model", "model_path", required=True, metavar="MODEL",
              help="model folder (as saved by bgekit or FlagEmbedding), hub id, or pkg:NAME")
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

    from bgekit.commands.progress import step_progress
    from bgekit.devices import select_backend
    from bgekit.encode import encode_file
    from bgekit.model_paths import resolve_model_path
    from bgekit.models import Embedder
    from bgekit.plugins import get_registry

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bar is the one that matters
    model_path = resolve_model_path(model_path)  # a bad reference fails in one line before anything loads
    registry = get_registry()
    backend = select_backend(registry, device)
    model = Embedder.from_pretrained(model_path, registry=registry)
    model.to(backend.device())
    heads = [name for name, wanted in (("dense", dense), ("sparse", sparse), ("colbert", colbert)) if wanted]
    heads = heads or list(model.heads)

    with step_progress("encoding") as progress:
        count = encode_file(model, input_path, output_path, heads, batch_size=batch_size, max_length=max_length,
                            is_query=is_query, on_start=progress.set_total, progress=progress.advance)
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"wrote {count} encodings ({', '.join(heads)}) to {output_path}")
