"""A saved embedder opens in sentence-transformers and gives the dense vectors `bgekit encode` writes."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.models import Embedder

st = pytest.importorskip("sentence_transformers")

TEXTS = ["北京是中华人民共和国的首都。", "What is the capital of China?", "river",
         "The Yangtze is the longest river in China, about 6,300 km long. " * 3]


def _saved(source, out, heads):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sparse/colbert heads start random here
        model = Embedder.from_pretrained(str(source), heads=heads)
    model.save_pretrained(out)
    return out


def _bgekit_dense(model_dir, tmp_path):
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TEXTS), encoding="utf-8")
    out = tmp_path / "vectors.jsonl"
    result = CliRunner().invoke(main, ["encode", "--model", str(model_dir), "--input", str(texts),
                                       "--output", str(out), "--dense"])
    assert result.exit_code == 0, result.output
    return np.array([json.loads(line)["dense"] for line in out.read_text().splitlines()], dtype=np.float64)


@pytest.mark.parametrize("fixture, heads, pooling", [
    ("tiny_model_dir", [{"name": "dense"}, {"name": "sparse"}, {"name": "colbert", "colbert_dim": 8}], "cls"),
    ("tiny_bert_dir", [{"name": "dense", "pooling": "mean"}], "mean"),
])
def test_sentence_transformer_vectors_equal_bgekit_encode(fixture, heads, pooling, request, tmp_path):
    model_dir = _saved(request.getfixturevalue(fixture), tmp_path / "model", heads)
    pooling_config = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    assert pooling_config[{"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens"}[pooling]] is True
    assert sum(v is True for k, v in pooling_config.items() if k.startswith("pooling_mode")) == 1
    assert [m["type"].rsplit(".", 1)[1] for m in json.loads((model_dir / "modules.json").read_text())] == \
        ["Transformer", "Pooling", "Normalize"]
    assert json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"] > 0

    ours = _bgekit_dense(model_dir, tmp_path)
    theirs = st.SentenceTransformer(str(model_dir), device="cpu").encode(TEXTS, convert_to_numpy=True)
    theirs = np.asarray(theirs, dtype=np.float64)
    assert theirs.shape == ours.shape
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.99999, cosine
    np.testing.assert_allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)  # normalised like ours


def test_a_model_without_a_dense_head_writes_no_sentence_transformers_files(tiny_model_dir, tmp_path):
    model_dir = _saved(tiny_model_dir, tmp_path / "sparse-only", [{"name": "sparse"}])
    assert not (model_dir / "modules.json").exists() and (model_dir / "sparse_linear.pt").exists()
