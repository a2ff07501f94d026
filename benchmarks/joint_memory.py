"""Peak memory and time of ``task: joint`` training with and without GradCache chunks (``train.chunk_size``).

Builds a random retriever and a random cross-encoder reranker of one size
(no download; XLM-R architecture with the small in-process tokenizer of
:mod:`bgekit.testing`), writes synthetic training rows whose passages fill
``--passage-len`` tokens, and runs the real ``bgekit run`` on a joint recipe
once per chunk size, each in a fresh process, so each peak RSS is its own
(data loading in the training process: ``data.num_workers: 0``). Denoising is
off (``joint.negative_max_preference: 1``) so only training is measured.

    python benchmarks/joint_memory.py                                  # batch 16 x group 8, chunks 0,16,4
    python benchmarks/joint_memory.py --batch 32 --chunk-sizes 0,8 --hidden 256 --layers 4

Prints one JSON object: for each chunk size the process's peak RSS (MiB) and
the seconds the run took (model loading included), and the ratio of each
peak to the unchunked one.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Runs ``bgekit run`` in this process and prints its peak RSS (KiB on Linux) as the last line.
MEASURE = (
    "import resource, sys\n"
    "from bgekit.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:], standalone_mode=False)\n"
    "finally:\n"
    "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def build_models(root: Path, hidden: int, layers: int, positions: int) -> tuple[Path, Path]:
    """A random retriever and a random one-logit reranker of the same size."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from bgekit.testing import tiny_encoder

    sizes = dict(hidden_size=hidden, num_layers=layers, num_heads=max(1, hidden // 64), max_position=positions)
    retriever = tiny_encoder(root / "retriever", seed=1, **sizes)
    reranker = tiny_encoder(root / "reranker", seed=2, **sizes)
    config = AutoConfig.from_pretrained(reranker, num_labels=1)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(reranker, safe_serialization=True)
    return retriever, reranker


def write_rows(path: Path, count: int, group: int, passage_words: int, seed: int = 0) -> None:
    """Training rows with ``group - 1`` negatives each; words from the tokenizer's own training text."""
    from bgekit.testing import TRAINING_TEXT

    words = " ".join(TRAINING_TEXT).split()
    rng = random.Random(seed)

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    rows = [{"query": text(8), "pos": [text(passage_words)], "neg": [text(passage_words) for _ in range(group - 1)]}
            for _ in range(count)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def run_once(root: Path, models: tuple[Path, Path], args: argparse.Namespace, chunk_size: int) -> dict:
    out = root / f"run-chunk-{chunk_size}"
    recipe = {
        "task": "joint", "output_dir": str(out), "seed": 1,
        "model": {"name_or_path": str(models[0]), "query_max_length": 16, "passage_max_length": args.passage_len},
        "reranker": {"name_or_path": str(models[1]), "max_length": 16 + args.passage_len, "query_max_length": 16},
        "data": {"train": str(root / "train.jsonl"), "group_size": args.group, "num_workers": 0},
        "joint": {"negative_max_preference": 1.0},
        "train": {"max_steps": args.steps, "batch_size": args.batch, "dtype": "fp32", "chunk_size": chunk_size,
                  "logging_steps": 1},
    }
    path = root / f"joint-{chunk_size}.yaml"
    path.write_text(json.dumps(recipe), encoding="utf-8")  # JSON is YAML
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURE, "run", str(path)], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"chunk_size {chunk_size} failed:\n{done.stderr[-3000:]}")
    peak_kib = int(done.stdout.strip().splitlines()[-1])
    return {"chunk_size": chunk_size, "peak_rss_mib": round(peak_kib / 1024, 1), "seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16, help="queries per step")
    parser.add_argument("--group", type=int, default=8, help="passages per query (1 positive + negatives)")
    parser.add_argument("--passage-len", type=int, default=120, help="passage tokens")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--chunk-sizes", default="0,16,4", help="comma-separated train.chunk_size values")
    args = parser.parse_args()
    sizes = [int(s) for s in args.chunk_sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = build_models(root, args.hidden, args.layers, positions=16 + args.passage_len + 4)
        write_rows(root / "train.jsonl", args.batch * args.steps, args.group, passage_words=args.passage_len)
        results = [run_once(root, models, args, size) for size in sizes]
    base = next((r["peak_rss_mib"] for r in results if r["chunk_size"] == 0), None)
    for r in results:
        if base:
            r["peak_vs_unchunked"] = round(r["peak_rss_mib"] / base, 3)
    print(json.dumps({"batch": args.batch, "group": args.group, "passage_len": args.passage_len,
                      "hidden": args.hidden, "layers": args.layers, "steps": args.steps,
                      "max_rss_kind": "process peak RSS (ru_maxrss)", "results": results,
                      "host_peak_rss_mib_of_this_script": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                                / 1024, 1)}, indent=1))


if __name__ == "__main__":
    main()
