"""The cross-encoder: FlagEmbedding-style pair budgets, scoring order, and a portable saved directory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bgekit.errors import BgekitError
from bgekit.models.cross_encoder import CrossEncoder
from bgekit.testing import tiny_cross_encoder, tiny_encoder

QUERY = "What is the capital of China?"
PASSAGE = "Beijing is the capital of the People's Republic of China."
LONG_QUERY = " ".join(["北京是中华人民共和国的首都，也是全国的政治和文化中心。"] * 4)
LONG_PASSAGE = " ".join(["长江是中国最长的河流，全长约六千三百公里。"] * 6)
PAIRS = [(QUERY, PASSAGE), (LONG_QUERY, LONG_PASSAGE), ("长江有多长？", "长江全长约六千三百公里。"),
         (QUERY, LONG_PASSAGE), ("", PASSAGE)]


@pytest.fixture(scope="module", params=["xlm-roberta", "bert"])
def reranker_dir(request, tmp_path_factory):
    return tiny_cross_encoder(tmp_path_factory.mktemp(f"ce-{request.param}"), arch=request.param)


def test_short_pair_is_exactly_the_tokenizers_own_pair_encoding(reranker_dir):
    model = CrossEncoder.from_pretrained(reranker_dir, max_length=128)
    [row] = model.tokenize_pairs([QUERY], [PASSAGE])
    reference = model.tokenizer(QUERY, PASSAGE)
    assert row == {k: reference[k] for k in row}
    assert set(row) == set(reference)


def test_query_keeps_its_budget_and_the_passage_takes_the_rest(reranker_dir):
    model = CrossEncoder.from_pretrained(reranker_dir, max_length=48, query_max_length=12)
    tok = model.tokenizer
    query_ids = tok(LONG_QUERY, add_special_tokens=False)["input_ids"]
    passage_ids = tok(LONG_PASSAGE, add_special_tokens=False)["input_ids"]
    assert len(query_ids) > 12 and len(passage_ids) > 48  # both really need cutting
    [row] = model.tokenize_pairs([LONG_QUERY], [LONG_PASSAGE])
    assert len(row["input_ids"]) == 48
    room = 48 - tok.num_special_tokens_to_add(pair=True) - 12
    prefix, middle, suffix = _pair_template(tok)
    assert row["input_ids"] == prefix + query_ids[:12] + middle + passage_ids[:room] + suffix
    # a short query leaves the passage more room, up to max_length
    [short] = model.tokenize_pairs(["长江"], [LONG_PASSAGE])
    assert len(short["input_ids"]) == 48


def _pair_template(tok):
    """The special tokens before, between and after a pair, read off the tokenizer's own pair encoding."""
    pair = tok(QUERY, PASSAGE)["input_ids"]
    q = tok(QUERY, add_special_tokens=False)["input_ids"]
    p = tok(PASSAGE, add_special_tokens=False)["input_ids"]
    start = next(i for i in range(len(pair)) if pair[i:i + len(q)] == q)
    after_q = start + len(q)
    p_start = next(i for i in range(after_q, len(pair)) if pair[i:i + len(p)] == p)
    return pair[:start], pair[after_q:p_start], pair[p_start + len(p):]


def test_query_budget_that_leaves_no_room_is_refused(reranker_dir):
    model = CrossEncoder.from_pretrained(reranker_dir, max_length=16, query_max_length=14)
    with pytest.raises(BgekitError, match="no room for the passage"):
        model.tokenize_pairs([QUERY], [PASSAGE])


def test_scores_come_back_in_input_order_and_match_the_plain_classifier(reranker_dir):
    from transformers import AutoModelForSequenceClassification

    model = CrossEncoder.from_pretrained(reranker_dir, max_length=64)
    scores = model.score(PAIRS, batch_size=2)  # sorted by length inside, several batches
    plain = AutoModelForSequenceClassification.from_pretrained(reranker_dir).eval()
    rows = model.tokenize_pairs([q for q, _ in PAIRS], [p for _, p in PAIRS])
    with torch.no_grad():
        one_by_one = [plain(**{k: torch.tensor([v]) for k, v in row.items()}).logits.item() for row in rows]
    np.testing.assert_allclose(scores, one_by_one, atol=1e-5)
    assert len(set(np.round(scores, 6))) > 1  # the pairs really differ
    np.testing.assert_allclose(model.score(PAIRS, normalize=True), 1 / (1 + np.exp(-scores)), atol=1e-6)


def test_saved_directory_reloads_with_transformers_and_a_v4_tokenizer_class(reranker_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = CrossEncoder.from_pretrained(reranker_dir, max_length=64)
    with torch.no_grad():
        model.model.classifier.weight.add_(0.5) if hasattr(model.model.classifier, "weight") else \
            model.model.classifier.out_proj.weight.add_(0.5)  # differ from the source directory
    before = model.score(PAIRS)
    model.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "model.safetensors").is_file()
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] != "TokenizersBackend"  # transformers 4 knows this class name
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    assert reloaded.config.num_labels == 1
    np.testing.assert_allclose(CrossEncoder.from_pretrained(tmp_path / "saved", max_length=64).score(PAIRS),
                               before, atol=1e-6)


def test_plain_encoder_gets_a_one_logit_head(tmp_path):
    model = CrossEncoder.from_pretrained(tiny_encoder(tmp_path / "enc"))
    assert model.model.config.num_labels == 1
    assert model.score([(QUERY, PASSAGE)]).shape == (1,)


def test_two_label_classifier_is_not_a_reranker(tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = tiny_encoder(tmp_path / "enc")
    AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(path, num_labels=2)).save_pretrained(path)
    with pytest.raises(BgekitError, match="2 labels"):
        CrossEncoder.from_pretrained(path)


def test_sentence_transformers_cross_encoder_scores_a_saved_reranker_the_same(reranker_dir, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    model = CrossEncoder.from_pretrained(reranker_dir, max_length=64)
    model.save_pretrained(tmp_path / "saved")
    pairs = [(QUERY, PASSAGE), ("长江有多长？", "长江全长约六千三百公里。"), (QUERY, "红楼梦的作者是曹雪芹。")]
    ours = model.score(pairs)
    theirs = st.CrossEncoder(str(tmp_path / "saved"), max_length=64, device="cpu")
    raw = theirs.predict([list(p) for p in pairs], activation_fn=torch.nn.Identity())
    np.testing.assert_allclose(raw, ours, atol=1e-4)
    # its default for one-label models is a sigmoid: bgekit's normalize
    np.testing.assert_allclose(theirs.predict([list(p) for p in pairs]), model.score(pairs, normalize=True), atol=1e-4)
