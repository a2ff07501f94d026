"""One augmentation run: read, ask the LLM, filter, write rows with their provenance, report.

Output: canonical training JSONL (``query``, ``pos`` = [passage], ``neg``)
whose rows also carry ``passage_id`` and ``augment`` (method, model and the
method's settings) - extra fields that validation keeps and training
ignores, the way ``bgekit data pairs`` records ``passage_id``. Beside it:

- ``<name>.errors.jsonl``: each item whose completion stayed unusable, with its passage id and reason;
- ``<name>.removed.jsonl``: each generated text a filter removed, and why;
- ``<name>.usage.jsonl``: tokens of every request this run sent;
- ``<name>.augment.json``: the summary (counts per filter, usage, cost);
- ``<name>.augment-cache.sqlite``: the completion cache (``--cache`` to put it elsewhere).

All files are written atomically at the end; the cache is written as
completions arrive, so a killed run loses nothing it paid for.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from bgekit.augment.augmenter import Augmenter, Item
from bgekit.augment.cache import CompletionCache
from bgekit.augment.client import ChatClient
from bgekit.augment.engine import Engine, ItemResult
from bgekit.augment.filters import Candidate, FilterReport, apply_roundtrip, apply_text_filters, dedup_key
from bgekit.augment.limits import RateLimits
from bgekit.augment.retry import Backoff
from bgekit.augment.settings import AugmentSettings
from bgekit.data.atomic import atomic_write
from bgekit.errors import BgekitError

#: failed items quoted in the summary (all are in the errors file)
SHOWN_FAILURES = 20


@dataclass
class AugmentSummary:
    settings: AugmentSettings
    items: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    generated: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    originals: int = 0
    written: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        s = self.settings
        return {"input": s.input, "output": s.output, "method": s.method, "method_params": s.method_params,
                "model": s.client.model, "base_url": s.client.base_url, "api_key_env": s.client.api_key_env,
                "dry_run": s.dry_run, "items": self.items, "items_failed": len(self.failed),
                "failed": self.failed[:SHOWN_FAILURES], "generated": self.generated, "removed": self.removed,
                "originals_written": self.originals, "written": self.written, "filters": self.filters,
                "usage": self.usage, "files": self.files, "seconds": round(self.seconds, 2)}


def build_augmenter(name: str, params: dict[str, Any], registry: Any = None) -> Augmenter:
    """The augmenter plugin ``name`` with ``params`` checked against its schema."""
    import jsonschema

    from bgekit.registry import did_you_mean
    from bgekit.schema import component_params_schema

    if registry is None:
        from bgekit.plugins import get_registry

        registry = get_registry()
    spec = registry.get("augmenter", name)
    known = spec.params_schema.get("properties", {})
    for key in params:
        if key not in known:
            raise BgekitError(f"method '{name}' has no parameter '{key}'{did_you_mean(key, known)}; "
                              f"it takes: {', '.join(sorted(known))}")
    schema = component_params_schema(spec)
    problems = sorted(jsonschema.Draft7Validator(schema).iter_errors({"name": name, **params}), key=str)
    if problems:
        where = ".".join(str(p) for p in problems[0].absolute_path) or "parameters"
        raise BgekitError(f"method '{name}': {where}: {problems[0].message}")
    augmenter = spec.create(**params)
    if not isinstance(augmenter, Augmenter):
        raise BgekitError(f"augmenter plugin '{name}' returned {type(augmenter).__name__}, not a bgekit Augmenter")
    augmenter.check()
    return augmenter


def make_engine(settings: AugmentSettings, cache: CompletionCache, sleep: Callable[[float], None] = time.sleep,
                client: ChatClient | None = None) -> Engine:
    c = settings.client
    if client is None and not settings.dry_run:
        client = ChatClient(c.base_url, c.model, c.api_key(), timeout=c.timeout)
    return Engine(client, cache, model=c.model, params=c.request_params(),
                  limits=RateLimits(c.requests_per_minute, c.tokens_per_minute),
                  backoff=Backoff(c.backoff_base, c.backoff_max), max_retries=c.max_retries,
                  concurrency=c.concurrency, dry_run=settings.dry_run, sleep=sleep)


def augment_file(settings: AugmentSettings, *, registry: Any = None, roundtrip_model: Any = None,
                 sleep: Callable[[float], None] = time.sleep,
                 progress: Callable[[int, int], None] | None = None) -> AugmentSummary:
    """Run ``settings``; with ``dry_run`` only count requests and tokens (nothing is sent or written).

    ``progress(done, total)`` is called as each item finishes.
    """
    started = time.perf_counter()
    augmenter = build_augmenter(settings.method, settings.method_params, registry)
    items = augmenter.read(settings.input)
    summary = AugmentSummary(settings, items=len(items))
    if not settings.dry_run:
        settings.client.api_key()  # an unset variable fails before anything is read from the server
    cache = CompletionCache(settings.cache_path, read_only=settings.dry_run)
    engine = make_engine(settings, cache, sleep)
    done = [0]
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            done[0] += n
            if progress is not None:
                progress(done[0], len(items))

    try:
        results = engine.run(augmenter, items, advance)
    finally:
        cache.close()
        if engine.client is not None:
            engine.client.close()
    summary.usage = engine.usage.to_json(settings.client.prices)
    summary.failed = [{"passage_id": r.item.id, "line": r.item.line, "reason": r.error, "attempts": r.attempts}
                      for r in results if r.error is not None]
    if settings.dry_run:
        summary.generated = sum(len(r.texts or []) for r in results)
        summary.seconds = time.perf_counter() - started
        return summary
    candidates = _candidates(augmenter, results)
    summary.generated = len(candidates)
    report = FilterReport()
    seen = {dedup_key(r.item.text) for r in results} if settings.filters.dedup else set()
    apply_text_filters(candidates, settings.filters, seen, report)
    if augmenter.target == "query" and (settings.filters.roundtrip_model or roundtrip_model is not None):
        apply_roundtrip(candidates, [item.passage for item in items], settings.filters, report, roundtrip_model)
    elif settings.filters.roundtrip_model:
        report.roundtrip = {"skipped": "the round-trip filter checks new queries; this method rewrites passages"}
    summary.removed = {k: report.removed.get(k, 0) for k in ("length", "language", "duplicate", "roundtrip")}
    summary.filters = {"min_chars": settings.filters.min_chars, "max_chars": settings.filters.max_chars,
                       "language": settings.filters.language, "dedup": settings.filters.dedup,
                       "roundtrip": report.roundtrip or None,
                       "language_unchecked": sorted(report.language_unchecked)}
    _write_outputs(settings, augmenter, results, candidates, summary, engine)
    summary.seconds = time.perf_counter() - started
    _write_json(settings.side_file(".augment.json"), summary.to_json())
    return summary


def _candidates(augmenter: Augmenter, results: list[ItemResult]) -> list[Candidate]:
    out = []
    for index, result in enumerate(results):
        language = augmenter.output_language(result.item)
        for text in result.texts or []:
            out.append(Candidate(index, text.strip(), result.item.passage, language))
    return out


def _new_row(augmenter: Augmenter, item: Item, text: str, provenance: dict[str, Any]) -> dict[str, Any]:
    if item.row is None:  # a passage: the new text is its query
        row: dict[str, Any] = {"query": text, "pos": [item.passage], "neg": []}
    elif augmenter.target == "query":
        row = {"query": text, "pos": list(item.row["pos"]), "neg": list(item.row["neg"])}
    else:
        row = {"query": item.row["query"], "pos": [text], "neg": [n for n in item.row["neg"] if n != text]}
    return {**row, "passage_id": item.id, "augment": provenance}


def _write_outputs(settings: AugmentSettings, augmenter: Augmenter, results: list[ItemResult],
                   candidates: list[Candidate], summary: AugmentSummary, engine: Engine) -> None:
    provenance = {"method": settings.method, "model": settings.client.model,
                  **{k: v for k, v in augmenter.describe().items() if v is not None}}
    by_item: dict[int, list[Candidate]] = {}
    for cand in candidates:
        by_item.setdefault(cand.item_index, []).append(cand)
    output = Path(settings.output)
    with atomic_write(output) as handle:
        for index, result in enumerate(results):
            item = result.item
            if augmenter.keeps_originals() and item.row is not None:
                handle.write(json.dumps(item.row, ensure_ascii=False) + "\n")
                summary.originals += 1
            for cand in by_item.get(index, []):
                if cand.removed_by is None:
                    extra = {"original": item.text} if item.row is not None else {}
                    row = _new_row(augmenter, item, cand.text, {**provenance, **extra})
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                    summary.written += 1
    files = {"output": str(output), "errors": str(settings.side_file(".errors.jsonl")),
             "removed": str(settings.side_file(".removed.jsonl")), "usage": str(settings.side_file(".usage.jsonl")),
             "summary": str(settings.side_file(".augment.json")), "cache": str(settings.cache_path)}
    _write_lines(files["errors"], summary.failed)
    _write_lines(files["removed"], ({"passage_id": results[c.item_index].item.id, "text": c.text,
                                     "filter": c.removed_by, "reason": c.reason}
                                    for c in candidates if c.removed_by is not None))
    _write_lines(files["usage"], engine.usage.per_request)
    summary.files = files


def _write_lines(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_json(path: str | Path, value: dict[str, Any]) -> None:
    with atomic_write(path) as handle:
        handle.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def format_summary(summary: AugmentSummary) -> list[str]:
    """Lines for the terminal."""
    s, u = summary.settings, summary.usage
    cost = f", cost {u['cost']:.4f}" if u.get("cost") is not None else ""
    if s.dry_run:
        return [f"dry run: {summary.items} item(s) of {s.input} with '{s.method}' on {s.client.model}",
                f"  would send {u['requests']} request(s) ({u['cache_hits']} answered from the cache "
                f"{s.cache_path})",
                f"  estimated tokens: ~{u['prompt_tokens']} prompt + ~{u['completion_tokens']} completion"
                f"{cost.replace('cost', 'estimated cost')}",
                "  nothing was sent or written"]
    removed = ", ".join(f"{k} {v}" for k, v in summary.removed.items())
    lines = [f"augmented {summary.items} item(s) of {s.input} with '{s.method}' on {s.client.model} "
             f"-> {summary.written} new row(s) in {s.output}"
             + (f" (+ {summary.originals} original rows)" if summary.originals else ""),
             f"  generated {summary.generated}; removed by filter: {removed}",
             f"  requests sent {u['requests']} (retries {u['retries']}), answered from cache {u['cache_hits']}; "
             f"tokens {u['prompt_tokens']} prompt + {u['completion_tokens']} completion{cost}"]
    roundtrip = summary.filters.get("roundtrip") or {}
    if roundtrip.get("checked") is not None:
        lines.append(f"  round trip ({roundtrip['model']}, top {roundtrip['top_k']} of {roundtrip['corpus']} "
                     f"passages): kept {roundtrip['kept']} of {roundtrip['checked']}")
    if summary.filters.get("language_unchecked"):
        lines.append(f"  language not checked for: {', '.join(summary.filters['language_unchecked'])} "
                     "(no known script)")
    if summary.failed:
        ids = ", ".join(str(f["passage_id"]) for f in summary.failed[:5])
        more = f" and {len(summary.failed) - 5} more" if len(summary.failed) > 5 else ""
        lines.append(f"  {len(summary.failed)} item(s) failed: {ids}{more} (reasons in "
                     f"{summary.files.get('errors')}); first: {summary.failed[0]['reason']}")
    return lines


def check_not_all_failed(summary: AugmentSummary) -> None:
    """Every item failing means the server or settings are wrong, not the rows: say so with the first reason."""
    if summary.items and len(summary.failed) == summary.items:
        raise BgekitError(f"augment: all {summary.items} item(s) failed; first: "
                          f"{summary.failed[0]['passage_id']}: {summary.failed[0]['reason']} "
                          f"(all in {summary.files.get('errors', 'the errors file')})")


def run(recipe: Any, backend: Any) -> dict[str, Any]:
    """The ``augment`` task / pipeline step: ``augment`` section -> ``<output_dir>/augmented.jsonl``."""
    from rich.console import Console
    from rich.markup import escape

    from bgekit.augment.settings import from_recipe

    settings = from_recipe(recipe.values)
    summary = augment_file(settings)
    console = Console(stderr=True, highlight=False)
    for line in format_summary(summary):
        console.print(escape(line))
    check_not_all_failed(summary)
    return {"output": settings.output, "written": summary.written, "items_failed": len(summary.failed),
            "removed": summary.removed, "usage": summary.usage}
