"""Check that a model saved by bgekit encodes the same in FlagEmbedding's BGEM3FlagModel.

FlagEmbedding 1.4.2 needs transformers < 5, so it cannot share bgekit's
environment: this script keeps it in a separate virtual environment
(``.venv-flag`` by default, created on first use) and runs itself there
for the FlagEmbedding side. Both sides encode the same texts with dense,
sparse and colbert outputs, and the script reports

- dense: the smallest cosine similarity between the two sides' vectors (must be > 0.9999),
- sparse: whether every text has the same token ids, and the largest weight difference (<= 1e-4),
- colbert: whether the token counts agree, and the largest element difference (<= 1e-4),

and, on a fixed training batch, bgekit's ``m3-unified`` loss beside
FlagEmbedding's own training model (``EncoderOnlyEmbedderM3Model``) with
the same settings. Exit status 1 when an inference check fails.

Usage::

    python benchmarks/flagembedding_compat.py                 # a tiny XLM-R from bgekit.testing
    python benchmarks/flagembedding_compat.py --model runs/m3/model --max-length 512
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLAG_REQUIREMENTS = ["transformers<5", "FlagEmbedding==1.4.2"]
TORCH_PIN = "torch==2.13.0"  # the CPU build already on disk; pip reuses it

TEXTS = [
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "What is the capital of China?",
    "The Yangtze is the longest river in China, about 6,300 km long. " * 6,  # longer than max length
    "river river river China China",  # repeated tokens: sparse keeps the max weight
    "",
    "机器学习是人工智能的一个分支。Machine learning studies how computers learn from data.",
    "第一回 甄士隐梦幻识通灵 贾雨村风尘怀闺秀",
    "Dense, sparse and multi-vector retrieval with BGE-M3 embeddings.",
]
QUERIES = ["capital of China", "longest river", "红楼梦的作者"]
PASSAGES = [  # group size 2 per query: positive first
    "Beijing is the capital of the People's Republic of China.",
    "The Yangtze is the longest river in China.",
    "The Yangtze is the longest river in China, about 6,300 km long.",
    "北京是中华人民共和国的首都。",
    "红楼梦是中国古典四大名著之一，作者是曹雪芹。",
    "Machine learning studies how computers learn from data.",
]
GROUP_SIZE = 2
TEMPERATURE = 0.02


# --------------------------------------------------------------------------
# FlagEmbedding side (runs inside the separate venv)
# --------------------------------------------------------------------------
def flag_side(job: dict) -> dict:
    import numpy as np
    import torch
    from FlagEmbedding import BGEM3FlagModel
    from FlagEmbedding.finetune.embedder.encoder_only.m3 import EncoderOnlyEmbedderM3Model
    from FlagEmbedding.finetune.embedder.encoder_only.m3.runner import EncoderOnlyEmbedderM3Runner

    model = BGEM3FlagModel(job["model"], use_fp16=False, devices="cpu", colbert_dim=job["colbert_dim"],
                           pooling_method=job["pooling"])
    out = model.encode(job["texts"], batch_size=job["batch_size"], max_length=job["max_length"],
                       return_dense=True, return_sparse=True, return_colbert_vecs=True)
    result = {
        "dense": np.asarray(out["dense_vecs"], dtype=np.float64).tolist(),
        "sparse": [{k: float(v) for k, v in w.items()} for w in out["lexical_weights"]],
        "colbert": [np.asarray(v, dtype=np.float64).tolist() for v in out["colbert_vecs"]],
    }

    # The training loss on a fixed batch. The wrapper is in training mode (it only computes
    # the loss then) while the encoder is in eval mode, so no dropout (including SDPA's
    # attention dropout, which no nn.Dropout module controls) changes the numbers.
    parts = EncoderOnlyEmbedderM3Runner.get_model(job["model"], colbert_dim=job["colbert_dim"])
    trainer_model = EncoderOnlyEmbedderM3Model(
        parts, tokenizer=model.tokenizer, temperature=TEMPERATURE, sentence_pooling_method=job["pooling"],
        normalize_embeddings=True, unified_finetuning=True, use_self_distill=True, self_distill_start_step=-1,
    )
    trainer_model.train()
    trainer_model.model.eval()
    losses = {}
    for name, batch in job["loss_batches"].items():
        queries = {k: torch.tensor(v) for k, v in batch["queries"].items()}
        passages = {k: torch.tensor(v) for k, v in batch["passages"].items()}
        trainer_model.step = 0
        with torch.no_grad():
            losses[name] = float(trainer_model(queries, passages).loss)
    result["losses"] = losses
    return result


# --------------------------------------------------------------------------
# bgekit side
# --------------------------------------------------------------------------
def ensure_venv(venv: Path, find_links: str | None = None) -> Path:
    """The venv's python, creating the venv and installing FlagEmbedding when needed
    (from the wheels in ``find_links`` only, when given: a machine without network)."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import FlagEmbedding"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"creating {venv} with {TORCH_PIN} {' '.join(FLAG_REQUIREMENTS)} (one-off, a few minutes)",
          file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    offline = ["--no-index", "--find-links", find_links] if find_links else []
    subprocess.run([str(python), "-m", "pip", "install", "-q", *offline, TORCH_PIN], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *offline, *FLAG_REQUIREMENTS], check=True)
    return python


def tiny_model(directory: Path) -> Path:
    """A tiny XLM-R with all three heads, saved by bgekit (random but fixed weights)."""
    import warnings

    import torch

    from bgekit.models import Embedder
    from bgekit.testing import tiny_encoder

    tiny_encoder(directory / "encoder", hidden_size=64, num_layers=2, num_heads=4, seed=1)
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the heads start random on purpose
        model = Embedder.from_pretrained(directory / "encoder",
                                         heads=[{"name": "dense"}, {"name": "sparse"}, {"name": "colbert"}])
    with torch.no_grad():  # a positive bias so that most sparse weights survive the relu
        model.heads["sparse"].linear.bias.fill_(0.3)
    model.save_pretrained(directory / "model")
    return directory / "model"


def loss_batches(model, max_length: int) -> dict:
    """Tokenised queries/passages; 'unpadded' repeats one passage so no passage has padding."""
    def tok(texts, length):
        enc = model.tokenizer(texts, padding=True, truncation=True, max_length=length, return_tensors="pt")
        return {"input_ids": enc["input_ids"].tolist(), "attention_mask": enc["attention_mask"].tolist()}

    same = [PASSAGES[0]] * len(PASSAGES)
    return {
        "padded": {"queries": tok(QUERIES, 32), "passages": tok(PASSAGES, max_length)},
        "unpadded": {"queries": tok(QUERIES, 32), "passages": tok(same, max_length)},
    }


def bgekit_loss(model, batch: dict) -> float:
    import torch

    from bgekit.plugins import get_registry

    loss_fn = get_registry().get("loss", "m3-unified").create(temperature=TEMPERATURE)
    queries = {k: torch.tensor(v) for k, v in batch["queries"].items()}
    passages = {k: torch.tensor(v) for k, v in batch["passages"].items()}
    with torch.no_grad():
        scores = model(queries, passages)
    targets = torch.arange(len(QUERIES)) * GROUP_SIZE
    return float(loss_fn(scores, targets, GROUP_SIZE, step=0).loss)


def compare(ours: dict, theirs: dict) -> dict:
    import numpy as np

    dense_a, dense_b = np.asarray(ours["dense"], np.float64), np.asarray(theirs["dense"], np.float64)
    cos = (dense_a * dense_b).sum(1) / (np.linalg.norm(dense_a, axis=1) * np.linalg.norm(dense_b, axis=1))
    same_ids = all(set(a) == set(b) for a, b in zip(ours["sparse"], theirs["sparse"]))
    sparse_diff = max((abs(a[k] - b[k]) for a, b in zip(ours["sparse"], theirs["sparse"]) for k in a if k in b),
                      default=0.0)
    same_counts = all(np.shape(a) == np.shape(b) for a, b in zip(ours["colbert"], theirs["colbert"]))
    colbert_diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) if np.size(a) else 0.0
                       for a, b in zip(ours["colbert"], theirs["colbert"]))
    return {
        "texts": len(dense_a),
        "dense_min_cosine": float(cos.min()),
        "dense_max_abs_diff": float(np.abs(dense_a - dense_b).max()),
        "sparse_same_token_ids": same_ids,
        "sparse_tokens": int(sum(len(s) for s in ours["sparse"])),
        "sparse_max_weight_diff": float(sparse_diff),
        "colbert_same_token_counts": same_counts,
        "colbert_max_abs_diff": colbert_diff,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a model directory saved by bgekit (default: a tiny XLM-R)")
    parser.add_argument("--venv", default=str(REPO / ".venv-flag"), help="FlagEmbedding's virtual environment")
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=3)
    parser.add_argument("--json", dest="json_out", help="also write the numbers here")
    parser.add_argument("--flag-side", help=argparse.SUPPRESS)  # internal: job file for the venv side
    args = parser.parse_args()

    if args.flag_side:
        job = json.loads(Path(args.flag_side).read_text(encoding="utf-8"))
        Path(job["output"]).write_text(json.dumps(flag_side(job)), encoding="utf-8")
        return 0

    import numpy as np

    from bgekit.models import Embedder

    python = ensure_venv(Path(args.venv))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model_dir = Path(args.model) if args.model else tiny_model(workdir)
        model = Embedder.from_pretrained(model_dir)
        missing = {"dense", "sparse", "colbert"} - set(model.heads)
        if missing:
            raise SystemExit(f"{model_dir} lacks the {', '.join(sorted(missing))} head(s); "
                             "save a model with dense, sparse and colbert heads")
        model.eval()
        config = {c["name"]: c for c in model.head_configs}
        ours = model.encode(TEXTS, batch_size=args.batch_size, max_length=args.max_length)
        ours = {"dense": ours["dense"], "sparse": ours["sparse"], "colbert": [np.asarray(v) for v in ours["colbert"]]}
        batches = loss_batches(model, args.max_length)
        our_losses = {name: bgekit_loss(model, batch) for name, batch in batches.items()}

        job = {
            "model": str(model_dir), "texts": TEXTS, "batch_size": args.batch_size, "max_length": args.max_length,
            "colbert_dim": int(config["colbert"].get("colbert_dim", -1)),
            "pooling": config["dense"].get("pooling", "cls").replace("last-token", "last_token"),
            "loss_batches": batches, "output": str(workdir / "flag.json"),
        }
        (workdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        subprocess.run([str(python), __file__, "--flag-side", str(workdir / "job.json")], check=True)
        theirs = json.loads((workdir / "flag.json").read_text(encoding="utf-8"))

    report = compare(ours, theirs)
    report["model"] = str(args.model or "tiny XLM-R (bgekit.testing, hidden 64)")
    for name in our_losses:
        report[f"m3_unified_loss_{name}_bgekit"] = our_losses[name]
        report[f"m3_unified_loss_{name}_flagembedding"] = theirs["losses"][name]
    ok = (report["dense_min_cosine"] > 0.9999 and report["sparse_same_token_ids"]
          and report["sparse_max_weight_diff"] <= 1e-4 and report["colbert_same_token_counts"]
          and report["colbert_max_abs_diff"] <= 1e-4)
    report["inference_agrees"] = ok
    for key, value in report.items():
        print(f"{key:42s} {value}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
