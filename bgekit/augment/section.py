"""The recipe's ``augment`` section, owned by the augment task (``plugins/bgekit_tasks``).

The task plugin hands it to the registry as a :class:`bgekit.registry.TaskSpec`
section; :mod:`bgekit.schema` merges it into the recipe schema.
"""

from __future__ import annotations

from typing import Any

from bgekit.recipe_schema import _bool, _int, _num, _obj, _str


def _price(description: str) -> dict[str, Any]:
    return {"type": ["number", "null"], "minimum": 0, "default": None, "description": description}


AUGMENT = _obj(
    {
        "input": _str(None, "passages JSONL (id, text) for method queries; canonical training JSONL for "
                            "paraphrase and back-translation"),
        "method": {"$component": "augmenter"},
        "base_url": _str(None, "the server's OpenAI-compatible URL (https://api.openai.com/v1, "
                               "http://localhost:8000/v1 for vLLM, http://localhost:11434/v1 for Ollama)"),
        "model": _str(None, "the LLM's name on that server"),
        "api_key_env": _str(None, "NAME of the environment variable that holds the API key (never the key "
                                  "itself); null for servers without keys", nullable=True),
        "temperature": _num(0.7, "sampling temperature", 0),
        "max_tokens": _int(512, "completion tokens per request at most", 1),
        "timeout": _num(60, "seconds per request", 0),
        "max_retries": _int(6, "retries of a request on 429/5xx/timeouts/unusable replies (exponential "
                               "backoff with jitter, honouring Retry-After)", 0),
        "concurrency": _int(4, "requests in flight", 1),
        "requests_per_minute": _num(0, "request rate limit (0: none)", 0),
        "tokens_per_minute": _num(0, "token rate limit, counting prompt estimate + max_tokens (0: none)", 0),
        "price_per_1k_input": _price("price per 1000 prompt tokens, for the cost in the summary"),
        "price_per_1k_output": _price("price per 1000 completion tokens"),
        "cache": _str(None, "completion cache file (null: output_dir/augmented.augment-cache.sqlite)", nullable=True),
        "filters": _obj(
            {
                "min_chars": _int(4, "shortest text kept, in characters", 0),
                "max_chars": _int(300, "longest text kept, in characters", 1),
                "language": _bool(True, "drop texts not in the script of the language asked for"),
                "dedup": _bool(True, "drop texts equal to an earlier one (case, spaces and punctuation aside)"),
                "roundtrip": _bool(True, "keep a new query only if its passage ranks within top_k for it"),
                "roundtrip_model": _str(None, "embedder for the round trip (null: model.name_or_path, the base "
                                              "model); a folder, hub id or pkg:NAME", nullable=True),
                "top_k": _int(3, "round-trip cut-off", 1),
                "batch_size": _int(64, "texts encoded per batch in the round trip", 1),
            },
            description="what is kept of the generated texts",
        ),
    },
    required=["input", "method", "base_url", "model"],
    description="the 'augment' step/task: training data written by an LLM (bgekit augment)",
)

#: the recipe sections the augment task owns (``TaskSpec.sections``)
SECTIONS = {"augment": AUGMENT}
