"""Candidate lists for joint training: hard negatives the reranker has denoised (RocketQAv2).

A retriever's top candidates that are not labelled positive are often
unlabelled positives; training on them as negatives teaches the wrong thing.
RocketQAv2 keeps a candidate as a hard negative only while the reranker
finds it confidently irrelevant. :func:`denoise_negatives` does that for
every example: each negative is scored with the reranker as it is now, those
with ``sigmoid(logit) >= max_probability`` are dropped, and when fewer than
``keep_at_least`` survive the least relevant ones are kept so every group can
still be filled.

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
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bgekit.data.example import Example
from bgekit.train.refresh import NegativeRefresher, RefreshingSampler


@dataclasses.dataclass
class DenoiseStats:
    """How many negatives the reranker looked at, dropped, and had to keep anyway."""

    scored: int = 0
    dropped: int = 0
    kept_anyway: int = 0


def denoise_negatives(examples: Sequence[Example], reranker: Any, *, max_probability: float, keep_at_least: int,
                      batch_size: int = 32) -> tuple[list[Example], DenoiseStats]:
    """Each example with only the negatives the reranker scores below ``max_probability`` (see module doc)."""
    pairs = [(e.query if e.prompt is None else e.prompt + e.query, n) for e in examples for n in e.neg]
    probabilities = reranker.score(pairs, batch_size=batch_size, normalize=True) if pairs else np.zeros(0)
    stats = DenoiseStats(scored=len(pairs))
    out: list[Example] = []
    start = 0
    for example in examples:
        probs = probabilities[start:start + len(example.neg)]
        start += len(example.neg)
        kept = [i for i, p in enumerate(probs) if p < max_probability]
        if len(kept) < min(keep_at_least, len(example.neg)):
            least_relevant = [int(i) for i in np.argsort(probs, kind="stable")[:keep_at_least]]
            stats.kept_anyway += len(set(least_relevant) - set(kept))
            kept = sorted(set(kept) | set(least_relevant))
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


class CandidateRefresher:
    """Re-mines with the retriever (optional), denoises with the reranker, schedules the result."""

    def __init__(self, examples: Sequence[Example], sampler: RefreshingSampler, *, max_probability: float,
                 keep_at_least: int, score_batch_size: int, miner: dict[str, Any] | None, output_dir: Any,
                 mine_batch_size: int = 64, registry: Any = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.examples = list(examples)
        self.sampler = sampler
        self.max_probability = max_probability
        self.keep_at_least = keep_at_least
        self.score_batch_size = score_batch_size
        self.log = log or (lambda _message: None)
        self.miner = None
        if miner is not None:
            self.miner = NegativeRefresher(self.examples, miner, _KeepMined(), output_dir,  # type: ignore[arg-type]
                                           batch_size=mine_batch_size, write=False, registry=registry)
        self.refreshes = 0

    def candidates(self, models: Any, step: int, epoch: int) -> list[Example]:
        """The data's negatives, plus the current retriever's when a miner is set, denoised."""
        import torch

        started = time.perf_counter()
        pool = self.examples
        if self.miner is not None:
            pool = mix_negatives(self.examples, self.miner(models.retriever, step, epoch))
        frozen = copy.deepcopy(models.reranker).eval()
        try:
            with torch.no_grad():
                denoised, stats = denoise_negatives(pool, frozen, max_probability=self.max_probability,
                                                    keep_at_least=self.keep_at_least,
                                                    batch_size=self.score_batch_size)
        finally:
            del frozen
        mined = " re-mined and" if self.miner is not None else ""
        self.log(f"step {step}:{mined} denoised {stats.scored} candidates: {stats.dropped} dropped as likely "
                 f"positives (reranker probability >= {self.max_probability}), {stats.kept_anyway} kept only to "
                 f"fill groups, in {time.perf_counter() - started:.1f}s")
        return denoised

    def __call__(self, models: Any, step: int, epoch: int) -> None:
        """The trainer's refresh hook: the new candidates are used from the next epoch."""
        self.sampler.schedule(self.candidates(models, step, epoch), from_epoch=epoch + 1, step=step)
        self.refreshes += 1
