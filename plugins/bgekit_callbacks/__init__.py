"""Built-in callbacks: a JSONL metrics log and TensorBoard (optional dependency).

A recipe selects them under ``callbacks:``; the trainer registers each for
the length of the run, and their ``bgekit_on_*`` hooks see every step's
metrics. Only the main process (rank 0) writes. The JSONL log is
``always_on``: every training run writes ``metrics.jsonl`` (a recipe lists
it only to set its options).
"""

from __future__ import annotations

from typing import Iterable

from bgekit.api import CallbackSpec, hookimpl

from bgekit_callbacks.jsonl_logger import JsonlLogger
from bgekit_callbacks.tensorboard import TensorBoardLogger

__all__ = ["JsonlLogger", "TensorBoardLogger"]


@hookimpl
def bgekit_callbacks() -> Iterable[CallbackSpec]:
    yield CallbackSpec(
        name="jsonl-logger",
        summary="append every logged step and evaluation to a JSON-lines file in the output folder",
        factory=JsonlLogger,
        always_on=True,
        params_schema={"properties": {
            "filename": {"type": "string", "default": "metrics.jsonl",
                         "description": "file name inside output_dir"},
        }},
    )
    yield CallbackSpec(
        name="tensorboard",
        summary="write losses, learning rate, throughput and evaluation metrics for TensorBoard",
        factory=TensorBoardLogger,
        params_schema={"properties": {
            "log_dir": {"type": "string", "default": "tensorboard",
                        "description": "folder for the event files, relative to output_dir"},
        }},
    )
