"""GradCache: a micro-batch of any size in the memory of one chunk.

Gao, Zhang, Han and Callan, 2021. Scaling Deep Contrastive Learning Batch
Size under Memory Limited Setup. RepL4NLP (arXiv:2101.06983).

A contrastive loss couples every text of a batch, so a plain step keeps the
activations of the whole batch until the backward pass. GradCache splits it:

1. each chunk of ``chunk_size`` texts is forwarded without a graph; its
   representations are kept (small: one vector, weight or token vector per
   text) with the random-number state it started from;
2. the full-batch loss (any loss: in-batch and cross-device negatives,
   self-distillation, teacher scores) runs on those representations made
   leaf tensors, and its backward pass gives the gradient of the loss with
   respect to each representation;
3. each chunk is forwarded again, with a graph and the same random state
   (so dropout draws the same masks), and back-propagated with its cached
   gradients: ``torch.autograd.backward(representations, gradients)``.
   The token-embedding table is the exception: its dense (vocabulary x
   hidden) gradient is written once for all chunks, in the last chunk's
   backward pass (:class:`DeferredEmbeddingGradient`).

The parameter gradients are those of the full-batch step; peak activation
memory is one chunk's; the price is one extra forward pass. The second
forward goes through the (possibly DDP-wrapped) module's ``__call__``, so
DDP's hooks run; with ``no_sync`` given, gradients are all-reduced only in
the backward of the last chunk of the micro-batch that ``sync`` marks.

The core (:func:`cached_step`) knows nothing of embedders; two adapters say
what a chunk is and what the loss is: :class:`EmbedderChunks` (chunks of
queries and of passages, the recipe's embedder losses on every head's
scores) and :class:`RerankerChunks` (chunks of (query, passage) pairs, their
logits cached, the reranker losses on the full (Q, G) groups); the joint
task's :class:`~bgekit.train.joint_chunks.JointChunks` combines the two.

The trainer (``Trainer._micro_step``) calls :func:`cached_step` when
``train.chunk_size`` is set; outside it, the same engine is driven as
(``chunk_size`` 0 runs the plain, unchunked step through the same call)::

    engine = GradCache(config.chunk_size, EmbedderChunks(losses, config.negatives_cross_device),
                       autocast=self._autocast)          # RerankerChunks(losses) for the reranker
    ...
    loss, parts = engine.micro_step(wrapped, batch, step, scale=1.0 / accumulation, scaler=scaler,
                                    no_sync=wrapped.no_sync if distributed else None, sync=last_micro)

(without the trainer's own ``no_sync`` block around it: the engine decides
which chunk synchronises). It returns what ``Trainer._micro_step`` returns:
the unscaled loss, detached, and its named float parts.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator, Protocol, Sequence

import torch

from bgekit.errors import BgekitError
from bgekit.train.loss_terms import weighted_loss_sum

Features = dict[str, torch.Tensor]
LossAndParts = tuple[torch.Tensor, dict[str, float]]


# -- random state --------------------------------------------------------------
def _device_module(device: torch.device) -> Any:
    """The module torch keeps ``device``'s random state in (``torch.cuda``, ``torch.npu`` once torch_npu is
    imported, ...); None when it has none of its own (a CPU: its state is ``torch.get_rng_state()``)."""
    module = getattr(torch, device.type, None)
    return module if module is not None and hasattr(module, "get_rng_state") else None


@dataclass
class RandomState:
    """The CPU and accelerator random states a chunk's forward pass started from."""

    cpu: torch.Tensor
    device: torch.device
    accelerator: torch.Tensor | None

    @classmethod
    def capture(cls, device: torch.device) -> "RandomState":
        module = _device_module(device)
        accelerator = module.get_rng_state(device) if module is not None else None
        return cls(torch.get_rng_state(), device, accelerator)

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        """Run the block from this state, then put the random streams back where they were (what
        ``torch.random.fork_rng`` does, for this one device, whatever its type)."""
        now = RandomState.capture(self.device)
        self.restore()
        try:
            yield
        finally:
            now.restore()

    def restore(self) -> None:
        """Put the random streams back to this state for good (a step retried after running out of memory)."""
        torch.set_rng_state(self.cpu)
        module = _device_module(self.device)
        if module is not None:
            module.set_rng_state(self.accelerator, self.device)


# -- chunks --------------------------------------------------------------------
def split_features(features: Features, chunk_size: int) -> list[Features]:
    """Rows of a tokenized batch in chunks of ``chunk_size``, each cut to its own longest text.

    Trailing columns that are padding in every row of a chunk are dropped
    (right padding only), so a chunk of short texts computes short sequences.
    """
    mask = features["attention_mask"]
    chunks = []
    for start in range(0, mask.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        chunk_mask = mask[rows]
        length = int(chunk_mask.sum(1).max()) if chunk_mask.numel() else 0
        right_padded = length > 0 and not bool(chunk_mask[:, length:].any())
        cut = slice(None, length) if right_padded else slice(None)
        chunks.append({k: (v[rows, cut] if v.dim() == 2 else v[rows]) for k, v in features.items()})
    return chunks


class ChunkedTask(Protocol):
    """What :func:`cached_step` needs to know about a task's batches and model."""

    def chunks(self, batch: Any, chunk_size: int) -> list[Any]:
        """The inputs the model is forwarded on, one chunk each, in a fixed order."""

    def forward(self, wrapped: torch.nn.Module, chunk: Any) -> Any:
        """A chunk's representation, computed through ``wrapped.__call__``."""

    def tensors(self, model: torch.nn.Module, rep: Any) -> list[torch.Tensor]:
        """The differentiable tensors of a representation, in a fixed order."""

    def with_tensors(self, model: torch.nn.Module, rep: Any, tensors: Sequence[torch.Tensor]) -> Any:
        """The representation with its tensors replaced."""

    def loss(self, model: torch.nn.Module, batch: Any, reps: list[Any], step: int) -> LossAndParts:
        """The full-batch loss from every chunk's representation."""

    def plain_loss(self, wrapped: torch.nn.Module, batch: Any, step: int) -> LossAndParts:
        """The unchunked forward pass and loss (``chunk_size`` 0)."""

    def texts(self, batch: Any) -> int:
        """Texts (or pairs) the model is forwarded on for ``batch``: the chunk that would not split it."""


def unwrap(wrapped: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP (or similar) wrapper."""
    return getattr(wrapped, "module", wrapped)


def input_embeddings(model: torch.nn.Module) -> torch.nn.Embedding | None:
    """The trainable token-embedding table of an Embedder (``.encoder``) or CrossEncoder (``.model``)."""
    for candidate in (model, getattr(model, "encoder", None), getattr(model, "model", None)):
        get = getattr(candidate, "get_input_embeddings", None)
        table = get() if callable(get) else None
        if isinstance(table, torch.nn.Embedding) and table.weight.requires_grad:
            return table
    return None


def embedding_tables(model: torch.nn.Module) -> list[torch.nn.Embedding]:
    """The trainable token-embedding tables of ``model``: its own ``input_embedding_tables()`` when it holds
    several encoders (the joint task's retriever and reranker), else :func:`input_embeddings`'s one."""
    own = getattr(model, "input_embedding_tables", None)
    if callable(own):
        return list(own())
    table = input_embeddings(model)
    return [table] if table is not None else []


class DeferredEmbeddingGradient:
    """One gradient per embedding table for all chunks instead of one per chunk.

    Back-propagating a chunk into a token-embedding table writes a dense
    (vocabulary x hidden) gradient: for XLM-R's 250002 x 1024 table, 1 GB per
    chunk, which made small chunks several times slower on a CPU. While
    active, each table's output is cut from the graph (a leaf whose gradient
    is kept); :meth:`pending` then gives, per table, one lookup of every
    deferred token with the gradients to back-propagate through it, for the
    last chunk's backward pass (so DDP sees the tables' gradients in its
    synchronising pass).
    """

    def __init__(self, tables: Sequence[torch.nn.Embedding]) -> None:
        self.tables = list(tables)
        self.ids: list[list[torch.Tensor]] = [[] for _ in self.tables]
        self.outputs: list[list[torch.Tensor]] = [[] for _ in self.tables]

    def _cutter(self, index: int) -> Callable[..., torch.Tensor]:
        def cut(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            if not torch.is_grad_enabled():
                return output
            leaf = output.detach().requires_grad_()
            self.ids[index].append(inputs[0])
            self.outputs[index].append(leaf)
            return leaf

        return cut

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        handles = [table.register_forward_hook(self._cutter(i)) for i, table in enumerate(self.tables)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def pending(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``([lookup of every deferred token, per table], [its gradient])``; empty lists when none."""
        lookups, grads = [], []
        for index, table in enumerate(self.tables):
            pairs = [(ids.reshape(-1), out.grad.reshape(-1, out.shape[-1]))
                     for ids, out in zip(self.ids[index], self.outputs[index]) if out.grad is not None]
            self.ids[index], self.outputs[index] = [], []
            if pairs:
                lookup = table(torch.cat([ids for ids, _ in pairs]))
                lookups.append(lookup)
                grads.append(torch.cat([grad for _, grad in pairs]).to(lookup.dtype))
        return lookups, grads


def sync_context(no_sync: Callable[[], ContextManager] | None, synchronise: bool) -> ContextManager:
    return contextlib.nullcontext() if synchronise or no_sync is None else no_sync()


def cached_step(wrapped: torch.nn.Module, task: ChunkedTask, batch: Any, step: int, *, chunk_size: int,
                autocast: Callable[[], ContextManager] = contextlib.nullcontext, scale: float = 1.0,
                scaler: Any = None, no_sync: Callable[[], ContextManager] | None = None,
                sync: bool = True) -> LossAndParts:
    """One micro-batch by GradCache: parameter gradients (times ``scale``, and the scaler's
    factor) accumulate in ``.grad`` exactly as ``(scale * loss).backward()`` would leave them.

    ``no_sync`` is the DDP wrapper's ``no_sync``; every chunk's backward runs
    under it except the last one's when ``sync`` (the last micro-batch of the
    optimiser step). Returns the unscaled loss (detached) and its parts.
    """
    model = unwrap(wrapped)
    device = next(model.parameters()).device
    chunks = task.chunks(batch, chunk_size)

    # pass 1: representations without a graph, and each chunk's random state
    states, reps = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(RandomState.capture(device))
            with autocast():
                reps.append(task.forward(wrapped, chunk))

    # the full-batch loss on leaf copies, and its gradient with respect to each representation
    leaves = [[t.detach().requires_grad_(t.is_floating_point()) for t in task.tensors(model, rep)] for rep in reps]
    leaf_reps = [task.with_tensors(model, rep, ts) for rep, ts in zip(reps, leaves)]
    with autocast():
        total, parts = task.loss(model, batch, leaf_reps, step)
    loss = total.float() * scale
    if scaler is not None:
        loss = scaler.scale(loss)
    flat = [t for ts in leaves for t in ts if t.requires_grad]
    grads = iter(torch.autograd.grad(loss, flat, allow_unused=True))
    cached = [[next(grads) if t.requires_grad else None for t in ts] for ts in leaves]
    value = total.detach().float()
    del reps, leaf_reps, leaves, loss, total, grads  # the loss graph holds the leaves: free them before pass 2

    # pass 2: each chunk again with a graph and the same dropout masks, back-propagating its cached gradients;
    # the token-embedding table's gradient is taken once, in the last chunk's backward pass
    tables = embedding_tables(model)
    deferred = DeferredEmbeddingGradient(tables) if tables else None
    for index, (chunk, state) in enumerate(zip(chunks, states)):
        last = index == len(chunks) - 1
        chunk_grads, cached[index] = cached[index], None
        with sync_context(no_sync, sync and last):
            cut = deferred.active() if deferred is not None and not last else contextlib.nullcontext()
            with state.replay(), cut:
                with autocast():
                    rep = task.forward(wrapped, chunk)
            pairs = [(t, g) for t, g in zip(task.tensors(model, rep), chunk_grads) if g is not None]
            if last and deferred is not None:
                lookups, lookup_grads = deferred.pending()
                pairs += list(zip(lookups, lookup_grads))
            if pairs:
                torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
            elif last:  # nothing reached the loss; keep DDP's reducer in step
                torch.autograd.backward(sum(t.sum() * 0.0 for t in task.tensors(model, rep)))
    return value, parts


@dataclass(frozen=True)
class PlainLoss:
    """All :func:`plain_step` needs of a task: its unchunked loss (the trainer's ``batch_loss``)."""

    plain_loss: Callable[[torch.nn.Module, Any, int], LossAndParts]


def plain_step(wrapped: torch.nn.Module, task: ChunkedTask | PlainLoss, batch: Any, step: int, *,
               autocast: Callable[[], ContextManager] = contextlib.nullcontext, scale: float = 1.0,
               scaler: Any = None, no_sync: Callable[[], ContextManager] | None = None,
               sync: bool = True) -> LossAndParts:
    """The unchunked micro-step (what the trainer does today): forward, loss, one backward."""
    with sync_context(no_sync, sync):
        with autocast():
            total, parts = task.plain_loss(wrapped, batch, step)
        loss = total.float() * scale
        (scaler.scale(loss) if scaler is not None else loss).backward()
    return total.detach().float(), parts


class GradCache:
    """The single entry point the trainer calls per micro-batch (see the module docstring).

    ``chunk_size`` is ``train.chunk_size``: texts (or pairs) per forward
    chunk; 0 runs the plain step. ``autocast`` makes the recipe's autocast
    context (a fresh one per call).
    """

    def __init__(self, chunk_size: int, task: ChunkedTask,
                 autocast: Callable[[], ContextManager] = contextlib.nullcontext) -> None:
        if chunk_size < 0:
            raise BgekitError(f"train.chunk_size must be 0 (off) or a positive number of texts, not {chunk_size}")
        self.chunk_size = chunk_size
        self.task = task
        self.autocast = autocast

    def micro_step(self, wrapped: torch.nn.Module, batch: Any, step: int, *, scale: float = 1.0,
                   scaler: Any = None, no_sync: Callable[[], ContextManager] | None = None,
                   sync: bool = True) -> LossAndParts:
        run = cached_step if self.chunk_size > 0 else plain_step
        extra = {"chunk_size": self.chunk_size} if self.chunk_size > 0 else {}
        return run(wrapped, self.task, batch, step, autocast=self.autocast, scale=scale, scaler=scaler,
                   no_sync=no_sync, sync=sync, **extra)


# -- adapters --------------------------------------------------------------------
def _rank_offset(cross_device: bool, local_passages: int) -> int:
    """Column of this rank's first passage in a cross-device score matrix."""
    import torch.distributed as dist

    if cross_device and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist.get_rank() * local_passages
    return 0


class EmbedderChunks:
    """GradCache for :class:`~bgekit.models.embedder.Embedder` on a :class:`~bgekit.train.collate.TrainBatch`.

    Queries and passages are chunked separately, ``chunk_size`` texts each;
    a chunk's representation is every head's (``Embedder.forward(features=...)``).
    The loss is the recipe's: ``fn(scores, targets, group_size,
    teacher_scores=..., step=...)`` per loss term, weighted and summed, on
    the heads' scores of the whole batch (``Embedder.score_representations``,
    gathered across ranks with ``cross_device``).
    """

    def __init__(self, losses: Sequence[Any], cross_device: bool = False) -> None:
        self.losses = list(losses)
        self.cross_device = cross_device
        self._query_chunks = 0

    def chunks(self, batch: Any, chunk_size: int) -> list[Features]:
        queries = split_features(batch.queries, chunk_size)
        self._query_chunks = len(queries)
        return queries + split_features(batch.passages, chunk_size)

    def forward(self, wrapped: torch.nn.Module, chunk: Features) -> dict[str, Any]:
        return wrapped(features=chunk)

    def tensors(self, model: torch.nn.Module, rep: dict[str, Any]) -> list[torch.Tensor]:
        return [t for name in model.heads if name in rep for t in model.heads[name].tensors(rep[name])]

    def with_tensors(self, model: torch.nn.Module, rep: dict[str, Any],
                     tensors: Sequence[torch.Tensor]) -> dict[str, Any]:
        out, position = {}, 0
        for name in model.heads:
            if name not in rep:
                continue
            count = len(model.heads[name].tensors(rep[name]))
            out[name] = model.heads[name].with_tensors(rep[name], tensors[position:position + count])
            position += count
        return out

    def _targets(self, batch: Any, device: torch.device) -> torch.Tensor:
        targets = torch.arange(batch.num_queries, device=device) * batch.group_size
        return targets + _rank_offset(self.cross_device, batch.num_passages)

    def _losses(self, scores: dict[str, torch.Tensor], batch: Any, step: int) -> LossAndParts:
        targets = self._targets(batch, next(iter(scores.values())).device)
        return weighted_loss_sum(self.losses, lambda fn: fn(scores, targets, batch.group_size,
                                                            teacher_scores=batch.teacher_scores, step=step))

    def scores(self, model: torch.nn.Module, reps: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The heads' score matrices of the whole batch, from the representations of :meth:`chunks`' chunks."""
        split = self._query_chunks
        queries = model.concat_representations(reps[:split])
        passages = model.concat_representations(reps[split:])
        return model.score_representations(queries, passages, self.cross_device)

    def loss(self, model: torch.nn.Module, batch: Any, reps: list[dict[str, Any]], step: int) -> LossAndParts:
        return self._losses(self.scores(model, reps), batch, step)

    def plain_loss(self, wrapped: torch.nn.Module, batch: Any, step: int) -> LossAndParts:
        return self._losses(wrapped(batch.queries, batch.passages, cross_device=self.cross_device), batch, step)

    def texts(self, batch: Any) -> int:
        return batch.num_queries + batch.num_passages


class RerankerChunks:
    """GradCache for the cross-encoder on a :class:`~bgekit.train.reranker_task.RerankBatch`.

    Its pairs (group after group) are chunked, ``chunk_size`` pairs each; a
    chunk's representation is its logits; the reranker losses run on the
    (Q, G) logits of the whole batch: ``fn(logits, labels, teacher_scores=..., step=...)``.
    """

    def __init__(self, losses: Sequence[Any]) -> None:
        self.losses = list(losses)

    def chunks(self, batch: Any, chunk_size: int) -> list[Features]:
        return split_features(batch.features, chunk_size)

    def forward(self, wrapped: torch.nn.Module, chunk: Features) -> torch.Tensor:
        return wrapped(chunk)

    def tensors(self, model: torch.nn.Module, rep: torch.Tensor) -> list[torch.Tensor]:
        return [rep]

    def with_tensors(self, model: torch.nn.Module, rep: torch.Tensor, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        return tensors[0]

    def _losses(self, logits: torch.Tensor, batch: Any, step: int) -> LossAndParts:
        logits = logits.view(batch.num_queries, batch.group_size)
        return weighted_loss_sum(self.losses, lambda fn: fn(logits, batch.labels,
                                                            teacher_scores=batch.teacher_scores, step=step))

    def loss(self, model: torch.nn.Module, batch: Any, reps: list[torch.Tensor], step: int) -> LossAndParts:
        return self._losses(torch.cat(reps), batch, step)

    def plain_loss(self, wrapped: torch.nn.Module, batch: Any, step: int) -> LossAndParts:
        return self._losses(wrapped(batch.features), batch, step)

    def texts(self, batch: Any) -> int:
        return batch.num_passages
