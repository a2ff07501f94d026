"""Evaluation: trec_eval-exact metrics, retriever evaluation, paired comparison, benchmarks, reports.

- :mod:`~bgekit.evaluate.trec`: qrels (TREC or BEIR TSV) and TREC runs, read and written;
- :mod:`~bgekit.evaluate.judged`: rankings ordered the trec_eval way, as grade matrices;
- :mod:`~bgekit.evaluate.metrics`: metric names (``ndcg@10``) resolved through the
  metric plugins and computed per query;
- :mod:`~bgekit.evaluate.search` and :mod:`~bgekit.evaluate.retrieval`: search with any head of
  an :class:`~bgekit.models.Embedder` (or a hybrid of heads) through the head interface;
  :func:`~bgekit.evaluate.retrieval.evaluate_embedder` for use during training;
- :mod:`~bgekit.evaluate.runs`: a saved model evaluated from paths and options, as
  ``bgekit eval``, ``bgekit compare`` and ``task: evaluate`` do;
- :mod:`~bgekit.evaluate.results`: result directories (``metrics.json``, ``per_query.jsonl``, ``run.trec``);
- :mod:`~bgekit.evaluate.stats` and :mod:`~bgekit.evaluate.compare`: paired statistics;
- :mod:`~bgekit.evaluate.bench`: throughput, latency and memory;
- :mod:`~bgekit.evaluate.report`: ``report.html`` / ``report.md`` with matplotlib plots.
"""
