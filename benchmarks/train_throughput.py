"""Training throughput of the embedder step: passages/s, tokens/s and peak memory.

Builds a randomly initialised encoder of a named shape (no download), puts the
dense head on it (or dense+sparse+colbert with ``--heads m3``), and times
full optimiser steps exactly as bgekit's trainer runs them: autocast through
the device backend's dtype, InfoNCE / m3-unified loss from the registry,
AdamW, gradient clipping, optional gradient checkpointing. Inputs are random
token ids at the full query/passage lengths (worst case: no padding), so
tokens/s counts real tokens.

    python benchmarks/train_throughput.py --shape tiny --batch 4 --group 4 --query-len 32 --passage-len 128
    python benchmarks/train_throughput.py --shape large --batch 64 --group 8 --query-len 64 \
        --passage-len 512 --dtype bf16 --gradient-checkpointing --heads m3       # an H100

The device waits only at the start and end of the timed window (no
per-step synchronisation). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

#: Encoder shapes: XLM-RoBERTa-large is BGE-M3's (vocab 250002, 8194 positions).
SHAPES = {
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512,
                 vocab_size=30522, max_position_embeddings=514),
    "small": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
                  vocab_size=30522, max_position_embeddings=514),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 vocab_size=250002, max_position_embeddings=8194),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                  vocab_size=250002, max_position_embeddings=8194),
}


def build_model(shape: str, heads: str, device: torch.device):
    """An Embedder around a random XLM-R of ``shape``, through bgekit's own head registry."""
    from transformers import AutoConfig, AutoModel

    from bgekit.models.embedder import Embedder
    from bgekit.plugins import get_registry

    config = AutoConfig.for_model("xlm-roberta", pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                  **SHAPES[shape])
    encoder = AutoModel.from_config(config, attn_implementation="sdpa")
    registry = get_registry()
    names = ["dense", "sparse", "colbert"] if heads == "m3" else ["dense"]
    modules = {n: registry.get("head", n).create(config.hidden_size) for n in names}
    specials = type("Specials", (), {"all_special_ids": [0, 1, 2, 3]})()
    model = Embedder(encoder, specials, modules, [{"name": n} for n in names])
    return model.to(device)


def random_batch(n: int, length: int, vocab: int, device: torch.device) -> dict[str, torch.Tensor]:
    ids = torch.randint(5, vocab, (n, length), device=device)
    ids[:, 0], ids[:, -1] = 0, 2
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--heads", choices=["dense", "m3"], default="dense",
                        help="dense (infonce loss) or m3 = dense+sparse+colbert (m3-unified loss)")
    parser.add_argument("--batch", type=int, default=4, help="queries per step")
    parser.add_argument("--group", type=int, default=4, help="passages per query")
    parser.add_argument("--query-len", type=int, default=32)
    parser.add_argument("--passage-len", type=int, default=128)
    parser.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--device", default="auto", help="bgekit device backend: auto, cpu, cuda, ascend")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    args = parser.parse_args()

    from bgekit.devices import select_backend
    from bgekit.plugins import get_registry
    from bgekit.train.trainer import TORCH_DTYPES, parameter_groups, resolve_dtype

    backend = select_backend(get_registry(), args.device)
    device = backend.device()
    dtype = resolve_dtype(args.dtype, backend)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    model = build_model(args.shape, args.heads, device)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    loss_name = "m3-unified" if args.heads == "m3" else "infonce"
    loss_fn = get_registry().get("loss", loss_name).create()
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01), lr=1e-5, fused=device.type == "cuda" or None)
    scaler = torch.amp.GradScaler(device.type) if dtype == "fp16" else None
    vocab = SHAPES[args.shape]["vocab_size"]
    queries = random_batch(args.batch, args.query_len, vocab, device)
    passages = random_batch(args.batch * args.group, args.passage_len, vocab, device)
    targets = torch.arange(args.batch, device=device) * args.group

    def step(i: int) -> None:
        with torch.autocast(device_type=device.type, dtype=TORCH_DTYPES[dtype], enabled=dtype != "fp32"):
            scores = model(queries, passages)
            loss = loss_fn(scores, targets, args.group, step=i).loss
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for i in range(args.warmup):
        step(i)
    backend.synchronize()
    backend.reset_peak_memory()
    started = time.perf_counter()
    for i in range(args.steps):
        step(args.warmup + i)
    backend.synchronize()
    seconds = time.perf_counter() - started

    n_passages = args.batch * args.group * args.steps
    n_tokens = (args.batch * args.query_len + args.batch * args.group * args.passage_len) * args.steps
    memory = backend.memory_stats()
    result = {
        "device": backend.name,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "threads": torch.get_num_threads(),
        "shape": args.shape,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "heads": args.heads,
        "loss": loss_name,
        "batch_queries": args.batch,
        "group_size": args.group,
        "query_len": args.query_len,
        "passage_len": args.passage_len,
        "dtype": dtype,
        "gradient_checkpointing": args.gradient_checkpointing,
        "steps_timed": args.steps,
        "seconds_per_step": round(seconds / args.steps, 4),
        "passages_per_s": round(n_passages / seconds, 1),
        "tokens_per_s": round(n_tokens / seconds, 1),
        "peak_memory_mib": round(memory.get("peak_allocated", memory.get("peak_rss", float("nan"))), 1),
        "peak_memory_kind": "device max allocated" if "peak_allocated" in memory else "process peak RSS",
        "torch": torch.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
