"""How long metric computation takes on a big synthetic evaluation.

Default: 100,000 queries x 1,000 results each, graded qrels with 5 judged
documents per query over a 1M-document corpus. Timed separately:

1. ordering the search results the trec_eval way (score, then doc id); the
   synthetic rows come sorted by score, as FAISS returns them, so only rows
   with tied scores are re-sorted;
2. looking up grades (``judge_topk``), as ``bgekit eval retriever`` does;
3. computing ndcg@10, recall@100, recall@1000, mrr@10, map, precision@10;
4. with ``--run-file-queries N``: writing a TREC run file for the first N
   queries and reading + judging it (``bgekit eval metrics``' path, pure
   Python parsing), to show the per-line cost of that path.

Usage: python benchmarks/metrics_speed.py [--queries 100000] [--depth 1000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from bgekit.evaluate.judged import judge_run, judge_topk, order_topk
from bgekit.evaluate.metrics import compute
from bgekit.evaluate.trec import format_run_lines, read_run
from bgekit.plugins import get_registry

METRICS = ["ndcg@10", "recall@100", "recall@1000", "mrr@10", "map", "precision@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--depth", type=int, default=1000)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--run-file-queries", type=int, default=2000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    doc_ids = [f"doc{i}" for i in range(args.documents)]
    qids = [f"q{i}" for i in range(args.queries)]
    # distinct documents per query: a random start, then a stride coprime with the corpus size
    starts = rng.integers(0, args.documents, size=(args.queries, 1), dtype=np.int64)
    indices = (starts + np.arange(args.depth, dtype=np.int64) * 999_983) % args.documents
    # sorted by score within each row, as FAISS returns them; float32 values tie now and then
    scores = -np.sort(-rng.random((args.queries, args.depth), dtype=np.float32), axis=1)
    qrels = {}
    for i, qid in enumerate(qids):
        judged = np.concatenate([indices[i, rng.integers(0, args.depth, 3)], rng.integers(0, args.documents, 2)])
        qrels[qid] = {doc_ids[d]: int(rng.integers(0, 4)) for d in judged}

    get_registry()  # load the metric plugins (and what they import) before timing
    timings = {}
    start = time.perf_counter()
    indices, scores = order_topk(indices, scores, doc_ids)
    timings["order (trec_eval tie-breaking)"] = time.perf_counter() - start
    start = time.perf_counter()
    judged = judge_topk(qids, doc_ids, indices, qrels)
    timings["judge_topk (grade lookup)"] = time.perf_counter() - start
    start = time.perf_counter()
    values = compute(judged, METRICS)
    timings[f"compute {len(METRICS)} metrics"] = time.perf_counter() - start

    print(f"{args.queries} queries x {args.depth} results, {args.documents} documents")
    for name, seconds in timings.items():
        print(f"  {name:34s} {seconds:8.2f} s")
    print("  " + ", ".join(f"{n}={values.aggregate(n):.4f}" for n in METRICS))

    if args.run_file_queries:
        n = min(args.run_file_queries, args.queries)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "run.trec"
            with open(path, "w") as fh:
                fh.writelines(format_run_lines(qids[:n], doc_ids, indices[:n], scores[:n], "bench"))
            start = time.perf_counter()
            run = read_run(path)
            read_s = time.perf_counter() - start
            start = time.perf_counter()
            compute(judge_run(run, qrels), METRICS)
            judge_s = time.perf_counter() - start
        lines = n * args.depth
        print(f"run file, {n} queries ({lines} lines): read {read_s:.2f} s, judge+metrics {judge_s:.2f} s "
              f"({(read_s + judge_s) / lines * 1e6:.2f} us per line)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
