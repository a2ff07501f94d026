"""Paired statistics behind `bgekit compare`."""

from __future__ import annotations

import numpy as np
import pytest

from bgekit.errors import BgekitError
from bgekit.evaluate.stats import (
    bootstrap_ci,
    cohens_d_paired,
    paired_bootstrap_ci,
    paired_test,
    randomisation_p_value,
    win_loss,
)


def test_a_run_against_itself_has_zero_delta_and_p_one():
    values = np.random.default_rng(0).random(200)
    result = paired_test(values, values.copy(), samples=500)
    assert result.delta == 0.0
    assert result.ci_low == 0.0 and result.ci_high == 0.0
    assert result.p_value == 1.0
    assert result.effect_size == 0.0
    assert (result.improved, result.hurt, result.tied) == (0, 0, 200)


def test_a_clearly_better_run_has_a_ci_excluding_zero_and_a_small_p():
    rng = np.random.default_rng(1)
    baseline = rng.random(300)
    candidate = np.clip(baseline + 0.1 + rng.normal(0, 0.05, 300), 0, 1)
    result = paired_test(baseline, candidate, samples=1000, seed=3)
    assert 0 < result.ci_low < result.delta < result.ci_high
    assert result.p_value < 0.01
    assert result.p_value >= 1 / 1001  # the Monte Carlo floor
    assert result.effect_size > 1
    assert result.improved > result.hurt


def test_no_real_difference_gives_a_ci_around_zero_and_a_large_p():
    rng = np.random.default_rng(2)
    baseline = rng.random(400)
    candidate = baseline + rng.normal(0, 0.1, 400)  # noise only
    low, high = paired_bootstrap_ci(baseline, candidate, samples=1000)
    assert low < 0 < high
    assert randomisation_p_value(baseline, candidate, samples=1000) > 0.05


def test_bootstrap_ci_is_close_to_the_normal_approximation():
    rng = np.random.default_rng(4)
    values = rng.random(2000)
    low, high = bootstrap_ci(values, samples=2000)
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert low == pytest.approx(values.mean() - half_width, abs=0.004)
    assert high == pytest.approx(values.mean() + half_width, abs=0.004)


def test_randomisation_p_matches_exact_enumeration_on_small_samples():
    """With 6 queries there are 64 sign patterns; the Monte Carlo p approaches the exact one."""
    diff = np.array([0.3, 0.1, -0.05, 0.2, 0.25, 0.15])
    signs = np.array(np.meshgrid(*[[-1, 1]] * 6)).reshape(6, -1).T
    exact = (np.abs((signs * diff).mean(axis=1)) >= abs(diff.mean()) - 1e-12).mean()
    p = randomisation_p_value(np.zeros(6), diff, samples=20000, seed=5)
    assert p == pytest.approx(exact, abs=0.01)


def test_weighted_metrics_aggregate_with_weights():
    baseline = np.array([0.0, 1.0])
    candidate = np.array([1.0, 1.0])
    weights = np.array([1.0, 3.0])
    result = paired_test(baseline, candidate, weights, samples=200)
    assert result.baseline == pytest.approx(0.75) and result.candidate == pytest.approx(1.0)


def test_effect_size_and_counts():
    assert cohens_d_paired(np.zeros(4), np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(2.5 / np.std([1, 2, 3, 4], ddof=1))
    assert cohens_d_paired(np.zeros(3), np.ones(3)) == np.inf
    assert win_loss(np.array([0.5, 0.5, 0.5]), np.array([0.6, 0.4, 0.5])) == (1, 1, 1)
    assert paired_test(np.zeros(3), np.ones(3), samples=10).to_json()["effect_size"] is None


def test_mismatched_inputs_are_rejected():
    with pytest.raises(BgekitError, match="equally long"):
        paired_test(np.zeros(3), np.zeros(4))
    with pytest.raises(BgekitError, match="at least one query"):
        paired_test(np.zeros(0), np.zeros(0))
