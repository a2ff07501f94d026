"""Built-in data formats: each has a detector (confidence from a sample of the
file) and a streaming reader to canonical examples."""

from __future__ import annotations

from bgekit.api import FormatSpec, hookimpl

from bgekit_formats.beir import BeirReader, detect_beir
from bgekit_formats.common import ENCODING_PARAM
from bgekit_formats.delimited import DelimitedReader, detector
from bgekit_formats.dureader import DureaderReader, detect_dureader
from bgekit_formats.json_array import JsonArrayReader, detect_json_array
from bgekit_formats.jsonl import JsonlReader, detect_jsonl
from bgekit_formats.msmarco import MsMarcoReader, detect_msmarco
from bgekit_formats.pairs import PairsReader, detect_pairs
from bgekit_formats.trec_xml import TrecXmlReader, detect_trec_xml


def _params(**extra) -> dict:
    return {"properties": {**ENCODING_PARAM, **extra}}


def _delimiter(default: str) -> dict:
    return {"type": "string", "default": default, "description": "the column separator"}


def _split(default: str) -> dict:
    return {"type": "string", "default": default,
            "description": "which split's queries and qrels to read from a directory"}


@hookimpl
def bgekit_data_formats():
    yield FormatSpec(
        name="jsonl", factory=JsonlReader, detect=detect_jsonl, params_schema=_params(),
        summary="canonical JSONL: query, pos, neg, optional pos_scores/neg_scores/prompt/type",
    )
    yield FormatSpec(
        name="json", factory=JsonArrayReader, detect=detect_json_array, params_schema=_params(),
        summary="a JSON file with one top-level array of canonical examples (streamed)",
    )
    yield FormatSpec(
        name="csv", factory=DelimitedReader, detect=detector(",", (".csv",)),
        params_schema=_params(delimiter=_delimiter(",")),
        summary="CSV with a header of canonical columns; list cells as JSON or Python list literals",
    )
    yield FormatSpec(
        name="tsv", factory=DelimitedReader, detect=detector("\t", (".tsv", ".tab")),
        params_schema=_params(delimiter=_delimiter("\t")),
        summary="TSV with a header of canonical columns; list cells as JSON or Python list literals",
    )
    yield FormatSpec(
        name="dureader", factory=DureaderReader, detect=detect_dureader, params_schema=_params(),
        summary='DuReader: {"data": [{question, answers, documents: [{content, is_relevant}]}]} or one per line',
    )
    yield FormatSpec(
        name="msmarco", factory=MsMarcoReader, detect=detect_msmarco, params_schema=_params(split=_split("train")),
        summary="MS MARCO: judged TSV rows, official triples, or a collection/queries/qrels directory",
    )
    yield FormatSpec(
        name="trec-xml", factory=TrecXmlReader, detect=detect_trec_xml, params_schema=_params(),
        summary="<topics><topic><query/><positive/><negative/></topic></topics>",
    )
    yield FormatSpec(
        name="pairs", factory=PairsReader, detect=detect_pairs, params_schema=_params(),
        summary="reranker pairs (query, passage, label[, score]) as JSONL or TSV, grouped per query",
    )
    yield FormatSpec(
        name="beir", factory=BeirReader, detect=detect_beir, role="eval", params_schema=_params(split=_split("test")),
        summary="BEIR directory (corpus.jsonl, queries.jsonl, qrels) read as training examples",
    )
