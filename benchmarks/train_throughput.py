"""Training throughput of the embedder step: passages/s, tokens/s and peak memory.

Builds a randomly initialised encoder of a named shape (no download), puts the
dense head on it (or dense+sparse+colbert with ``--heads m3``), and times
full optimiser steps as bgekit's trainer runs them, through the GradCache
engine (:mod:`bgekit.train.gradcache`; ``--chunk-size 0``, the default, is
the plain unchunked step): autocast through the device backend's dtype,
InfoNCE / m3-unified loss from the registry, AdamW, gradient clipping,
optional gradient checkpointing. Inputs are random token ids at the full
query/passage lengths (worst case: no padding), so tokens/s counts real
tokens; ``--from-text`` instead tokenises and collates generated texts of
about those lengths inside the timed window (the whole input path, inline,
with a small tokenizer trained in-process); ``--num-workers N`` with it feeds
those texts through the trainer's :class:`~bgekit.train.loader.BatchLoader`
(``data.num_workers``: the length-grouped batcher as the DataLoader's batch
sampler, N worker processes, pinned memory on CUDA) instead.

    python benchmarks/train_throughput.py --shape tiny --batch 4 --group 4 --query-len 32 --passage-len 128
    python benchmarks/train_throughput.py --shape xlmr-small --heads m3 --chunk-size 8 --sweep 4,8,16,32,64
    python benchmarks/train_throughput.py --shape tiny --from-text --num-workers 1     # vs. without --num-workers
    python benchmarks/train_throughput.py --shape large --heads m3 --group 8 --query-len 64 --passage-len 512 \
        --dtype bf16 --chunk-size 32 --sweep 16,32,64,128,256                 # an H100/H200

``--sweep`` runs each batch size in a fresh process (so each peak memory is
its own), in order, and stops at the first one that runs out of memory;
it prints one JSON object with every size's result and the largest that
fit. The device waits only at the start and end of the timed window (no
per-step synchronisation).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

#: Encoder shapes: XLM-RoBERTa-large is BGE-M3's (vocab 250002, 8194 positions).
SHAPES = {
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512,
                 vocab_size=30522, max_position_embeddings=514),
    #: XLM-R's vocabulary and positions on a small body: the CPU comparison shape of issue 12
    "xlmr-small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                       vocab_size=250002, max_position_embeddings=514),
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


class TextBatches:
    """The whole input path from text: generated queries and passages of about the requested token
    lengths, tokenised and collated by bgekit's own :class:`~bgekit.train.collate.Collator` per step."""

    def __init__(self, batch: int, group: int, query_len: int, passage_len: int, seed: int = 0,
                 batches: int = 4, num_workers: int | None = None) -> None:
        import random

        from transformers import AutoTokenizer

        from bgekit.testing import TRAINING_TEXT, tiny_encoder
        from bgekit.train.collate import Collator
        from bgekit.train.sampling import TrainGroup

        folder = Path(tempfile.mkdtemp(prefix="bgekit-bench-tok-"))
        tokenizer = AutoTokenizer.from_pretrained(tiny_encoder(folder, vocab_size=300))
        self.collator = Collator(tokenizer, query_max_length=query_len, passage_max_length=passage_len)
        words = " ".join(TRAINING_TEXT).split()
        rng = random.Random(seed)

        def text(tokens: int) -> str:  # ~1.5 tokens a word for this tokenizer; truncation cuts the rest
            return " ".join(rng.choice(words) for _ in range(tokens))

        self.groups = [[TrainGroup(query=text(query_len), passages=[text(passage_len) for _ in range(group)])
                        for _ in range(batch)] for _ in range(batches)]
        self.calls = 0
        self.stream = None
        if num_workers is not None:  # the trainer's input path: batch sampler, workers, pinning
            from bgekit.train.batching import LengthGroupedBatcher, SamplerState
            from bgekit.train.loader import BatchLoader

            examples = [g for groups in self.groups for g in groups]
            sampler = _FixedGroups(examples)
            batcher = LengthGroupedBatcher([len(g.query) for g in examples], batch, seed=seed)
            self.stream = BatchLoader(batcher, sampler, self.collator, num_workers=num_workers,
                                      pin_memory=torch.cuda.is_available()).stream(SamplerState())

    def next(self, device: torch.device):
        if self.stream is not None:
            return next(self.stream).to(device)
        groups = self.groups[self.calls % len(self.groups)]
        self.calls += 1
        return self.collator(groups).to(device)


class _FixedGroups:
    """The generated groups as a sampler (``sample(index, epoch)``), as BatchLoader draws them."""

    def __init__(self, groups: list) -> None:
        self.groups = groups

    def __len__(self) -> int:
        return len(self.groups)

    def sample(self, index: int, epoch: int = 0):
        return self.groups[index]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    parser.add_argument("--chunk-size", type=int, default=0,
                        help="GradCache: texts per forward chunk (train.chunk_size); 0 = off")
    parser.add_argument("--from-text", action="store_true",
                        help="time the whole input path: tokenise and collate texts every step")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="with --from-text: feed batches through the trainer's BatchLoader with N worker "
                             "processes (0: BatchLoader on the training thread); absent: inline collating")
    parser.add_argument("--sweep", default=None,
                        help="comma-separated batch sizes, each in a fresh process, up to the first out-of-memory")
    parser.add_argument("--device", default="auto", help="bgekit device backend: auto, cpu, cuda, ascend")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2; 1 in a sweep)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 5; 2 in a sweep)")
    args = parser.parse_args(argv)
    if args.chunk_size < 0:
        parser.error("--chunk-size must be 0 (off) or positive")
    if args.num_workers is not None and (args.num_workers < 0 or not args.from_text):
        parser.error("--num-workers takes 0 or more, and only with --from-text")
    return args


def run_one(args: argparse.Namespace) -> dict:
    from bgekit.devices import select_backend
    from bgekit.plugins import get_registry
    from bgekit.train.gradcache import EmbedderChunks, GradCache
    from bgekit.train.collate import TrainBatch
    from bgekit.train.trainer import TORCH_DTYPES, LossTerm, parameter_groups, resolve_dtype

    warmup = 2 if args.warmup is None else args.warmup
    steps = 5 if args.steps is None else args.steps
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
    loss = LossTerm(loss_name, get_registry().get("loss", loss_name).create())
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01), lr=1e-5, fused=device.type == "cuda" or None)
    scaler = torch.amp.GradScaler(device.type) if dtype == "fp16" else None

    def autocast():
        return torch.autocast(device_type=device.type, dtype=TORCH_DTYPES[dtype], enabled=dtype != "fp32")

    engine = GradCache(args.chunk_size, EmbedderChunks([loss]), autocast=autocast)
    vocab = SHAPES[args.shape]["vocab_size"]
    texts = TextBatches(args.batch, args.group, args.query_len, args.passage_len, batches=max(4, warmup + steps),
                        num_workers=args.num_workers) if args.from_text else None
    fixed = TrainBatch(random_batch(args.batch, args.query_len, vocab, device),
                       random_batch(args.batch * args.group, args.passage_len, vocab, device), None, args.group)
    tokens = 0

    def step(i: int) -> None:
        nonlocal tokens
        batch = texts.next(device) if texts is not None else fixed
        tokens += batch.num_tokens()
        engine.micro_step(model, batch, i, scaler=scaler)
        if scaler:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for i in range(warmup):
        step(i)
    backend.synchronize()
    backend.reset_peak_memory()
    tokens = 0
    started = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    backend.synchronize()
    seconds = time.perf_counter() - started

    n_passages = args.batch * args.group * steps
    memory = backend.memory_stats()
    return {
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
        "chunk_size": args.chunk_size,
        "input": ("random token ids" if not args.from_text else "text (tokenise + collate inline)"
                  if args.num_workers is None else f"text through BatchLoader, {args.num_workers} worker(s)"),
        "steps_timed": steps,
        "seconds_per_step": round(seconds / steps, 4),
        "ms_per_passage": round(1000 * seconds / n_passages, 3),
        "passages_per_s": round(n_passages / seconds, 1),
        "tokens_per_s": round(tokens / seconds, 1),
        "peak_memory_mib": round(memory.get("peak_allocated", memory.get("peak_rss", float("nan"))), 1),
        "peak_memory_kind": "device max allocated" if "peak_allocated" in memory else "process peak RSS",
        "torch": torch.__version__,
    }


OOM_MARKERS = ("out of memory", "MemoryError", "CUBLAS_STATUS_ALLOC_FAILED", "NPU out of memory")


def sweep(args: argparse.Namespace, argv: list[str]) -> dict:
    """Each batch size in a fresh process, smallest first, until one runs out of memory."""
    sizes = [int(x) for x in args.sweep.split(",") if x.strip()]
    base = []
    skip = False
    for item in argv:  # the same options minus --sweep/--batch
        if skip:
            skip = False
            continue
        if item in ("--sweep", "--batch"):
            skip = True
            continue
        if item.startswith(("--sweep=", "--batch=")):
            continue
        base.append(item)
    if args.warmup is None:
        base += ["--warmup", "1"]
    if args.steps is None:
        base += ["--steps", "2"]
    results, stopped = [], None
    for size in sizes:
        done = subprocess.run([sys.executable, __file__, *base, "--batch", str(size)], capture_output=True,
                              text=True)
        if done.returncode == 0:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps({k: results[-1][k] for k in ("batch_queries", "seconds_per_step", "ms_per_passage",
                                                          "tokens_per_s", "peak_memory_mib")}),
                  file=sys.stderr, flush=True)
            continue
        killed = done.returncode in (-9, 137)  # the kernel's out-of-memory killer on a CPU machine
        if killed or any(marker in done.stderr for marker in OOM_MARKERS):
            stopped = {"batch_queries": size, "reason": "out of memory"}
            break
        raise SystemExit(f"batch {size} failed:\n{done.stderr[-3000:]}")
    largest = results[-1] if results else None
    return {
        "sweep": sizes,
        "chunk_size": args.chunk_size,
        "largest_batch_queries": largest["batch_queries"] if largest else None,
        "largest_tokens_per_s": largest["tokens_per_s"] if largest else None,
        "stopped_at": stopped,
        "results": results,
    }


def main() -> None:
    argv = sys.argv[1:]
    args = parse_args(argv)
    print(json.dumps(sweep(args, argv) if args.sweep else run_one(args)))


if __name__ == "__main__":
    main()
