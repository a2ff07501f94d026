"""The cross-encoder (reranker): a Hugging Face encoder with one output logit per pair.

Any ``AutoModelForSequenceClassification`` with ``num_labels=1`` works: BGE
rerankers, or a plain encoder (BERT, XLM-RoBERTa, MiniLM) whose new
classification head starts random and is fine-tuned. The directory
:meth:`CrossEncoder.save_pretrained` writes is a standard Hugging Face one
(safetensors, config, tokenizer), so ``AutoModelForSequenceClassification``,
FlagEmbedding's ``FlagReranker`` and sentence-transformers' ``CrossEncoder``
load it unchanged.

Pairs are built as FlagEmbedding's reranker does: the query is cut to its own
token budget (``query_max_length``, by default 3/4 of ``max_length``), and the
passage takes what is left of ``max_length`` after the query and the special
tokens. A long query therefore never pushes its passage out of the pair.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from bgekit.errors import BgekitError
from bgekit.models import flag_layout

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 512


def default_query_max_length(max_length: int) -> int:
    """FlagReranker's default query budget: three quarters of the pair."""
    return max_length * 3 // 4


def _load_classifier(name_or_path: str, revision: str | None, trust_remote_code: bool) -> torch.nn.Module:
    """A one-logit sequence classifier in fp32; a plain encoder gets a fresh one-logit head."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    architectures = getattr(config, "architectures", None) or []
    is_classifier = any(a.endswith("ForSequenceClassification") for a in architectures)
    if is_classifier and config.num_labels != 1:
        raise BgekitError(
            f"{name_or_path} is a classifier with {config.num_labels} labels; a reranker gives one score "
            "per pair (num_labels=1). Start from a reranker or from a plain encoder instead"
        )
    if not is_classifier:
        logger.warning("%s has no sequence-classification head: its one-logit head starts from random "
                       "weights (fine for fine-tuning, meaningless for scoring until trained)", name_or_path)
    config.num_labels = 1
    return AutoModelForSequenceClassification.from_pretrained(
        name_or_path, config=config, revision=revision, trust_remote_code=trust_remote_code,
        dtype=torch.float32)


class CrossEncoder(torch.nn.Module):
    """A sequence classifier scoring (query, passage) pairs with one logit each.

    ``max_length`` and ``query_max_length`` are the pair's token budgets used
    when a call does not give its own (set them from the recipe's ``model``
    section for training).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, max_length: int = DEFAULT_MAX_LENGTH,
                 query_max_length: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.query_max_length = query_max_length
        self._pairing = None  # a private copy of the fast tokenizer's backend, built on first use

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None,
                        trust_remote_code: bool = False, max_length: int = DEFAULT_MAX_LENGTH,
                        query_max_length: int | None = None) -> "CrossEncoder":
        """Load a reranker (directory or hub id), or a plain encoder with a new one-logit head."""
        from transformers import AutoTokenizer

        from bgekit.model_paths import resolve_model_path

        path = resolve_model_path(str(name_or_path))
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
        model = _load_classifier(path, revision, trust_remote_code)
        return cls(model, tokenizer, max_length=max_length, query_max_length=query_max_length)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Model (safetensors) and tokenizer, readable by transformers 4 and 5 alike."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        flag_layout.make_tokenizer_config_portable(out)

    def gradient_checkpointing_enable(self) -> None:
        """Recompute activations in the backward pass (transformers 5's name first)."""
        options = {"use_reentrant": False}
        if hasattr(self.model, "activation_checkpointing_enable"):
            self.model.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
        else:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- tokenizing --------------------------------------------------------
    def budgets(self, max_length: int | None = None, query_max_length: int | None = None) -> tuple[int, int]:
        """``(max_length, query_max_length)`` for a call, checked to leave the passage some room."""
        max_length = max_length or self.max_length
        query_max_length = query_max_length or self.query_max_length or default_query_max_length(max_length)
        room = max_length - self.tokenizer.num_special_tokens_to_add(pair=True)
        if not 0 < query_max_length < room:
            raise BgekitError(f"query budget {query_max_length} leaves no room for the passage in a pair of "
                              f"{max_length} tokens; lower the query max length or raise the max length")
        return max_length, query_max_length

    def tokenize_pairs(self, queries: Sequence[str], passages: Sequence[str], max_length: int | None = None,
                       query_max_length: int | None = None) -> list[dict[str, list[int]]]:
        """One unpadded row (``input_ids``, ``attention_mask``, ...) per (query, passage).

        The query keeps at most ``query_max_length`` tokens; the passage is
        cut so that the pair with its special tokens fits ``max_length``.
        """
        if len(queries) != len(passages):
            raise ValueError(f"{len(queries)} queries but {len(passages)} passages")
        max_length, query_max_length = self.budgets(max_length, query_max_length)
        if not queries:
            return []
        if getattr(self.tokenizer, "is_fast", False):
            return self._fast_pairs(queries, passages, max_length, query_max_length)
        return self._slow_pairs(queries, passages, max_length, query_max_length)

    def _fast_pairs(self, queries: Sequence[str], passages: Sequence[str], max_length: int,
                    query_max_length: int) -> list[dict[str, list[int]]]:
        """Token-exact pairs through the ``tokenizers`` backend: encode, cut, add special tokens.

        A private copy of the backend is used so the truncation and padding
        settings transformers leaves on the shared one never apply here.
        """
        if self._pairing is None:
            from tokenizers import Tokenizer

            pairing = Tokenizer.from_str(self.tokenizer.backend_tokenizer.to_str())
            pairing.no_truncation()
            pairing.no_padding()
            self._pairing = pairing
        side = getattr(self.tokenizer, "truncation_side", "right")
        specials = self.tokenizer.num_special_tokens_to_add(pair=True)
        encoded_queries = self._pairing.encode_batch(list(queries), add_special_tokens=False)
        encoded_passages = self._pairing.encode_batch(list(passages), add_special_tokens=False)
        names = set(self.tokenizer.model_input_names)
        rows = []
        for query, passage in zip(encoded_queries, encoded_passages):
            if len(query.ids) > query_max_length:
                query.truncate(query_max_length, direction=side)
            room = max_length - specials - len(query.ids)
            if len(passage.ids) > room:
                passage.truncate(room, direction=side)
            pair = self._pairing.post_process(query, passage, add_special_tokens=True)
            row = {"input_ids": pair.ids, "attention_mask": pair.attention_mask}
            if "token_type_ids" in names:
                row["token_type_ids"] = pair.type_ids
            rows.append(row)
        return rows

    def _slow_pairs(self, queries: Sequence[str], passages: Sequence[str], max_length: int,
                    query_max_length: int) -> list[dict[str, list[int]]]:
        """The same pairs for a Python (slow) tokenizer, through its ``prepare_for_model``."""
        query_ids = self.tokenizer(list(queries), add_special_tokens=False, truncation=True,
                                   max_length=query_max_length)["input_ids"]
        passage_ids = self.tokenizer(list(passages), add_special_tokens=False, truncation=True,
                                     max_length=max_length)["input_ids"]
        rows = []
        for q, p in zip(query_ids, passage_ids):
            item = self.tokenizer.prepare_for_model(q, p, truncation="only_second", max_length=max_length,
                                                    padding=False)
            rows.append({k: list(v) for k, v in item.items() if k in self.tokenizer.model_input_names})
        return rows

    def collate(self, rows: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        """Pad rows from :meth:`tokenize_pairs` into a batch of tensors."""
        return dict(self.tokenizer.pad(list(rows), padding=True, return_tensors="pt"))

    # -- computing ---------------------------------------------------------
    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """(N,) logits, one per pair of the tokenized batch."""
        return self.model(**features, return_dict=True).logits.view(-1)

    @torch.no_grad()
    def score(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 32, max_length: int | None = None,
              query_max_length: int | None = None, normalize: bool = False,
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Scores of ``(query, passage)`` pairs in input order: logits, or sigmoid(logits) with ``normalize``.

        Pairs are batched longest first to cut padding; ``progress(n)`` is
        called after each batch with its size.
        """
        if batch_size < 1:
            raise BgekitError(f"batch_size must be at least 1, not {batch_size}")
        rows = self.tokenize_pairs([q for q, _ in pairs], [p for _, p in pairs], max_length, query_max_length)
        order = np.argsort([-len(row["input_ids"]) for row in rows], kind="stable")
        scores = np.zeros(len(rows), dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                features = {k: v.to(self.device) for k, v in self.collate([rows[i] for i in chunk]).items()}
                logits = self(features).float()
                scores[chunk] = (torch.sigmoid(logits) if normalize else logits).cpu().numpy()
                if progress is not None:
                    progress(len(chunk))
        finally:
            self.train(was_training)
        return scores
