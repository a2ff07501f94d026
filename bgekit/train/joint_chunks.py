"""GradCache for the ``joint`` task: the retriever's and the reranker's chunks of one :class:`JointBatch`.

A joint micro-batch is forwarded twice over: the retriever on its queries and
passages, the reranker on the same lists as (query, passage) pairs. Its loss
(:func:`bgekit.train.joint_task.joint_loss`) couples the two, so
:class:`JointChunks` caches both models' representations: the retriever's
query and passage chunks (``chunk_size`` texts, as :class:`~bgekit.train.gradcache.EmbedderChunks`)
and the reranker's pair chunks (``chunk_size`` pairs, as
:class:`~bgekit.train.gradcache.RerankerChunks`); the loss runs once on their concatenation.

Each chunk says which model runs it (:class:`JointChunk`), and goes through
the wrapped model's ``__call__`` (``JointModel.forward(chunk=...)``) so DDP's
hooks see every re-forward. The last chunk holds the retriever's last passage
chunk *and* the reranker's last pair chunk: it is the one that runs outside
``no_sync`` (the synchronising backward pass), and DDP (without
``find_unused_parameters``) needs every parameter of the module to receive
its gradient in that pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from bgekit.train.gradcache import EmbedderChunks, Features, LossAndParts, RerankerChunks

#: ``(retriever scores per head, (Q, G) reranker logits, batch, step) -> (loss, parts)``
JointLoss = Callable[[dict[str, torch.Tensor], torch.Tensor, Any, int], LossAndParts]


@dataclass
class JointChunk:
    """Inputs of one forward pass: a retriever chunk (queries or passages), a reranker chunk of pairs, or both."""

    retriever: Features | None = None
    reranker: Features | None = None


@dataclass
class JointRep:
    """A chunk's representation: the retriever heads' (or None) and the reranker's logits (or None)."""

    retriever: dict[str, Any] | None = None
    reranker: torch.Tensor | None = None


class JointChunks:
    """GradCache for :class:`~bgekit.train.joint_task.JointModel` on a :class:`~bgekit.train.joint_task.JointBatch`.

    ``loss`` is the joint loss on the whole batch's retriever scores and
    reranker logits (the same function the unchunked step uses after
    ``JointModel.forward(batch)``), so chunked and plain steps share one loss.
    The retriever's chunks (queries, then passages) and the reranker's are
    split, and their representations' tensors taken apart and put back, by an
    :class:`~bgekit.train.gradcache.EmbedderChunks` and a
    :class:`~bgekit.train.gradcache.RerankerChunks` held here (their own losses
    unused).
    """

    def __init__(self, loss: JointLoss) -> None:
        self.joint_loss = loss
        self.retriever = EmbedderChunks([])
        self.reranker = RerankerChunks([])

    def chunks(self, batch: Any, chunk_size: int) -> list[JointChunk]:
        retriever = [JointChunk(retriever=c) for c in self.retriever.chunks(batch.retrieval, chunk_size)]
        reranker = [JointChunk(reranker=c) for c in self.reranker.chunks(batch.rerank, chunk_size)]
        # the synchronising (last) chunk reaches both models' parameters
        last = JointChunk(retriever=retriever.pop().retriever, reranker=reranker.pop().reranker)
        return retriever + reranker + [last]

    def forward(self, wrapped: torch.nn.Module, chunk: JointChunk) -> JointRep:
        return wrapped(chunk=chunk)

    def tensors(self, model: torch.nn.Module, rep: JointRep) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        if rep.retriever is not None:
            out += self.retriever.tensors(model.retriever, rep.retriever)
        if rep.reranker is not None:
            out += self.reranker.tensors(model.reranker, rep.reranker)
        return out

    def with_tensors(self, model: torch.nn.Module, rep: JointRep, tensors: Sequence[torch.Tensor]) -> JointRep:
        out, position = JointRep(), 0
        if rep.retriever is not None:
            position = len(self.retriever.tensors(model.retriever, rep.retriever))
            out.retriever = self.retriever.with_tensors(model.retriever, rep.retriever, tensors[:position])
        if rep.reranker is not None:
            out.reranker = self.reranker.with_tensors(model.reranker, rep.reranker, tensors[position:])
        return out

    def loss(self, model: torch.nn.Module, batch: Any, reps: list[JointRep], step: int) -> LossAndParts:
        scores = self.retriever.scores(model.retriever, [r.retriever for r in reps if r.retriever is not None])
        # pair chunks in batch order: the last (combined) chunk holds the final pairs
        logits = torch.cat([r.reranker for r in reps if r.reranker is not None])
        return self.joint_loss(scores, logits.view(batch.num_queries, batch.group_size), batch, step)

    def plain_loss(self, wrapped: torch.nn.Module, batch: Any, step: int) -> LossAndParts:
        scores, logits = wrapped(batch)
        return self.joint_loss(scores, logits, batch, step)

    def texts(self, batch: Any) -> int:
        """The larger of the retriever's texts and the reranker's pairs: a chunk this big splits neither."""
        return max(batch.retrieval.num_queries + batch.retrieval.num_passages, batch.rerank.num_passages)
