"""Paired statistics for comparing two systems on the same queries.

Per metric, with ``b`` and ``c`` the per-query values of baseline and
candidate (optionally with per-query ``weights``, for pooled metrics such as
coverage) and ``d = c - b``:

- delta: the aggregate of ``c`` minus the aggregate of ``b``;
- confidence interval: paired percentile bootstrap of the delta (queries
  resampled with replacement, the same queries for both systems);
- p-value: two-sided paired randomisation test (sign flipping of ``d``,
  Monte Carlo with ``samples`` permutations, p = (1 + #{|perm| >= |obs|}) /
  (1 + samples), Smucker et al., CIKM 2007). A system against itself gives
  d = 0, every permutation ties the observed 0, and p = 1 exactly;
- effect size: paired Cohen's d, mean(d) / sd(d) (sample sd); 0 when every
  difference is 0, +-inf when all differences are equal and non-zero;
- queries improved / hurt / tied: ``d > tol``, ``d < -tol``, otherwise.

Everything is vectorised over resamples, in blocks that bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bgekit.errors import BgekitError

#: differences smaller than this count as ties
TIE_TOLERANCE = 1e-9
#: resamples drawn per block (rows x queries integers held at once)
_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class PairedTest:
    baseline: float
    candidate: float
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    effect_size: float
    improved: int
    hurt: int
    tied: int
    queries: int
    samples: int

    def to_json(self) -> dict:
        out = self.__dict__.copy()
        # JSON has no infinity: an undefined effect size is written as null
        out["effect_size"] = self.effect_size if np.isfinite(self.effect_size) else None
        return out


def weighted_mean(values: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Mean over the last axis, weighted when ``weights`` is given (0 when all weights are 0)."""
    if weights is None:
        return values.mean(axis=-1)
    total = weights.sum(axis=-1)
    return np.divide((values * weights).sum(axis=-1), total, out=np.zeros_like(total, dtype=np.float64),
                     where=total > 0)


def _blocks(samples: int, n: int):
    size = max(1, _BLOCK_CELLS // max(n, 1))
    for start in range(0, samples, size):
        yield min(size, samples - start)


def paired_bootstrap_ci(baseline: np.ndarray, candidate: np.ndarray, weights: np.ndarray | None = None, *,
                        samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the aggregate difference ``candidate - baseline``."""
    b, c = _checked(baseline, candidate, weights)
    rng = np.random.default_rng(seed)
    n = len(b)
    deltas = []
    for rows in _blocks(samples, n):
        idx = rng.integers(0, n, size=(rows, n))
        w = None if weights is None else weights[idx]
        deltas.append(weighted_mean(c[idx], w) - weighted_mean(b[idx], w))
    all_deltas = np.concatenate(deltas)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(all_deltas, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_ci(values: np.ndarray, weights: np.ndarray | None = None, *, samples: int = 1000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of one system's aggregate (for error bars)."""
    zeros = np.zeros_like(np.asarray(values, dtype=np.float64))
    return paired_bootstrap_ci(zeros, values, weights, samples=samples, confidence=confidence, seed=seed)


def randomisation_p_value(baseline: np.ndarray, candidate: np.ndarray, weights: np.ndarray | None = None, *,
                          samples: int = 1000, seed: int = 0) -> float:
    """Two-sided paired randomisation (sign-flip) test of the aggregate difference."""
    b, c = _checked(baseline, candidate, weights)
    diff = c - b
    observed = abs(float(weighted_mean(diff, weights)))
    rng = np.random.default_rng(seed)
    at_least = 0
    for rows in _blocks(samples, len(diff)):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(rows, len(diff)))
        w = None if weights is None else np.broadcast_to(weights, signs.shape)
        permuted = np.abs(weighted_mean(signs * diff, w))
        at_least += int((permuted >= observed - TIE_TOLERANCE).sum())
    return (1 + at_least) / (1 + samples)


def cohens_d_paired(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """mean(d) / sd(d) of the per-query differences."""
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    mean = float(diff.mean()) if len(diff) else 0.0
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    if sd > TIE_TOLERANCE:
        return mean / sd
    if abs(mean) <= TIE_TOLERANCE:
        return 0.0
    return float(np.copysign(np.inf, mean))


def win_loss(baseline: np.ndarray, candidate: np.ndarray) -> tuple[int, int, int]:
    """Queries improved, hurt and tied."""
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    improved, hurt = int((diff > TIE_TOLERANCE).sum()), int((diff < -TIE_TOLERANCE).sum())
    return improved, hurt, len(diff) - improved - hurt


def paired_test(baseline: np.ndarray, candidate: np.ndarray, weights: np.ndarray | None = None, *,
                samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> PairedTest:
    """Everything ``bgekit compare`` reports for one metric."""
    b, c = _checked(baseline, candidate, weights)
    low, high = paired_bootstrap_ci(b, c, weights, samples=samples, confidence=confidence, seed=seed)
    improved, hurt, tied = win_loss(b, c)
    base, cand = float(weighted_mean(b, weights)), float(weighted_mean(c, weights))
    return PairedTest(
        baseline=base, candidate=cand, delta=cand - base, ci_low=low, ci_high=high, confidence=confidence,
        p_value=randomisation_p_value(b, c, weights, samples=samples, seed=seed),
        effect_size=cohens_d_paired(b, c), improved=improved, hurt=hurt, tied=tied,
        queries=len(b), samples=samples,
    )


def _checked(baseline, candidate, weights) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    if b.shape != c.shape or b.ndim != 1:
        raise BgekitError(f"paired statistics need two equally long lists of per-query values, "
                          f"got shapes {b.shape} and {c.shape}")
    if not len(b):
        raise BgekitError("paired statistics need at least one query")
    if weights is not None and np.shape(weights) != b.shape:
        raise BgekitError("per-query weights must match the per-query values")
    return b, c
