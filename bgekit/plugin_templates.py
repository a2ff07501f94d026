"""What ``bgekit plugins new NAME --kind KIND`` writes: an installable plugin package per kind.

Each kind has three sources: the package's ``__init__.py`` (the hook
implementation and the spec record; light, so ``bgekit plugins list`` stays
fast), ``component.py`` (the implementation, loaded on first use through
``lazy_factory``; for a task its runner, for a command the click command,
both named as ``"module:attribute"``) and a pytest file that checks it with
``bgekit.testing`` (tasks and commands: through ``bgekit.cli.main``).
They import only :mod:`bgekit.api` and :mod:`bgekit.testing` from bgekit, as
a third party would. ``docs/plugins.md`` shows them rendered for
``my-<kind>`` (a test keeps the two equal). ``__NAME__`` is the name users
write (plugin, component and distribution), ``__PACKAGE__`` the import name.
"""

from __future__ import annotations

import re

from bgekit.errors import BgekitError

KIND_NAMES = ("loss", "head", "miner", "metric", "format", "device", "callback", "augmenter", "task", "command")

_LOSS_INIT = '''"""__NAME__: a bgekit loss for ``task: embedder``."""

from bgekit.api import LossSpec, hookimpl, lazy_factory


@hookimpl
def bgekit_losses():
    yield LossSpec(
        name="__NAME__",
        summary="cross-entropy of each query's positive against every passage of the batch",
        factory=lazy_factory("__PACKAGE__.component:ContrastiveLoss"),
        task="embedder",
        params_schema={"properties": {
            "head": {"type": "string", "default": "dense", "description": "whose scores the loss uses"},
            "temperature": {"type": "number", "default": 0.05, "exclusiveMinimum": 0,
                            "description": "scores are divided by this before the softmax"},
        }},
    )
'''

_LOSS_COMPONENT = '''"""The loss itself (see bgekit.api.EmbedderLoss for what it receives)."""

import torch.nn.functional as F

from bgekit.api import LossOutput


class ContrastiveLoss:
    """Softmax cross-entropy over one head's (Q, P) scores; the positive of query i is column targets[i]."""

    def __init__(self, head: str = "dense", temperature: float = 0.05) -> None:
        self.head = head
        self.temperature = temperature

    def __call__(self, scores, targets, group_size, teacher_scores=None, step=0) -> LossOutput:
        head_scores = scores[self.head]
        if head_scores.size(1) == targets.numel() * group_size:
            targets = targets - targets[0]  # a head that was not gathered across devices
        loss = F.cross_entropy(head_scores / self.temperature, targets)
        return LossOutput(loss=loss, parts={"__NAME__": float(loss.detach())})
'''

_LOSS_TEST = '''import torch

import __PACKAGE__
from bgekit.api import EmbedderLoss
from bgekit.testing import assert_satisfies, fresh_plugin_manager, registered_plugin


def test_loss_prefers_the_positive():
    with fresh_plugin_manager(load_entry_points=False) as pm, registered_plugin(__PACKAGE__, pm=pm):
        loss = pm.registry.get("loss", "__NAME__").create()
    assert_satisfies(loss, EmbedderLoss)
    targets = torch.tensor([0, 2])  # 2 queries, group size 2: positives in columns 0 and 2
    right = torch.tensor([[0.9, 0.1, 0.0, 0.0], [0.0, 0.1, 0.9, 0.2]])
    wrong = torch.tensor([[0.1, 0.9, 0.0, 0.0], [0.0, 0.9, 0.1, 0.2]])
    good = loss({"dense": right}, targets, 2)
    bad = loss({"dense": wrong}, targets, 2)
    assert good.loss.dim() == 0 and float(good.loss) < float(bad.loss)
    assert set(good.parts) == {"__NAME__"}
'''

_HEAD_INIT = '''"""__NAME__: a bgekit model head."""

from bgekit.api import HeadSpec, hookimpl, lazy_factory


@hookimpl
def bgekit_heads():
    yield HeadSpec(
        name="__NAME__",
        summary="masked mean of the token states, L2-normalised; dot-product scores",
        factory=lazy_factory("__PACKAGE__.component:MeanHead"),  # MeanHead(hidden_size)
        params_schema={"properties": {}},
    )
'''

_HEAD_COMPONENT = '''"""The head itself (see bgekit.api.HeadProtocol for the contract)."""

import numpy as np
import torch.nn.functional as F

from bgekit.api import Head


class MeanHead(Head):
    """One vector per text: the mean of its token states; no parameters, so no weights file."""

    gatherable = True  # one fixed-size vector per text: passages can be gathered across devices
    retrieves = True  # searches a whole corpus: exact inner product (Head.score_candidates' default)
    hybrid_weight = 1.0  # its weight when `--mode hybrid` adds its scores to the other heads'

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size

    def represent(self, hidden, batch):
        mask = batch.attention_mask.unsqueeze(-1).to(hidden.dtype)
        return F.normalize((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0), dim=-1)

    def score(self, queries, passages):
        return queries @ passages.transpose(0, 1)

    def export(self, rep):
        return list(rep.detach().float().cpu().numpy())

    def collate(self, items):
        return np.stack(items).astype(np.float32) if items else np.zeros((0, self.hidden_size), np.float32)
'''

_HEAD_TEST = '''import torch

import __PACKAGE__
from bgekit.api import HeadProtocol, TokenBatch
from bgekit.testing import assert_satisfies, fresh_plugin_manager, registered_plugin


def test_head_represents_scores_and_exports():
    with fresh_plugin_manager(load_entry_points=False) as pm, registered_plugin(__PACKAGE__, pm=pm):
        head = pm.registry.get("head", "__NAME__").create(hidden_size=8)
    assert_satisfies(head, HeadProtocol)
    hidden = torch.randn(3, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    batch = TokenBatch(input_ids=torch.ones(3, 5, dtype=torch.long), attention_mask=mask,
                       lexical_mask=mask.bool())
    rep = head.represent(hidden, batch)
    scores = head.score(rep, rep)
    assert scores.shape == (3, 3)
    assert torch.allclose(scores.diagonal(), torch.ones(3), atol=1e-5)  # each text matches itself best
    assert head.collate(head.export(rep)).shape == (3, 8)
'''

_MINER_INIT = '''"""__NAME__: a bgekit hard-negative miner."""

from bgekit.api import MinerSpec, hookimpl


def make_retriever(context=None, **params):
    """MinerFactory: the recipe's miner values (shared settings + our own) and a MiningContext."""
    from bgekit.api import MiningSettings

    from __PACKAGE__.component import OverlapRetriever

    settings, own = MiningSettings.split(params)
    return OverlapRetriever(settings, **own)


def _params_schema():
    from bgekit.api import miner_params_schema

    return miner_params_schema({
        "lowercase": {"type": "boolean", "default": True, "description": "compare words case-insensitively"},
    })


@hookimpl
def bgekit_miners():
    yield MinerSpec(
        name="__NAME__",
        summary="rank the pool by the number of words a passage shares with the query",
        factory=make_retriever,
        params_schema=_params_schema(),
    )
'''

_MINER_COMPONENT = '''"""The miner's ranking (see bgekit.api.RetrieverProtocol); bgekit does windows, filters and sampling."""

import numpy as np

from bgekit.api import Retriever


class OverlapRetriever(Retriever):
    """Score = number of distinct words shared by the query and the passage."""

    def __init__(self, settings, lowercase: bool = True) -> None:
        self.settings = settings
        self.lowercase = lowercase
        self.passages: list[set[str]] = []

    def _words(self, text: str) -> set[str]:
        return set((text.lower() if self.lowercase else text).split())

    def index(self, passages) -> None:
        self.passages = [self._words(p) for p in passages]

    def encode_queries(self, queries):
        return [self._words(q) for q in queries]

    def search(self, queries, depth):
        depth = min(depth, len(self.passages))
        ids = np.full((len(queries), depth), -1, np.int64)
        scores = np.zeros((len(queries), depth), np.float32)
        for i, words in enumerate(queries):
            overlap = np.array([len(words & p) for p in self.passages], np.float32)
            order = np.argsort(-overlap, kind="stable")[:depth]
            ids[i, : len(order)], scores[i, : len(order)] = order, overlap[order]
        return ids, scores

    def score(self, queries, ids):
        return [np.array([len(words & self.passages[j]) for j in row], np.float32)
                for words, row in zip(queries, ids)]

    def describe(self):
        return {"lowercase": self.lowercase}
'''

_MINER_TEST = '''import __PACKAGE__
from bgekit.api import MiningContext, RetrieverProtocol
from bgekit.testing import assert_satisfies, fresh_plugin_manager, registered_plugin


def test_miner_ranks_by_shared_words():
    with fresh_plugin_manager(load_entry_points=False) as pm, registered_plugin(__PACKAGE__, pm=pm):
        retriever = pm.registry.get("miner", "__NAME__").create(context=MiningContext(), range=[0, 3])
    assert_satisfies(retriever, RetrieverProtocol)
    assert retriever.settings.range == (0, 3)
    retriever.index(["the red car", "a blue sky", "red car parked", "nothing here"])
    queries = retriever.encode_queries(["Red car"])
    ids, scores = retriever.search(queries, depth=2)
    assert sorted(ids[0].tolist()) == [0, 2] and scores[0].tolist() == [2.0, 2.0]
    assert retriever.score(queries, [[1, 2]])[0].tolist() == [0.0, 2.0]
'''

_METRIC_INIT = '''"""__NAME__: a bgekit ranking metric (users write __NAME__@k)."""

from bgekit.api import MetricSpec, hookimpl


def make_metric():
    from bgekit.api import RankingMetric

    from __PACKAGE__.component import hits

    return RankingMetric(per_query=hits)


@hookimpl
def bgekit_metrics():
    yield MetricSpec(
        name="__NAME__",
        summary="number of relevant documents in the top k",
        factory=make_metric,
        takes_k=True,
        requires_k=False,  # __NAME__ alone: over everything retrieved
    )
'''

_METRIC_COMPONENT = '''"""The metric (see bgekit.api.MetricFunction): one value per query of a Judged chunk."""


def hits(judged, k):
    """Relevant documents among the first k of each query (all retrieved when k is None)."""
    top = judged.grades if k is None else judged.grades[:, :k]
    return (top >= judged.relevance_level).sum(axis=1).astype(float)
'''

_METRIC_TEST = '''import __PACKAGE__
from bgekit.api import MetricFunction
from bgekit.testing import assert_satisfies, fresh_plugin_manager, judge, registered_plugin


def test_metric_counts_relevant_documents_in_the_top_k():
    with fresh_plugin_manager(load_entry_points=False) as pm, registered_plugin(__PACKAGE__, pm=pm):
        spec, k = pm.registry.metric("__NAME__@2")
        metric = spec.create()
    assert_satisfies(metric.per_query, MetricFunction)
    judged = judge(run={"q1": {"a": 3.0, "b": 2.0, "c": 1.0}, "q2": {"a": 1.0, "c": 2.0}},
                   qrels={"q1": {"a": 1, "c": 1}, "q2": {"c": 2}})
    assert metric.per_query(judged, k).tolist() == [1.0, 1.0]
    assert metric.per_query(judged, None).tolist() == [2.0, 1.0]
'''

_FORMAT_INIT = '''"""__NAME__: a bgekit data format ("query | positive | negative ..." lines)."""

from bgekit.api import FormatSpec, hookimpl, lazy_factory


def detect(sample):
    """FormatDetector: half the share of sampled lines holding ' | ' (a weak signal: built-ins win on theirs)."""
    lines = [line for line in sample.text.splitlines() if line.strip()]
    return 0.5 * sum(line.count(" | ") >= 1 for line in lines) / len(lines) if lines else 0.0


@hookimpl
def bgekit_data_formats():
    yield FormatSpec(
        name="__NAME__",
        summary="one example per line: query | positive | negative | negative ...",
        factory=lazy_factory("__PACKAGE__.component:PipeReader"),
        detect=detect,
        params_schema={"properties": {
            "separator": {"type": "string", "default": " | ", "description": "what splits the columns"},
        }},
    )
'''

_FORMAT_COMPONENT = '''"""The reader (see bgekit.api.FormatReader): one Example per good line, one RowError per bad one."""

from bgekit.api import Example, RowError


class PipeReader:
    def __init__(self, separator: str = " | ") -> None:
        self.separator = separator

    def read(self, path):
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                query, *passages = [cell.strip() for cell in line.rstrip("\\n").split(self.separator)]
                if not query or not passages or not passages[0]:
                    yield RowError(str(path), number, "expected 'query | positive [| negative ...]'",
                                   field="pos", raw=line)
                    continue
                yield Example(query=query, pos=[passages[0]], neg=passages[1:], line=number)
'''

_FORMAT_TEST = '''import __PACKAGE__
from bgekit.api import Example, FormatReader, RowError
from bgekit.testing import assert_satisfies, fresh_plugin_manager, registered_plugin


def test_format_reads_good_rows_and_reports_bad_ones(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("what is red? | a red car | a blue sky\\nno passage here\\nsky? ; the sky\\n",
                    encoding="utf-8")
    with fresh_plugin_manager(load_entry_points=False) as pm, registered_plugin(__PACKAGE__, pm=pm):
        spec = pm.registry.get("data_format", "__NAME__")
    reader = spec.create()
    assert_satisfies(reader, FormatReader)
    rows = list(reader.read(str(path)))
    assert rows[0] == Example(query="what is red?", pos=["a red car"], neg=["a blue sky"])
    assert [type(r) for r in rows] == [Example, RowError, RowError] and rows[1].line == 2
    semicolon = list(spec.create(separator=" ; ").read(str(path)))  # a recipe-set parameter
    assert semicolon[2] == Example(query="sky?", pos=["the sky"])
'''

_DEVICE_INIT = '''"""__NAME__: a bgekit device backend (here a stand-in that runs on the CPU)."""

from bgekit.api import DeviceSpec, hookimpl, lazy_factory


@hookimpl
def bgekit_device_backends():
    yield DeviceSpec(
        name="__NAME__",
        summary="the CPU under another name: a template for a real accelerator backend",
        factory=lazy_factory("__PACKAGE__.component:StandInBackend"),
        priority=-1,  # below the built-in cpu backend: chosen only when a recipe names it
        is_available=lambda: True,  # a real backend checks its runtime here (import it lazily)
    )
'''

_DEVICE_COMPONENT = '''"""The backend (see bgekit.api.DeviceBackendProtocol); DeviceBackend supplies no-op defaults."""

from bgekit.api import DeviceBackend


class StandInBackend(DeviceBackend):
    name = "__NAME__"
    distributed_backend = "gloo"
    autocast_dtypes = ("fp32",)

    def device(self, local_rank=None):
        import torch

        return torch.device("cpu")

    def memory_stats(self):
        return {}
'''

_DEVICE_TEST = '''import __PACKAGE__
from bgekit.api import DeviceBackendProtocol
from bgekit.testing import assert_satisfies, fresh_plugin_manager, registered_plugin


def test_backend_is_selectable_by_name():
    with fresh_plugin_manager(load_entry_points=False) as pm, registered_plugin(__PACKAGE__, pm=pm):
        spec = pm.registry.get("device", "__NAME__")
    assert spec.is_available()
    backend = spec.create()
    assert_satisfies(backend, DeviceBackendProtocol)
    assert backend.name == "__NAME__" and backend.device().type == "cpu"
    assert backend.recipe_defaults() == {"train": {"dtype": "fp32"}}
'''

_CALLBACK_INIT = '''"""__NAME__: a bgekit callback (recipes select it under callbacks:)."""

from bgekit.api import CallbackSpec, hookimpl, lazy_factory


@hookimpl
def bgekit_callbacks():
    yield CallbackSpec(
        name="__NAME__",
        summary="write step,loss lines to a CSV file in the output folder",
        factory=lazy_factory("__PACKAGE__.component:CsvLossLogger"),
        params_schema={"properties": {
            "filename": {"type": "string", "default": "losses.csv", "description": "file inside output_dir"},
        }},
    )
'''

_CALLBACK_COMPONENT = '''"""The callback (see bgekit.api.CallbackProtocol): any subset of the lifecycle hooks."""

from pathlib import Path

from bgekit.api import hookimpl


class CsvLossLogger:
    def __init__(self, filename: str = "losses.csv") -> None:
        self.filename = filename

    @hookimpl
    def bgekit_on_step_end(self, run, step, metrics):
        if not run.is_main_process:
            return  # one writer under torchrun
        path = Path(run.output_dir) / self.filename
        new = not path.exists()
        with open(path, "a", encoding="utf-8") as handle:
            if new:
                handle.write("step,loss\\n")
            handle.write(f"{step},{metrics['loss']}\\n")
'''

_CALLBACK_TEST = '''from types import SimpleNamespace

import __PACKAGE__
from bgekit.testing import fresh_plugin_manager, registered_plugin


def test_callback_logs_each_step(tmp_path):
    run = SimpleNamespace(recipe={}, output_dir=tmp_path, is_main_process=True)
    with fresh_plugin_manager(load_entry_points=False) as pm, registered_plugin(__PACKAGE__, pm=pm):
        callback = pm.registry.get("callback", "__NAME__").create()
        with registered_plugin(callback, pm=pm):  # what the trainer does for a run
            for step, loss in ((1, 0.5), (2, 0.25)):
                pm.hook.bgekit_on_step_end(run=run, step=step, metrics={"loss": loss})
    assert (tmp_path / "losses.csv").read_text() == "step,loss\\n1,0.5\\n2,0.25\\n"
'''

_AUGMENTER_INIT = '''"""__NAME__: a bgekit augmenter (bgekit augment --method __NAME__)."""

from bgekit.api import AugmenterSpec, hookimpl, lazy_factory


@hookimpl
def bgekit_augmenters():
    yield AugmenterSpec(
        name="__NAME__",
        summary="one title-like query per passage",
        factory=lazy_factory("__PACKAGE__.component:TitleWriter"),
        params_schema={"properties": {
            "language": {"type": "string", "default": "en", "description": "language of the titles"},
        }},
    )
'''

_AUGMENTER_COMPONENT = '''"""The augmenter (see bgekit.api.AugmenterProtocol); bgekit sends, caches, retries and filters."""

import json

from bgekit.api import Augmenter, BgekitError, Item, Unusable


def parse_title(reply: str) -> str:
    title = reply.strip().strip('"')
    if not title or "\\n" in title:
        raise Unusable("expected one line")
    return title


class TitleWriter(Augmenter):
    target = "query"

    def __init__(self, language: str = "en") -> None:
        self.language = language

    def read(self, path):
        items = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    row = json.loads(line)
                    items.append(Item(id=str(row["id"]), text=row["text"], passage=row["text"], line=number))
                except (ValueError, KeyError) as error:
                    raise BgekitError(f"{path}:{number}: expected {{\\"id\\", \\"text\\"}} ({error})") from None
        return items

    def run(self, item, ask):
        messages = [{"role": "user", "content": f"Write a short title in {self.language} for:\\n{item.text}"}]
        return [ask(messages, parse_title, expected_reply="A short title")]

    def output_language(self, item):
        return self.language

    def describe(self):
        return {"language": self.language}
'''

_AUGMENTER_TEST = '''import pytest

import __PACKAGE__
from bgekit.api import AugmenterProtocol, Unusable
from bgekit.testing import assert_satisfies, fresh_plugin_manager, registered_plugin


def test_augmenter_asks_once_per_passage(tmp_path):
    (tmp_path / "passages.jsonl").write_text('{"id": "p1", "text": "The Yangtze is long."}\\n')
    with fresh_plugin_manager(load_entry_points=False) as pm, registered_plugin(__PACKAGE__, pm=pm):
        augmenter = pm.registry.get("augmenter", "__NAME__").create(language="zh")
    assert_satisfies(augmenter, AugmenterProtocol)
    [item] = augmenter.read(tmp_path / "passages.jsonl")
    asked = []

    def ask(messages, parse, expected_reply=""):
        asked.append(messages)
        return parse(' "长江" ')

    assert augmenter.run(item, ask) == ["长江"] and "zh" in asked[0][0]["content"]
    with pytest.raises(Unusable):
        augmenter.run(item, lambda messages, parse, expected_reply="": parse(""))
'''

_TASK_INIT = '''"""__NAME__: a bgekit task (a recipe's ``task: __NAME__``) that summarises the training data."""

from bgekit.api import TaskSpec, hookimpl

#: the recipe section the task owns (named after the package, so two plugins do not claim one name)
SECTION = {
    "type": "object",
    "additionalProperties": False,  # a misspelled key is a validation error, with "did you mean"
    "properties": {
        "top_n": {"type": "integer", "minimum": 0, "default": 10,
                  "description": "most frequent query words listed in the summary"},
        "lowercase": {"type": "boolean", "default": True, "description": "count words case-insensitively"},
    },
}


@hookimpl
def bgekit_tasks():
    yield TaskSpec(
        name="__NAME__",
        summary="count the examples of data.train and their passages; list the commonest query words",
        runner="__PACKAGE__.component:run",  # imported only when a recipe runs the task
        sections={"__PACKAGE__": SECTION},
    )
'''

_TASK_COMPONENT = '''"""The runner (see TaskSpec in bgekit.api): run(recipe, backend) -> a JSON-able summary."""

import json
from collections import Counter
from pathlib import Path

from bgekit.api import RowError, read_examples


def run(recipe, backend):
    values = recipe.values  # the resolved recipe: validated, defaults filled in
    settings = values["__PACKAGE__"]
    data = values["data"]
    paths = [data["train"]] if isinstance(data["train"], str) else data["train"]
    examples = bad_rows = positives = negatives = 0
    words = Counter()
    for path in paths:  # read as training reads them: data.format (with its parameters), data.encoding
        for row in read_examples(path, fmt=data.get("format") or "auto", encoding=data.get("encoding") or "auto"):
            if isinstance(row, RowError):
                bad_rows += 1
                continue
            examples += 1
            positives += len(row.pos)
            negatives += len(row.neg)
            words.update((row.query.lower() if settings["lowercase"] else row.query).split())
    summary = {
        "examples": examples,
        "bad_rows": bad_rows,
        "positives_per_query": round(positives / examples, 3) if examples else 0.0,
        "negatives_per_query": round(negatives / examples, 3) if examples else 0.0,
        "top_query_words": words.most_common(settings["top_n"]),
    }
    out = Path(values["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "data_stats.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return {"examples": examples, "bad_rows": bad_rows, "summary": str(out / "data_stats.json")}
'''

_TASK_TEST = '''import json

import pytest
from click.testing import CliRunner

import __PACKAGE__
from bgekit.cli import main
from bgekit.testing import fresh_plugin_manager, registered_plugin

RECIPE = """\\
task: __NAME__
output_dir: {out}
model: {{name_or_path: unused}}  # every recipe names a model; this task does not load it
data: {{train: {train}}}
__PACKAGE__: {section}
"""


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    """recipe(section) writes a recipe using the task; bgekit's built-in plugins and this one are loaded."""
    train = tmp_path / "train.jsonl"
    train.write_text('{"query": "Red car", "pos": ["a red car"], "neg": ["a blue sky", "a tree"]}\\n'
                     '{"query": "red sky", "pos": ["the sky at dusk"]}\\n'
                     '{"query": "no positive"}\\n', encoding="utf-8")

    def write(section):
        path = tmp_path / "stats.yaml"
        path.write_text(RECIPE.format(out=tmp_path / "out", train=train, section=section), encoding="utf-8")
        return str(path)

    monkeypatch.setenv("BGEKIT_LOAD_PLUGINS", "")  # set but empty: no installed external plugin
    with fresh_plugin_manager() as pm, registered_plugin(__PACKAGE__, pm=pm):
        yield write


def test_task_summarises_the_training_data(recipe, tmp_path):
    result = CliRunner().invoke(main, ["run", recipe("{top_n: 1}")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["examples"] == 2
    summary = json.loads((tmp_path / "out" / "data_stats.json").read_text(encoding="utf-8"))
    assert summary == {"examples": 2, "bad_rows": 1, "positives_per_query": 1.0, "negatives_per_query": 1.0,
                       "top_query_words": [["red", 2]]}


def test_task_section_is_validated(recipe):
    result = CliRunner().invoke(main, ["run", recipe("{top_m: 1}")])
    assert result.exit_code == 1
    assert "unknown key 'top_m' (did you mean 'top_n'?)" in result.output
'''

_COMMAND_INIT = '''"""__NAME__: a bgekit command (bgekit __NAME__ FILE)."""

from bgekit.api import CommandSpec, hookimpl


@hookimpl
def bgekit_commands():
    yield CommandSpec(
        name="__NAME__",
        summary="show the first examples of a training data file",
        command="__PACKAGE__.component:peek",  # imported when the command line is built: keep it light
    )
'''

_COMMAND_COMPONENT = '''"""The click command; bgekit lists it beside its own in ``bgekit --help``."""

import click

from bgekit.api import RowError, read_examples


@click.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--format", "fmt", default="auto", show_default=True,
              help="data format (bgekit plugins list --kind data_format); auto detects it")
@click.option("-n", "--limit", default=3, show_default=True, type=click.IntRange(min=1), help="examples shown")
def peek(path, fmt, limit):
    """Show the first examples of a training data file, in any format bgekit reads.

    \\b
    Example:
      bgekit __NAME__ train.jsonl -n 5
    """
    shown = bad_rows = 0
    for row in read_examples(path, fmt=fmt):
        if isinstance(row, RowError):
            bad_rows += 1
            click.echo(f"skipped {row}")
            continue
        click.echo(f"{row.line}: {row.query!r} -> {row.pos[0]!r} (+{len(row.neg)} negatives)")
        shown += 1
        if shown == limit:
            break
    click.echo(f"{shown} example(s) shown, {bad_rows} bad row(s) skipped")
'''

_COMMAND_TEST = '''import pytest
from click.testing import CliRunner

import __PACKAGE__
from bgekit.cli import main
from bgekit.testing import fresh_plugin_manager, registered_plugin


@pytest.fixture
def cli(monkeypatch):
    """cli(*args) runs bgekit with its built-in plugins and this one loaded."""
    monkeypatch.setenv("BGEKIT_LOAD_PLUGINS", "")  # set but empty: no installed external plugin
    with fresh_plugin_manager() as pm, registered_plugin(__PACKAGE__, pm=pm):
        yield lambda *args: CliRunner().invoke(main, list(args), terminal_width=200)


def test_command_is_listed_in_help(cli):
    result = cli("--help")
    assert result.exit_code == 0, result.output
    [listed] = [line.split() for line in result.output.splitlines() if line.startswith("  __NAME__ ")]
    assert listed[1:4] == ["Show", "the", "first"]  # its docstring's first line


def test_command_shows_examples_and_skips_bad_rows(cli, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"query": "no positive"}\\n'
                    '{"query": "Red car", "pos": ["a red car"], "neg": ["a blue sky"]}\\n'
                    '{"query": "red sky", "pos": ["the sky at dusk"]}\\n', encoding="utf-8")
    result = cli("__NAME__", str(path), "-n", "1")
    assert result.exit_code == 0, result.output
    skipped, shown, total = result.output.splitlines()
    assert skipped.startswith("skipped ") and "train.jsonl:1" in skipped
    assert shown == "2: 'Red car' -> 'a red car' (+1 negatives)"
    assert total == "1 example(s) shown, 1 bad row(s) skipped"
'''

TEMPLATES: dict[str, dict[str, str]] = {
    "loss": {"init": _LOSS_INIT, "component": _LOSS_COMPONENT, "test": _LOSS_TEST},
    "head": {"init": _HEAD_INIT, "component": _HEAD_COMPONENT, "test": _HEAD_TEST},
    "miner": {"init": _MINER_INIT, "component": _MINER_COMPONENT, "test": _MINER_TEST},
    "metric": {"init": _METRIC_INIT, "component": _METRIC_COMPONENT, "test": _METRIC_TEST},
    "format": {"init": _FORMAT_INIT, "component": _FORMAT_COMPONENT, "test": _FORMAT_TEST},
    "device": {"init": _DEVICE_INIT, "component": _DEVICE_COMPONENT, "test": _DEVICE_TEST},
    "callback": {"init": _CALLBACK_INIT, "component": _CALLBACK_COMPONENT, "test": _CALLBACK_TEST},
    "augmenter": {"init": _AUGMENTER_INIT, "component": _AUGMENTER_COMPONENT, "test": _AUGMENTER_TEST},
    "task": {"init": _TASK_INIT, "component": _TASK_COMPONENT, "test": _TASK_TEST},
    "command": {"init": _COMMAND_INIT, "component": _COMMAND_COMPONENT, "test": _COMMAND_TEST},
}

_PYPROJECT = '''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "__NAME__"
version = "0.1.0"
description = "A bgekit __KIND__ plugin"
requires-python = ">=3.10"
dependencies = ["bgekit"]

[project.optional-dependencies]
test = ["pytest"]

# This table makes it a bgekit plugin: bgekit loads every entry point in the "bgekit" group.
[project.entry-points.bgekit]
__NAME__ = "__PACKAGE__"

[tool.setuptools]
packages = ["__PACKAGE__"]
'''

_README = '''# __NAME__

A bgekit __KIND__ plugin, written by `bgekit plugins new __NAME__ --kind __KIND__`.

    pip install -e '.[test]'
    bgekit plugins list --kind __SPEC_KIND__   # shows __NAME__ as external
    pytest tests

The contract it implements is in `bgekit.api` (and docs/plugins.md of bgekit).
'''

#: ``--kind`` as users write it -> the registry's kind
SPEC_KINDS = {"format": "data_format"}


def package_name(name: str) -> str:
    """``my-loss`` -> ``my_loss``; refuses names that cannot be a distribution and a module."""
    if not re.fullmatch(r"[a-z][a-z0-9]*([-_][a-z0-9]+)*", name):
        raise BgekitError(f"plugin name '{name}': use lowercase letters, digits and single '-' or '_' "
                          "(e.g. my-loss); it becomes the component, plugin and package name")
    return name.replace("-", "_")


def render(name: str, kind: str) -> dict[str, str]:
    """The package's files: relative path -> text."""
    if kind not in TEMPLATES:
        raise BgekitError(f"unknown plugin kind '{kind}'; kinds: {', '.join(KIND_NAMES)}")
    package = package_name(name)

    def fill(text: str) -> str:
        return (text.replace("__PACKAGE__", package).replace("__NAME__", name).replace("__KIND__", kind)
                .replace("__SPEC_KIND__", SPEC_KINDS.get(kind, kind)))

    sources = TEMPLATES[kind]
    return {
        "pyproject.toml": fill(_PYPROJECT),
        "README.md": fill(_README),
        f"{package}/__init__.py": fill(sources["init"]),
        f"{package}/component.py": fill(sources["component"]),
        f"tests/test_{package}.py": fill(sources["test"]),
    }
