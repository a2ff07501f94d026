"""Running out of accelerator memory in a training step: recognise it and pick a smaller chunk.

The trainer (:meth:`bgekit.train.trainer.Trainer._run_step`) frees what it
can, zeroes the step's partial gradients, restores the random state the step
started from and runs the same micro-batches again through GradCache
(:mod:`bgekit.train.gradcache`) with the chunk halved, down to one text per
chunk; a step that fails even then counts as a failed batch
(:class:`bgekit.train.failures.FailedBatches`).
"""

from __future__ import annotations

import torch

#: What accelerator runtimes without their own exception type say (e.g. Ascend's torch_npu).
OOM_MESSAGES = ("out of memory", "out_of_memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for ``torch.OutOfMemoryError`` (CUDA, MPS, XPU) and a backend's out-of-memory ``RuntimeError``."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in OOM_MESSAGES)


def halved_chunk(chunk_size: int, texts: int) -> int:
    """The next chunk to try after ``chunk_size`` (0: off) ran out of memory on micro-batches of at most
    ``texts`` texts: half of what was actually forwarded at once; 0 when one text was already too much."""
    forwarded = min(chunk_size, texts) if chunk_size > 0 else texts
    return forwarded // 2
