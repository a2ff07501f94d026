"""A Hugging Face model card (``README.md``) for a saved model, so it can be pushed to the hub as it is.

The card has the hub's YAML front matter (``base_model``, ``library_name``,
``pipeline_tag``, ``tags``, ...) and says what a user of the model needs:
the base model, what data it was trained on (rows, sources), the recipe
(secrets masked), before/after metrics with confidence intervals when an
evaluation ran, the bgekit version, and how to load it with FlagEmbedding,
sentence-transformers and plain transformers. It is written atomically.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

import bgekit
from bgekit.data.atomic import atomic_write
from bgekit.errors import BgekitError

CARD_FILE = "README.md"
KINDS = ("embedder", "reranker")
#: what a hub id looks like (ORG/NAME or a legacy NAME): only those go in ``base_model``
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def write_model_card(directory: str | Path, *, kind: str, base_model: str, recipe: Any = None,
                     data: Mapping[str, Any] | None = None, comparison: Mapping[str, Any] | None = None,
                     metrics: Mapping[str, float] | None = None, heads: Sequence[str] = ("dense",),
                     pooling: str = "cls", max_length: int | None = None, model_id: str | None = None,
                     language: Sequence[str] | None = None, tags: Sequence[str] = ()) -> Path:
    """Write ``directory/README.md`` and return its path.

    - ``kind``: ``"embedder"`` or ``"reranker"``;
    - ``base_model``: what training started from (a hub id, a folder or ``pkg:NAME``);
    - ``recipe``: a :class:`bgekit.recipe.Recipe` (its secrets are masked) or its values, already masked;
    - ``data``: ``{"rows": N, "sources": [file, ...], "skipped_rows": M}`` (any of them);
    - ``comparison``: :meth:`bgekit.evaluate.compare.Comparison.to_json` of base vs fine-tuned model
      (before/after with confidence intervals), or ``metrics``: ``{name: value}`` of the fine-tuned model;
    - ``heads``, ``pooling``, ``max_length``: what the usage snippets load (an embedder's);
    - ``model_id``: the name the snippets load (default: the folder's path).
    """
    if kind not in KINDS:
        raise BgekitError(f"model card: kind must be one of {', '.join(KINDS)}, not '{kind}'")
    out = Path(directory)
    if not out.is_dir():
        raise BgekitError(f"model card: {out} is not a model folder")
    text = render_model_card(kind=kind, base_model=base_model, recipe=recipe, data=data, comparison=comparison,
                             metrics=metrics, heads=heads, pooling=pooling, max_length=max_length,
                             model_id=model_id or str(out), language=language, tags=tags)
    path = out / CARD_FILE
    with atomic_write(path) as fh:
        fh.write(text)
    return path


def render_model_card(*, kind: str, base_model: str, recipe: Any, data: Mapping[str, Any] | None,
                      comparison: Mapping[str, Any] | None, metrics: Mapping[str, float] | None,
                      heads: Sequence[str], pooling: str, max_length: int | None, model_id: str,
                      language: Sequence[str] | None, tags: Sequence[str]) -> str:
    """The card's text (see :func:`write_model_card`)."""
    front: dict[str, Any] = {}
    if _HUB_ID.match(base_model) and not Path(base_model).exists():
        front["base_model"] = base_model
    front["library_name"] = "sentence-transformers"
    front["pipeline_tag"] = "sentence-similarity" if kind == "embedder" else "text-ranking"
    front["tags"] = list(dict.fromkeys(["bgekit", *_kind_tags(kind, heads), *tags]))
    if language:
        front["language"] = list(language)
    front["license"] = "other"
    parts = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    what = "an embedder (" + " + ".join(heads) + ")" if kind == "embedder" else "a cross-encoder reranker"
    parts += [f"# {Path(model_id).name or model_id}", "",
              f"{what[0].upper() + what[1:]} fine-tuned from `{base_model}` with "
              f"bgekit {bgekit.__version__}.", ""]
    parts += _data_section(data)
    parts += _metrics_section(comparison, metrics)
    parts += _usage_section(kind, model_id, heads, pooling, max_length)
    parts += _recipe_section(recipe)
    return "\n".join(parts).rstrip() + "\n"


def _kind_tags(kind: str, heads: Sequence[str]) -> list[str]:
    if kind == "reranker":
        return ["cross-encoder", "reranker", "text-classification"]
    return ["sentence-transformers", "feature-extraction", "sentence-similarity",
            *(f"{head}-retrieval" for head in heads)]


def _data_section(data: Mapping[str, Any] | None) -> list[str]:
    if not data:
        return []
    lines = ["## Training data", ""]
    if data.get("rows") is not None:
        skipped = f" ({data['skipped_rows']} invalid rows skipped)" if data.get("skipped_rows") else ""
        lines.append(f"- rows: {data['rows']}{skipped}")
    for source in data.get("sources") or []:
        lines.append(f"- source: `{source}`")
    return lines + [""]


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _metrics_section(comparison: Mapping[str, Any] | None, metrics: Mapping[str, float] | None) -> list[str]:
    if comparison:
        confidence = comparison.get("confidence", 0.95)
        lines = ["## Evaluation", "",
                 f"{comparison.get('queries', '?')} held-out queries; base model ({comparison.get('baseline')}) "
                 f"against the fine-tuned one ({comparison.get('candidate')}); {confidence:.0%} confidence "
                 f"interval of the difference: {comparison.get('ci_method', 'paired bootstrap')}; p: "
                 f"{comparison.get('p_value_method', 'paired randomisation test')}.", "",
                 f"| metric | before | after | delta | {confidence:.0%} CI | p |",
                 "|---|---:|---:|---:|---|---:|"]
        for row in comparison.get("metrics", []):
            lines.append(f"| {row['metric']} | {_number(row.get('baseline'))} | {_number(row.get('candidate'))} | "
                         f"{row.get('delta', 0):+.4f} | [{row.get('ci_low', 0):+.4f}, {row.get('ci_high', 0):+.4f}] | "
                         f"{_number(row.get('p_value'))} |")
        return lines + [""]
    if metrics:
        lines = ["## Evaluation", "", "Held-out evaluation of this model:", "", "| metric | value |", "|---|---:|"]
        lines += [f"| {name} | {_number(value)} |" for name, value in metrics.items()]
        return lines + [""]
    return []


def _usage_section(kind: str, model_id: str, heads: Sequence[str], pooling: str, max_length: int | None) -> list[str]:
    name = json.dumps(model_id)
    length = max_length or 512
    if kind == "reranker":
        return [
            "## Usage", "", "FlagEmbedding:", "", "```python", "from FlagEmbedding import FlagReranker", "",
            f"reranker = FlagReranker({name})",
            "scores = reranker.compute_score([[\"what is BGE-M3?\", \"BGE-M3 is an embedding model.\"]])",
            "```", "", "sentence-transformers:", "", "```python", "from sentence_transformers import CrossEncoder", "",
            f"model = CrossEncoder({name}, max_length={length})",
            "scores = model.predict([(\"what is BGE-M3?\", \"BGE-M3 is an embedding model.\")])",
            "```", "", "transformers:", "", "```python", "import torch",
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer", "",
            f"tokenizer = AutoTokenizer.from_pretrained({name})",
            f"model = AutoModelForSequenceClassification.from_pretrained({name}).eval()",
            "batch = tokenizer([\"what is BGE-M3?\"], [\"BGE-M3 is an embedding model.\"], padding=True,",
            f"                  truncation=True, max_length={length}, return_tensors=\"pt\")",
            "with torch.no_grad():",
            "    scores = model(**batch).logits.view(-1)  # higher is more relevant; sigmoid for [0, 1]",
            "```", ""]
    if "sparse" in heads or "colbert" in heads:
        flag = ["from FlagEmbedding import BGEM3FlagModel", "",
                f"model = BGEM3FlagModel({name}, use_fp16=False)",
                f"out = model.encode([\"what is BGE-M3?\"], return_dense=True, return_sparse={'sparse' in heads}, "
                f"return_colbert_vecs={'colbert' in heads})"]
    else:
        flag = ["from FlagEmbedding import FlagModel", "",
                f"model = FlagModel({name}, pooling_method={json.dumps(pooling.replace('-', '_'))})",
                "vectors = model.encode([\"what is BGE-M3?\"])"]
    pooled = {"cls": "hidden[:, 0]",
              "mean": "(hidden * mask).sum(1) / mask.sum(1)",
              "last-token": "hidden[torch.arange(hidden.size(0)), batch[\"attention_mask\"].sum(1) - 1]"}
    return [
        "## Usage", "", "FlagEmbedding:", "", "```python", *flag, "```", "",
        "sentence-transformers (dense vectors):", "", "```python", "from sentence_transformers import SentenceTransformer", "",
        f"model = SentenceTransformer({name})", "vectors = model.encode([\"what is BGE-M3?\"])  # L2-normalised",
        "```", "", "transformers (dense vectors):", "", "```python", "import torch",
        "from transformers import AutoModel, AutoTokenizer", "",
        f"tokenizer = AutoTokenizer.from_pretrained({name})", f"model = AutoModel.from_pretrained({name}).eval()",
        "batch = tokenizer([\"what is BGE-M3?\"], padding=True, truncation=True, "
        f"max_length={length}, return_tensors=\"pt\")",
        "with torch.no_grad():", "    hidden = model(**batch).last_hidden_state",
        "mask = batch[\"attention_mask\"].unsqueeze(-1).to(hidden.dtype)",
        f"vectors = torch.nn.functional.normalize({pooled.get(pooling, pooled['cls'])}, dim=-1)  # {pooling} pooling",
        "```", "",
        "bgekit:", "", "```bash",
        f"bgekit encode --model {model_id} --input texts.jsonl --output vectors.jsonl", "```", ""]


def _recipe_section(recipe: Any) -> list[str]:
    if recipe is None:
        return []
    values = recipe.masked_values() if hasattr(recipe, "masked_values") else recipe
    text = yaml.safe_dump(json.loads(json.dumps(values, default=str)), sort_keys=False, allow_unicode=True)
    return ["## Recipe", "", "The resolved recipe this model was trained with (secrets masked):", "",
            "```yaml", text.rstrip(), "```", ""]
