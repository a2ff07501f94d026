"""Embedder: loading heads in FlagEmbedding's layout, saving, scoring, encoding."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from bgekit.errors import BgekitError
from bgekit.models import Embedder, flag_layout

ALL_HEADS = [{"name": "dense"}, {"name": "sparse"}, {"name": "colbert"}]
TEXTS = ["北京是中华人民共和国的首都。", "What is the capital of China?", "river river river", "",
         "The Yangtze is the longest river in China, about 6,300 km long."]


def load(path, heads=ALL_HEADS, **kwargs) -> Embedder:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Embedder.from_pretrained(path, heads=heads, **kwargs)


@pytest.fixture(scope="module")
def m3_dir(tiny_model_dir, tmp_path_factory):
    """The tiny XLM-R saved by bgekit with dense, sparse and colbert heads."""
    torch.manual_seed(0)
    model = load(tiny_model_dir)
    with torch.no_grad():
        model.heads["sparse"].linear.bias.fill_(0.3)  # most lexical weights > 0
    out = tmp_path_factory.mktemp("m3") / "model"
    model.save_pretrained(out)
    return out


def test_missing_head_files_warn_loudly(tiny_model_dir):
    with pytest.warns(UserWarning, match="'sparse' head starts from RANDOM weights"):
        Embedder.from_pretrained(tiny_model_dir, heads=[{"name": "dense"}, {"name": "sparse"}])


def test_save_writes_flagembedding_layout_and_round_trips(m3_dir):
    names = {p.name for p in m3_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
            "sparse_linear.pt", "colbert_linear.pt", "bgekit_heads.json"} <= names
    # transformers 4 (FlagEmbedding's pin) must be able to load the tokenizer class.
    assert json.loads((m3_dir / "tokenizer_config.json").read_text())["tokenizer_class"] != "TokenizersBackend"
    sparse_state = torch.load(m3_dir / "sparse_linear.pt", weights_only=True)
    assert set(sparse_state) == {"weight", "bias"} and torch.all(sparse_state["bias"] == 0.3)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every head file is there: no random-head warning
        first = Embedder.from_pretrained(m3_dir)
    assert list(first.heads) == ["dense", "sparse", "colbert"]
    again_dir = m3_dir.parent / "again"
    first.save_pretrained(again_dir)
    second = Embedder.from_pretrained(again_dir)
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ea, eb = first.encode(TEXTS), second.encode(TEXTS)
    np.testing.assert_array_equal(ea["dense"], eb["dense"])
    assert ea["sparse"] == eb["sparse"]
    assert all(np.array_equal(x, y) for x, y in zip(ea["colbert"], eb["colbert"]))


def test_flagembedding_directory_without_bgekit_record_loads_its_heads(m3_dir, tmp_path):
    flag_dir = tmp_path / "flag"
    shutil.copytree(m3_dir, flag_dir)
    (flag_dir / flag_layout.HEADS_FILE).unlink()
    model = Embedder.from_pretrained(flag_dir)
    assert list(model.heads) == ["dense", "sparse", "colbert"]
    assert torch.all(model.heads["sparse"].linear.bias == 0.3)


def test_hub_ids_resolve_head_files_through_huggingface_hub(m3_dir, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    def fake_download(repo_id, filename, revision=None):
        assert repo_id == "BAAI/bge-m3" and revision == "main"
        if filename == "colbert_linear.pt":
            raise EntryNotFoundError("no such file")
        return str(m3_dir / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    assert flag_layout.resolve_file("BAAI/bge-m3", "sparse_linear.pt", "main") == m3_dir / "sparse_linear.pt"
    assert flag_layout.resolve_file("BAAI/bge-m3", "colbert_linear.pt", "main") is None


def test_forward_scores_equal_scores_recomputed_from_encodings(m3_dir):
    model = Embedder.from_pretrained(m3_dir).eval()
    queries, passages = TEXTS[:2], TEXTS
    tok = model.tokenizer
    q = dict(tok(queries, padding=True, return_tensors="pt"))
    p = dict(tok(passages, padding=True, return_tensors="pt"))
    with torch.no_grad():
        scores = model(q, p)
    eq, ep = model.encode(queries), model.encode(passages)
    np.testing.assert_allclose(scores["dense"].numpy(), eq["dense"] @ ep["dense"].T, atol=1e-5)
    lexical = [[sum(w * b[t] for t, w in a.items() if t in b) for b in ep["sparse"]] for a in eq["sparse"]]
    np.testing.assert_allclose(scores["sparse"].numpy(), lexical, atol=1e-5)
    colbert = [[float((qv @ pv.T).max(1).mean()) for pv in ep["colbert"]] for qv in eq["colbert"]]
    np.testing.assert_allclose(scores["colbert"].numpy(), colbert, atol=1e-5)


def test_encode_outputs_input_order_special_tokens_and_truncation(m3_dir):
    model = Embedder.from_pretrained(m3_dir)
    batched = model.encode(TEXTS, batch_size=2, max_length=8)
    one_by_one = [model.encode([t], batch_size=1, max_length=8) for t in TEXTS]
    for i, single in enumerate(one_by_one):
        np.testing.assert_allclose(batched["dense"][i], single["dense"][0], atol=1e-5)
        assert batched["sparse"][i].keys() == single["sparse"][0].keys()
        assert batched["colbert"][i].shape == single["colbert"][0].shape
    ids = model.tokenizer(TEXTS, truncation=True, max_length=8)["input_ids"]
    special = {str(i) for i in model.tokenizer.all_special_ids}
    for row_ids, sparse, colbert in zip(ids, batched["sparse"], batched["colbert"]):
        assert not special & sparse.keys()
        assert set(sparse) <= {str(i) for i in row_ids} and all(w > 0 for w in sparse.values())
        assert colbert.shape[0] == len(row_ids) - 1 <= 7  # every token but CLS
    assert batched["dense"].dtype == np.float32 and batched["dense"].shape == (len(TEXTS), 32)
    only_dense = model.encode(TEXTS[:2], heads=["dense"])
    assert set(only_dense) == {"dense"}


def test_bert_tokenizer_without_eos_works(tiny_bert_dir):
    model = load(tiny_bert_dir)
    assert model.tokenizer.eos_token_id is None
    out = model.encode(["北京 is the capital", "hello"])
    cls_sep_pad = {str(model.tokenizer.cls_token_id), str(model.tokenizer.sep_token_id),
                   str(model.tokenizer.pad_token_id)}
    assert all(not cls_sep_pad & s.keys() for s in out["sparse"])
    tok = model.tokenizer
    scores = model(dict(tok(["capital"], return_tensors="pt")), dict(tok(["a", "b c"], padding=True,
                                                                         return_tensors="pt")))
    assert {k: tuple(v.shape) for k, v in scores.items()} == {"dense": (1, 2), "sparse": (1, 2), "colbert": (1, 2)}


def test_training_step_with_gradient_checkpointing_reaches_every_head(m3_dir, bgekit_pm):
    model = Embedder.from_pretrained(m3_dir)
    model.gradient_checkpointing_enable()
    model.train()
    tok = model.tokenizer
    q = dict(tok(TEXTS[:2], padding=True, return_tensors="pt"))
    p = dict(tok(TEXTS[:4], padding=True, return_tensors="pt"))
    loss_fn = bgekit_pm.registry.get("loss", "m3-unified").create()
    out = loss_fn(model(q, p), torch.tensor([0, 2]), 2)
    out.loss.backward()
    assert model.heads["sparse"].linear.weight.grad is not None
    assert model.heads["colbert"].linear.weight.grad is not None
    assert model.encoder.embeddings.word_embeddings.weight.grad is not None
    assert all(p.grad is None for p in model.encoder.pooler.parameters())  # unused, frozen


def test_bad_head_configurations_are_clear_errors(tiny_model_dir, m3_dir):
    with pytest.raises(BgekitError, match="did you mean 'dense'"):
        load(tiny_model_dir, heads=[{"name": "dens"}])
    with pytest.raises(BgekitError, match="pooling"):
        load(tiny_model_dir, heads=[{"name": "dense", "pooling": "max"}])
    with pytest.raises(BgekitError, match="listed twice"):
        load(tiny_model_dir, heads=[{"name": "dense"}, {"name": "dense"}])
    with pytest.raises(BgekitError, match="colbert_dim"):
        load(m3_dir, heads=[{"name": "colbert", "colbert_dim": 8}])


def test_dense_only_fine_tune_keeps_the_source_models_other_head_files(m3_dir, tmp_path):
    """Training only the dense head of BGE-M3 must still save a directory BGEM3FlagModel opens whole."""
    dense_only = Embedder.from_pretrained(m3_dir, heads=[{"name": "dense"}])
    out = tmp_path / "dense-only"
    dense_only.save_pretrained(out)
    for filename in ("sparse_linear.pt", "colbert_linear.pt"):
        assert (out / filename).read_bytes() == (m3_dir / filename).read_bytes()
    assert [h["name"] for h in json.loads((out / flag_layout.HEADS_FILE).read_text())] == ["dense"]


def test_sentence_transformers_pooling_config_decides_dense_pooling(tiny_model_dir, tmp_path):
    """A plain sentence-transformers directory is evaluated with the pooling it was trained with."""
    assert Embedder.from_pretrained(tiny_model_dir).head_configs[0]["pooling"] == "cls"
    st_dir = tmp_path / "st-model"
    shutil.copytree(tiny_model_dir, st_dir)
    (st_dir / "1_Pooling").mkdir()
    (st_dir / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}))
    model = Embedder.from_pretrained(st_dir)
    assert model.head_configs[0]["pooling"] == "mean"
    mask = torch.tensor([[1, 1, 1, 0]])
    hidden = torch.arange(8, dtype=torch.float32).reshape(1, 4, 2)
    expected = torch.nn.functional.normalize(hidden[:, :3].mean(dim=1), dim=-1)
    from bgekit.models.head import TokenBatch

    batch = TokenBatch(input_ids=torch.zeros_like(mask), attention_mask=mask, lexical_mask=mask.bool())
    torch.testing.assert_close(model.heads["dense"].represent(hidden, batch), expected)
