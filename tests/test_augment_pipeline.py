"""The shipped recipe augment -> mine -> train -> evaluate runs offline against the loopback mock server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bgekit.augment.mock_server import MockChatServer
from bgekit.devices import select_backend
from bgekit.errors import BgekitError
from bgekit.recipe import load_recipe
from bgekit.tasks import run_task

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "augment-pipeline.yaml"
TOPICS = ["lighthouse", "orchard", "glacier", "bakery", "volcano", "library", "harbour", "meadow"]


@pytest.fixture
def book(tmp_path):
    passages = [{"id": f"p{i}", "text": f"The {t} in chapter {i} is described at length, with its keeper and "
                                       f"the people who visit the {t} every season."} for i, t in enumerate(TOPICS)]
    (tmp_path / "passages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in passages))
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps({"id": p["id"], "text": p["text"]}) + "\n"
                                                   for p in passages))
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "text": f"who visits the {t}"}) + "\n"
                                                    for i, t in enumerate(TOPICS[:3])))
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\tp{i}\t1\n" for i in range(3)))
    return tmp_path


def overrides(book: Path, url: str, model: Path) -> list[str]:
    return [f"output_dir={book / 'run'}", f"model.name_or_path={model}", "model.query_max_length=16",
            "model.passage_max_length=32", f"augment.input={book / 'passages.jsonl'}", f"augment.base_url={url}",
            "augment.model=mock-llm", "augment.filters.top_k=8",  # a tiny random model cannot rank: keep all
            "miner.range=[0, 8]", "miner.num_negatives=3", f"miner.corpus={book / 'passages.jsonl'}",
            "data.group_size=2", "train.max_steps=2", "train.batch_size=4", "train.gradient_checkpointing=false",
            "train.logging_steps=1", "train.dtype=fp32", f"evaluate.corpus={book / 'corpus.jsonl'}",
            f"evaluate.queries={book / 'queries.jsonl'}", f"evaluate.qrels={book / 'qrels.tsv'}",
            "evaluate.top_k=5", "evaluate.metrics=[ndcg@10]", "device.name=cpu"]


def test_the_augment_pipeline_recipe_runs_end_to_end_and_a_rerun_sends_nothing(book, tiny_model_dir, bgekit_pm,
                                                                              monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-pipeline-test")
    backend = select_backend(bgekit_pm.registry, "cpu")
    with MockChatServer() as server:
        recipe = load_recipe(RECIPE, overrides(book, server.url, tiny_model_dir))
        first = run_task(recipe, backend)
        sent = len(server.requests)
        second = run_task(load_recipe(RECIPE, overrides(book, server.url, tiny_model_dir)), backend)
        assert len(server.requests) == sent, "the re-run asked the server again"
    out = book / "run"
    assert sent == len(TOPICS) and [s for s in first["steps"]] == ["augment", "mine", "train", "evaluate"]
    assert not any(step["skipped"] for step in first["steps"].values())
    assert all(step["skipped"] for step in second["steps"].values())
    augmented = [json.loads(x) for x in (out / "augmented.jsonl").read_text().splitlines()]
    summary = json.loads((out / "augmented.augment.json").read_text())
    # the mock's third query per passage ("what about described at length with?") is the same for all eight
    assert summary["generated"] == 3 * len(TOPICS) and summary["removed"]["duplicate"] == len(TOPICS) - 1
    assert len(augmented) == summary["written"] == 2 * len(TOPICS) + 1
    assert {r["passage_id"] for r in augmented} == {f"p{i}" for i in range(8)}
    mined = [json.loads(x) for x in (out / "mined.jsonl").read_text().splitlines()]
    assert len(mined) == len(augmented) and all(len(r["neg"]) == 3 and r["augment"]["method"] == "queries"
                                                for r in mined)
    assert (out / "model" / "model.safetensors").is_file()
    metrics = json.loads((out / "eval" / "metrics.json").read_text())["metrics"]
    assert 0.0 <= metrics["ndcg@10"] <= 1.0
    assert summary["filters"]["roundtrip"]["model"] == str(tiny_model_dir)
    assert "sk-pipeline-test" not in (out / "resolved_recipe.yaml").read_text()


def test_an_augment_step_without_its_section_is_a_clear_error(book, tiny_model_dir, bgekit_pm):
    backend = select_backend(bgekit_pm.registry, "cpu")
    recipe = load_recipe(RECIPE, overrides(book, "http://127.0.0.1:9/v1", tiny_model_dir) + ["~augment"])
    with pytest.raises(BgekitError, match="augment: needs augment.input, augment.base_url, augment.model"):
        run_task(recipe, backend)
