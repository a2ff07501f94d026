"""Training data written by an LLM: synthetic queries, paraphrases, back-translations.

The pieces, one module each:

- :mod:`~bgekit.augment.client`: one chat-completions request to any
  OpenAI-compatible server (OpenAI, DeepSeek, vLLM, Ollama, ...), errors sorted
  into "retry", "this row failed" and "stop the run";
- :mod:`~bgekit.augment.limits`: token buckets for requests and tokens per minute;
- :mod:`~bgekit.augment.retry`: exponential backoff with jitter, honouring ``Retry-After``;
- :mod:`~bgekit.augment.cache`: completions on disk (SQLite), so a killed run never pays twice;
- :mod:`~bgekit.augment.usage`: token counts, estimates and prices;
- :mod:`~bgekit.augment.prompts`: the prompt templates and how recipes override them;
- :mod:`~bgekit.augment.augmenter`: what an augmenter plugin implements;
- :mod:`~bgekit.augment.engine`: runs an augmenter over many items concurrently;
- :mod:`~bgekit.augment.filters`: length, language/script, duplicates, retriever round trip;
- :mod:`~bgekit.augment.settings` and :mod:`~bgekit.augment.task`: ``bgekit augment`` and the recipe step.
"""
