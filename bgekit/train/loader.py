"""Training batches through a ``torch.utils.data.DataLoader``: tokenising off the training thread.

The length-grouped batcher (:mod:`bgekit.train.batching`) stays the one
place that decides which examples go together: for each epoch its batch list
becomes the loader's batch sampler, a group is drawn for every example of a
batch (``GroupSampler.sample``) and the collator tokenises them — in worker
processes when ``num_workers > 0``, so the next batches are ready while the
model trains on this one, and into pinned memory when the batch goes to a GPU.

Resuming stays exact because nothing in the workers decides anything: a
group is a pure function of ``(seed, epoch, example index)``, the batch list
a pure function of ``(seed, epoch)``, and ``SamplerState`` is advanced here,
in the training process, only when a batch is handed to the trainer (not when
a worker prefetches it). Each epoch gets a fresh loader, so a sampler whose
negatives were re-mined (``miner.refresh_every``) is seen by the workers from
the next epoch on, as the inline stream sees it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from bgekit.train.batching import LengthGroupedBatcher, SamplerState


class _EpochGroups(Dataset):
    """Example index -> ``(index, its training group)`` for one epoch."""

    def __init__(self, sampler: Any, epoch: int) -> None:
        self.sampler = sampler
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.sampler)

    def __getitem__(self, index: int) -> tuple[int, Any]:
        return index, self.sampler.sample(index, self.epoch)


class _Collate:
    """``[(index, group), ...]`` -> the collated batch, or ``(indices, batch)`` with ``with_indices``."""

    def __init__(self, collator: Callable[[list[Any]], Any], with_indices: bool) -> None:
        self.collator = collator
        self.with_indices = with_indices

    def __call__(self, items: list[tuple[int, Any]]) -> Any:
        batch = self.collator([group for _, group in items])
        return ([index for index, _ in items], batch) if self.with_indices else batch


class _FixedBatches(Sampler[list[int]]):
    """A precomputed list of batches (example indices), served in order."""

    def __init__(self, batches: Sequence[list[int]]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)


def _init_worker(worker_id: int) -> None:
    """In a worker: leave Ctrl-C and SIGTERM to the training process, and let go of the output folder's lock.

    A terminal (or SLURM) signals the whole process group; a worker killed by it mid-batch would make the
    trainer fail instead of stopping cleanly at the step boundary (:mod:`bgekit.train.stop`). The workers end
    with the training process's loader, and the lock they inherited by fork must not outlive the trainer
    (:func:`bgekit.train.output_lock.drop_inherited_locks`)."""
    import signal

    from bgekit.train.output_lock import drop_inherited_locks

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    drop_inherited_locks()


#: the worker processes every loader started: the exit hook kills those still alive
_workers_started: list[Any] = []


def _kill_leftover_workers() -> None:
    """At interpreter exit: kill the workers of loaders nobody closed (a stream dropped mid-epoch and kept
    alive by a traceback, say). They ignore SIGTERM (:func:`_init_worker`), and at exit torch's loader no longer
    shuts them down itself, so multiprocessing's exit handler, which terminates daemon children with SIGTERM and
    then joins them, would wait for ever. Registered with the first loader, after multiprocessing's handler, so
    it runs first (atexit runs the last registered first)."""
    import signal

    for worker in _workers_started:
        if worker.is_alive():
            with contextlib.suppress(OSError):
                os.kill(worker.pid, signal.SIGKILL)


def _start_workers(loader: DataLoader) -> Any:
    """``iter(loader)``, which starts its worker processes, remembering them for the exit hook."""
    import multiprocessing

    global _exit_hook_registered
    before = set(multiprocessing.active_children())
    batches_out = iter(loader)
    _workers_started[:] = [w for w in _workers_started if w.is_alive()]
    _workers_started.extend(set(multiprocessing.active_children()) - before)
    if not _exit_hook_registered:
        atexit.register(_kill_leftover_workers)
        _exit_hook_registered = True
    return batches_out


_exit_hook_registered = False


def pin_batch(batch: Any) -> Any:
    """``batch`` with its tensors in pinned memory (a batch type may define ``pin_memory()``)."""
    pin = getattr(batch, "pin_memory", None)
    return pin() if callable(pin) else batch


class BatchLoader:
    """Collated micro-batches from ``state`` on, for ever, advancing ``state`` as they are served.

    ``num_workers=0`` collates inline (no extra process); ``pin_memory``
    pins each batch so its copy to the GPU can overlap compute. With
    ``with_indices`` each item is ``(example indices, batch)`` (the trainer
    logs a failed batch's examples).
    """

    def __init__(self, batcher: LengthGroupedBatcher, sampler: Any, collator: Callable[[list[Any]], Any], *,
                 num_workers: int = 0, pin_memory: bool = False, prefetch_factor: int = 2,
                 with_indices: bool = False) -> None:
        if num_workers < 0:
            raise ValueError(f"num_workers must be 0 or more, not {num_workers}")
        self.batcher = batcher
        self.sampler = sampler
        self.collator = collator
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.prefetch_factor = prefetch_factor
        self.with_indices = with_indices

    def _epoch_loader(self, epoch: int, batches: Sequence[list[int]]) -> Iterator[Any]:
        groups, collate = _EpochGroups(self.sampler, epoch), _Collate(self.collator, self.with_indices)
        if self.num_workers == 0:
            for indices in batches:
                batch = collate([groups[i] for i in indices])
                if self.pin_memory:
                    batch = (batch[0], pin_batch(batch[1])) if self.with_indices else pin_batch(batch)
                yield batch
            return
        if batches:  # a refreshing sampler switches to re-mined negatives on its first draw of an epoch: let
            groups[batches[0][0]]  # that happen here, once, not in every (forked) worker, which would log it each
        # a generator of its own: a loader draws its workers' seed from it, which would otherwise advance the
        # global random stream (the model's dropout) at each epoch start, and at a different point when resuming
        loader = DataLoader(groups, batch_sampler=_FixedBatches(batches), collate_fn=collate,
                            num_workers=self.num_workers, prefetch_factor=self.prefetch_factor,
                            pin_memory=self.pin_memory, generator=torch.Generator().manual_seed(epoch),
                            worker_init_fn=_init_worker)
        batches_out = _start_workers(loader)
        try:
            yield from batches_out  # pinned by the loader's own thread through the batch's pin_memory()
        finally:
            shutdown = getattr(batches_out, "_shutdown_workers", None)
            if shutdown is not None:  # now, not whenever the garbage collector gets to it
                shutdown()

    def stream(self, state: SamplerState) -> Iterator[Any]:
        """Batches from ``state`` on; ``state.position`` counts the batches handed out in ``state.epoch``."""
        while True:
            batches = self.batcher.epoch_batches(state.epoch)
            if not batches:
                raise ValueError("no training batches: the dataset is empty")
            for batch in self._epoch_loader(state.epoch, batches[state.position:]):
                state.position += 1
                yield batch
            state.epoch += 1
            state.position = 0


def default_num_workers(device: torch.device) -> int:
    """Workers when the recipe leaves ``data.num_workers`` unset: an accelerator waits on the CPU without
    them; on a CPU the workers would take cores from the model, so one is enough to overlap tokenising."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if device.type == "cpu":
        return 1 if cores > 1 else 0
    return max(1, min(4, cores // 2))
