"""What is kept of the generated texts: length bounds, language/script, duplicates, retriever round trip.

- length: ``min_chars <= len(text) <= max_chars`` (characters, after trimming);
- language: the letters of the text must be in the script of the language
  asked for. Latin-script languages (English, French, ...): at least two
  thirds of the letters Latin; Chinese: some Han characters and no kana or
  Hangul; Japanese: some kana; Korean, Russian, Arabic, Greek, ...: two
  thirds of the letters in that script. It tells scripts apart, not
  languages that share one (English from French); an unknown language code
  is not checked;
- duplicates: a text equal to an earlier one (or to the text it rewrites)
  after case folding and removing spaces and punctuation;
- round trip: a query is kept only if its own passage is among the ``top_k``
  passages the given embedder retrieves for it from all passages of the input
  (InPars/Promptagator's consistency filter), with bgekit's own encoder and
  exact dense search.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

#: the script each language code's text is written in
LANGUAGE_SCRIPTS = {
    **{code: "latin" for code in ("en", "fr", "de", "es", "it", "pt", "nl", "vi", "id", "ms", "tr", "pl", "sv",
                                  "da", "no", "fi", "cs", "ro", "hu", "sw", "tl")},
    "zh": "han", "zh-hans": "han", "zh-hant": "han", "ja": "kana", "ko": "hangul", "ru": "cyrillic",
    "uk": "cyrillic", "bg": "cyrillic", "ar": "arabic", "fa": "arabic", "el": "greek", "he": "hebrew",
    "hi": "devanagari", "th": "thai",
}
DOMINANT_SHARE = 2 / 3


def script_of(char: str) -> str:
    """The script of one letter: latin, han, kana, hangul, cyrillic, ... or other."""
    name = unicodedata.name(char, "")
    if name.startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")):
        return "han"
    if name.startswith(("HIRAGANA", "KATAKANA")):
        return "kana"
    for script in ("LATIN", "CYRILLIC", "HANGUL", "ARABIC", "GREEK", "HEBREW", "DEVANAGARI", "THAI"):
        if name.startswith(script):
            return script.lower()
    return "other"


def script_counts(text: str) -> Counter:
    return Counter(script_of(c) for c in text if c.isalpha())


def language_problem(text: str, language: str | None) -> str | None:
    """Why ``text`` is not in ``language``'s script, or None (also for languages without a known script)."""
    script = LANGUAGE_SCRIPTS.get((language or "").lower())
    if script is None:
        return None
    counts = script_counts(text)
    letters = sum(counts.values())
    if not letters:
        return "no letters"
    if script == "han":
        if not counts["han"]:
            return "no Chinese (Han) characters"
        if counts["kana"] or counts["hangul"]:
            return "Japanese kana or Korean Hangul in a Chinese text"
        return None
    if script == "kana":
        return None if counts["kana"] else "no Japanese kana"
    if counts[script] / letters >= DOMINANT_SHARE:
        return None
    return f"{counts[script]} of {letters} letters are {script.title()}, too few for '{language}'"


def guess_language(text: str) -> str | None:
    """A language code with the text's script (zh, ja, ko, en for Latin, ...), for 'same as the input'."""
    counts = script_counts(text)
    if counts["kana"]:
        return "ja"
    if counts["han"]:
        return "zh"
    if not counts:
        return None
    top = counts.most_common(1)[0][0]
    return {"latin": "en", "hangul": "ko", "cyrillic": "ru", "arabic": "ar", "greek": "el", "hebrew": "he",
            "devanagari": "hi", "thai": "th"}.get(top)


def dedup_key(text: str) -> str:
    """Case-folded letters and digits only: 'What is X?' and 'what is x' are the same query."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


@dataclass
class FilterSettings:
    min_chars: int = 4
    max_chars: int = 300
    language: bool = True
    dedup: bool = True
    roundtrip_model: str | None = None  # None: no round-trip filter
    top_k: int = 3
    batch_size: int = 64
    device: str = "auto"
    query_max_length: int = 64
    passage_max_length: int = 512
    query_instruction: str = ""
    passage_instruction: str = ""
    heads: list[dict[str, Any]] | None = None  # None: the heads the model folder says


@dataclass
class Candidate:
    """A generated text on its way to becoming a row."""

    item_index: int
    text: str
    passage: str
    language: str | None
    removed_by: str | None = None
    reason: str = ""


@dataclass
class FilterReport:
    removed: Counter = field(default_factory=Counter)
    language_unchecked: set[str] = field(default_factory=set)
    roundtrip: dict[str, Any] = field(default_factory=dict)


def apply_text_filters(candidates: Sequence[Candidate], settings: FilterSettings, seen: set[str],
                       report: FilterReport) -> None:
    """Mark candidates removed by length, language and duplicates (``seen``: keys of texts already kept)."""
    for cand in candidates:
        text = cand.text.strip()
        if not settings.min_chars <= len(text) <= settings.max_chars:
            cand.removed_by, cand.reason = "length", f"{len(text)} characters"
        elif settings.language and (problem := language_problem(text, cand.language)):
            cand.removed_by, cand.reason = "language", problem
        elif settings.dedup and (key := dedup_key(text)) in seen:
            cand.removed_by, cand.reason = "duplicate", "same as an earlier text"
        else:
            if settings.dedup:
                seen.add(key)
            continue
        report.removed[cand.removed_by] += 1
    if settings.language:
        report.language_unchecked.update(c.language for c in candidates
                                         if c.language and c.language.lower() not in LANGUAGE_SCRIPTS)


def load_roundtrip_model(settings: FilterSettings) -> Any:
    """The embedder named by ``roundtrip_model`` (a folder, a hub id or ``pkg:NAME``), in inference mode."""
    from bgekit.devices import select_backend
    from bgekit.model_paths import resolve_model_path
    from bgekit.models import Embedder
    from bgekit.plugins import get_registry

    backend = select_backend(get_registry(), settings.device)
    model = Embedder.from_pretrained(resolve_model_path(settings.roundtrip_model), heads=settings.heads)
    model.query_instruction = settings.query_instruction or ""
    model.passage_instruction = settings.passage_instruction or ""
    return model.to(backend.device()).eval()


def roundtrip_ranks(model: Any, queries: Sequence[str], own: Sequence[int], corpus: Sequence[str],
                    settings: FilterSettings) -> list[int | None]:
    """For each query, the 1-based rank of its own passage ``corpus[own[i]]`` if within ``top_k``, else None."""
    from bgekit.evaluate.search import inner_product_search

    if not queries:
        return []
    passages = model.encode(list(corpus), is_query=False, batch_size=settings.batch_size,
                            max_length=settings.passage_max_length, heads=["dense"])["dense"]
    encoded = model.encode(list(queries), is_query=True, batch_size=settings.batch_size,
                           max_length=settings.query_max_length, heads=["dense"])["dense"]
    indices, scores = inner_product_search(encoded, passages, settings.top_k)
    ranks: list[int | None] = []
    for row, row_scores, target in zip(indices, scores, own):
        order = sorted(range(len(row)), key=lambda j: -row_scores[j])
        ranked = [int(row[j]) for j in order]
        ranks.append(ranked.index(target) + 1 if target in ranked else None)
    return ranks


def apply_roundtrip(candidates: Sequence[Candidate], passages: Sequence[str], settings: FilterSettings,
                    report: FilterReport, model: Any = None) -> None:
    """Mark kept query candidates whose passage the model does not find within ``top_k`` of ``passages``."""
    kept = [c for c in candidates if c.removed_by is None]
    corpus = list(dict.fromkeys([*passages, *(c.passage for c in kept)]))
    if not kept or settings.roundtrip_model is None and model is None:
        return
    model = model if model is not None else load_roundtrip_model(settings)
    position = {text: i for i, text in enumerate(corpus)}
    ranks = roundtrip_ranks(model, [c.text for c in kept], [position[c.passage] for c in kept], corpus, settings)
    for cand, rank in zip(kept, ranks):
        if rank is None:
            cand.removed_by, cand.reason = "roundtrip", f"its passage is not in the top {settings.top_k}"
            report.removed["roundtrip"] += 1
    report.roundtrip = {"model": settings.roundtrip_model, "top_k": settings.top_k, "corpus": len(corpus),
                        "checked": len(kept), "kept": sum(r is not None for r in ranks)}
