"""The public plugin API: everything a plugin imports comes from here.

A plugin is a module (or object) with functions marked :data:`hookimpl`
named like the hooks in :mod:`bgekit.hookspecs`; registry hooks yield the
spec records below, whose ``factory`` builds an object that satisfies the
matching :class:`typing.Protocol` in this module. Each Protocol's docstring
is its contract: what bgekit passes, what it expects back, shapes and units,
as the engines call it today (trainer, miner engine, evaluation, readers).

Importing this module is cheap (no torch): plugins import it at top level so
that ``bgekit plugins list`` stays fast. The base classes and records that
need numpy or torch (:class:`Head`, :class:`TokenBatch`, :class:`Retriever`,
...) are loaded on first attribute access, and so are the helpers the
built-in plugins use (``_HELPERS`` below: reading text and JSON files as the
built-in formats do, BM25 and vector indexes, embedding caches, prompt and
reply helpers for augmenters, ...). The built-in plugins import nothing else
from bgekit, so whatever they can do a third-party plugin can do too.

Kinds and their contracts:

========== ============================ ===================================
kind       spec record (hook)           factory returns
========== ============================ ===================================
loss       LossSpec (bgekit_losses)     :class:`EmbedderLoss` or
                                        :class:`RerankerLoss` (``task=``)
head       HeadSpec (bgekit_heads)      :class:`HeadProtocol` (an nn.Module)
miner      MinerSpec (bgekit_miners)    :class:`RetrieverProtocol`
format     FormatSpec                   :class:`FormatReader`; ``detect``
           (bgekit_data_formats)        is a :class:`FormatDetector`
metric     MetricSpec (bgekit_metrics)  :class:`RankingMetric` whose
                                        ``per_query`` is a :class:`MetricFunction`
device     DeviceSpec                   :class:`DeviceBackendProtocol`
           (bgekit_device_backends)
callback   CallbackSpec                 a :class:`CallbackProtocol`
           (bgekit_callbacks)           (any subset of its hooks)
augmenter  AugmenterSpec                :class:`AugmenterProtocol`
           (bgekit_augmenters)
========== ============================ ===================================

Tasks (:class:`TaskSpec`, ``bgekit_tasks``) and command groups
(:class:`CommandSpec`, ``bgekit_commands``) register the same way. The core
names no component itself: a task's ``component_defaults`` say which
component fills a recipe slot the recipe leaves out (the built-in embedder
task's ``loss`` is ``{"name": "infonce"}``), and a callback spec with
``always_on=True`` runs in every training run without being listed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol, Sequence, runtime_checkable

from bgekit.errors import BgekitError
from bgekit.hookspecs import HOOKSPEC_VERSION, hookimpl, hookspec
from bgekit.losses import LossOutput
from bgekit.registry import (
    AugmenterSpec,
    CallbackSpec,
    CommandSpec,
    ComponentSpec,
    DeviceSpec,
    FormatSpec,
    HeadSpec,
    LossSpec,
    MetricSpec,
    MinerSpec,
    TaskSpec,
    lazy_factory,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

    from bgekit.augment.augmenter import Ask, Item
    from bgekit.data.example import Example, RowError
    from bgekit.data.readers import Sample
    from bgekit.evaluate.judged import Judged
    from bgekit.mine.retriever import MiningContext
    from bgekit.mine.settings import MiningSettings
    from bgekit.models.head import TokenBatch

#: base classes and records that import numpy/torch, loaded on first use: name -> "module:attribute"
_LAZY = {
    "Head": "bgekit.models.head:Head",
    "TokenBatch": "bgekit.models.head:TokenBatch",
    "Retriever": "bgekit.mine.retriever:Retriever",
    "MiningContext": "bgekit.mine.retriever:MiningContext",
    "MiningSettings": "bgekit.mine.settings:MiningSettings",
    "miner_params_schema": "bgekit.mine.settings:params_schema",
    "RankingMetric": "bgekit.evaluate.metrics:RankingMetric",
    "Judged": "bgekit.evaluate.judged:Judged",
    "Example": "bgekit.data.example:Example",
    "RowError": "bgekit.data.example:RowError",
    "Sample": "bgekit.data.readers:Sample",
    "DeviceBackend": "bgekit.devices:DeviceBackend",
    "local_rank": "bgekit.devices:local_rank",
    "Augmenter": "bgekit.augment.augmenter:Augmenter",
    "Item": "bgekit.augment.augmenter:Item",
    "Ask": "bgekit.augment.augmenter:Ask",
    "Unusable": "bgekit.augment.augmenter:Unusable",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'bgekit.api' has no attribute '{name}'")
    module_name, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


# --------------------------------------------------------------------------
# helpers for plugin authors: what the built-in plugins use, loaded on first
# access like the names above. Each keeps the docstring of its definition.
# --------------------------------------------------------------------------

_HELPERS = {
    # data formats: build records from rows, read text files as the built-in readers do
    "KNOWN_FIELDS": "bgekit.data.example:KNOWN_FIELDS",  # the canonical keys; others go to Example.extra
    "example_from_mapping": "bgekit.data.example:example_from_mapping",  # a row dict -> Example | RowError
    "iter_lines": "bgekit.data.encoding:iter_lines",  # (line number, text) of a file, encoding detected
    "open_text": "bgekit.data.encoding:open_text",
    "resolve_encoding": "bgekit.data.encoding:resolve_encoding",  # "auto" -> the detected codec
    "decode_error": "bgekit.data.encoding:decode_error",  # the BgekitError for undecodable bytes
    "parse_json": "bgekit.data.jsonlines:parse_json",  # a value, or a JsonProblem saying why not
    "JsonProblem": "bgekit.data.jsonlines:JsonProblem",
    "iter_json_array": "bgekit.data.jsonstream:iter_json_array",  # stream a file's top-level array
    "iter_json_array_text": "bgekit.data.jsonstream:iter_json_array_text",
    "JsonSyntaxError": "bgekit.data.jsonstream:JsonSyntaxError",  # what the two streams yield for bad input
    "TooDeep": "bgekit.data.jsonstream:TooDeep",
    "TrailingValue": "bgekit.data.jsonstream:TrailingValue",
    "adjacent_groups": "bgekit.data.grouping:adjacent_groups",  # one example from adjacent rows of a query
    "RowGroup": "bgekit.data.grouping:Group",
    "find_beir_files": "bgekit.data.beir:find_beir_files",  # BEIR-style evaluation data as examples
    "BeirDataset": "bgekit.data.beir:BeirDataset",
    "examples_from_judgements": "bgekit.data.beir:examples_from_judgements",
    # tasks and commands: read a data file as training does (format detected or named, with its parameters)
    "read_examples": "bgekit.data.readers:read_examples",  # Example per good row, RowError per bad one
    # miners and heads
    "Bm25Index": "bgekit.data.lexical:Bm25Index",  # the tokenisation `bgekit data pairs` uses too
    "VECTOR_INDEX_PARAMS": "bgekit.mine.index_params:PARAMS",  # schema of index/nlist/nprobe/...
    "IndexConfig": "bgekit.mine.vector_index:IndexConfig",
    "VectorIndex": "bgekit.mine.vector_index:VectorIndex",  # FAISS (or numpy) Flat/IVF/HNSW search
    "EmbeddingCache": "bgekit.mine.cache:EmbeddingCache",  # encoded pools kept between runs
    "cache_key": "bgekit.mine.cache:cache_key",
    "model_fingerprint": "bgekit.mine.cache:model_fingerprint",
    "Embedder": "bgekit.models:Embedder",  # load a model folder and encode with its heads
    "pad_and_cat": "bgekit.models.padding:pad_and_cat",
    "gather_padded": "bgekit.models.distributed:gather_padded",  # cross-device negatives for a padded head
    "select_backend": "bgekit.devices:select_backend",  # the device backend a recipe's `device` names
    "get_registry": "bgekit.plugins:get_registry",  # every loaded plugin's components by kind and name
    # searching with a head (HeadProtocol's search side): generic top-k and candidate helpers
    "top_k": "bgekit.evaluate.search:top_k",  # the k best entries per row, -1 for empty slots
    "SEARCH_BLOCK_CELLS": "bgekit.evaluate.search:BLOCK_CELLS",  # score cells held at once per query block
    "union_candidates": "bgekit.evaluate.search:union_candidates",
    "rescore": "bgekit.evaluate.search:rescore",
    "HeadSearch": "bgekit.evaluate.search:HeadSearch",  # a mode (a head or hybrid) as encode/search steps
    # callbacks
    "truncate_jsonl_after": "bgekit.data.jsonlines:truncate_jsonl_after",  # a resumed run rewrites its steps
    # augmenters: input files, reply parsing, prompt templates a recipe may override
    "read_passage_items": "bgekit.augment.augmenter:read_passage_items",
    "read_training_items": "bgekit.augment.augmenter:read_training_items",
    "guess_language": "bgekit.augment.filters:guess_language",
    "language_name": "bgekit.augment.prompts:language_name",
    "check_template": "bgekit.augment.prompts:check_template",
    "render_template": "bgekit.augment.prompts:render",
    "chat_messages": "bgekit.augment.prompts:messages",
    "parse_reply_list": "bgekit.augment.prompts:parse_list",
    "parse_reply_text": "bgekit.augment.prompts:parse_text",
}
_LAZY.update(_HELPERS)


# --------------------------------------------------------------------------
# loss
# --------------------------------------------------------------------------


@runtime_checkable
class EmbedderLoss(Protocol):
    """A loss for ``task: embedder`` (``LossSpec(task="embedder")``), built as ``factory(**recipe params)``.

    Called once per micro-batch as ``loss(scores, targets, group_size, teacher_scores=..., step=...)``:

    - ``scores``: ``{head name: (Q, P) float tensor}`` of every query against every passage, one
      entry per head the model has (``"dense"``, ``"sparse"``, ``"colbert"``, or a plugin head's
      name); raw similarities as the head's ``score`` returns them (dot products, not divided by
      a temperature). ``P = Q * group_size`` on one device; with cross-device negatives a
      gatherable head's matrix holds every rank's passages (wider than ``Q * group_size``).
    - ``targets``: (Q,) long tensor, the column of each query's positive. Query i's group (its
      positive, then ``group_size - 1`` hard negatives) is columns ``targets[i] ...
      targets[i] + group_size - 1``; with cross-device negatives ``targets`` is offset by this
      rank's first column.
    - ``group_size``: passages per query (1 positive + negatives).
    - ``teacher_scores``: (Q, group_size) float32 tensor of the data's ``pos_scores`` +
      ``neg_scores`` in group order, or None when the batch has none.
    - ``step``: the optimiser step being computed (0-based), for schedules.

    Returns a :class:`LossOutput` whose ``loss`` is a 0-dim tensor to back-propagate (bgekit
    multiplies it by the recipe's ``weight`` and divides by the accumulation count).
    """

    def __call__(self, scores: Mapping[str, "torch.Tensor"], targets: "torch.Tensor", group_size: int,
                 teacher_scores: "torch.Tensor | None" = None, step: int = 0) -> LossOutput: ...


@runtime_checkable
class RerankerLoss(Protocol):
    """A loss for ``task: reranker`` and the joint task's reranker (``LossSpec(task="reranker")``).

    Called as ``loss(logits, labels, teacher_scores=..., step=...)``:

    - ``logits``: (Q, G) float tensor, the cross-encoder's one logit per (query, passage) pair,
      each row one query's group with its positive in column 0;
    - ``labels``: (Q, G) float tensor of graded relevance (1 for the positive, 0 for negatives
      unless the data grades them);
    - ``teacher_scores``: (Q, G) float32 tensor or None; ``step`` as for :class:`EmbedderLoss`.

    Returns a :class:`LossOutput`.
    """

    def __call__(self, logits: "torch.Tensor", labels: "torch.Tensor",
                 teacher_scores: "torch.Tensor | None" = None, step: int = 0) -> LossOutput: ...


# --------------------------------------------------------------------------
# head
# --------------------------------------------------------------------------


@runtime_checkable
class HeadProtocol(Protocol):
    """A model head, built as ``factory(hidden_size, **recipe params)``; a ``torch.nn.Module``
    (subclass :class:`Head`, which supplies the defaults below).

    - ``represent(hidden, batch)``: ``hidden`` is the encoder's last hidden states, (B, L, H)
      float; ``batch`` a :class:`TokenBatch` (``input_ids`` (B, L), ``attention_mask`` (B, L),
      ``lexical_mask`` (B, L) bool, True at real non-special tokens). Returns this head's
      representation of the B texts, in any form ``score`` and ``export`` understand (a (B, D)
      tensor, a list of dicts, a padded tensor plus mask, ...).
    - ``score(queries, passages)``: two representations -> (Q, P) float tensor of raw
      similarities, higher is more relevant; the trainer hands it to the losses as
      ``scores[name]``.
    - ``export(rep)``: one plain item per text (numpy array, ``{token: weight}`` dict, ...) for
      ``bgekit encode`` and the embedding caches; ``collate(items)`` joins those items, in input
      order, into what ``encode`` hands its caller (e.g. a (N, D) float32 array), with ``len()``
      the number of texts. The miner's pool cache stores an (N, ...) array, a list of arrays or
      a list of ``{key: number}`` dicts; other shapes are encoded again each run.
    - ``weights_file``: the file in the saved model folder that holds ``module_for_weights``'s
      ``state_dict`` (FlagEmbedding layout, ``sparse_linear.pt``), or None for heads without
      parameters; ``gatherable``: True when every text's representation has one fixed shape,
      so passages can be gathered across data-parallel ranks for extra negatives.

    Search (``bgekit eval retriever --mode NAME``, hybrids, the dense miner's ``mode``) works on
    ``collate``'s numpy output, never on tensors:

    - ``index(passages, config)``: the corpus's encodings made ready for many searches (the
      default keeps them); ``config`` is the miner's FAISS choice (``IndexConfig``) or None for
      exact CPU search, and only vector heads need it.
    - ``search(queries, index, k)``: ``(indices, scores)``, each (Q, k) (int64, float32), the k
      best passages per query in any order, ``-1`` for an empty slot. The default scores every
      passage with ``score_candidates``.
    - ``score_candidates(queries, index, candidates)``: (Q, C) float32 scores of query i with
      passages ``candidates[i]`` (``-1`` pads; ignored), on ``score``'s scale. The default is the
      inner product when ``collate`` gives (N, D) arrays; other heads implement it.
    - ``retrieves``: False for a head that only re-scores (ColBERT): its mode and hybrids rank
      the candidates of the model's retrieving heads. ``hybrid_weight``: its weight in a hybrid
      unless the user gives one (dense 1, sparse 0.3, colbert 1).
    """

    weights_file: str | None
    gatherable: bool
    retrieves: bool
    hybrid_weight: float

    def represent(self, hidden: "torch.Tensor", batch: "TokenBatch") -> Any: ...

    def score(self, queries: Any, passages: Any) -> "torch.Tensor": ...

    def export(self, rep: Any) -> list[Any]: ...

    def collate(self, items: list[Any]) -> Any: ...

    def index(self, passages: Any, config: Any = None) -> Any: ...

    def search(self, queries: Any, index: Any, k: int) -> "tuple[np.ndarray, np.ndarray]": ...

    def score_candidates(self, queries: Any, index: Any, candidates: "np.ndarray") -> "np.ndarray": ...


# --------------------------------------------------------------------------
# miner
# --------------------------------------------------------------------------


class MinerFactory(Protocol):
    """A ``MinerSpec.factory``: ``factory(context=MiningContext(...), **params)``.

    ``params`` are the recipe's ``miner`` values except ``name``, ``corpus`` and
    ``refresh_every`` (schema defaults filled in): the shared mining settings (``range``,
    ``num_negatives``, ``sampling``, score filters, ``seed``, ``query_batch_size``,
    ``with_scores``) plus the miner's own keys. Split them with
    ``settings, own = MiningSettings.split(params)``; build the spec's ``params_schema`` with
    ``miner_params_schema(own_properties)`` so the shared keys validate too. ``context`` is a
    :class:`MiningContext` (``model`` directory or loaded ``embedder``, ``device``,
    ``batch_size``, ``query_max_length``, ``passage_max_length``, ``cache_dir``); it may be
    None when a miner is built outside a run. Returns a :class:`RetrieverProtocol`.
    """

    def __call__(self, context: "MiningContext | None" = None, **params: Any) -> "RetrieverProtocol": ...


@runtime_checkable
class RetrieverProtocol(Protocol):
    """What a miner supplies: a ranking of the pool (subclass :class:`Retriever`).

    The engine owns the window, exclusions, score filters, sampling and filling.
    Ids are positions in the list given to ``index``.

    - ``index(passages)``: the pool, a sequence of N texts; encode it / build an index.
    - ``encode_queries(queries)``: a batch of query texts -> whatever ``search`` and ``score``
      take for them.
    - ``search(queries, depth)``: ``(ids, scores)``, each (Q, depth) numpy arrays (int64 ids,
      float32 scores), best first; ``-1`` pads rows with fewer hits.
    - ``score(queries, ids)``: for each query i, a float32 array of its scores against the
      passages ``ids[i]`` (used to score kept positives and fill-ins).
    - ``settings``: the :class:`MiningSettings` it was built with; ``has_scores``: False when
      its scores mean nothing (random), so score filters are refused; ``describe()``: settings
      worth printing and fingerprinting (a dict of plain values).
    """

    has_scores: bool
    settings: "MiningSettings"

    def index(self, passages: Sequence[str]) -> None: ...

    def encode_queries(self, queries: Sequence[str]) -> Any: ...

    def search(self, queries: Any, depth: int) -> "tuple[np.ndarray, np.ndarray]": ...

    def score(self, queries: Any, ids: Sequence[Sequence[int]]) -> "list[np.ndarray]": ...

    def describe(self) -> dict[str, Any]: ...


# --------------------------------------------------------------------------
# data format
# --------------------------------------------------------------------------


@runtime_checkable
class FormatReader(Protocol):
    """What ``FormatSpec.factory(**params)`` returns; ``params`` are the format's own keys
    (``encoding``, ``delimiter``, ...), schema defaults filled in.

    ``read(path)`` streams a file (or a directory, for formats such as ``beir``) and yields one
    :class:`Example` per usable row (``query``, ``pos`` list, ``neg`` list, optional
    ``pos_scores``/``neg_scores``/``prompt``/``type``, and ``line``: the 1-based line it came
    from) or one :class:`RowError` (file, line, field, reason) per row that cannot be used: bad
    rows are reported and skipped, never fatal. Only an unreadable file as a whole raises
    :class:`BgekitError`.
    """

    def read(self, path: str) -> Iterator["Example | RowError"]: ...


class FormatDetector(Protocol):
    """``FormatSpec.detect``: ``detect(sample)`` -> confidence in [0, 1] that the file is in this
    format. ``sample`` is a :class:`Sample`: ``path``, ``raw`` (the file's first bytes),
    ``text`` (those bytes decoded), ``encoding``, and for a directory ``files`` (relative paths,
    two levels deep). The most confident format wins; 0 means "not mine"."""

    def __call__(self, sample: "Sample") -> float: ...


# --------------------------------------------------------------------------
# metric
# --------------------------------------------------------------------------


class MetricFunction(Protocol):
    """A metric's ``per_query(judged, k)``; ``MetricSpec.factory()`` returns
    ``RankingMetric(per_query, weight=None)``.

    ``judged`` is a :class:`Judged` chunk of queries: ``grades`` (Q, depth) float32 relevance of
    each ranked document in trec_eval order (0 for unjudged), ``num_ret`` (Q,) documents
    retrieved, ``num_rel`` (Q,) relevant documents in the qrels, ``ideal`` (Q, depth') the ideal
    grades, best first. ``k`` is the cut-off users wrote (``ndcg@10`` -> 10) or None. Returns a
    (Q,) float array, one value per query; the aggregate is their mean, or, with
    ``weight(judged)`` -> (Q,) weights, their weighted mean.
    """

    def __call__(self, judged: "Judged", k: int | None) -> "np.ndarray": ...


# --------------------------------------------------------------------------
# device backend
# --------------------------------------------------------------------------


@runtime_checkable
class DeviceBackendProtocol(Protocol):
    """What ``DeviceSpec.factory()`` returns (subclass :class:`DeviceBackend`: its defaults are right
    for a CPU, so a backend overrides only what differs). The core asks the backend, never
    ``device.type``, for anything that depends on the hardware.

    ``name`` as recipes write it (``device.name``), also the key its RNG states are saved under
    in checkpoints; ``distributed_backend`` for ``torch.distributed`` (``"nccl"``, ``"hccl"``,
    ``"gloo"``); ``autocast_dtypes``: the dtypes this device runs well, best first, from
    ``"bf16"``, ``"fp16"``, ``"fp32"``; ``pin_memory``: whether the data loader pins host batches
    for the copy to this device.
    ``device(local_rank=None)`` -> the ``torch.device`` of this process (``LOCAL_RANK`` under
    torchrun when None; made current); ``device_count()``;
    ``optimizer_options()`` -> extra ``torch.optim.AdamW`` keyword arguments (``{"fused": True}``);
    ``ddp_options(device)`` -> extra ``DistributedDataParallel`` keyword arguments
    (``{"device_ids": [device.index]}``); ``process_group_options(device)`` -> extra
    ``init_process_group`` keyword arguments (``{"device_id": device}``); all three ``{}`` on a CPU.
    ``rng_state()`` -> the accelerator's random states as ``{str: torch.Tensor}`` (tensors only:
    checkpoints load with ``weights_only=True``; ``{}`` on a CPU, whose torch, Python and NumPy
    states the core saves); ``set_rng_state(state)`` restores it on resume (possibly with fewer
    devices). ``memory_stats()`` -> MiB by name (``allocated``, ``peak_allocated``, ``reserved``
    where known); ``reset_peak_memory()``, ``empty_cache()``, ``synchronize()`` (no-ops where
    meaningless); ``device_info(device)`` -> ``{"name": ...}`` and more for reports;
    ``recipe_defaults()`` -> recipe values this device suggests (``{"train": {"dtype": "bf16"}}``);
    ``describe()`` -> a dict for reports.
    ``DeviceSpec.is_available()`` says whether the device is there (import its runtime lazily).
    """

    name: str
    distributed_backend: str
    pin_memory: bool

    @property
    def autocast_dtypes(self) -> tuple[str, ...]: ...

    def device(self, local_rank: int | None = None, /) -> Any: ...  # called positionally

    def device_count(self) -> int: ...

    def optimizer_options(self) -> dict[str, Any]: ...

    def ddp_options(self, device: Any, /) -> dict[str, Any]: ...

    def process_group_options(self, device: Any, /) -> dict[str, Any]: ...

    def rng_state(self) -> dict[str, Any]: ...

    def set_rng_state(self, state: dict[str, Any], /) -> None: ...

    def memory_stats(self) -> dict[str, float]: ...

    def reset_peak_memory(self) -> None: ...

    def empty_cache(self) -> None: ...

    def synchronize(self) -> None: ...

    def device_info(self, device: Any, /) -> dict[str, str]: ...

    def recipe_defaults(self) -> dict[str, Any]: ...

    def describe(self) -> dict[str, Any]: ...


# --------------------------------------------------------------------------
# callback
# --------------------------------------------------------------------------


class CallbackProtocol(Protocol):
    """What ``CallbackSpec.factory(**recipe params)`` returns: an object whose lifecycle methods
    are marked ``@hookimpl``. Implement any subset; the trainer registers the object for the
    length of the run and every registered plugin's hooks are called.

    ``run`` has ``recipe`` (the resolved recipe dict), ``output_dir`` (a ``Path``),
    ``is_main_process`` (write files only when True), ``rank``, ``world_size``, ``task`` and
    ``resume_step`` (where training starts, set before the first step; a resumed run logs the
    steps after it again). ``step``: the optimiser steps done so far. ``metrics`` of
    ``bgekit_on_step_end``: ``loss`` and each loss part, ``learning_rate``, throughput, as
    floats; of ``bgekit_on_evaluate_end``: metric names (``ndcg@10``) -> floats. ``path``: the
    checkpoint folder, already complete. ``status``:
    ``"ok"`` or ``"error"``. A callback that raises stops the run. A ``CallbackSpec`` with
    ``always_on=True`` is built with its schema defaults for every training run whose recipe
    does not list it (the JSONL metrics log is one).
    """

    def bgekit_on_run_start(self, run: Any) -> None: ...

    def bgekit_on_step_end(self, run: Any, step: int, metrics: dict) -> None: ...

    def bgekit_on_evaluate_end(self, run: Any, step: int, metrics: dict) -> None: ...

    def bgekit_on_checkpoint(self, run: Any, step: int, path: str) -> None: ...

    def bgekit_on_run_end(self, run: Any, status: str) -> None: ...


# --------------------------------------------------------------------------
# augmenter
# --------------------------------------------------------------------------


@runtime_checkable
class AugmenterProtocol(Protocol):
    """What ``AugmenterSpec.factory(**recipe params)`` returns (subclass :class:`Augmenter`).

    - ``read(path)`` -> the :class:`Item` records of the input file (bad input:
      :class:`BgekitError` naming file:line);
    - ``run(item, ask)`` -> the new texts for one item (queries, or passages when ``target`` is
      ``"passage"``); for each chat completion it needs it calls
      ``ask(messages, parse, expected_reply="")`` with OpenAI-style ``[{"role", "content"}]``
      messages; bgekit sends (or takes from its cache), retries and rate-limits the request and
      returns ``parse(reply_text)``; ``parse`` raises :class:`Unusable` for an unusable reply.
    - ``output_language(item)`` -> language code the texts must be in, or None;
      ``keeps_originals()``, ``describe()`` (settings recorded in provenance), ``check()``
      (refuse bad settings before anything is sent).
    """

    target: str

    def read(self, path: Any) -> "list[Item]": ...

    def run(self, item: "Item", ask: "Ask") -> list[str]: ...

    def output_language(self, item: "Item") -> str | None: ...

    def keeps_originals(self) -> bool: ...

    def describe(self) -> dict[str, Any]: ...

    def check(self) -> None: ...


#: the Protocol each kind's factory result satisfies (losses: by ``LossSpec.task``)
PROTOCOLS: dict[str, Any] = {
    "loss": {"embedder": EmbedderLoss, "reranker": RerankerLoss},
    "head": HeadProtocol,
    "miner": RetrieverProtocol,
    "data_format": FormatReader,
    "metric": MetricFunction,
    "device": DeviceBackendProtocol,
    "callback": CallbackProtocol,
    "augmenter": AugmenterProtocol,
}

__all__ = [
    "AugmenterProtocol", "AugmenterSpec", "BgekitError", "CallbackProtocol", "CallbackSpec", "CommandSpec", "ComponentSpec",
    "DeviceBackendProtocol", "DeviceSpec", "EmbedderLoss", "FormatDetector", "FormatReader", "FormatSpec",
    "HOOKSPEC_VERSION", "HeadProtocol", "HeadSpec", "LossOutput", "LossSpec", "MetricFunction", "MetricSpec",
    "MinerFactory", "MinerSpec", "PROTOCOLS", "RerankerLoss", "RetrieverProtocol", "TaskSpec", "hookimpl", "hookspec",
    "lazy_factory", *_LAZY,
]

