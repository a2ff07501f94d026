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

from bgekit.train.gradcache import Features, LossAndParts, split_features

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
    """

    def __init__(self, loss: JointLoss) -> None:
        self.joint_loss = loss
        self._query_chunks = 0

    def chunks(self, batch: Any, chunk_size: int) -> list[JointChunk]:
        queries = split_features(batch.retrieval.queries, chunk_size)
        passages = split_features(batch.retrieval.passages, chunk_size)
        pairs = split_features(batch.rerank.features, chunk_size)
        self._query_chunks = len(queries)
        retriever = [JointChunk(retriever=c) for c in queries + passages]
        reranker = [JointChunk(reranker=c) for c in pairs]
        # the synchronising (last) chunk reaches both models' parameters
        last = JointChunk(retriever=retriever.pop().retriever, reranker=reranker.pop().reranker)
        return retriever + reranker + [last]

    def forward(self, wrapped: torch.nn.Module, chunk: JointChunk) -> JointRep:
        return wrapped(chunk=chunk)

    @staticmethod
    def _heads(model: torch.nn.Module) -> Any:
        return model.retriever.heads

    def tensors(self, model: torch.nn.Module, rep: JointRep) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        if rep.retriever is not None:
            heads = self._heads(model)
            out += [t for name in heads if name in rep.retriever for t in heads[name].tensors(rep.retriever[name])]
        if rep.reranker is not None:
            out.append(rep.reranker)
        return out

    def with_tensors(self, model: torch.nn.Module, rep: JointRep, tensors: Sequence[torch.Tensor]) -> JointRep:
        out, position = JointRep(), 0
        if rep.retriever is not None:
            out.retriever = {}
            for name, head in self._heads(model).items():
                if name not in rep.retriever:
                    continue
                count = len(head.tensors(rep.retriever[name]))
                out.retriever[name] = head.with_tensors(rep.retriever[name], tensors[position:position + count])
                position += count
        if rep.reranker is not None:
            out.reranker = tensors[position]
        return out

    def loss(self, model: torch.nn.Module, batch: Any, reps: list[JointRep], step: int) -> LossAndParts:
        retriever = [r.retriever for r in reps if r.retriever is not None]
        split = self._query_chunks
        queries = model.retriever.concat_representations(retriever[:split])
        passages = model.retriever.concat_representations(retriever[split:])
        scores = model.retriever.score_representations(queries, passages)
        # pair chunks in batch order: the last (combined) chunk holds the final pairs
        logits = torch.cat([r.reranker for r in reps if r.reranker is not None])
        return self.joint_loss(scores, logits.view(batch.num_queries, batch.group_size), batch, step)

    def plain_loss(self, wrapped: torch.nn.Module, batch: Any, step: int) -> LossAndParts:
        scores, logits = wrapped(batch)
        return self.joint_loss(scores, logits, batch, step)

    def texts(self, batch: Any) -> int:
        """The larger of the retriever's texts and the reranker's pairs: a chunk this big splits neither."""
        return max(batch.retrieval.num_queries + batch.retrieval.num_passages, batch.rerank.num_passages)
