"""Checkpoints that are either complete and verified or absent, and resuming from them.

A checkpoint ``checkpoint-N/`` holds everything a run needs to go on exactly
where it stopped:

- ``model/``: the model in its usual layout (``Embedder.save_pretrained``);
- ``trainer_state.pt``: step, optimizer, scheduler, GradScaler, sampler
  position (epoch, batches served), failed-batch count;
- ``rng_state_<rank>.pt``: Python, NumPy, torch and accelerator RNG states
  of each rank (dropout masks depend on them; the accelerator's come from
  the device backend, under its name);
- ``bgekit_manifest.json``, written last: every other file with its size and
  SHA-256. It is the mark that bgekit wrote the folder (pruning deletes no
  folder without it) and what ``resume_from`` verifies before loading.

Nothing is unpickled: the state files hold only tensors, numbers, strings,
lists and dicts, and are read with ``torch.load(weights_only=True)``.

It is written to ``checkpoint-N.tmp-<random>/`` and renamed to its final
name only when complete, so a run killed while saving leaves a temp folder
(removed by the next run), never a half checkpoint under a real name. A write
that fails (full disk, ``ulimit -f``, read-only folder) removes the temp
folder and stops the run with one line; checkpoints saved before are kept.
Only the last ``save_total_limit`` checkpoints are kept.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import torch

from bgekit.errors import BgekitError

if TYPE_CHECKING:
    from bgekit.devices import DeviceBackend

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TEMP_MARK = ".tmp-"
#: the folders a run writes through a temp folder: checkpoints, the final model, the best one, and the
#: joint task's two models; a temp folder of one of these left by a killed run is deleted at the next start
SAVED_DIR_PREFIXES = ("checkpoint-", "model", "best", "retriever", "reranker")
STATE_FILE = "trainer_state.pt"
MODEL_DIR = "model"
MANIFEST_FILE = "bgekit_manifest.json"
MANIFEST_FORMAT = "bgekit-checkpoint"
HASH_CHUNK = 1 << 20


def rng_file(rank: int) -> str:
    return f"rng_state_{rank}.pt"


# -- writing folders safely ---------------------------------------------------------

def describe_write_error(exc: BaseException, what: str) -> str:
    """One line for a failed write: what failed, why, and what to do."""
    code = getattr(exc, "errno", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if code == errno.ENOSPC or "No space left" in text or "basic_ios" in text:
        hint = "the disk is full; free space (df -h) or set output_dir to a larger disk"
    elif code == errno.EFBIG or "too large" in text.lower():
        hint = "a file size limit was hit (ulimit -f); raise it or set output_dir elsewhere"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "the folder is not writable; fix its permissions or set output_dir elsewhere"
    else:
        hint = "check free space (df -h), the file size limit (ulimit -f) and write permission"
    return f"could not write {what}: {text}; {hint}. Nothing saved before was changed"


@contextlib.contextmanager
def write_errors_as_bgekit(what: str) -> Iterator[None]:
    """Turn a failed write (OSError, or torch's RuntimeError from its C++ writer) into one clear line."""
    try:
        yield
    except BgekitError:
        raise
    except Exception as exc:  # noqa: BLE001 - only write failures are turned into a line, the rest re-raised
        if not isinstance(exc, OSError) and not _looks_like_io(exc):
            raise
        raise BgekitError(describe_write_error(exc, what)) from exc


def _looks_like_io(exc: Exception) -> bool:
    """torch's C++ writer (RuntimeError) and safetensors' Rust writer (SafetensorError) report I/O failures
    as their own exception types; their messages say what happened."""
    text = str(exc)
    return any(s in text for s in ("basic_ios", "inline_container", "file write failed", "PytorchStreamWriter",
                                   "No space left", "File too large", "unexpected pos", "IoError",
                                   "Permission denied", "Read-only file system"))


def ignore_file_size_signal() -> None:
    """Make ``ulimit -f`` a write error (EFBIG) instead of a SIGXFSZ that kills the process mid-write."""
    import signal

    if hasattr(signal, "SIGXFSZ"):
        with contextlib.suppress(ValueError, OSError):  # not the main thread: leave it
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def write_dir_atomically(final: Path, write: Callable[[Path], None], what: str | None = None) -> Path:
    """Run ``write(tmp)`` into a temp folder beside ``final``, then rename it to ``final``.

    A failure removes the temp folder and raises a one-line :class:`BgekitError` for write errors;
    whatever was at ``final`` before is untouched.
    """
    tmp = final.parent / f"{final.name}{TEMP_MARK}{secrets.token_hex(4)}"
    try:
        with write_errors_as_bgekit(what or str(final)):
            write(tmp)
            replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def replace_dir(source: Path, target: Path) -> None:
    """Move a finished folder to its final name; a folder already there is swapped out first."""
    if target.exists():
        old = target.with_name(f"{target.name}{TEMP_MARK}old-{os.getpid()}")
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


def remove_stale_temps(output_dir: str | Path) -> None:
    """Delete temp folders left by a run killed while saving."""
    root = Path(output_dir)
    if root.is_dir():
        for path in root.iterdir():
            if path.is_dir() and TEMP_MARK in path.name and path.name.startswith(SAVED_DIR_PREFIXES):
                shutil.rmtree(path, ignore_errors=True)


# -- manifests ------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path, step: int) -> None:
    """List every file of ``folder`` with its size and SHA-256, as the folder's last file."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_FILE):
        files[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    text = json.dumps({"format": MANIFEST_FORMAT, "version": 1, "step": step, "files": files}, indent=1)
    with open(folder / MANIFEST_FILE, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def is_marked(folder: Path) -> bool:
    """Whether bgekit wrote ``folder`` as a checkpoint (it has a manifest; its content is not checked)."""
    return (folder / MANIFEST_FILE).is_file()


def verify_checkpoint(folder: Path, rank: int = 0) -> str | None:
    """None when ``folder`` is a complete checkpoint whose files match its manifest; else what is wrong."""
    manifest_path = folder / MANIFEST_FILE
    if not folder.is_dir():
        return "it is not a folder"
    if not manifest_path.is_file():
        return f"it has no {MANIFEST_FILE} (not a complete checkpoint written by bgekit)"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError("not a bgekit checkpoint manifest")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"its {MANIFEST_FILE} is unreadable ({exc})"
    for required in (STATE_FILE, rng_file(rank)):
        if required not in files:
            return f"its manifest lists no {required}"
    for name, info in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != info.get("size"):
            return f"{name} has {size} bytes, the manifest says {info.get('size')} (truncated or changed)"
        if _sha256(path) != info.get("sha256"):
            return f"{name} does not match its checksum (corrupt or changed)"
    return None


# -- listing and choosing -------------------------------------------------------------

def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Checkpoints bgekit wrote in ``output_dir`` (marked by a manifest), oldest first.

    A folder named ``checkpoint-N`` without a manifest (a user's own, or one from an older bgekit) is not
    listed, so it is never pruned, deleted or resumed from by ``latest``.
    """
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if p.is_dir() and (m := CHECKPOINT_RE.match(p.name)) and is_marked(p)]
    return [p for _, p in sorted(found)]


def resolve_resume(resume_from: str | None, output_dir: str | Path, *, rank: int = 0,
                   warn: Callable[[str], None] | None = None) -> Path | None:
    """The checkpoint ``train.resume_from`` means, verified against its manifest.

    ``latest``: the newest checkpoint in ``output_dir`` that verifies, falling back to older ones (each
    skipped one is reported through ``warn``); None when there is none (a fresh run, so ``latest`` is safe
    in a restart loop). A path: that checkpoint, or a one-line error saying why it cannot be used.
    """
    if not resume_from:
        return None
    if resume_from == "latest":
        for path in reversed(list_checkpoints(output_dir)):
            problem = verify_checkpoint(path, rank)
            if problem is None:
                return path
            if warn is not None:
                warn(f"skipping {path}: {problem}; trying an older checkpoint")
        return None
    path = Path(resume_from)
    problem = verify_checkpoint(path, rank)
    if problem is not None:
        raise BgekitError(f"train.resume_from: cannot resume from {path}: {problem}; give a complete "
                          "checkpoint-N folder or 'latest'")
    return path


def may_resume(resume_from: str | None, output_dir: str | Path) -> bool:
    """Whether ``train.resume_from`` points at a checkpoint, without verifying it (no hashing): a path, or
    ``latest`` with a checkpoint bgekit wrote in ``output_dir``. :func:`resolve_resume` decides which one."""
    if not resume_from:
        return False
    return resume_from != "latest" or bool(list_checkpoints(output_dir))


def check_no_foreign(output_dir: str | Path, steps: Any) -> None:
    """A one-line error when a folder this run would save as ``checkpoint-N`` exists and bgekit did not write
    it (no manifest): it is never replaced or deleted."""
    root = Path(output_dir)
    for step in steps:
        path = root / f"checkpoint-{step}"
        if path.exists() and not is_marked(path):
            raise BgekitError(f"{path} exists and was not written by bgekit (no {MANIFEST_FILE}); this run would "
                              "save a checkpoint there: move that folder or set another output_dir")


def checkpoint_step(path: Path) -> int | None:
    match = CHECKPOINT_RE.match(path.name)
    return int(match.group(1)) if match else None


# -- RNG states as plain data (no pickle) -------------------------------------------------

#: the keys of :func:`rng_states` itself (a backend's own states are under ``"device"``)
_CORE_RNG_KEYS = ("python", "numpy", "torch", "device")


def rng_states(backend: DeviceBackend | None = None) -> dict[str, Any]:
    """Every RNG state as tensors, numbers and lists: loadable with ``weights_only=True``.

    The accelerator's states are the ``backend``'s (:meth:`DeviceBackend.rng_state`), kept under
    ``"device"`` by its name; none without a backend.
    """
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss_next": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    device_state = backend.rng_state() if backend is not None else {}
    if device_state:
        states["device"] = {backend.name: device_state}  # type: ignore[union-attr]
    return states


def saved_device_state(states: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The accelerator states saved for backend ``name``, or None.

    Checkpoints written before device backends saved their own state hold a
    list of per-device tensors at the top level under the backend's name
    (``"cuda"``); it reads as ``{"0": ..., "1": ...}``.
    """
    saved = states.get("device", {}).get(name)
    if saved is None and name not in _CORE_RNG_KEYS and isinstance(states.get(name), (list, tuple)):
        saved = {str(index): state for index, state in enumerate(states[name])}
    return saved


def set_rng_states(states: dict[str, Any], backend: DeviceBackend | None = None) -> None:
    """Restore :func:`rng_states`; the accelerator's states only when saved by a backend of the same name
    (a run resumed on another kind of device draws new ones there)."""
    py = states["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    npy = states["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    if backend is not None:
        saved = saved_device_state(states, backend.name)
        if saved:
            backend.set_rng_state(saved)


# -- saving and loading -------------------------------------------------------------------

def _torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through a Python file, so a full disk is an ``OSError`` (not a C++ stream error)."""
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with open(path, "wb") as handle:
        handle.write(buffer.getbuffer())
        handle.flush()
        os.fsync(handle.fileno())


_fault_hits: dict[str, int] = {}


def _fault(phase: str) -> None:
    """Test hook for ``benchmarks/reliability.py``: ``BGEKIT_FAULT_AT=<phase>[:<n>]`` kills this process with
    SIGKILL the n-th time (default the first) it reaches ``phase`` (checkpoint-model, checkpoint-manifest,
    prune, final-model)."""
    wanted = os.environ.get("BGEKIT_FAULT_AT")
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name == phase:
        _fault_hits[phase] = _fault_hits.get(phase, 0) + 1
        if _fault_hits[phase] == int(nth or 1):
            os.kill(os.getpid(), 9)


def save_checkpoint(output_dir: str | Path, step: int, *, model: Any, trainer_state: dict[str, Any],
                    save_total_limit: int, rank: int = 0, world_size: int = 1,
                    backend: DeviceBackend | None = None) -> Path | None:
    """Write ``checkpoint-<step>`` atomically and prune old ones; returns its path on rank 0.

    Every rank must call this (each writes its RNG states, the accelerator's
    through ``backend``); only rank 0 writes the model, trainer state and
    manifest, renames and prunes.
    """
    root = Path(output_dir)
    final = root / f"checkpoint-{step}"
    tmp_name = [str(root / f"checkpoint-{step}{TEMP_MARK}{secrets.token_hex(4)}")] if rank == 0 else [None]
    if world_size > 1:
        import torch.distributed as dist

        dist.broadcast_object_list(tmp_name, src=0)
    tmp = Path(tmp_name[0])
    if rank == 0:
        check_no_foreign(root, [step])
    try:
        with write_errors_as_bgekit(f"checkpoint {final}"):
            if rank == 0:
                root.mkdir(parents=True, exist_ok=True)
                tmp.mkdir()
                model.save_pretrained(tmp / MODEL_DIR)
                _fault("checkpoint-model")
                _torch_save(trainer_state, tmp / STATE_FILE)
            _barrier(world_size)
            _torch_save(rng_states(backend), tmp / rng_file(rank))
            _barrier(world_size)
            if rank != 0:
                return None
            write_manifest(tmp, step)
            _fault("checkpoint-manifest")
            replace_dir(tmp, final)
    except BaseException:
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune_checkpoints(root, save_total_limit)
    return final


def prune_checkpoints(root: Path, save_total_limit: int) -> None:
    """Delete all but the newest ``save_total_limit`` checkpoints bgekit wrote (marked ones only)."""
    if save_total_limit <= 0:
        return
    for old in list_checkpoints(root)[:-save_total_limit]:
        doomed = old.with_name(f"{old.name}{TEMP_MARK}del")
        os.replace(old, doomed)  # gone from its real name at once, then deleted
        _fault("prune")
        shutil.rmtree(doomed, ignore_errors=True)


def _load(path: Path) -> Any:
    """A state file, without unpickling: only tensors and plain containers load."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise BgekitError(f"cannot load {path}: it holds pickled objects, not only tensors and plain data, so it is "
                          "not a state file bgekit wrote (bgekit never unpickles code); resume from another "
                          "checkpoint") from exc
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise BgekitError(f"cannot load {path}: {first}; it is not a state file bgekit wrote (bgekit never "
                          "unpickles code); resume from another checkpoint") from exc


def load_trainer_state(path: str | Path, rank: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(trainer_state, rng_states)`` of a verified checkpoint, loaded with ``weights_only=True``."""
    path = Path(path)
    state = _load(path / STATE_FILE)
    rng = _load(path / rng_file(rank))
    if not isinstance(state, dict) or "step" not in state or not isinstance(rng, dict):
        raise BgekitError(f"cannot resume from {path}: {STATE_FILE} or {rng_file(rank)} does not hold the state "
                          "bgekit saves; resume from another checkpoint")
    return state, rng


def _barrier(world_size: int) -> None:
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def warn(message: str) -> None:
    """A warning line on stderr (the trainer's checkpoint messages)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
