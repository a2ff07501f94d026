"""bgekit's M3 training step beside FlagEmbedding's own, at the same shape, batch and inputs.

FlagEmbedding 1.4.2 needs transformers < 5, so its side runs in a separate
virtual environment (``.venv-flag``, created on first use exactly as
``benchmarks/flagembedding_compat.py`` does; ``--find-links DIR`` installs it
from wheels brought along, for a GPU machine without network). For every
batch size of ``--sweep``, each framework runs in a fresh process, up to its
first out-of-memory:

- FlagEmbedding: ``EncoderOnlyEmbedderM3Model`` (unified fine-tuning with
  self-distillation, temperature 0.02, CLS pooling, normalised), AdamW,
  gradient clipping, autocast in ``--dtype``, optional gradient checkpointing;
- bgekit: ``benchmarks/train_throughput.py --heads m3`` with the same options,
  plus ``--chunk-size`` (GradCache) when given.

Both get random token ids at the full query/passage lengths on a randomly
initialised XLM-R of ``--shape`` (no download), so tokens/s count the same
tokens. Peak memory is the device's max allocated on a GPU, the process's peak
RSS on a CPU (both include the weights, gradients and AdamW state).

    python benchmarks/flag_train_throughput.py --shape xlmr-small --sweep 4,8 --query-len 32 --passage-len 128
    python benchmarks/flag_train_throughput.py --shape large --dtype bf16 --query-len 64 --passage-len 512 \\
        --group 8 --sweep 8,12,16,32,64 --gradient-checkpointing --chunk-size 32        # an H100 / H200

Prints one JSON object: both sweeps and, per batch size both ran, the
tokens/s and memory ratios (bgekit / FlagEmbedding).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OOM_MARKERS = ("out of memory", "MemoryError", "CUBLAS_STATUS_ALLOC_FAILED", "NPU out of memory")


# --------------------------------------------------------------------------
# FlagEmbedding side (runs inside the separate venv, one batch size a process)
# --------------------------------------------------------------------------
def flag_side(job: dict) -> dict:
    import platform

    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from FlagEmbedding.finetune.embedder.encoder_only.m3 import EncoderOnlyEmbedderM3Model

    sys.path.insert(0, str(HERE))
    from train_throughput import SHAPES, random_batch  # torch-only helpers, no bgekit import

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[job["dtype"]]
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(0)
    config = AutoConfig.for_model("xlm-roberta", pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                  **SHAPES[job["shape"]])
    encoder = AutoModel.from_config(config, attn_implementation="sdpa")
    hidden = config.hidden_size
    parts = {"model": encoder, "colbert_linear": torch.nn.Linear(hidden, hidden),
             "sparse_linear": torch.nn.Linear(hidden, 1)}
    model = EncoderOnlyEmbedderM3Model(parts, tokenizer=AutoTokenizer.from_pretrained(job["tokenizer"]),
                                       temperature=0.02, sentence_pooling_method="cls", normalize_embeddings=True,
                                       unified_finetuning=True, use_self_distill=True, self_distill_start_step=-1)
    model.to(device)
    if job["gradient_checkpointing"]:
        model.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda" or None)
    scaler = torch.amp.GradScaler(device.type) if job["dtype"] == "fp16" else None
    vocab = SHAPES[job["shape"]]["vocab_size"]
    queries = random_batch(job["batch"], job["query_len"], vocab, device)
    passages = random_batch(job["batch"] * job["group"], job["passage_len"], vocab, device)
    tokens_per_step = int(queries["attention_mask"].sum() + passages["attention_mask"].sum())

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=job["dtype"] != "fp32"):
            loss = model(queries, passages).loss
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
        model.step += 1

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(job["warmup"]):
        step()
    synchronize()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(job["steps"]):
        step()
    synchronize()
    seconds = time.perf_counter() - started
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated() / 2**20, "device max allocated"
    else:
        import resource

        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"
    n_passages = job["batch"] * job["group"] * job["steps"]
    return {
        "framework": "FlagEmbedding", "device_name": torch.cuda.get_device_name() if device.type == "cuda"
        else platform.processor(), "threads": torch.get_num_threads(), "batch_queries": job["batch"],
        "seconds_per_step": round(seconds / job["steps"], 4), "ms_per_passage": round(1000 * seconds / n_passages, 3),
        "tokens_per_s": round(tokens_per_step * job["steps"] / seconds, 1), "peak_memory_mib": round(peak, 1),
        "peak_memory_kind": kind, "torch": torch.__version__,
    }


# --------------------------------------------------------------------------
# the driver (bgekit's environment)
# --------------------------------------------------------------------------
def run_sweep(label: str, sizes: list[int], command) -> dict:
    """``command(size)`` in a fresh process per size, smallest first, until one runs out of memory."""
    results, stopped = [], None
    for size in sizes:
        done = subprocess.run(command(size), capture_output=True, text=True)
        if done.returncode == 0:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            row = results[-1]
            print(f"{label:13s} batch {size:4d}: {row['tokens_per_s']:>10.1f} tokens/s  "
                  f"{row['peak_memory_mib']:>9.1f} MiB", file=sys.stderr, flush=True)
            continue
        if done.returncode in (-9, 137) or any(marker in done.stderr for marker in OOM_MARKERS):
            stopped = {"batch_queries": size, "reason": "out of memory"}
            print(f"{label:13s} batch {size:4d}: out of memory", file=sys.stderr, flush=True)
            break
        raise SystemExit(f"{label} batch {size} failed:\n{done.stderr[-3000:]}")
    return {"results": results, "stopped_at": stopped,
            "largest_batch_queries": results[-1]["batch_queries"] if results else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="xlmr-small", help="a shape of train_throughput.py")
    parser.add_argument("--sweep", default="4,8", help="comma-separated queries per step")
    parser.add_argument("--group", type=int, default=8, help="passages per query")
    parser.add_argument("--query-len", type=int, default=64)
    parser.add_argument("--passage-len", type=int, default=512)
    parser.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="for both frameworks")
    parser.add_argument("--chunk-size", type=int, default=0, help="bgekit's GradCache chunk (0 = off)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--venv", default=str(HERE.parent / ".venv-flag"), help="FlagEmbedding's virtual env")
    parser.add_argument("--find-links", help="install FlagEmbedding from wheels in this folder (no network)")
    parser.add_argument("--flag-side", help=argparse.SUPPRESS)  # internal: one FlagEmbedding run
    args = parser.parse_args()

    if args.flag_side:
        print(json.dumps(flag_side(json.loads(Path(args.flag_side).read_text(encoding="utf-8")))))
        return 0

    sys.path.insert(0, str(HERE))
    from flagembedding_compat import ensure_venv

    from bgekit.models.flag_layout import make_tokenizer_config_portable
    from bgekit.testing import tiny_encoder

    python = ensure_venv(Path(args.venv), find_links=args.find_links)
    sizes = [int(x) for x in args.sweep.split(",") if x.strip()]
    common = ["--group", str(args.group), "--query-len", str(args.query_len), "--passage-len", str(args.passage_len),
              "--dtype", args.dtype, "--warmup", str(args.warmup), "--steps", str(args.steps)]
    if args.gradient_checkpointing:
        common.append("--gradient-checkpointing")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = tiny_encoder(Path(tmp) / "tokenizer")  # XLM-R special tokens (FlagEmbedding needs an EOS)
        make_tokenizer_config_portable(tokenizer)  # loadable by transformers < 5 too

        def flag_command(size: int) -> list[str]:
            job = {"shape": args.shape, "batch": size, "group": args.group, "query_len": args.query_len,
                   "passage_len": args.passage_len, "dtype": args.dtype, "warmup": args.warmup, "steps": args.steps,
                   "gradient_checkpointing": args.gradient_checkpointing, "tokenizer": str(tokenizer)}
            path = Path(tmp) / f"job-{size}.json"
            path.write_text(json.dumps(job), encoding="utf-8")
            return [str(python), __file__, "--flag-side", str(path)]

        def bgekit_command(size: int) -> list[str]:
            return [sys.executable, str(HERE / "train_throughput.py"), "--shape", args.shape, "--heads", "m3",
                    "--batch", str(size), "--chunk-size", str(args.chunk_size), *common]

        flag = run_sweep("FlagEmbedding", sizes, flag_command)
        ours = run_sweep("bgekit", sizes, bgekit_command)

    flag_by_size = {r["batch_queries"]: r for r in flag["results"]}
    ratios = [{"batch_queries": r["batch_queries"],
               "tokens_per_s_ratio": round(r["tokens_per_s"] / flag_by_size[r["batch_queries"]]["tokens_per_s"], 3),
               "peak_memory_ratio": round(r["peak_memory_mib"] / flag_by_size[r["batch_queries"]]["peak_memory_mib"], 3)}
              for r in ours["results"] if r["batch_queries"] in flag_by_size]
    print(json.dumps({"shape": args.shape, "group": args.group, "query_len": args.query_len,
                      "passage_len": args.passage_len, "dtype": args.dtype,
                      "gradient_checkpointing": args.gradient_checkpointing, "chunk_size": args.chunk_size,
                      "flagembedding": flag, "bgekit": ours, "bgekit_over_flagembedding": ratios}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
