"""The embedder: one Hugging Face encoder shared by any number of head plugins.

For BGE-M3 that is XLM-RoBERTa with the ``dense``, ``sparse`` and
``colbert`` heads; any ``AutoModel`` encoder works (BERT included). A
directory in FlagEmbedding's layout (``sparse_linear.pt`` and
``colbert_linear.pt`` beside the encoder) loads with its trained heads, and
:meth:`Embedder.save_pretrained` writes that layout back, so the result opens
in FlagEmbedding's ``BGEM3FlagModel`` unchanged.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from bgekit.data.atomic import atomic_write
from bgekit.errors import BgekitError
from bgekit.models import flag_layout, pooling_config
from bgekit.models.head import Head, TokenBatch

logger = logging.getLogger(__name__)

#: What a FlagEmbedding directory without ``bgekit_heads.json`` holds: dense always,
#: sparse and colbert when their files are there.
FLAG_HEAD_FILES = {"sparse": "sparse_linear.pt", "colbert": "colbert_linear.pt"}


def _load_encoder(name_or_path: str, revision: str | None, trust_remote_code: bool) -> torch.nn.Module:
    """``AutoModel`` in fp32 with SDPA attention where the architecture supports it."""
    from transformers import AutoModel

    kwargs: dict[str, Any] = dict(revision=revision, trust_remote_code=trust_remote_code, dtype=torch.float32)
    try:
        return AutoModel.from_pretrained(name_or_path, attn_implementation="sdpa", **kwargs)
    except (ValueError, ImportError) as err:
        if "sdpa" not in str(err).lower() and "attn_implementation" not in str(err):
            raise
        logger.info("%s does not support SDPA attention; using its default attention", name_or_path)
        return AutoModel.from_pretrained(name_or_path, **kwargs)


def _freeze_unused_pooler(encoder: torch.nn.Module) -> None:
    """BERT-style poolers are never used by the heads; freezing them keeps DDP from
    complaining about parameters without gradients, and saves them unchanged."""
    pooler = getattr(encoder, "pooler", None)
    if isinstance(pooler, torch.nn.Module):
        for param in pooler.parameters():
            param.requires_grad_(False)


def _heads_from_layout(name_or_path: str, revision: str | None) -> list[dict[str, Any]]:
    """The heads a saved directory holds: ``bgekit_heads.json``, else FlagEmbedding's files
    (with the dense pooling a sentence-transformers ``1_Pooling/config.json`` names)."""
    recorded = flag_layout.resolve_file(name_or_path, flag_layout.HEADS_FILE, revision)
    if recorded is not None:
        heads = json.loads(recorded.read_text(encoding="utf-8"))
        if not isinstance(heads, list) or not all(isinstance(h, dict) and "name" in h for h in heads):
            raise BgekitError(f"{recorded}: expected a list of {{'name': ...}} head entries")
        return heads
    heads = [{"name": "dense", **pooling_config.dense_pooling(name_or_path, revision)}]
    for name, filename in FLAG_HEAD_FILES.items():
        if flag_layout.resolve_file(name_or_path, filename, revision) is not None:
            heads.append({"name": name})
    return heads


def _unselected_head_files(name_or_path: str, revision: str | None, selected: dict[str, Any]) -> dict[str, Path]:
    carried = {}
    for name, filename in FLAG_HEAD_FILES.items():
        if name not in selected:
            path = flag_layout.resolve_file(name_or_path, filename, revision)
            if path is not None:
                carried[filename] = path
    return carried


class Embedder(torch.nn.Module):
    """An encoder plus named heads; ``forward`` scores queries against passages per head.

    ``query_max_length``, ``passage_max_length``, ``query_instruction`` and
    ``passage_instruction`` are plain attributes the trainer and the
    evaluator read (set them from the recipe's ``model`` section).
    """

    def __init__(self, encoder: torch.nn.Module, tokenizer: Any, heads: dict[str, Head],
                 head_configs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.heads = torch.nn.ModuleDict(heads)
        self.head_configs = head_configs
        special = sorted({i for i in tokenizer.all_special_ids if i is not None})
        self.register_buffer("special_token_ids", torch.tensor(special, dtype=torch.long), persistent=False)
        #: FlagEmbedding head files of the source model whose heads were not selected:
        #: saved unchanged, so a dense-only fine-tune of BGE-M3 still opens with all three heads.
        self.carried_head_files: dict[str, Path] = {}
        self.query_max_length = 64
        self.passage_max_length = 512
        self.query_instruction = ""
        self.passage_instruction = ""

    # -- building ----------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_path: str, heads: list[dict] | None = None, *,
                        revision: str | None = None, trust_remote_code: bool = False,
                        registry: Any = None) -> "Embedder":
        """Load an encoder (directory, hub id or ``pkg:NAME``) and build ``heads`` on it.

        ``heads`` is a list of ``{"name": ..., **params}``; ``None`` takes
        what the directory says (``bgekit_heads.json``, else dense plus the
        FlagEmbedding head files present). Heads with a weights file load it
        when present and warn loudly that they start random when not.
        """
        from transformers import AutoTokenizer

        if registry is None:
            from bgekit.plugins import get_registry

            registry = get_registry()
        from bgekit.model_paths import resolve_model_path

        name_or_path = resolve_model_path(str(name_or_path))
        if heads is None:
            heads = _heads_from_layout(name_or_path, revision)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, revision=revision,
                                                  trust_remote_code=trust_remote_code)
        encoder = _load_encoder(name_or_path, revision, trust_remote_code)
        _freeze_unused_pooler(encoder)
        hidden_size = encoder.config.hidden_size
        modules: dict[str, Head] = {}
        configs: list[dict[str, Any]] = []
        for entry in heads:
            params = {k: v for k, v in dict(entry).items() if k != "name"}
            name = entry.get("name")
            if name in modules:
                raise BgekitError(f"model.heads: head '{name}' is listed twice; each head appears once")
            spec = registry.get("head", name)
            try:
                head = spec.create(hidden_size, **params)
            except (TypeError, ValueError) as err:
                raise BgekitError(f"model.heads: cannot build head '{name}' with {params}: {err}") from err
            if not isinstance(head, Head):
                raise BgekitError(f"head plugin '{name}' returned {type(head).__name__}, not a bgekit Head")
            cls._load_head_weights(name, head, name_or_path, revision)
            modules[name] = head
            configs.append({"name": name, **spec.defaults(), **params})
        model = cls(encoder, tokenizer, modules, configs)
        model.carried_head_files = _unselected_head_files(name_or_path, revision, modules)
        return model

    @staticmethod
    def _load_head_weights(name: str, head: Head, name_or_path: str, revision: str | None) -> None:
        if head.weights_file is None or head.module_for_weights is None:
            return
        path = flag_layout.resolve_file(name_or_path, head.weights_file, revision)
        if path is None:
            flag_layout.warn_random_head(name, head.weights_file, name_or_path)
            return
        state = flag_layout.load_linear_state(path)
        try:
            head.module_for_weights.load_state_dict(state)
        except RuntimeError as err:
            raise BgekitError(
                f"{path} does not fit the '{name}' head ({err}); check the head's parameters "
                "(e.g. colbert_dim) against the saved model"
            ) from err
        logger.info("loaded the '%s' head from %s", name, path)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Encoder (safetensors), tokenizer, each head's FlagEmbedding file, ``bgekit_heads.json``, and (with
        a dense head) the sentence-transformers files, so ``SentenceTransformer(directory)`` loads it too."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        flag_layout.make_tokenizer_config_portable(out)
        for head in self.heads.values():
            if head.weights_file is not None and head.module_for_weights is not None:
                flag_layout.save_linear_state(head.module_for_weights, out / head.weights_file)
        for filename, source in self.carried_head_files.items():
            if filename not in {h.weights_file for h in self.heads.values()}:
                flag_layout.copy_file_atomically(source, out / filename)
        with atomic_write(out / flag_layout.HEADS_FILE) as fh:
            fh.write(json.dumps(self.head_configs, indent=2))
        _write_sentence_transformers_layout(self, out)

    def gradient_checkpointing_enable(self) -> None:
        """Recompute encoder activations in the backward pass (transformers 5 calls it
        activation checkpointing; older releases gradient checkpointing)."""
        options = {"use_reentrant": False}
        if hasattr(self.encoder, "activation_checkpointing_enable"):
            self.encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
        else:
            self.encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.hidden_size)

    # -- computing ---------------------------------------------------------
    def represent(self, features: dict[str, torch.Tensor], heads: Iterable[str] | None = None) -> dict[str, Any]:
        """Head name -> that head's representation of a tokenized batch."""
        names = list(self.heads) if heads is None else list(heads)
        input_ids, attention_mask = features["input_ids"], features["attention_mask"]
        hidden = self.encoder(**features, return_dict=True).last_hidden_state
        lexical = attention_mask.bool() & ~torch.isin(input_ids, self.special_token_ids)
        batch = TokenBatch(input_ids=input_ids, attention_mask=attention_mask, lexical_mask=lexical)
        return {name: self.heads[name].represent(hidden, batch) for name in names}

    def forward(self, queries: dict[str, torch.Tensor] | None = None,
                passages: dict[str, torch.Tensor] | None = None, cross_device: bool = False, *,
                features: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
        """Head name -> (Q, P) raw scores of every query against every passage.

        ``forward(features=batch)`` instead returns head name -> that head's
        representation of one tokenized batch (:meth:`represent`): GradCache
        (:mod:`bgekit.train.gradcache`) forwards its chunks this way, so they
        go through a DDP wrapper's ``__call__`` and its gradient hooks, then
        scores them with :meth:`score_representations`.
        """
        if features is not None:
            return self.represent(features)
        if queries is None or passages is None:
            raise TypeError("Embedder.forward takes queries and passages, or features=")
        return self.score_representations(self.represent(queries), self.represent(passages), cross_device)

    def concat_representations(self, chunks: list[dict[str, Any]]) -> dict[str, Any]:
        """Head name -> one representation of a batch's chunks (each head's :meth:`Head.concat`)."""
        return {name: self.heads[name].concat([chunk[name] for chunk in chunks]) for name in chunks[0]}

    def score_representations(self, q_reps: dict[str, Any], p_reps: dict[str, Any],
                              cross_device: bool = False) -> dict[str, torch.Tensor]:
        """Head name -> (Q, P) raw scores of the queries' against the passages' representations.

        With ``cross_device`` every gatherable head (dense, sparse, colbert)
        scores this rank's queries against every rank's passages, this
        rank's at column offset ``rank * local P``; gradients flow back to
        the rank each passage came from (:mod:`bgekit.models.distributed`).
        A head that is not gatherable scores local passages only.
        """
        scores: dict[str, torch.Tensor] = {}
        for name, head in self.heads.items():
            if name not in q_reps or name not in p_reps:
                continue
            p_rep = p_reps[name]
            if cross_device and head.gatherable:
                p_rep = head.gather(p_rep)
            scores[name] = head.score(q_reps[name], p_rep)
        return scores

    @torch.no_grad()
    def encode(self, texts: list[str], *, is_query: bool = False, batch_size: int = 32, max_length: int = 512,
               heads: list[str] | None = None, instruction: str | None = None,
               progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Encode texts for retrieval; results come back in input order.

        ``dense``: (N, H) float32 array; ``sparse``: list of {token id string: weight};
        ``colbert``: list of (L_i, D) arrays. Texts are batched longest first to cut
        padding. ``instruction`` defaults to the model's query or passage
        instruction; ``progress(n)`` is called after each batch with its size.
        """
        names = list(self.heads) if heads is None else list(heads)
        unknown = [n for n in names if n not in self.heads]
        if unknown:
            raise BgekitError(f"this model has no head {', '.join(unknown)}; it has: {', '.join(self.heads)}")
        if batch_size < 1:
            raise BgekitError(f"batch_size must be at least 1, not {batch_size}")
        if instruction is None:
            instruction = self.query_instruction if is_query else self.passage_instruction
        prompts = [instruction + text for text in texts]
        tokenized = self.tokenizer(prompts, truncation=True, max_length=max_length) if prompts else {"input_ids": []}
        rows = [{k: tokenized[k][i] for k in tokenized} for i in range(len(prompts))]
        order = np.argsort([-len(row["input_ids"]) for row in rows], kind="stable")
        per_head: dict[str, list[Any]] = {name: [None] * len(prompts) for name in names}
        was_training = self.training
        self.eval()
        try:
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                features = self.tokenizer.pad([rows[i] for i in chunk], padding=True, return_tensors="pt")
                features = {k: v.to(self.device) for k, v in features.items()}
                reps = self.represent(features, heads=names)
                for name in names:
                    for index, item in zip(chunk, self.heads[name].export(reps[name])):
                        per_head[name][index] = item
                if progress is not None:
                    progress(len(chunk))
        finally:
            self.train(was_training)
        return {name: self.heads[name].collate(items) for name, items in per_head.items()}


def _write_sentence_transformers_layout(model: Embedder, out: Path) -> None:
    """modules.json and friends for the dense head (see :mod:`bgekit.models.st_layout`); none without one."""
    from bgekit.models.st_layout import write_sentence_transformers_files

    if "dense" not in model.heads:
        return
    dense = model.heads["dense"]
    positions = getattr(model.encoder.config, "max_position_embeddings", None)
    max_length = model.passage_max_length
    if positions:  # RoBERTa-style encoders reserve two positions for the padding offset
        max_length = min(max_length, positions - 2 if positions > 2 and getattr(
            model.encoder.config, "model_type", "") in {"xlm-roberta", "roberta", "camembert"} else positions)
    write_sentence_transformers_files(out, hidden_size=model.hidden_size, pooling=dense.pooling,
                                      normalize=dense.normalize, max_length=int(max_length),
                                      query_instruction=model.query_instruction,
                                      passage_instruction=model.passage_instruction)
