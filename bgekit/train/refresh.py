"""``miner.refresh_every``: re-mine hard negatives with the model being trained (ANCE-style).

Every N optimiser steps the trainer calls :class:`NegativeRefresher`. It mines
with a frozen copy of the current weights (``copy.deepcopy`` in eval mode,
under ``torch.no_grad``), so the training model, its optimizer state and its
dropout RNG are left as they were. The new negatives go to
:class:`RefreshingSampler`, which starts using them at the next epoch
boundary: groups within an epoch all come from one set of negatives.

Each refresh is written to ``<output_dir>/negatives/step-<N>-epoch-<E>.jsonl``
(E: the first epoch that uses it), so a resumed run (``train.resume_from``)
picks up the negatives that were in use when it stopped (:func:`restore`).
Under data parallelism every rank mines the same way (identical weights,
same seed), so all ranks switch to identical data without a broadcast.
"""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from bgekit.data.atomic import atomic_write
from bgekit.data.example import Example
from bgekit.train.sampling import GroupSampler, TrainGroup

REFRESH_DIR = "negatives"
REFRESH_FILE_RE = re.compile(r"^step-(\d+)-epoch-(\d+)\.jsonl$")


class RefreshingSampler(GroupSampler):
    """A :class:`GroupSampler` whose examples can be replaced from a given epoch on."""

    def __init__(self, examples: Sequence[Example], group_size: int, seed: int = 42,
                 log: Callable[[str], None] | None = None) -> None:
        super().__init__(examples, group_size, seed)
        self._pending: list[tuple[int, int, Sequence[Example]]] = []  # (from_epoch, mined at step, examples)
        self.active_step: int | None = None  # the refresh whose negatives are in use (None: the data's own)
        self.log = log or (lambda _message: None)

    def schedule(self, examples: Sequence[Example], from_epoch: int, step: int) -> None:
        """Use ``examples`` for every epoch from ``from_epoch``; a later schedule for the same epoch wins."""
        if len(examples) != len(self.examples):
            raise ValueError(f"refreshed data has {len(examples)} examples, the training data {len(self.examples)}")
        self._pending = [p for p in self._pending if p[0] < from_epoch] + [(from_epoch, step, examples)]

    def sample(self, index: int, epoch: int = 0) -> TrainGroup:
        while self._pending and self._pending[0][0] <= epoch:
            from_epoch, step, examples = self._pending.pop(0)
            if self._pending and self._pending[0][0] <= epoch:
                continue  # superseded before it was ever used
            self.examples = examples
            self.active_step = step
            self.log(f"epoch {epoch}: training on the negatives re-mined at step {step}")
        return super().sample(index, epoch)


class NegativeRefresher:
    """Mines ``examples`` (the original training data) again with a copy of the current model."""

    def __init__(self, examples: Sequence[Example], miner: dict[str, Any], sampler: RefreshingSampler,
                 output_dir: str | Path, *, batch_size: int = 64, write: bool = True,
                 registry: Any = None, log: Callable[[str], None] | None = None) -> None:
        from bgekit.mine.pool import Pool, read_pool_file

        params = dict(miner)
        self.miner = params.pop("name", "dense")
        self.corpus = params.pop("corpus", None)
        params.pop("refresh_every", None)
        self.params = params
        self.examples = list(examples)
        self.pool = Pool.build(self.examples, read_pool_file(self.corpus) if self.corpus else None)
        self.sampler = sampler
        self.output_dir = Path(output_dir) / REFRESH_DIR
        self.batch_size = batch_size
        self.write = write  # only the main process writes the file
        self.registry = registry
        self.log = log or (lambda _message: None)
        self.refreshes = 0

    def __call__(self, model: Any, step: int, epoch: int) -> list[Example]:
        import torch

        from bgekit.mine.engine import mine_examples
        from bgekit.mine.retriever import MiningContext
        from bgekit.mine.run import build_retriever

        started = time.perf_counter()
        frozen = copy.deepcopy(model).eval()
        try:
            context = MiningContext(embedder=frozen, batch_size=self.batch_size,
                                    query_max_length=getattr(model, "query_max_length", None),
                                    passage_max_length=getattr(model, "passage_max_length", None))
            retriever = build_retriever(self.miner, self.params, context, self.registry)
            with torch.no_grad():
                mined, stats = mine_examples(self.examples, retriever, self.pool, retriever.settings)
        finally:
            del frozen
        from_epoch = epoch + 1
        self.sampler.schedule(mined, from_epoch=from_epoch, step=step)
        self.refreshes += 1
        where = ""
        if self.write:
            path = self.output_dir / f"step-{step}-epoch-{from_epoch}.jsonl"
            with atomic_write(path) as handle:
                for example in mined:
                    handle.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
            where = f" into {path}"
        self.log(f"step {step}: re-mined negatives for {stats.rows} examples with '{self.miner}' "
                 f"in {time.perf_counter() - started:.1f}s{where}; used from epoch {from_epoch}")
        return mined


def restore(sampler: RefreshingSampler, output_dir: str | Path, resume_step: int) -> list[Path]:
    """Schedule the refreshes written at or before ``resume_step`` (a resumed run); their paths.

    All of them, in step order: the sampler then uses, at each epoch, the
    latest one that had reached it, as the interrupted run did.
    """
    from bgekit.data.readers import read_examples

    folder = Path(output_dir) / REFRESH_DIR
    found = []
    for path in folder.glob("step-*-epoch-*.jsonl") if folder.is_dir() else []:
        match = REFRESH_FILE_RE.match(path.name)
        if match and int(match.group(1)) <= resume_step:
            found.append((int(match.group(1)), int(match.group(2)), path))
    for step, from_epoch, path in sorted(found):
        examples = [e for e in read_examples(path, fmt="jsonl") if isinstance(e, Example)]
        sampler.schedule(examples, from_epoch=from_epoch, step=step)
    return [path for _, _, path in sorted(found)]
