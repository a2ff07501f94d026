"""FlagEmbedding's on-disk layout for BGE-M3 heads.

FlagEmbedding keeps each head's ``torch.nn.Linear`` state dict in its own
file beside the Hugging Face encoder: ``sparse_linear.pt`` and
``colbert_linear.pt``. This module finds those files (in a local directory
or a hub repository), reads them safely, and writes them atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch

from bgekit.data.atomic import atomic_write

#: Records what bgekit heads a saved directory holds, so it reloads as it was saved.
HEADS_FILE = "bgekit_heads.json"


def resolve_file(name_or_path: str, filename: str, revision: str | None = None) -> Path | None:
    """The local path of ``filename`` in a model directory or hub repository, or None."""
    local = Path(name_or_path)
    if local.is_dir():
        candidate = local / filename
        return candidate if candidate.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(hf_hub_download(name_or_path, filename, revision=revision))
    except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError):
        return None


def load_linear_state(path: Path) -> dict[str, torch.Tensor]:
    """A ``Linear`` state dict from a ``.pt`` file, without unpickling arbitrary objects."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "weight" not in state:
        raise ValueError(f"{path}: expected a torch.nn.Linear state dict with 'weight' (and 'bias')")
    return state


def warn_random_head(head_name: str, filename: str, name_or_path: str) -> None:
    """Say loudly that a head starts from random weights (fine for training, wrong for inference)."""
    message = (
        f"{name_or_path} has no {filename}: the '{head_name}' head starts from RANDOM weights. "
        "That is expected before fine-tuning a plain encoder, but its outputs are meaningless "
        "until it has been trained."
    )
    warnings.warn(message, stacklevel=3)


#: transformers 5 records its generic fast tokenizer under a class name transformers 4
#: (which FlagEmbedding pins) does not know; both load the older name.
PORTABLE_TOKENIZER_CLASSES = {"TokenizersBackend": "PreTrainedTokenizerFast"}


def make_tokenizer_config_portable(directory: Path) -> None:
    """Rewrite ``tokenizer_config.json`` so transformers 4 can load the tokenizer too."""
    config_path = directory / "tokenizer_config.json"
    if not config_path.is_file():
        return
    config = json.loads(config_path.read_text(encoding="utf-8"))
    portable = PORTABLE_TOKENIZER_CLASSES.get(config.get("tokenizer_class", ""))
    if portable is None:
        return
    config["tokenizer_class"] = portable
    with atomic_write(config_path) as fh:
        fh.write(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def _replace_atomically(path: Path, write: Callable[[str], None]) -> None:
    """Run ``write(temp_path)`` on a temp file beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_file_atomically(source: Path, path: Path) -> None:
    """Copy ``source`` to ``path`` through a temp file in the destination folder."""
    import shutil

    if Path(source).resolve() == Path(path).resolve():
        return
    _replace_atomically(path, lambda tmp: shutil.copyfile(source, tmp))


def save_linear_state(module: torch.nn.Module, path: Path) -> None:
    """``torch.save`` a module's state dict (on CPU) atomically: temp file, then rename."""
    state = {k: v.detach().clone().cpu() for k, v in module.state_dict().items()}
    _replace_atomically(path, lambda tmp: torch.save(state, tmp))
