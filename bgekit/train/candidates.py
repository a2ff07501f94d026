"""Candidate lists for joint training: hard negatives the reranker has denoised (RocketQAv2).

A retriever's top candidates that are not labelled positive are often
unlabelled positives; training on them as negatives teaches the wrong thing.
RocketQAv2 keeps a candidate as a hard negative only while the reranker
finds it confidently irrelevant. :func:`denoise_negatives` does that for
every example: the positive and each negative are scored with the reranker
as it is now, and a negative is dropped when the reranker prefers it to the
labelled positive, ``sigmoid(logit_negative - logit_positive) >=
max_preference``. The comparison is relative on purpose: a reranker trained
listwise (``listwise-ce``, as in joint training) only learns differences
between logits, so an absolute ``sigmoid(logit)`` says nothing about
relevance. When fewer than ``keep_at_least`` survive, the least preferred
ones are kept so every group can still be filled.

:class:`CandidateRefresher` is what the trainer calls every
``joint.refresh_every`` steps: the current retriever re-mines candidates
(through :class:`bgekit.train.refresh.NegativeRefresher`, the embedder's
``miner.refresh_every`` machinery), they are mixed with the data's own
negatives, denoised by the current reranker, and handed to the
:class:`~bgekit.train.refresh.RefreshingSampler` from the next epoch on.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bgekit.data.atomic import atomic_write
from bgekit.data.example import Example
from bgekit.train.refresh import NegativeRefresher, RefreshingSampler


@dataclasses.dataclass
class DenoiseStats:
    """How many negatives the reranker looked at, dropped, and had to keep anyway."""

    scored: int = 0
    dropped: int = 0
    kept_anyway: int = 0


def denoise_negatives(examples: Sequence[Example], reranker: Any, *, max_preference: float, keep_at_least: int,
                      batch_size: int = 32) -> tuple[list[Example], DenoiseStats]:
    """Each example with only the negatives the reranker does not prefer to its positive (see module doc)."""
    def query_of(e: Example) -> str:
        return e.query if e.prompt is None else e.prompt + e.query

    if max_preference >= 1.0:  # every preference is below 1: nothing could be dropped, so score nothing
        return list(examples), DenoiseStats(scored=0)
    pairs = [(query_of(e), p) for e in examples for p in (*e.pos, *e.neg)]
    logits = reranker.score(pairs, batch_size=batch_size) if pairs else np.zeros(0)
    stats = DenoiseStats(scored=sum(len(e.neg) for e in examples))
    out: list[Example] = []
    start = 0
    for example in examples:
        pos = logits[start:start + len(example.pos)]
        neg = logits[start + len(example.pos):start + len(example.pos) + len(example.neg)]
        start += len(example.pos) + len(example.neg)
        # the best-scored positive: a negative the reranker ranks above every positive is the suspect one
        preference = 0.5 * (1.0 + np.tanh((neg - pos.max()) / 2)) if len(pos) else np.zeros(len(neg))  # sigmoid
        kept = [i for i, p in enumerate(preference) if p < max_preference]
        if len(kept) < min(keep_at_least, len(example.neg)):
            least_preferred = [int(i) for i in np.argsort(preference, kind="stable")[:keep_at_least]]
            stats.kept_anyway += len(set(least_preferred) - set(kept))
            kept = sorted(set(kept) | set(least_preferred))
        stats.dropped += len(example.neg) - len(kept)
        neg_scores = [example.neg_scores[i] for i in kept] if example.neg_scores is not None else None
        out.append(dataclasses.replace(example, neg=[example.neg[i] for i in kept], neg_scores=neg_scores))
    return out, stats


def mix_negatives(data: Sequence[Example], mined: Sequence[Example]) -> list[Example]:
    """The data's negatives followed by the mined ones not already there (teacher scores dropped: not for all)."""
    out = []
    for own, new in zip(data, mined):
        seen = set(own.neg)
        extra = [n for n in new.neg if n not in seen]
        out.append(dataclasses.replace(own, neg=[*own.neg, *extra],
                                       neg_scores=own.neg_scores if not extra else None,
                                       pos_scores=own.pos_scores if not extra else None))
    return out


class _KeepMined:
    """Stands in for the sampler :class:`NegativeRefresher` feeds: the refresher here schedules the
    *denoised* mix itself, so the raw mined list is only taken from the refresher's return value."""

    def schedule(self, examples: Sequence[Example], from_epoch: int, step: int) -> None:
        pass


CANDIDATES_DIR = "candidates"  # <output_dir>/candidates/step-<N>.jsonl: the denoised lists built at step N


class CandidateRefresher:
    """Re-mines with the retriever (optional), denoises with the reranker, schedules the result."""

    def __init__(self, examples: Sequence[Example], sampler: RefreshingSampler, *, max_preference: float,
                 keep_at_least: int, score_batch_size: int, miner: dict[str, Any] | None, output_dir: Any,
                 mine_batch_size: int = 64, registry: Any = None, write: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        self.examples = list(examples)
        self.sampler = sampler
        self.max_preference = max_preference
        self.keep_at_least = keep_at_least
        self.score_batch_size = score_batch_size
        self.log = log or (lambda _message: None)
        self.miner = None
        if miner is not None:
            self.miner = NegativeRefresher(self.examples, miner, _KeepMined(), output_dir,  # type: ignore[arg-type]
                                           batch_size=mine_batch_size, write=False, registry=registry)
        self.refreshes = 0
        self.last_stats = DenoiseStats()
        self.folder = Path(output_dir) / CANDIDATES_DIR
        self.write = write  # only the main process writes

    def candidates(self, models: Any, step: int, epoch: int, mine: bool = True) -> list[Example]:
        """The data's negatives, plus the current retriever's when a miner is set (and ``mine``), denoised."""
        import torch

        started = time.perf_counter()
        pool = self.examples
        mine = mine and self.miner is not None
        if mine:
            pool = mix_negatives(self.examples, self.miner(models.retriever, step, epoch))
        frozen = copy.deepcopy(models.reranker).eval()
        try:
            with torch.no_grad():
                denoised, stats = denoise_negatives(pool, frozen, max_preference=self.max_preference,
                                                    keep_at_least=self.keep_at_least,
                                                    batch_size=self.score_batch_size)
        finally:
            del frozen
        mined = " mined and" if mine else ""
        self.log(f"step {step}:{mined} denoised {stats.scored} candidates: {stats.dropped} dropped as likely "
                 f"positives (preferred to the labelled positive with probability >= {self.max_preference}), "
                 f"{stats.kept_anyway} kept only to fill groups, in {time.perf_counter() - started:.1f}s")
        self.last_stats = stats
        if self.write:  # what each list was built from, for a look at what denoising dropped
            with atomic_write(self.folder / f"step-{step}.jsonl") as handle:
                for example in denoised:
                    handle.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
        return denoised

    def __call__(self, models: Any, step: int, epoch: int) -> None:
        """The trainer's refresh hook: the new candidates are used from the next epoch."""
        self.sampler.schedule(self.candidates(models, step, epoch), from_epoch=epoch + 1, step=step)
        self.refreshes += 1
