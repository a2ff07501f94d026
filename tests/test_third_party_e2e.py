"""A third party's plugins, one per kind, written with `bgekit plugins new`, filled in with only
``bgekit.api``, pip-installed, and used by real ``bgekit`` runs end to end.

One package per kind (ten) is generated and all are installed with one ``pip install --target``
(entry points are found by ``importlib.metadata`` through ``PYTHONPATH``, as for any installed
distribution). Most keep the small implementation the generator writes; the callback and the augmenter
are filled in here, and the head's hybrid weight is changed. Then:

- ``bgekit mine`` reads a file in the plugin format with the plugin miner on the plugin device;
- one recipe runs augment -> mine -> train -> evaluate on the plugin device: the plugin augmenter
  writes queries (against the loopback mock chat server), the plugin miner mines, the plugin loss
  trains the plugin head, the plugin metric is reported, the plugin callback sees every event;
- the plugin head is searched by ``bgekit eval`` and ``bgekit mine``, alone and in a hybrid;
- a recipe sets the plugin format's parameters (``data.format: {name, separator}``).
- the plugin task runs from a recipe with its own section; the plugin command is listed and runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bgekit.augment.mock_server import MockChatServer
from bgekit.commands.plugins import plugins
from bgekit.plugin_templates import KIND_NAMES, package_name
from conftest import _run_bgekit as run_bgekit  # module-scoped fixtures cannot use the run_bgekit fixture
from test_public_api import internal_imports

#: component names (also distribution names): the device is the "fake-cpu" backend recipes select
NAMES = {kind: f"e2e-{kind}" for kind in KIND_NAMES} | {"device": "fake-cpu"}

CALLBACK = '''"""Filled in: every lifecycle event as one JSON line in the output folder."""

import json
from pathlib import Path

from bgekit.api import hookimpl


class EventRecorder:
    def __init__(self, filename: str = "events.jsonl") -> None:
        self.filename = filename

    def _write(self, run, **event):
        if run.is_main_process:
            with open(Path(run.output_dir) / self.filename, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(event, default=str) + "\\n")

    @hookimpl
    def bgekit_on_run_start(self, run):
        self._write(run, event="start", task=run.task)

    @hookimpl
    def bgekit_on_step_end(self, run, step, metrics):
        self._write(run, event="step", step=step, loss=metrics["loss"])

    @hookimpl
    def bgekit_on_evaluate_end(self, run, step, metrics):
        self._write(run, event="evaluate", step=step, metrics=metrics)

    @hookimpl
    def bgekit_on_checkpoint(self, run, step, path):
        self._write(run, event="checkpoint", step=step)

    @hookimpl
    def bgekit_on_run_end(self, run, status):
        self._write(run, event="end", status=status)
'''

AUGMENTER = '''"""Filled in: one question per passage, from the passage the chat model quotes back."""

from bgekit.api import Augmenter, Unusable, chat_messages, parse_reply_text, read_passage_items


class QuestionWriter(Augmenter):
    target = "query"

    def __init__(self, language: str = "en") -> None:
        self.language = language

    def read(self, path):
        return read_passage_items(path)

    def run(self, item, ask):
        prompt = f'Write one question in {self.language} that this passage answers.\\n"""\\n{item.text}\\n"""'
        return [ask(chat_messages(prompt), self.parse, expected_reply="what about it?")]

    def parse(self, reply):
        words = parse_reply_text(reply).split()
        if len(words) < 2:
            raise Unusable("expected the passage back")
        return "who visits the " + words[1] + "?"

    def output_language(self, item):
        return self.language

    def describe(self):
        return {"language": self.language}
'''

#: the generated head's weight in hybrids, changed so that the test sees it used
HEAD_WEIGHT = ("    hybrid_weight = 1.0", "    hybrid_weight = 0.5")

TOPICS = ["lighthouse", "orchard", "glacier", "bakery", "volcano", "library", "harbour", "meadow"]


def fill_in(root: Path) -> list[Path]:
    """Generate one package per kind with the real CLI, then fill in the callback, augmenter and head."""
    folders = []
    for kind in KIND_NAMES:
        folder = root / NAMES[kind]
        result = CliRunner().invoke(plugins, ["new", NAMES[kind], "--kind", kind, "--output", str(folder)])
        assert result.exit_code == 0, result.output
        folders.append(folder)
    callback = root / NAMES["callback"] / package_name(NAMES["callback"])
    (callback / "component.py").write_text(CALLBACK, encoding="utf-8")
    init = (callback / "__init__.py").read_text(encoding="utf-8")
    (callback / "__init__.py").write_text(init.replace("component:CsvLossLogger", "component:EventRecorder"))
    augmenter = root / NAMES["augmenter"] / package_name(NAMES["augmenter"])
    (augmenter / "component.py").write_text(AUGMENTER, encoding="utf-8")
    init = (augmenter / "__init__.py").read_text(encoding="utf-8")
    (augmenter / "__init__.py").write_text(init.replace("component:TitleWriter", "component:QuestionWriter"))
    head = root / NAMES["head"] / package_name(NAMES["head"]) / "component.py"
    source = head.read_text(encoding="utf-8")
    assert HEAD_WEIGHT[0] in source
    head.write_text(source.replace(*HEAD_WEIGHT), encoding="utf-8")
    return folders


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The environment of a `bgekit` process that has the generated packages installed."""
    sources = tmp_path_factory.mktemp("e2e-src")
    folders = fill_in(sources)
    for folder in folders:  # the packages, tests aside, use only the public API
        for module in (folder / package_name(folder.name)).glob("*.py"):
            assert not internal_imports(module), module
    target = tmp_path_factory.mktemp("e2e-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), *map(str, folders)], check=True, capture_output=True, text=True)
    return {**os.environ, "PYTHONPATH": str(target), "OPENAI_API_KEY": "sk-e2e"}


def bgekit(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_bgekit(*args, env=env, cwd=cwd)


def last_json(stdout: str):
    return json.loads(stdout[stdout.index("{"):])


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("e2e-book")
    passages = [{"id": f"p{i}", "text": f"The {t} in chapter {i} is described at length, with the people who "
                                       f"visit the {t} every season."} for i, t in enumerate(TOPICS)]
    (root / "passages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in passages))
    (root / "queries.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "text": f"who visits the {t}?"}) + "\n"
                                                for i, t in enumerate(TOPICS[:4])))
    (root / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\tp{i}\t1\n" for i in range(4)))
    pipe = [f"who visits the {t}? | {p['text']}" for t, p in zip(TOPICS, passages)]
    (root / "train.txt").write_text("\n".join(pipe) + "\n")
    (root / "train-semicolon.txt").write_text("\n".join(line.replace(" | ", " ; ") for line in pipe) + "\n")
    return root


@pytest.fixture(scope="module")
def pipeline(installed, book, tiny_model_dir) -> dict:
    """augment -> mine -> train -> evaluate, every step through a plugin, on the plugin device."""
    out = book / "run"
    recipe = {
        "task": "embedder", "output_dir": str(out), "seed": 3, "steps": ["augment", "mine", "train", "evaluate"],
        "device": {"name": "fake-cpu"},
        "model": {"name_or_path": str(tiny_model_dir), "heads": [{"name": "dense"}, {"name": "e2e-head"}],
                  "query_max_length": 16, "passage_max_length": 32},
        "augment": {"input": str(book / "passages.jsonl"), "method": {"name": "e2e-augmenter", "language": "en"},
                    "model": "mock-llm", "api_key_env": "OPENAI_API_KEY", "filters": {"roundtrip": False}},
        "data": {"group_size": 2},
        "miner": {"name": "e2e-miner", "lowercase": True, "range": [0, 8], "num_negatives": 1,
                  "corpus": str(book / "passages.jsonl")},
        "loss": {"name": "e2e-loss", "head": "e2e-head", "temperature": 0.1},
        "train": {"max_steps": 2, "batch_size": 4, "logging_steps": 1, "dtype": "fp32", "learning_rate": 1e-3},
        "evaluate": {"corpus": str(book / "passages.jsonl"), "queries": str(book / "queries.jsonl"),
                     "qrels": str(book / "qrels.tsv"), "metrics": ["e2e-metric@2", "e2e-metric", "ndcg@10"],
                     "top_k": 5},
        "callbacks": [{"name": "jsonl-logger"}, {"name": "e2e-callback", "filename": "events.jsonl"}],
    }
    path = book / "pipeline.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with MockChatServer() as server:
        done = bgekit(installed, "run", str(path), f"augment.base_url={server.url}", cwd=book)
        requests = len(server.requests)
    assert done.returncode == 0, done.stderr[-4000:]
    return {"out": out, "summary": last_json(done.stdout), "stderr": done.stderr, "requests": requests}


def test_plugin_format_miner_and_device_in_bgekit_mine(installed, book):
    out = book / "mined-cli.jsonl"
    done = bgekit(installed, "mine", "--input", str(book / "train.txt"), "--format", "e2e-format",
                  "--miner", "e2e-miner", "--param", "lowercase=false", "--corpus", str(book / "passages.jsonl"),
                  "--range", "0-8", "--num-negatives", "2", "--scores", "--device", "fake-cpu", "--output", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(TOPICS)
    assert rows[0]["query"] == "who visits the lighthouse?" and rows[0]["pos"][0].startswith("The lighthouse")
    for row in rows:  # the miner's scores: words shared with the query, so the positive scores highest
        assert len(row["neg"]) == 2 and row["pos_scores"][0] >= max(row["neg_scores"])


def test_plugin_device_is_selected(pipeline):
    assert pipeline["summary"]["steps"]["train"]["device"] == "fake-cpu"


def test_plugin_augmenter_writes_the_queries(pipeline):
    augmented = [json.loads(line) for line in (pipeline["out"] / "augmented.jsonl").read_text().splitlines()]
    assert pipeline["requests"] == len(TOPICS)
    assert sorted(row["query"] for row in augmented) == sorted(f"who visits the {t}?" for t in TOPICS)
    assert all(row["augment"]["method"] == "e2e-augmenter" for row in augmented)


def test_plugin_miner_mines(pipeline):
    mined = [json.loads(line) for line in (pipeline["out"] / "mined.jsonl").read_text().splitlines()]
    assert len(mined) == len(TOPICS) and all(len(row["neg"]) == 1 for row in mined)
    assert json.loads((pipeline["out"] / "mine.done.json").read_text())["summary"]


def test_plugin_loss_trains_the_plugin_head(pipeline):
    logged = [json.loads(line) for line in (pipeline["out"] / "metrics.jsonl").read_text().splitlines()]
    steps = [row for row in logged if row["event"] == "train"]
    assert [row["step"] for row in steps] == [1, 2]
    assert all(row["e2e-loss"] == pytest.approx(row["loss"]) for row in steps)  # the only loss part
    saved = json.loads((pipeline["out"] / "model" / "bgekit_heads.json").read_text())
    assert [head["name"] for head in saved] == ["dense", "e2e-head"]  # the trained model keeps the plugin head


def test_plugin_metric_is_reported(pipeline):
    metrics = json.loads((pipeline["out"] / "eval" / "metrics.json").read_text())["metrics"]
    assert set(metrics) >= {"e2e-metric@2", "e2e-metric", "ndcg@10"}
    per_query = [json.loads(line)["metrics"]
                 for line in (pipeline["out"] / "eval" / "final" / "per_query.jsonl").read_text().splitlines()]
    assert len(per_query) == 4
    for values in per_query:  # one relevant passage per query: where ndcg@10 puts it says what e2e-metric counts
        assert values["e2e-metric@2"] == (1.0 if values["ndcg@10"] > 0.63 else 0.0)  # rank 2: 1/log2(3) = 0.631
        assert values["e2e-metric"] == (1.0 if values["ndcg@10"] > 0 else 0.0)  # anywhere in the top 5
    assert metrics["e2e-metric@2"] == pytest.approx(sum(v["e2e-metric@2"] for v in per_query) / 4)


def test_plugin_callback_receives_every_event(pipeline):
    events = [json.loads(line) for line in (pipeline["out"] / "events.jsonl").read_text().splitlines()]
    kinds = [event["event"] for event in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and events[-1]["status"] == "ok"
    assert kinds.count("step") == 2 and kinds.count("checkpoint") == 1 and events[0]["task"] == "embedder"
    [evaluated] = [event for event in events if event["event"] == "evaluate"]
    assert set(evaluated["metrics"]) == {"e2e-metric@2", "e2e-metric", "ndcg@10"}


def test_plugin_format_reads_with_recipe_set_parameters(installed, book, tiny_model_dir):
    recipe = {
        "task": "embedder", "output_dir": str(book / "format-run"), "device": {"name": "fake-cpu"},
        "model": {"name_or_path": str(tiny_model_dir), "query_max_length": 16, "passage_max_length": 32},
        "data": {"train": str(book / "train-semicolon.txt"), "group_size": 1,
                 "format": {"name": "e2e-format", "separator": " ; "}},
        "loss": {"name": "e2e-loss"},
        "train": {"max_steps": 1, "batch_size": 4, "dtype": "fp32"},
    }
    path = book / "format.yaml"
    path.write_text(yaml.safe_dump(recipe))
    done = bgekit(installed, "run", str(path))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = last_json(done.stdout)
    assert summary["examples"] == len(TOPICS) and summary["skipped_rows"] == 0


def trec_scores(path: Path) -> dict[tuple[str, str], float]:
    rows = [line.split() for line in path.read_text().splitlines()]
    return {(qid, doc): float(score) for qid, _, doc, _, score, _ in rows}


def test_plugin_head_is_evaluated_alone_and_in_a_hybrid(installed, book, pipeline):
    model = str(pipeline["out"] / "model")
    data = ["--corpus", str(book / "passages.jsonl"), "--queries", str(book / "queries.jsonl"),
            "--qrels", str(book / "qrels.tsv"), "--top-k", "8", "--device", "fake-cpu"]
    runs = {}
    for mode in ("e2e-head", "hybrid", "dense"):
        done = bgekit(installed, "eval", "retriever", "--model", model, "--mode", mode, *data,
                      "--metrics", "e2e-metric@2,ndcg@10", "--output", str(book / f"eval-{mode}"), "--json")
        assert done.returncode == 0, (mode, done.stderr[-3000:])
        assert set(last_json(done.stdout)["metrics"]) == {"e2e-metric@2", "ndcg@10"}
        runs[mode] = trec_scores(book / f"eval-{mode}" / "run.trec")
    pair = next(iter(runs["dense"]))
    assert runs["e2e-head"][pair] != pytest.approx(runs["dense"][pair])  # its own scores
    # the hybrid adds the plugin head's scores (its hybrid_weight, 0.5) to the dense ones (weight 1, as in M3)
    assert runs["hybrid"][pair] == pytest.approx(runs["dense"][pair] + 0.5 * runs["e2e-head"][pair], rel=1e-4)


def test_plugin_head_is_mined_with_alone_and_in_a_hybrid(installed, book, pipeline):
    scores = {}
    for mode in ("e2e-head", "hybrid", "dense"):
        out = book / f"mined-{mode}.jsonl"
        done = bgekit(installed, "mine", "--input", str(book / "train.txt"), "--format", "e2e-format",
                      "--model", str(pipeline["out"] / "model"), "--mode", mode, "--output", str(out),
                      "--corpus", str(book / "passages.jsonl"), "--range", "0-8", "--num-negatives", "2",
                      "--scores", "--no-cache", "--device", "fake-cpu")
        assert done.returncode == 0, (mode, done.stderr[-3000:])
        scores[mode] = [json.loads(line)["pos_scores"][0] for line in out.read_text().splitlines()]
    assert scores["e2e-head"] != pytest.approx(scores["dense"])
    assert scores["hybrid"] == pytest.approx([d + 0.5 * h for d, h in zip(scores["dense"], scores["e2e-head"])],
                                             rel=1e-4)


def test_plugin_task_runs_from_a_recipe_with_its_own_section(installed, book, tiny_model_dir):
    """The generated task, installed: ``task: e2e-task`` runs, reads the plugin format with recipe-set
    parameters, and its own section is validated (defaults filled in, a misspelled key refused)."""
    recipe = {
        "task": "e2e-task", "output_dir": str(book / "task-run"), "model": {"name_or_path": str(tiny_model_dir)},
        "data": {"train": str(book / "train-semicolon.txt"), "format": {"name": "e2e-format", "separator": " ; "}},
        "e2e_task": {"top_n": 2},
    }
    path = book / "task.yaml"
    path.write_text(yaml.safe_dump(recipe))
    done = bgekit(installed, "run", str(path))
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads((book / "task-run" / "data_stats.json").read_text())
    assert stats["examples"] == len(TOPICS) and stats["bad_rows"] == 0
    assert stats["top_query_words"] == [["who", len(TOPICS)], ["visits", len(TOPICS)]]
    refused = bgekit(installed, "run", str(path), "e2e_task.top_m=1", "--dry-run")
    assert refused.returncode == 1 and "did you mean 'top_n'" in refused.stderr and "Traceback" not in refused.stderr


def test_plugin_command_is_listed_and_runs(installed, book):
    listed = bgekit(installed, "--help")
    assert listed.returncode == 0 and "e2e-command" in listed.stdout
    done = bgekit(installed, "e2e-command", str(book / "train.txt"), "--format", "e2e-format", "-n", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "2 example(s) shown, 0 bad row(s) skipped"
    assert "'who visits the lighthouse?'" in done.stdout
