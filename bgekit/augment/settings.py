"""Everything one augmentation run needs, from ``bgekit augment``'s options or a recipe's ``augment`` section.

The API key is never a setting: only the NAME of the environment variable
that holds it (``api_key_env``) is, so resolved recipes, summaries and caches
can be saved and shared as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bgekit.augment.filters import FilterSettings
from bgekit.augment.usage import Prices
from bgekit.errors import BgekitError

#: the output file of the recipe step, under output_dir
OUTPUT_NAME = "augmented.jsonl"


@dataclass
class ClientSettings:
    """Where requests go and how fast; ``api_key_env`` names the variable holding the key."""

    base_url: str
    model: str
    api_key_env: str | None = None
    timeout: float = 60.0
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    concurrency: int = 4
    requests_per_minute: float = 0
    tokens_per_minute: float = 0
    temperature: float = 0.7
    max_tokens: int = 512
    price_per_1k_input: float | None = None
    price_per_1k_output: float | None = None

    def api_key(self) -> str | None:
        """The key from the environment; an unset variable is an error that names it (never a value)."""
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise BgekitError(f"environment variable {self.api_key_env} is not set; export the API key in it "
                              f"(export {self.api_key_env}=...) or drop --api-key-env for a server without keys")
        return value

    def request_params(self) -> dict[str, Any]:
        """The body parameters besides model and messages (part of every cache key)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}

    @property
    def prices(self) -> Prices:
        return Prices(self.price_per_1k_input, self.price_per_1k_output)


@dataclass
class AugmentSettings:
    input: str
    output: str
    method: str
    client: ClientSettings
    method_params: dict[str, Any] = field(default_factory=dict)
    filters: FilterSettings = field(default_factory=FilterSettings)
    cache: str | None = None  # None: beside the output
    dry_run: bool = False

    def side_file(self, suffix: str) -> Path:
        """``train.jsonl`` -> ``train<suffix>`` in the same folder (errors, summary, cache)."""
        out = Path(self.output)
        return out.with_name(out.name[: -len(out.suffix)] + suffix if out.suffix else out.name + suffix)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache) if self.cache else self.side_file(".augment-cache.sqlite")


CLIENT_KEYS = ("base_url", "model", "api_key_env", "timeout", "max_retries", "concurrency", "requests_per_minute",
               "tokens_per_minute", "temperature", "max_tokens", "price_per_1k_input", "price_per_1k_output")


def from_recipe(values: dict[str, Any], output_dir: str | Path | None = None) -> AugmentSettings:
    """Settings from a resolved recipe: its ``augment`` section, the base model as round-trip filter."""
    section = dict(values.get("augment") or {})
    missing = [k for k in ("input", "base_url", "model") if not section.get(k)]
    if missing:
        raise BgekitError(f"augment: needs augment.{', augment.'.join(missing)} (the passages, the server's "
                          "OpenAI-compatible URL and the model name)")
    method = dict(section.get("method") or {"name": "queries"})
    name = method.pop("name")
    filters = dict(section.get("filters") or {})
    model = values.get("model") or {}
    roundtrip_model = None
    heads = None
    if filters.get("roundtrip", True):
        roundtrip_model = filters.get("roundtrip_model") or model.get("name_or_path")
        if roundtrip_model == model.get("name_or_path"):
            heads = [h for h in model.get("heads") or [] if h.get("name") == "dense"] or None
    device = (values.get("device") or {}).get("name", "auto")
    filter_settings = FilterSettings(
        min_chars=filters.get("min_chars", 4), max_chars=filters.get("max_chars", 300),
        language=filters.get("language", True), dedup=filters.get("dedup", True),
        roundtrip_model=roundtrip_model, top_k=filters.get("top_k", 3), batch_size=filters.get("batch_size", 64),
        device=device, query_max_length=model.get("query_max_length", 64),
        passage_max_length=model.get("passage_max_length", 512),
        query_instruction=model.get("query_instruction") or "",
        passage_instruction=model.get("passage_instruction") or "", heads=heads)
    client = ClientSettings(**{k: section[k] for k in CLIENT_KEYS if section.get(k) is not None})
    out_dir = Path(output_dir or values["output_dir"])
    return AugmentSettings(input=section["input"], output=str(out_dir / OUTPUT_NAME), method=name, client=client,
                           method_params=method, filters=filter_settings, cache=section.get("cache"))
