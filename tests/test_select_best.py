"""``train.select_best``: the saved best model is the one whose evaluation scored highest."""

from __future__ import annotations

import json
import random
import types
import warnings
from pathlib import Path

import pytest

import bgekit
from bgekit.devices import select_backend
from bgekit.errors import BgekitError
from bgekit.testing import TRAINING_TEXT, registered_plugin, tiny_encoder
from bgekit.train import embedder_task
from bgekit.train.best import BestModel, check_select_best

SENTENCES = sorted(set(TRAINING_TEXT))


@pytest.fixture(scope="module")
def spread_model_dir(tmp_path_factory):
    """A tiny dense encoder with widely spread weights, so rankings (and metrics) move as it trains."""
    import torch

    from bgekit.models import Embedder

    root = tmp_path_factory.mktemp("best")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Embedder.from_pretrained(str(tiny_encoder(root / "encoder")), heads=[{"name": "dense"}])
    torch.manual_seed(0)
    for param in model.encoder.parameters():
        if param.dim() == 2:
            torch.nn.init.normal_(param, std=0.5)
    model.save_pretrained(root / "model")
    return root / "model"


def write_beir(root: Path) -> dict[str, str]:
    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    docs = {f"d{i}": f"{' '.join(rng.sample(SENTENCES, 2))} {i}" for i in range(24)}
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for doc_id, text in docs.items():
            fh.write(json.dumps({"_id": doc_id, "text": text}, ensure_ascii=False) + "\n")
    with open(root / "queries.jsonl", "w", encoding="utf-8") as q, open(root / "qrels.tsv", "w") as r:
        for i in range(8):
            doc_id = f"d{i}"
            q.write(json.dumps({"_id": f"q{i}", "text": docs[doc_id].split(" ")[0][:12]}, ensure_ascii=False) + "\n")
            r.write(f"q{i}\t{doc_id}\t1\n")
    return docs


def test_best_model_is_the_highest_evaluation_and_model_stays_the_last(tmp_path, spread_model_dir, bgekit_pm):
    from bgekit.evaluate.retrieval import evaluate_embedder, load_embedder

    docs = write_beir(tmp_path / "beir")
    rows = [{"query": docs[f"d{i}"][:10], "pos": [docs[f"d{i}"]], "neg": [docs[f"d{(i + 5) % 24}"]]}
            for i in range(8, 24)]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    evaluate = {"corpus": str(tmp_path / "beir/corpus.jsonl"), "queries": str(tmp_path / "beir/queries.jsonl"),
                "qrels": str(tmp_path / "beir/qrels.tsv"), "metrics": ["ndcg@10", "mrr@10"], "top_k": 10,
                "every_steps": 1}
    values = {"task": "embedder", "output_dir": str(tmp_path / "out"), "seed": 3,
              "model": {"name_or_path": str(spread_model_dir), "query_max_length": 16, "passage_max_length": 32},
              "data": {"train": str(tmp_path / "train.jsonl"), "group_size": 2},
              "train": {"dtype": "fp32", "max_steps": 5, "batch_size": 4, "learning_rate": 3e-3,
                        "warmup_ratio": 0.0, "logging_steps": 1, "select_best": "ndcg@10"},
              "evaluate": evaluate, "callbacks": []}
    recipe = types.SimpleNamespace(values=values, save=lambda out: None)
    seen: list[tuple[int, float]] = []

    class Recorder:
        @bgekit.hookimpl
        def bgekit_on_evaluate_end(self, run, step, metrics):
            seen.append((step, metrics["ndcg@10"]))

    with registered_plugin(Recorder(), name="recorder", pm=bgekit_pm):
        summary = embedder_task.run(recipe, select_backend(bgekit_pm.registry, "cpu"), show_progress=False)

    assert [s for s, _ in seen] == [1, 2, 3, 4, 5, 5]  # every step, then the end-of-run evaluation
    values_seen = [v for _, v in seen]
    assert len(set(values_seen)) > 1, "the metric never moved; the test would prove nothing"
    best_index = max(range(len(seen)), key=lambda i: (values_seen[i], -i))  # first of equal values wins
    record = json.loads((tmp_path / "out" / "best.json").read_text())
    assert (record["step"], record["value"], record["metric"]) == (seen[best_index][0], values_seen[best_index], "ndcg@10")
    assert summary["best_step"] == record["step"] and summary["best_dir"] == str(tmp_path / "out" / "best")

    def ndcg_of(folder: Path) -> float:
        model = load_embedder(folder, "cpu")
        model.query_max_length, model.passage_max_length = 16, 32  # as the recipe trained and evaluated it
        return evaluate_embedder(model, evaluate["corpus"], evaluate["queries"],
                                 evaluate["qrels"], metrics=["ndcg@10"], top_k=10)["ndcg@10"]

    # the saved folders hold the weights that produced those numbers
    assert ndcg_of(tmp_path / "out" / "best") == pytest.approx(record["value"], abs=1e-6)
    assert ndcg_of(tmp_path / "out" / "model") == pytest.approx(values_seen[-1], abs=1e-6)
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp-" in p.name]

    # the base model was scored before the first step, and the summary compares it with the fine-tuned one
    base = json.loads((tmp_path / "out" / "eval" / "base" / "metrics.json").read_text())["metrics"]
    assert base["ndcg@10"] == pytest.approx(ndcg_of(spread_model_dir), abs=1e-6)
    final = json.loads((tmp_path / "out" / "eval" / "final" / "metrics.json").read_text())["metrics"]
    assert final["ndcg@10"] == pytest.approx(values_seen[-1], abs=1e-6)
    rows = {row["metric"]: row for row in summary["eval_vs_base"]["metrics"]}
    assert rows["ndcg@10"]["baseline"] == pytest.approx(base["ndcg@10"])
    assert rows["ndcg@10"]["delta"] == pytest.approx(final["ndcg@10"] - base["ndcg@10"])
    assert rows["ndcg@10"]["ci_low"] <= rows["ndcg@10"]["delta"] <= rows["ndcg@10"]["ci_high"]
    # both saved folders carry a model card naming the base model; the last model's has before/after
    card = (tmp_path / "out" / "model" / "README.md").read_text(encoding="utf-8")
    assert f"base_model: {spread_model_dir}" in card or str(spread_model_dir) in card
    assert f"{base['ndcg@10']:.4f}" in card and f"{final['ndcg@10']:.4f}" in card
    assert (tmp_path / "out" / "best" / "README.md").is_file()


class FakeModel:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def save_pretrained(self, folder: Path) -> None:
        Path(folder).mkdir(parents=True)
        (Path(folder) / "tag").write_text(self.tag)


def test_only_improvements_replace_best_and_a_resumed_run_remembers(tmp_path):
    save = lambda model, folder: model.save_pretrained(folder)  # noqa: E731
    best = BestModel(tmp_path, "ndcg@10", save)
    assert [best.offer(s, {"ndcg@10": v}, FakeModel(f"s{s}")) for s, v in [(1, 0.3), (2, 0.5), (3, 0.5), (4, 0.4)]] \
        == [True, True, False, False]
    assert (tmp_path / "best" / "tag").read_text() == "s2"
    again = BestModel(tmp_path, "ndcg@10", save)  # a resumed run
    assert (again.step, again.value) == (2, 0.5)
    assert not again.offer(5, {"ndcg@10": 0.45}, FakeModel("s5"))
    assert again.offer(6, {"ndcg@10": 0.6}, FakeModel("s6"))
    assert (tmp_path / "best" / "tag").read_text() == "s6"
    assert json.loads((tmp_path / "best.json").read_text())["step"] == 6
    with pytest.raises(BgekitError, match="returned no ndcg@10"):
        again.offer(7, {"mrr@10": 1.0}, FakeModel("s7"))


def test_select_best_needs_evaluation_data_with_that_metric():
    with pytest.raises(BgekitError, match="needs held-out data; set evaluate.corpus"):
        check_select_best("ndcg@10", {})
    with pytest.raises(BgekitError, match="not among evaluate.metrics"):
        check_select_best("ndcg@10", {"corpus": "c.jsonl", "metrics": ["mrr@10"]})
    check_select_best(None, {})
    check_select_best("ndcg@10", {"corpus": "c.jsonl", "metrics": ["ndcg@10"]})
