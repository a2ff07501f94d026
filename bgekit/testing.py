"""Helpers for plugin authors and for bgekit's own tests.

- :func:`fresh_plugin_manager`: a context manager that swaps in a newly
  loaded plugin manager and puts the old one back afterwards.
- :func:`registered_plugin`: register a plugin object for a block, then undo it.
- :func:`registered_specs`: the same for a plugin made of spec records
  (a :class:`~bgekit.registry.TaskSpec`, a :class:`~bgekit.registry.CommandSpec`, a loss, ...).
- :func:`protocol_problems` / :func:`assert_satisfies`: does a component
  have every method of its :mod:`bgekit.api` Protocol, taking the arguments
  bgekit passes by name?
- :func:`judge`: a small run judged against qrels, to test metrics on.
- :func:`tiny_encoder`: write a tiny randomly initialised encoder and a
  tokenizer trained in-process (on text that includes Chinese) to a
  directory, loadable with ``from_pretrained`` exactly like a hub model.

With pytest, the fixtures ``bgekit_pm`` and ``tiny_model_dir`` come from
``pytest_plugins = ["bgekit.testing"]``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from bgekit.plugins import PluginManager, set_plugin_manager

#: Mixed Chinese/English text the tiny tokenizers are trained on.
TRAINING_TEXT = [
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "长江是中国最长的河流，全长约六千三百公里。",
    "红楼梦是中国古典四大名著之一，作者是曹雪芹。",
    "第一回 甄士隐梦幻识通灵 贾雨村风尘怀闺秀",
    "机器学习是人工智能的一个分支，研究计算机如何从数据中学习。",
    "今天天气很好，我们去公园散步吧！你觉得怎么样？",
    "Beijing is the capital of the People's Republic of China.",
    "The Yangtze is the longest river in China, about 6,300 km long.",
    "Dream of the Red Chamber is one of the four great classical novels.",
    "Chapter 1. Machine learning studies how computers learn from data.",
    "What is the capital of China? Which river is the longest?",
    "Dense, sparse and multi-vector retrieval with BGE-M3 embeddings.",
] * 4


def protocol_problems(component: Any, protocol: type) -> list[str]:
    """What ``component`` lacks to satisfy ``protocol`` (a :mod:`bgekit.api` Protocol); empty when it does.

    Stricter than ``isinstance`` on a runtime-checkable Protocol: every method
    (``__call__`` included) must exist and accept each of the Protocol's
    parameters under its name (or through ``*args``/``**kwargs``), because bgekit
    passes several of them by keyword.
    """
    import inspect

    problems = []
    for name, expected in vars(protocol).items():
        if name.startswith("_") and name != "__call__":
            continue
        if isinstance(expected, property) or not callable(expected):
            continue
        if name == "__call__" and not callable(component):
            problems.append("is not callable")
            continue
        actual = getattr(component, name, None)
        if actual is None or not callable(actual):
            problems.append(f"has no method {name}()")
            continue
        try:
            accepted = inspect.signature(actual).parameters
        except (TypeError, ValueError):
            continue  # a builtin without a signature: nothing to check
        takes_any = {p.kind for p in accepted.values()} >= {inspect.Parameter.VAR_KEYWORD}
        takes_rest = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in accepted.values())
        params = list(inspect.signature(expected).parameters.values())[1:]
        by_name = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        missing = [p for p in by_name if p not in accepted and not takes_any and not takes_rest]
        positional = [p for p in accepted.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if not takes_rest and len(positional) < len([p for p in params if p.kind is p.POSITIONAL_ONLY]):
            missing.append("its positional arguments")
        if missing:
            problems.append(f"{name}() does not take {', '.join(missing)}")
    for name in getattr(protocol, "__annotations__", {}):
        if not hasattr(component, name):
            problems.append(f"has no attribute {name}")
    return problems


def judge(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> Any:
    """A :class:`bgekit.api.Judged` of a small run (``{qid: {docid: score}}``) against qrels
    (``{qid: {docid: grade}}``), ranked as trec_eval ranks: what a metric's ``per_query`` gets."""
    from bgekit.evaluate.judged import judge_run

    return judge_run(run, qrels)


def assert_satisfies(component: Any, protocol: type) -> None:
    """Fail with every problem :func:`protocol_problems` finds."""
    problems = protocol_problems(component, protocol)
    assert not problems, f"{type(component).__name__} does not satisfy {protocol.__name__}: {'; '.join(problems)}"


def fresh_plugin_manager(load_entry_points: bool = True) -> contextlib.AbstractContextManager[PluginManager]:
    """Use a new plugin manager inside the block; restore the previous one after."""

    @contextlib.contextmanager
    def _cm() -> Iterator[PluginManager]:
        pm = PluginManager()
        if load_entry_points:
            pm.load_entry_points()
        previous = set_plugin_manager(pm)
        try:
            yield pm
        finally:
            set_plugin_manager(previous)

    return _cm()


@contextlib.contextmanager
def registered_plugin(plugin: Any, name: str | None = None, pm: PluginManager | None = None) -> Iterator[str]:
    """Register ``plugin`` on ``pm`` (default: the process-wide manager) for the block."""
    from bgekit.plugins import get_plugin_manager

    manager = pm or get_plugin_manager()
    registered = manager.register(plugin, name=name)
    if registered is None:
        raise ValueError(f"plugin {name or plugin!r} is blocked or already registered")
    try:
        yield registered
    finally:
        manager.unregister(name=registered)


def spec_plugin(*specs: Any) -> Any:
    """A plugin object whose registry hooks yield ``specs`` (records of any kinds)."""
    import types
    from collections import defaultdict

    from bgekit.hookspecs import hookimpl

    by_hook: dict[str, list[Any]] = defaultdict(list)
    for spec in specs:
        by_hook[spec.hook].append(spec)

    def provide(records: list[Any]) -> Any:
        return hookimpl(lambda: list(records))

    return types.SimpleNamespace(**{hook: provide(records) for hook, records in by_hook.items()})


def registered_specs(*specs: Any, name: str = "test-specs",
                     pm: PluginManager | None = None) -> contextlib.AbstractContextManager[str]:
    """Register a plugin named ``name`` that provides ``specs`` for the block, then undo it.

    Example::

        with registered_specs(TaskSpec(name="count", runner="my_plugin:run")):
            CliRunner().invoke(main, ["run", "count.yaml"])
    """
    return registered_plugin(spec_plugin(*specs), name=name, pm=pm)


def _train_tokenizer(arch: str, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if arch == "bert":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
        tok.train_from_iterator(TRAINING_TEXT, trainer)
        cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        tok.decoder = decoders.WordPiece()
        names = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                     sep_token="[SEP]", mask_token="[MASK]")
    else:
        # XLM-R style: <s> </s> around the text, </s></s> between a pair.
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
        tok.train_from_iterator(TRAINING_TEXT, trainer)
        bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
            special_tokens=[("<s>", bos), ("</s>", eos)],
        )
        tok.decoder = decoders.Metaspace()
        names = dict(bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                     cls_token="<s>", sep_token="</s>", mask_token="<mask>")
    return tok, names


def tiny_encoder(
    directory: str | Path,
    arch: str = "xlm-roberta",
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    vocab_size: int = 300,
    max_position: int = 130,
    seed: int = 0,
) -> Path:
    """Write a tiny random encoder + trained tokenizer to ``directory`` and return it.

    ``arch`` is ``"xlm-roberta"`` (BGE-M3's family) or ``"bert"``.
    """
    import torch
    from transformers import AutoConfig, AutoModel, PreTrainedTokenizerFast

    if arch not in ("xlm-roberta", "bert"):
        raise ValueError(f"arch must be 'xlm-roberta' or 'bert', not {arch!r}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tok, names = _train_tokenizer(arch, vocab_size)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_position - 2, **names)
    tokenizer.save_pretrained(out)
    extra: dict[str, Any] = {}
    if arch == "xlm-roberta":
        extra = dict(pad_token_id=tok.token_to_id("<pad>"), bos_token_id=tok.token_to_id("<s>"),
                     eos_token_id=tok.token_to_id("</s>"), max_position_embeddings=max_position + 2)
    else:
        extra = dict(pad_token_id=tok.token_to_id("[PAD]"), max_position_embeddings=max_position)
    config = AutoConfig.for_model(
        arch, vocab_size=tok.get_vocab_size(), hidden_size=hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads,
        intermediate_size=hidden_size * 2, **extra,
    )
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    model.save_pretrained(out, safe_serialization=True)
    return out


def tiny_cross_encoder(directory: str | Path, arch: str = "xlm-roberta", seed: int = 0) -> Path:
    """A tiny random one-label ``AutoModelForSequenceClassification`` (a reranker) in ``directory``."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    out = tiny_encoder(directory, arch=arch, seed=seed)
    config = AutoConfig.from_pretrained(out, num_labels=1)
    torch.manual_seed(seed)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(out, safe_serialization=True)
    return out


# ---------------------------------------------------------------------------
# pytest fixtures (enabled with ``pytest_plugins = ["bgekit.testing"]``)
# ---------------------------------------------------------------------------
try:
    import pytest
except ImportError:  # pragma: no cover - pytest is a test extra
    pytest = None

if pytest is not None:

    @pytest.fixture
    def bgekit_pm():
        """A freshly loaded plugin manager, process-wide for the test."""
        with fresh_plugin_manager() as pm:
            yield pm

    @pytest.fixture(scope="session")
    def tiny_model_dir(tmp_path_factory):
        """A tiny XLM-RoBERTa-shaped encoder shared by a test session."""
        return tiny_encoder(tmp_path_factory.mktemp("tiny-xlmr"))

    @pytest.fixture(scope="session")
    def tiny_bert_dir(tmp_path_factory):
        """A tiny BERT encoder (its tokenizer has no EOS token)."""
        return tiny_encoder(tmp_path_factory.mktemp("tiny-bert"), arch="bert")
