"""An example bgekit plugin: one metric and one data format.

bgekit finds this module through the ``bgekit`` entry-point group declared in
pyproject.toml and calls the ``@hookimpl`` functions below; each
returns spec records naming the components users write in recipes.
"""

from __future__ import annotations

from bgekit.api import FormatSpec, MetricSpec, RankingMetric, hookimpl

from bgekit_plugin_example.qa_tsv import QaTsvReader, detect_qa_tsv
from bgekit_plugin_example.r_precision import r_precision

__version__ = "0.1.0"


@hookimpl
def bgekit_metrics():
    yield MetricSpec(
        name="r-precision",
        summary="precision at rank R, R = the query's number of relevant documents (trec_eval Rprec)",
        factory=lambda: RankingMetric(r_precision),
        params_schema={"properties": {}},
        takes_k=False,
        requires_k=False,
    )


@hookimpl
def bgekit_data_formats():
    yield FormatSpec(
        name="qa-tsv",
        summary="question<TAB>answer lines (optional header), one positive per question",
        factory=QaTsvReader,
        detect=detect_qa_tsv,
        params_schema={"properties": {
            "encoding": {"type": "string", "default": "utf-8-sig", "description": "text encoding of the file"},
        }},
    )
