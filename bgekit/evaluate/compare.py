"""Baseline against candidate on the same queries, metric by metric.

Statistics are those of :mod:`bgekit.evaluate.stats`: delta of the
aggregates, paired percentile-bootstrap confidence interval, two-sided paired
randomisation (sign-flip) test p-value, paired Cohen's d, and queries
improved / hurt / tied. Only queries evaluated for both systems are compared;
how many were left out is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from bgekit.errors import BgekitError
from bgekit.evaluate.metrics import canonical_name
from bgekit.evaluate.results import EvalResult
from bgekit.evaluate.stats import PairedTest, paired_test

P_VALUE_METHOD = "paired randomisation test (sign flipping), two-sided, Monte Carlo"
CI_METHOD = "paired percentile bootstrap over queries"


@dataclass
class Comparison:
    baseline: EvalResult
    candidate: EvalResult
    qids: list[str]
    tests: dict[str, PairedTest]
    deltas: dict[str, np.ndarray]  # per shared query, candidate - baseline
    only_baseline: int
    only_candidate: int
    samples: int
    confidence: float
    seed: int

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.label,
            "candidate": self.candidate.label,
            "queries": len(self.qids),
            "queries_only_in_baseline": self.only_baseline,
            "queries_only_in_candidate": self.only_candidate,
            "confidence": self.confidence,
            "samples": self.samples,
            "seed": self.seed,
            "ci_method": CI_METHOD,
            "p_value_method": P_VALUE_METHOD,
            "metrics": [{"metric": name, **test.to_json()} for name, test in self.tests.items()],
        }


def _aligned(result: EvalResult, qids: Sequence[str], name: str) -> tuple[np.ndarray, np.ndarray | None]:
    row = {q: i for i, q in enumerate(result.values.qids)}
    order = np.array([row[q] for q in qids], dtype=np.int64)
    weights = result.values.weights.get(name)
    return result.values.per_query[name][order], None if weights is None else weights[order]


def compare_results(baseline: EvalResult, candidate: EvalResult, metrics: Sequence[str] | None = None, *,
                    samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Comparison:
    """Paired statistics of every metric both results carry (or of ``metrics``)."""
    if samples < 1:
        raise BgekitError(f"--samples must be at least 1, not {samples}")
    if not 0 < confidence < 1:
        raise BgekitError(f"--confidence must be between 0 and 1 (e.g. 0.95), not {confidence}")
    shared_names = [n for n in baseline.values.names if n in candidate.values.per_query]
    names = [canonical_name(m) for m in metrics] if metrics else shared_names
    missing = [n for n in names if n not in shared_names]
    if missing:
        raise BgekitError(f"metric(s) {', '.join(missing)} are not in both results; both have: "
                          f"{', '.join(shared_names) or 'none'}")
    if not names:
        raise BgekitError("the two results share no metric; evaluate both with the same --metrics")
    candidate_qids = set(candidate.values.qids)
    qids = [q for q in baseline.values.qids if q in candidate_qids]
    if not qids:
        raise BgekitError("the two results share no query; were they evaluated on the same data?")
    tests, deltas = {}, {}
    for name in names:
        b, weights = _aligned(baseline, qids, name)
        c, _ = _aligned(candidate, qids, name)
        tests[name] = paired_test(b, c, weights, samples=samples, confidence=confidence, seed=seed)
        deltas[name] = c - b
    return Comparison(baseline, candidate, qids, tests, deltas,
                      only_baseline=len(baseline.values.qids) - len(qids),
                      only_candidate=len(candidate_qids) - len(qids),
                      samples=samples, confidence=confidence, seed=seed)
