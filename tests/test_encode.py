"""`bgekit encode`: JSONL in, dense / sparse / colbert JSONL out."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.models import Embedder

TEXTS = ["北京是中华人民共和国的首都。", "What is the capital of China?", "river river river",
         "The Yangtze is the longest river in China."]


@pytest.fixture(scope="module")
def m3_dir(tiny_model_dir, tmp_path_factory):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Embedder.from_pretrained(tiny_model_dir, heads=[{"name": "dense"}, {"name": "sparse"},
                                                                {"name": "colbert", "colbert_dim": 8}])
    with torch.no_grad():
        model.heads["sparse"].linear.bias.fill_(0.3)
    out = tmp_path_factory.mktemp("encode") / "model"
    model.save_pretrained(out)
    return out


@pytest.fixture
def texts_file(tmp_path):
    path = tmp_path / "texts.jsonl"
    rows = [{"id": f"t{i}", "text": t} for i, t in enumerate(TEXTS)]
    rows[2].pop("id")  # no id: its position
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_encode_writes_every_head_in_input_order(m3_dir, texts_file, tmp_path):
    out = tmp_path / "out" / "vectors.jsonl"
    result = CliRunner().invoke(main, ["encode", "--model", str(m3_dir), "--input", str(texts_file),
                                       "--output", str(out), "--batch-size", "3", "--max-length", "16"])
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["t0", "t1", 2, "t3"]
    expected = Embedder.from_pretrained(m3_dir).encode(TEXTS, max_length=16)
    for i, row in enumerate(rows):
        assert set(row) == {"id", "dense", "sparse", "colbert"}
        np.testing.assert_allclose(row["dense"], expected["dense"][i], atol=1e-6)
        assert row["sparse"].keys() == expected["sparse"][i].keys()
        assert all(isinstance(k, str) and v > 0 for k, v in row["sparse"].items())
        assert np.asarray(row["colbert"]).shape == expected["colbert"][i].shape
        assert np.asarray(row["colbert"]).shape[1] == 8
    assert [p.name for p in out.parent.iterdir()] == ["vectors.jsonl"]  # no temp file left behind


def test_encode_selected_heads_only_and_query_instruction(m3_dir, texts_file, tmp_path):
    out = tmp_path / "dense.jsonl"
    result = CliRunner().invoke(main, ["encode", "--model", str(m3_dir), "--input", str(texts_file),
                                       "--output", str(out), "--dense", "--sparse", "--query"])
    assert result.exit_code == 0, result.output
    assert all(set(r) == {"id", "dense", "sparse"} for r in read_jsonl(out))


def test_bad_input_line_is_an_error_with_its_line_number(m3_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "fine"}\n{"id": 2, "txt": "typo"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    result = CliRunner().invoke(main, ["encode", "--model", str(m3_dir), "--input", str(bad), "--output", str(out)])
    assert result.exit_code == 1
    assert f"{bad}:2: field 'text' must be a string" in result.output
    assert out.read_text() == "previous\n"  # never half-written
    bad.write_text('{"text": "ok"}\nnot json\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["encode", "--model", str(m3_dir), "--input", str(bad), "--output", str(out)])
    assert result.exit_code == 1 and f"{bad}:2  not valid JSON" in result.output


def test_asking_for_a_head_the_model_lacks_is_an_error(tiny_model_dir, texts_file, tmp_path):
    result = CliRunner().invoke(main, ["encode", "--model", str(tiny_model_dir), "--input", str(texts_file),
                                       "--output", str(tmp_path / "o.jsonl"), "--colbert"])
    assert result.exit_code == 1 and "has no colbert head" in result.output


def test_encode_in_a_real_subprocess(m3_dir, texts_file, tmp_path, run_bgekit):
    out = tmp_path / "sub.jsonl"
    proc = run_bgekit("encode", "--model", str(m3_dir), "--input", str(texts_file), "--output", str(out),
                      "--sparse")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 4 encodings (sparse)" in proc.stderr
    assert [set(r) for r in read_jsonl(out)] == [{"id", "sparse"}] * 4
