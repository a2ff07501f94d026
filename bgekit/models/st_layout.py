"""sentence-transformers files beside a saved embedder, so ``SentenceTransformer(dir)`` gives bgekit's dense vectors.

sentence-transformers builds a model from ``modules.json``: the Hugging Face
encoder in the folder itself (``sentence_bert_config.json`` gives its maximum
length), then ``1_Pooling`` (the dense head's pooling: CLS, mean or last
token), then ``2_Normalize`` when the dense head L2-normalises. Instructions
become the prompts ``query`` and ``document`` (the latter the default, as
``bgekit encode`` prefixes passages with the passage instruction).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bgekit.data.atomic import atomic_write
from bgekit.models.pooling_config import MODES, POOLING_FILE

MODULES_FILE = "modules.json"
NORMALIZE_DIR = "2_Normalize"
#: every pooling flag sentence-transformers knows, all off unless chosen
_POOLING_FLAGS = ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
                  "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        fh.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _versions() -> dict[str, str]:
    import importlib.metadata

    found = {}
    for dist, key in (("sentence-transformers", "sentence_transformers"), ("transformers", "transformers"),
                      ("torch", "pytorch")):
        try:
            found[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def write_sentence_transformers_files(out: Path, *, hidden_size: int, pooling: str, normalize: bool,
                                      max_length: int, query_instruction: str = "",
                                      passage_instruction: str = "") -> None:
    """Write modules.json, 1_Pooling/config.json, 2_Normalize/, sentence_bert_config.json and
    config_sentence_transformers.json into the saved model folder ``out``."""
    flag = {mode: name for name, mode in MODES.items()}[pooling]
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": str(Path(POOLING_FILE).parent),
                "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        (out / NORMALIZE_DIR).mkdir(parents=True, exist_ok=True)
        modules.append({"idx": 2, "name": "2", "path": NORMALIZE_DIR, "type": "sentence_transformers.models.Normalize"})
    _write_json(out / MODULES_FILE, modules)
    _write_json(out / POOLING_FILE, {"word_embedding_dimension": hidden_size,
                                     **{name: name == flag for name in _POOLING_FLAGS}, "include_prompt": True})
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": max_length, "do_lower_case": False})
    prompts = {"query": query_instruction, "document": passage_instruction}
    _write_json(out / "config_sentence_transformers.json", {
        "__version__": _versions(),
        "model_type": "SentenceTransformer",
        "prompts": prompts,
        "default_prompt_name": "document" if passage_instruction else None,
        "similarity_fn_name": "cosine" if normalize else "dot",
    })
