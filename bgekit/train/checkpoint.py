"""Checkpoints that are either complete or absent, and resuming from them.

A checkpoint ``checkpoint-N/`` holds everything a run needs to go on exactly
where it stopped:

- ``model/``: the model in its usual layout (``Embedder.save_pretrained``);
- ``trainer_state.pt``: step, optimizer, scheduler, GradScaler, sampler
  position (epoch, batches served);
- ``rng_state_<rank>.pt``: Python, NumPy, torch and accelerator RNG states
  of each rank (dropout masks depend on them).

It is written to ``checkpoint-N.tmp-<random>/`` and renamed to its final
name only when complete, so a run killed while saving leaves a temp folder
(removed by the next run), never a half checkpoint under a real name. Only
the last ``save_total_limit`` checkpoints are kept.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bgekit.errors import BgekitError

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TEMP_MARK = ".tmp-"
#: the folders a run writes through a temp folder: checkpoints, the final model, the best one, and the
#: joint task's two models; a temp folder of one of these left by a killed run is deleted at the next start
SAVED_DIR_PREFIXES = ("checkpoint-", "model", "best", "retriever", "reranker")
STATE_FILE = "trainer_state.pt"
MODEL_DIR = "model"


def rng_file(rank: int) -> str:
    return f"rng_state_{rank}.pt"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def remove_stale_temps(output_dir: str | Path) -> None:
    """Delete temp folders left by a run killed while saving."""
    root = Path(output_dir)
    if root.is_dir():
        for path in root.iterdir():
            if path.is_dir() and TEMP_MARK in path.name and path.name.startswith(SAVED_DIR_PREFIXES):
                shutil.rmtree(path, ignore_errors=True)


def resolve_resume(resume_from: str | None, output_dir: str | Path) -> Path | None:
    """The checkpoint ``train.resume_from`` means: ``latest`` in ``output_dir``, or a path."""
    if not resume_from:
        return None
    if resume_from == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            return None  # nothing to resume yet: a fresh run (so 'latest' is safe in a restart loop)
        return found[-1]
    path = Path(resume_from)
    if not (path / STATE_FILE).is_file():
        raise BgekitError(f"train.resume_from: {path} is not a checkpoint (no {STATE_FILE} in it); "
                          "give a checkpoint-N folder or 'latest'")
    return path


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                              "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def replace_dir(source: Path, target: Path) -> None:
    """Move a finished folder to its final name; a folder already there is swapped out first."""
    if target.exists():
        old = target.with_name(f"{target.name}{TEMP_MARK}old-{os.getpid()}")
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


def save_checkpoint(output_dir: str | Path, step: int, *, model: Any, trainer_state: dict[str, Any],
                    save_total_limit: int, rank: int = 0, world_size: int = 1) -> Path | None:
    """Write ``checkpoint-<step>`` atomically and prune old ones; returns its path on rank 0.

    Every rank must call this (each writes its RNG state); only rank 0 writes
    the model and trainer state, renames and prunes.
    """
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{step}"
    tmp_name = [str(root / f"checkpoint-{step}{TEMP_MARK}{secrets.token_hex(4)}")] if rank == 0 else [None]
    if world_size > 1:
        import torch.distributed as dist

        dist.broadcast_object_list(tmp_name, src=0)
    tmp = Path(tmp_name[0])
    if rank == 0:
        tmp.mkdir()
        model.save_pretrained(tmp / MODEL_DIR)
        torch.save(trainer_state, tmp / STATE_FILE)
    _barrier(world_size)
    torch.save(rng_states(), tmp / rng_file(rank))
    _barrier(world_size)
    if rank != 0:
        return None
    replace_dir(tmp, final)
    for old in list_checkpoints(root)[:-save_total_limit] if save_total_limit > 0 else []:
        doomed = old.with_name(f"{old.name}{TEMP_MARK}del")
        os.replace(old, doomed)  # gone from its real name at once, then deleted
        shutil.rmtree(doomed, ignore_errors=True)
    return final


def load_trainer_state(path: str | Path, rank: int = 0) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(trainer_state, rng_states)`` of a checkpoint; RNG is None when this rank saved none."""
    path = Path(path)
    state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
    rng_path = path / rng_file(rank)
    rng = torch.load(rng_path, map_location="cpu", weights_only=False) if rng_path.is_file() else None
    return state, rng


def _barrier(world_size: int) -> None:
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()
