"""``task: evaluate`` from a recipe gives what ``bgekit eval retriever`` gives on the same data."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from bgekit.commands.eval import eval_group
from bgekit.devices import select_backend
from bgekit.errors import BgekitError
from bgekit.recipe import load_recipe
from bgekit.tasks import run_task
from bgekit.testing import TRAINING_TEXT

DOCS = sorted(set(TRAINING_TEXT))[:12]


@pytest.fixture
def beir(tmp_path):
    with open(tmp_path / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for i, text in enumerate(DOCS):
            fh.write(json.dumps({"_id": f"d{i}", "text": text}, ensure_ascii=False) + "\n")
    with open(tmp_path / "queries.jsonl", "w", encoding="utf-8") as fh:
        for i in range(4):
            fh.write(json.dumps({"_id": f"q{i}", "text": DOCS[i * 2][:12]}, ensure_ascii=False) + "\n")
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                        "".join(f"q{i}\td{i * 2}\t1\nq{i}\td{i * 2 + 1}\t2\n" for i in range(4)))
    return tmp_path


def write_recipe(path, values):
    path.write_text(yaml.safe_dump(values, allow_unicode=True))
    return path


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_task_evaluate_equals_eval_retriever(beir, tiny_m3_dir, bgekit_pm, mode):
    metrics = ["ndcg@10", "recall@5", "map"]
    recipe = write_recipe(beir / "recipe.yaml", {
        "task": "evaluate", "output_dir": str(beir / "from-recipe"),
        "model": {"name_or_path": str(tiny_m3_dir)},
        "evaluate": {"corpus": str(beir / "corpus.jsonl"), "queries": str(beir / "queries.jsonl"),
                     "qrels": str(beir / "qrels.tsv"), "metrics": metrics, "mode": mode, "top_k": 8,
                     "batch_size": 4},
    })
    summary = run_task(load_recipe(recipe), select_backend(bgekit_pm.registry, "cpu"))

    result = CliRunner().invoke(eval_group, [
        "retriever", "--model", str(tiny_m3_dir), "--corpus", str(beir / "corpus.jsonl"),
        "--queries", str(beir / "queries.jsonl"), "--qrels", str(beir / "qrels.tsv"),
        "--metrics", ",".join(metrics), "--mode", mode, "--top-k", "8", "--batch-size", "4",
        "--device", "cpu", "--output", str(beir / "from-command"), "--json"])
    assert result.exit_code == 0, result.output

    ours = json.loads((beir / "from-recipe" / "metrics.json").read_text())
    theirs = json.loads((beir / "from-command" / "metrics.json").read_text())
    assert set(ours["metrics"]) == set(metrics)
    assert ours["metrics"] == theirs["metrics"]
    assert summary["metrics"] == pytest.approx(theirs["metrics"])
    for name in ("run.trec", "per_query.jsonl"):
        assert (beir / "from-recipe" / name).read_text() == (beir / "from-command" / name).read_text(), name
    assert len((beir / "from-recipe" / "run.trec").read_text().splitlines()) == 4 * 8


def test_task_evaluate_without_eval_files_says_which(beir, tiny_m3_dir, bgekit_pm):
    recipe = write_recipe(beir / "recipe.yaml", {
        "task": "evaluate", "output_dir": str(beir / "out"), "model": {"name_or_path": str(tiny_m3_dir)},
        "evaluate": {"corpus": str(beir / "corpus.jsonl")},
    })
    with pytest.raises(BgekitError, match=r"evaluate\.queries, evaluate\.qrels"):
        run_task(load_recipe(recipe), select_backend(bgekit_pm.registry, "cpu"))
    assert not (beir / "out").exists()  # a failed run leaves nothing behind


@pytest.fixture(scope="module")
def tiny_m3_dir(tmp_path_factory):
    """A tiny embedder with all three heads, saved as a model folder."""
    import warnings

    from bgekit.models import Embedder
    from bgekit.testing import tiny_encoder

    root = tmp_path_factory.mktemp("m3-eval-task")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the heads start random, on purpose
        model = Embedder.from_pretrained(str(tiny_encoder(root / "encoder")),
                                         heads=[{"name": "dense"}, {"name": "sparse"}, {"name": "colbert"}])
    model.save_pretrained(root / "m3")
    return root / "m3"
