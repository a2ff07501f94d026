"""``bgekit augment``: training data written by an LLM through any OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bgekit.errors import BgekitError


def _yaml_file(path: str | None, what: str) -> Any:
    if not path:
        return None
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise BgekitError(f"{path}: {what} is not valid YAML/JSON ({exc.__class__.__name__})") from None


def _method_params(method: str, language: str | None, per_passage: int | None, few_shot: str | None,
                   prompt_template: str | None, params: tuple[str, ...]) -> dict[str, Any]:
    """The augmenter's parameters from the shortcut options plus ``--param KEY=VALUE``."""
    from bgekit.commands.mine import _parse_param

    out: dict[str, Any] = {}
    if language is not None:
        out["language"] = language
    if per_passage is not None:
        out["per_query" if method == "paraphrase" else "per_passage"] = per_passage
    if few_shot:
        examples = _yaml_file(few_shot, "--few-shot")
        if not isinstance(examples, list):
            raise BgekitError(f"{few_shot}: --few-shot wants a list of {{passage: ..., queries: [...]}}")
        out["few_shot"] = examples
    if prompt_template:
        out["prompt"] = Path(prompt_template).read_text(encoding="utf-8")
    out.update(dict(_parse_param(p) for p in params))
    return out


def _report_progress(done: int, total: int) -> None:
    """A line on stderr at every tenth of the items (long runs take hours)."""
    step = max(1, total // 10)
    if done % step == 0 or done == total:
        click.echo(f"augment: {done}/{total} items", err=True)


@click.command("augment")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="passages JSONL (id, text) for 'queries'; training JSONL for 'paraphrase'/'back-translation'")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="canonical training JSONL to write (errors, usage, summary and cache go beside it)")
@click.option("--method", default="queries", show_default=True,
              help="augmenter plugin: queries, paraphrase, back-translation, ...")
@click.option("--language", help="language code of the new texts, e.g. en (queries: default en)")
@click.option("--per-passage", type=click.IntRange(min=1), help="queries per passage (paraphrase: rewrites per query)")
@click.option("--few-shot", type=click.Path(exists=True, dir_okay=False),
              help="YAML/JSON list of worked examples {passage, queries} for the prompt")
@click.option("--prompt-template", type=click.Path(exists=True, dir_okay=False),
              help="a text file with your own prompt ($placeholders as the method documents)")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="any other method parameter (repeatable)")
@click.option("--base-url", required=True, help="the server's OpenAI-compatible URL, e.g. https://api.openai.com/v1, "
              "http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama)")
@click.option("--model", "llm", required=True, help="the model name the server knows")
@click.option("--api-key-env", metavar="VAR", help="NAME of the environment variable holding the API key "
              "(the key itself is never an option)")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True, help="requests in flight")
@click.option("--requests-per-minute", type=click.FloatRange(min=0), default=0, show_default=True, help="0: no limit")
@click.option("--tokens-per-minute", type=click.FloatRange(min=0), default=0, show_default=True,
              help="prompt estimate + max_tokens per request; 0: no limit")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60, show_default=True,
              help="seconds per request")
@click.option("--max-retries", type=click.IntRange(min=0), default=6, show_default=True,
              help="retries on 429/5xx/timeouts/unusable replies, with exponential backoff")
@click.option("--temperature", type=float, default=0.7, show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--price-per-1k-input", type=float, help="price per 1000 prompt tokens, for the cost in the summary")
@click.option("--price-per-1k-output", type=float, help="price per 1000 completion tokens")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False),
              help="completion cache (SQLite) [default: OUTPUT's name + .augment-cache.sqlite]")
@click.option("--roundtrip-model", metavar="MODEL",
              help="keep a query only if this embedder (folder, hub id, pkg:NAME) finds its passage in --top-k")
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True, help="round-trip cut-off")
@click.option("--min-chars", type=click.IntRange(min=0), default=4, show_default=True)
@click.option("--max-chars", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--no-language-check", is_flag=True, help="keep texts whatever their script")
@click.option("--no-dedup", is_flag=True, help="keep duplicate texts")
@click.option("--device", default="auto", show_default=True, help="device for the round-trip model")
@click.option("--dry-run", is_flag=True, help="count requests and estimate tokens (and cost); send nothing")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def augment(input_path: str, output_path: str, method: str, language: str | None, per_passage: int | None,
            few_shot: str | None, prompt_template: str | None, params: tuple[str, ...], base_url: str, llm: str,
            api_key_env: str | None, concurrency: int, requests_per_minute: float, tokens_per_minute: float,
            timeout: float, max_retries: int, temperature: float, max_tokens: int,
            price_per_1k_input: float | None, price_per_1k_output: float | None, cache_path: str | None,
            roundtrip_model: str | None, top_k: int, min_chars: int, max_chars: int, no_language_check: bool,
            no_dedup: bool, device: str, dry_run: bool, as_json: bool) -> None:
    """Write training data with an LLM: queries for passages, paraphrases, back-translations.

    Each new row is canonical training JSONL with its provenance (passage_id,
    augment: method, model). A killed run started again answers every
    request it already paid for from the cache.

    \b
    Example:
      export OPENAI_API_KEY=...
      bgekit augment --input passages.jsonl --output train.jsonl --method queries --language en \\
          --per-passage 2 --base-url https://api.openai.com/v1 --model gpt-4o-mini \\
          --api-key-env OPENAI_API_KEY --roundtrip-model BAAI/bge-m3 --dry-run
      bgekit augment --input train.jsonl --output more.jsonl --method back-translation \\
          --param pivot=en --base-url http://localhost:11434/v1 --model qwen2.5:7b
    """
    from bgekit.augment.filters import FilterSettings
    from bgekit.augment.settings import AugmentSettings, ClientSettings
    from bgekit.augment.task import augment_file, check_not_all_failed, format_summary

    client = ClientSettings(base_url=base_url, model=llm, api_key_env=api_key_env, timeout=timeout,
                            max_retries=max_retries, concurrency=concurrency,
                            requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute,
                            temperature=temperature, max_tokens=max_tokens, price_per_1k_input=price_per_1k_input,
                            price_per_1k_output=price_per_1k_output)
    filters = FilterSettings(min_chars=min_chars, max_chars=max_chars, language=not no_language_check,
                             dedup=not no_dedup, roundtrip_model=roundtrip_model, top_k=top_k, device=device)
    settings = AugmentSettings(input=input_path, output=output_path, method=method, client=client,
                               method_params=_method_params(method, language, per_passage, few_shot,
                                                            prompt_template, params),
                               filters=filters, cache=cache_path, dry_run=dry_run)
    summary = augment_file(settings, progress=_report_progress)
    if as_json:
        click.echo(json.dumps(summary.to_json(), ensure_ascii=False, indent=2, default=str))
    else:
        for line in format_summary(summary):
            click.echo(line)
    if not dry_run:
        check_not_all_failed(summary)
