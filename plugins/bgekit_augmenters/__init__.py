"""Built-in augmenters: synthetic queries, paraphrases and back-translations through an LLM."""

from __future__ import annotations

from bgekit.api import AugmenterSpec, hookimpl, lazy_factory

PROMPT = {"type": ["string", "null"], "default": None,
          "description": "your own prompt template (null: the built-in one); placeholders as $name"}
SYSTEM = {"type": ["string", "null"], "default": None,
          "description": "the system message (null: the built-in one; empty string: none)"}
KEEP = {"type": "boolean", "default": True, "description": "write the input rows too, before the new ones"}


@hookimpl
def bgekit_augmenters():
    yield AugmenterSpec(
        name="queries",
        summary="N search queries per passage in a chosen language (InPars/Promptagator-style)",
        factory=lazy_factory("bgekit_augmenters.queries:QueryWriter"),
        params_schema={"properties": {
            "language": {"type": "string", "default": "en",
                         "description": "language code of the queries (en for Chinese passages: cross-lingual pairs)"},
            "per_passage": {"type": "integer", "minimum": 1, "default": 3, "description": "queries asked per passage"},
            "few_shot": {"type": "array", "default": [],
                         "items": {"type": "object", "additionalProperties": False, "required": ["passage", "queries"],
                                   "properties": {"passage": {"type": "string"},
                                                  "queries": {"type": "array", "items": {"type": "string"},
                                                              "minItems": 1}}},
                         "description": "worked examples shown in the prompt: a passage and queries for it"},
            "prompt": {**PROMPT, "description": PROMPT["description"] + " ($n, $language, $passage, $examples)"},
            "system": SYSTEM,
        }},
    )
    yield AugmenterSpec(
        name="paraphrase",
        summary="rewrite the queries of training rows in other words",
        factory=lazy_factory("bgekit_augmenters.paraphrase:Paraphraser"),
        params_schema={"properties": {
            "language": {"type": ["string", "null"], "default": None,
                         "description": "language code of the rewrites (null: the query's own)"},
            "per_query": {"type": "integer", "minimum": 1, "default": 2, "description": "rewrites asked per query"},
            "keep_original": KEEP,
            "prompt": {**PROMPT, "description": PROMPT["description"] + " ($n, $language, $query)"},
            "system": SYSTEM,
        }},
    )
    yield AugmenterSpec(
        name="back-translation",
        summary="round trips through another language (zh->en->zh, en->zh->en) of queries or passages",
        factory=lazy_factory("bgekit_augmenters.back_translation:BackTranslator"),
        params_schema={"properties": {
            "field": {"enum": ["query", "passage"], "default": "query",
                      "description": "what is translated: each row's query, or its first positive passage"},
            "source": {"type": ["string", "null"], "default": None,
                       "description": "language code of the texts (null: guessed from each text's script)"},
            "pivot": {"type": "string", "default": "en", "description": "the language translated through"},
            "keep_original": KEEP,
            "prompt": {**PROMPT, "description": PROMPT["description"] + " ($language, $text)"},
            "system": SYSTEM,
        }},
    )
