"""The fuzz harness of ``benchmarks/fuzz_inputs.py``, small: a few dozen generated inputs per kind.

Training JSONL, JSON arrays, CSV/TSV, BEIR folders, qrels/run files and
recipes: no traceback, no hang, every valid row kept and every invalid one
rejected at its line. The first failure stops the test, and hypothesis
shrinks it to a minimal input. The full run (12,000 inputs) is
``python benchmarks/fuzz_inputs.py --examples 2000``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")

HARNESS = Path(__file__).resolve().parent.parent / "benchmarks" / "fuzz_inputs.py"


def load_harness():
    spec = importlib.util.spec_from_file_location("fuzz_inputs", HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_generated_malformed_inputs_never_crash_hang_or_lose_a_row(tmp_path):
    fuzz = load_harness()
    tally = fuzz.run(25, fuzz.Tally(strict=True), workdir=tmp_path)
    result = fuzz.summary(tally, 0.0)
    assert result["inputs"] == 150
    assert (result["tracebacks"], result["hangs_over_5s"], result["wrong_splits_or_errors"]) == (0, 0, 0)
    kinds = result["per_kind"]
    # the generators really produce both kinds of rows, and recipes that load and that do not
    assert all(kinds[k]["rows_kept"] > 0 and kinds[k]["rows_rejected"] > 0 for k in ("jsonl", "json", "beir"))
    assert kinds["csv"]["inputs"] + kinds["tsv"]["inputs"] == 25
    assert 0 < kinds["recipe"]["clean_errors"] < 25
