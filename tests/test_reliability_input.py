"""Issue 11, the input side: bad data and bad recipes end as kept rows, rejected rows with a
reason, or one clear line; nothing is lost silently and nothing prints a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.errors import BgekitError
from bgekit.recipe import RecipeError, load_recipe


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def validate_json(path: Path, *extra: str) -> dict:
    result = cli("data", "validate", str(path), "--json", *extra)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return json.loads(result.output)


# ---------------------------------------------------------------------------
# 2. the json format loses nothing
# ---------------------------------------------------------------------------


def test_concatenated_json_arrays_reject_the_second_instead_of_dropping_it(tmp_path):
    src = write(tmp_path / "two.json", '[{"query":"a","pos":["x"]}]\n[{"query":"b","pos":["y"]}]\n')
    out = tmp_path / "o.jsonl"
    result = cli("data", "convert", str(src), str(out))
    assert result.exit_code == 0, result.output
    assert "1 row written, 1 rejected" in result.output
    assert [r["query"] for r in jsonl(out)] == ["a"]
    [rejected] = jsonl(tmp_path / "o.jsonl.rejected.jsonl")
    assert rejected["line"] == 2 and "after the top-level array" in rejected["reason"]
    assert rejected["raw"] == '[{"query":"b","pos":["y"]}]'


def test_garbage_after_a_json_array_is_a_rejected_row_with_its_line(tmp_path):
    src = write(tmp_path / "g.json", '[\n{"query":"a","pos":["x"]}\n]\n{"query":"b","pos":["y"]}\nGARBAGE\n')
    report = validate_json(src, "--format", "json")
    assert (report["valid"], report["invalid"]) == (1, 2)
    lines = [(e["line"], e["raw"]) for e in report["errors"]]
    assert lines == [(4, '{"query":"b","pos":["y"]}'), (5, "GARBAGE")]


def test_jsonl_whose_first_line_is_an_array_is_read_as_jsonl(tmp_path):
    rows = ['["x"]'] + [json.dumps({"query": f"q{i}", "pos": [f"p{i}"]}) for i in range(24)]
    src = write(tmp_path / "train.jsonl", "\n".join(rows) + "\n")
    out = tmp_path / "o.jsonl"
    result = cli("data", "convert", str(src), str(out))
    assert result.exit_code == 0 and "(jsonl, utf-8)" in result.output
    assert len(jsonl(out)) == 24
    [rejected] = jsonl(tmp_path / "o.jsonl.rejected.jsonl")
    assert rejected["line"] == 1 and "expected a JSON object" in rejected["reason"] and rejected["raw"] == '["x"]'


# ---------------------------------------------------------------------------
# 3. rows that used to crash validate/convert
# ---------------------------------------------------------------------------

BIG = int("9" * 401)
BAD_ROWS = [
    ('{"query": "q", "pos": ["a"], "pos_scores": [%d]}' % BIG, "pos_scores", "too large"),
    ('{"query": "q", "pos": ["a"], "pos_labels": [%d]}' % BIG, "pos_labels", "too large"),
    ('{"query": "q\\ud800", "pos": ["a"]}', "query", "unpaired surrogate"),
    ('{"query": "q", "pos": ["a\\udfff"]}', "pos", "unpaired surrogate"),
    ('{"query": "q", "pos": ["a"], "note": "\\ud800"}', "note", "unpaired surrogate"),
    ('{"query": "q", "pos": ["a"], "pos_scores": [1e308]}', "pos_scores", "within"),
    ('{"query": "q", "pos": ["a"], "pos_scores": [Infinity]}', "pos_scores", "NaN or infinity"),
    ('{"query": "q", "pos": ["a"], "extra": NaN}', "extra", "NaN or infinity"),
    ('{"query": "q", "pos": ["a"], "pos_labels": [1000]}', "pos_labels", "within"),
    ('{"query": "q", "pos": ' + "[" * 100_000 + "}", None, "nested too deeply"),
    ('{"query": "q", "pos": ["a"], "n": ' + "1" * 5000 + "}", "n", "5000 digits, too long to read"),
    ('{"query": "q", "pos": ["a"], "pos_scores": [-' + "1" * 5000 + "]}", "pos_scores", "5000 digits"),
]


@pytest.mark.parametrize("row, field, words", BAD_ROWS, ids=[w + str(i) for i, (_, _, w) in enumerate(BAD_ROWS)])
def test_rows_that_crashed_are_rejected_with_a_reason(tmp_path, row, field, words):
    good = json.dumps({"query": "ok", "pos": ["fine"]})
    src = write(tmp_path / "train.jsonl", f"{good}\n{row}\n{good}\n")
    report = validate_json(src)
    assert (report["valid"], report["invalid"]) == (2, 1)
    [error] = report["errors"]
    assert error["line"] == 2 and error["field"] == field and words in error["reason"]
    out = tmp_path / "out.jsonl"
    result = cli("data", "convert", str(src), str(out))
    assert result.exit_code == 0, result.output
    assert len(jsonl(out)) == 2
    [rejected] = jsonl(tmp_path / "out.jsonl.rejected.jsonl")
    assert rejected["line"] == 2 and rejected["raw"] == row  # the original text, not null


def test_a_json_array_element_too_deep_to_read_is_rejected_and_the_rest_still_read(tmp_path, monkeypatch):
    import bgekit.data.jsonstream as js

    monkeypatch.setattr(js, "CHUNK_CHARS", 4096)  # the deep element spans many reads
    deep = '{"query": "q", "pos": ' + "[" * 50_000 + '"]", "[{"' + "]" * 50_000 + "}"
    src = write(tmp_path / "a.json", f'[{{"query": "ok", "pos": ["p"]}},\n{deep},\n{{"query": "b", "pos": ["y"]}}]')
    report = validate_json(src, "--format", "json")
    assert (report["valid"], report["invalid"]) == (2, 1)
    assert "nested too deeply" in report["errors"][0]["reason"] and report["errors"][0]["line"] == 2
    broken = write(tmp_path / "b.json", '[{"query": "ok", "pos": ["p"]},\n{"query": "q", "pos": ' + "[" * 50_000 + "]")
    report = validate_json(broken, "--format", "json")  # never closed: the rest cannot be read, said so
    assert (report["valid"], report["invalid"]) == (1, 1) and "nested too deeply" in report["errors"][0]["reason"]


@pytest.mark.parametrize("text, limit, words", [
    ('query,pos\nok,fine\n"a' + "b" * 300 + '",x\nok2,fine\n', 100, "not a valid CSV record (field larger"),
    ('query,pos,pos_scores\nok,fine,1\nq,x,"[' + "[" * 10_000 + ']"\n', 20_000, "neither a JSON list"),
])
def test_csv_cells_that_crashed_are_rejected(tmp_path, monkeypatch, text, limit, words):
    import bgekit_formats.delimited as delimited

    monkeypatch.setattr(delimited, "MAX_FIELD_CHARS", limit)
    src = write(tmp_path / "t.csv", text)
    report = validate_json(src)
    assert (report["valid"], report["invalid"]) == (text.count("ok"), 1)
    assert report["errors"][0]["line"] == 3 and words in report["errors"][0]["reason"]


@pytest.mark.parametrize("label", ["²", "9" * 5000, "1e999"])
def test_pairs_labels_that_crashed_are_rejected(tmp_path, label):
    src = write(tmp_path / "pairs.tsv", f"query\tpassage\tlabel\nq\tp\t1\nr\tp2\t{label}\nr\tp3\t1\n")
    report = validate_json(src, "--format", "pairs")
    assert report["invalid"] == 1 and "label" in report["errors"][0]["reason"]


def test_msmarco_infinite_relevance_is_rejected(tmp_path):
    src = write(tmp_path / "m.tsv", "1\tq\t7\tdoc\t1\n2\tr\t8\tdoc2\tinf\n")
    report = validate_json(src, "--format", "msmarco")
    assert report["invalid"] == 1 and "relevance" in report["errors"][0]["reason"]


# ---------------------------------------------------------------------------
# 14. ids: one rule everywhere
# ---------------------------------------------------------------------------


def beir(tmp_path: Path, corpus: list[dict], queries: list[dict]) -> Path:
    root = tmp_path / "beir"
    write(root / "corpus.jsonl", "".join(json.dumps(d) + "\n" for d in corpus))
    write(root / "queries.jsonl", "".join(json.dumps(q) + "\n" for q in queries))
    write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return root


@pytest.mark.parametrize("corpus, queries, words", [
    ([{"_id": "d1", "text": "a"}, {"_id": "d2", "text": "b"}, {"_id": "d1", "text": "c"}],
     [{"_id": "q1", "text": "q"}], "corpus.jsonl:3  $.id  document id 'd1' is already used at line 1"),
    ([{"_id": "d1", "text": "a"}], [{"_id": "q1", "text": "q"}, {"_id": "q1", "text": "again"}],
     "queries.jsonl:2  $.id  query id 'q1' is already used at line 1"),
    ([{"_id": "d1", "text": "a"}, {"_id": ["d2"], "text": "b"}], [{"_id": "q1", "text": "q"}],
     "corpus.jsonl:2  $._id  the corpus id must be a non-empty string or a whole number, got array"),
    ([{"_id": "d1", "text": "a"}, {"id": True, "text": "b"}], [{"_id": "q1", "text": "q"}],
     "got boolean"),
    ([{"_id": "d1", "text": "a"}], [{"_id": "q1", "text": "q"}, {"_id": {"x": 1}, "text": "b"}],
     "the query id must be a non-empty string or a whole number, got object"),
])
def test_bad_and_repeated_ids_fail_the_same_way_in_validate_convert_and_eval(tmp_path, corpus, queries, words):
    from bgekit.evaluate.retrieval import load_eval_data

    root = beir(tmp_path, corpus, queries)
    for args in (["data", "validate", str(root), "--format", "beir"],
                 ["data", "convert", str(root), str(tmp_path / "o.jsonl"), "--from", "beir"]):
        result = cli(*args)
        assert result.exit_code == 1 and words in result.output, result.output
        assert "Traceback" not in result.output
    with pytest.raises(BgekitError) as info:
        load_eval_data(root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / "test.tsv")
    assert words in str(info.value)


def test_a_whole_number_id_and_its_string_are_the_same_id(tmp_path):
    from bgekit.data.beir import iter_corpus

    path = write(tmp_path / "corpus.jsonl", '{"_id": 7, "text": "a"}\n{"_id": "7", "text": "b"}\n')
    items = list(iter_corpus(path))
    assert items[0] == ("7", "", "a") and "already used at line 1" in str(items[1])


# ---------------------------------------------------------------------------
# 8. outputs that cannot be written
# ---------------------------------------------------------------------------


def test_a_folder_that_cannot_be_written_is_one_line_and_the_old_file_stays(tmp_path, monkeypatch):
    import tempfile

    src = write(tmp_path / "in.jsonl", '{"query": "q", "pos": ["p"]}\n')
    out = write(tmp_path / "out" / "o.jsonl", "previous good output\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(out.parent))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    result = cli("data", "convert", str(src), str(out))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"error: cannot write {out}: Permission denied")
    assert out.read_text() == "previous good output\n"


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_ulimit_f_during_convert_is_one_line_and_leaves_no_partial_file(tmp_path):
    src = write(tmp_path / "in.jsonl", "".join(json.dumps({"query": f"q{i}", "pos": ["p" * 200]}) + "\n"
                                              for i in range(2000)))
    out = write(tmp_path / "out" / "o.jsonl", "previous good output\n")
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
        from bgekit.cli import main
        sys.argv = ["bgekit", "data", "convert", {str(src)!r}, {str(out)!r}]
        main()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "cannot write" in done.stderr and "File too large" in done.stderr
    assert out.read_text() == "previous good output\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["o.jsonl"]  # no .partial left


@pytest.mark.parametrize("command", [
    ["data", "split", "{book}", "--out", "{out}", "--chunk-size", "50"],
    ["data", "pairs", "{passages}", "--out", "{out}", "--method", "title", "--negatives", "0"],
])
def test_split_and_pairs_outputs_that_cannot_be_written_are_one_line(tmp_path, command, monkeypatch):
    import tempfile

    book = write(tmp_path / "book.txt", "第一回\n天下大势，分久必合。合久必分。\n")
    passages = write(tmp_path / "passages.jsonl", json.dumps(
        {"id": "b#0", "doc_id": "b", "chapter": "c", "position": 0, "text": "一段文字。"}) + "\n")
    out = write(tmp_path / "out.jsonl", "old\n")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    args = [a.format(book=book, passages=passages, out=out) for a in command]
    result = cli(*args)
    assert result.exit_code == 1 and "No space left on device" in result.output, result.output
    assert result.output.count("\n") == 1 and out.read_text() == "old\n"


# ---------------------------------------------------------------------------
# the CLI's last line of defence, and messages (issue 15)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [PermissionError(13, "Permission denied", "/data/x.jsonl"),
                                 UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
                                 RecursionError("maximum recursion depth exceeded")])
def test_expected_failures_are_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch, exc):
    import bgekit.data.validation as validation

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(validation, "validate", boom)
    src = write(tmp_path / "in.jsonl", "{}\n")
    result = cli("data", "validate", str(src))
    assert result.exit_code == 1 and result.output.startswith("error: ") and result.output.count("\n") == 1
    debug = CliRunner().invoke(main, ["--debug", "data", "validate", str(src)])
    assert debug.exception is exc


def test_line_lists_never_read_lines_comma_nothing():
    from bgekit.commands.data import counted, line_list

    assert [line_list([841], False), line_list([1, 2], True), line_list([], True)] == \
        ["line 841", "lines 1, 2, ...", ""]
    assert [counted(1, "row"), counted(0, "row"), counted(2, "passage")] == ["1 row", "0 rows", "2 passages"]


def test_counts_and_line_lists_read_right(tmp_path):
    src = write(tmp_path / "in.jsonl", '{"query": "q", "pos": ["p"]}\n')
    result = cli("data", "convert", str(src), str(tmp_path / "o.jsonl"))
    assert "1 row written, 0 rejected" in result.output
    result = cli("data", "validate", str(src))
    assert "(line 1)" in result.output and "(lines" not in result.output


# ---------------------------------------------------------------------------
# 4, 5, 7. recipes
# ---------------------------------------------------------------------------

RECIPE = "task: embedder\noutput_dir: runs/x\nmodel: {name_or_path: tiny}\n"


def refused(path: Path, overrides=(), within: float = 1.0) -> list[str]:
    started = time.perf_counter()
    with pytest.raises(RecipeError) as info:
        load_recipe(path, list(overrides))
    assert time.perf_counter() - started < within
    return info.value.problems


def alias_bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, words", [
    ("task: embedder\x00\n", "character #x0000 is not allowed"),
    ("task: embedder\x07\n", "character #x0007 is not allowed"),
    (RECIPE + "seed: &a [*a]\n", "refers to a value that contains it"),
    (RECIPE + alias_bomb(5), "counting what each YAML alias expands to"),
    (RECIPE + alias_bomb(6), "counting what each YAML alias expands to"),
    (RECIPE + alias_bomb(9), "counting what each YAML alias expands to"),
    ("".join(f"k{i}: 1\n" for i in range(100_000)), "over 64 KiB"),
    ("".join(f"k{i}: 1\n" for i in range(4_000)), "too many values"),
    ("a: " + "[" * 60_000 + "\n", "nested more than 50 levels"),
    ("a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 200)), "nested more than 50 levels"),
    ("task: embedder\nq: \udcff\n", "not UTF-8 text"),
])
def test_any_recipe_is_accepted_or_refused_in_under_a_second(tmp_path, bgekit_pm, text, words):
    path = tmp_path / "r.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    found = refused(path)
    assert len(found) == 1 and words in found[0], found


def test_extends_cannot_read_outside_the_recipe_folder_nor_echo_the_target(tmp_path, bgekit_pm, monkeypatch):
    secret = write(tmp_path / "secret.yaml", "TOPSECRET_KEY: TOPSECRET_VALUE\n")
    sub = tmp_path / "recipes"
    write(sub / "not-yaml.txt", "TOPSECRET_TEXT: 1\n")
    for target, words in [("/proc/self/environ", "is an absolute path"), (str(secret), "is an absolute path"),
                          ("../secret.yaml", "is outside the recipe's folder"),
                          ("not-yaml.txt", "is not a recipe file")]:
        path = write(sub / "r.yaml", f"extends: {target}\n" + RECIPE)
        [problem] = refused(path)
        assert words in problem and "TOPSECRET" not in problem
    monkeypatch.setenv("BGEKIT_EXTENDS_ANYWHERE", "1")
    path = write(sub / "r.yaml", "extends: ../secret.yaml\n" + RECIPE)
    assert any("TOPSECRET_KEY" in p for p in refused(path))  # allowed on purpose: then it is read


def test_numbers_must_be_finite_and_output_dir_a_folder_of_its_own(tmp_path, bgekit_pm, monkeypatch):
    path = write(tmp_path / "r.yaml", "task: embedder\noutput_dir: runs/x\nmodel: {name_or_path: m}\n"
                 "train:\n  learning_rate: .inf\n  warmup_ratio: .nan\n")
    assert refused(path) == [f"{path}:5  $.train.learning_rate  must be a finite number, not .inf",
                             f"{path}:6  $.train.warmup_ratio  must be a finite number, not .nan"]
    monkeypatch.chdir(tmp_path)
    for value in ["''", ".", str(tmp_path), "./"]:
        write(tmp_path / "o.yaml", f"task: embedder\noutput_dir: {value}\nmodel: {{name_or_path: m}}\n")
        [problem] = refused(Path("o.yaml"))
        assert problem.startswith("o.yaml:2  $.output_dir") and "name a folder of its own" in problem
    assert "command line  $.output_dir  must be a finite number, not -.inf" in refused(Path("o.yaml"),
                                                                                     ["output_dir=-.inf"])


def test_values_from_the_environment_are_never_printed(tmp_path, bgekit_pm, monkeypatch):
    monkeypatch.setenv("BS", "sk-very-secret")
    path = write(tmp_path / "r.yaml", RECIPE + "train: {batch_size: '${env:BS}'}\ndevice: {name: '${env:BS}'}\n")
    found = refused(path)
    assert len(found) == 2 and all("${env:BS}" in p for p in found)
    assert not any("sk-very-secret" in p for p in found)


@pytest.mark.parametrize("value", ["${env:}", "${env:1ABC}", "${env:NAME", "x${env:A-B}"])
def test_a_malformed_env_reference_is_an_error_not_a_literal(tmp_path, bgekit_pm, value):
    path = write(tmp_path / "r.yaml", RECIPE.replace("tiny}", f"tiny, revision: '{value}'}}"))
    [problem] = refused(path)
    assert "malformed environment reference" in problem


def test_metric_names_keep_the_users_case_in_recipe_errors(tmp_path, bgekit_pm):
    path = write(tmp_path / "r.yaml", RECIPE + "evaluate: {metrics: [NDCG@1O, nDCGG@10]}\n")
    found = refused(path)
    assert "metric 'NDCG@1O': cut-off '1O' is not a whole number" in found[0]
    assert "unknown metric 'nDCGG' (did you mean 'ndcg'?)" in found[1]


def test_plugins_get_the_recipe_with_secrets_masked(tmp_path, bgekit_pm, monkeypatch):
    monkeypatch.setenv("HUB_REVISION", "sk-very-secret")
    path = write(tmp_path / "r.yaml", RECIPE.replace("{name_or_path: tiny}",
                                                     "{name_or_path: tiny, revision: '${env:HUB_REVISION}'}"))
    recipe = load_recipe(path)
    assert recipe.values["model"]["revision"] == "sk-very-secret"
    shown = recipe.values_for_plugins()
    assert shown["model"]["revision"] == "${env:HUB_REVISION}" and "sk-very-secret" not in json.dumps(shown)
    assert recipe.values["model"]["revision"] == "sk-very-secret"  # masking copied, did not change the run


# ---------------------------------------------------------------------------
# 6. preflight: files and lengths before anything heavy
# ---------------------------------------------------------------------------


def model_folder(tmp_path: Path, positions: int = 514, model_type: str = "xlm-roberta") -> Path:
    folder = tmp_path / "model"
    write(folder / "config.json", json.dumps({"model_type": model_type, "max_position_embeddings": positions,
                                              "pad_token_id": 1}))
    return folder


def test_preflight_names_each_missing_input_file(tmp_path, bgekit_pm, monkeypatch):
    from bgekit.preflight import PreflightError, check_recipe

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "data" / "train.jsonl", "{}\n")
    write(tmp_path / "eval" / "corpus.jsonl", "{}\n")
    path = write(tmp_path / "r.yaml", RECIPE + "data: {train: [data/train.jsonl, data/nope.jsonl]}\n"
                 "evaluate: {corpus: eval/corpus.jsonl, queries: eval, qrels: eval/qrels.tsv}\n")
    with pytest.raises(PreflightError) as info:
        check_recipe(load_recipe(path))
    assert info.value.problems == [
        "data.train: data/nope.jsonl: no such file or folder (paths are relative to the folder you run in)",
        "evaluate.queries: eval: is a folder, not a file (paths are relative to the folder you run in)",
        "evaluate.qrels: eval/qrels.tsv: no such file (paths are relative to the folder you run in)",
    ]


@pytest.mark.parametrize("task, lengths, words", [
    ("embedder", "{query_max_length: 64, passage_max_length: 513}",
     "model.passage_max_length is 513, but {model} (xlm-roberta) has 512 positions"),
    ("reranker", "{query_max_length: 64, passage_max_length: 449}",
     "model.query_max_length + model.passage_max_length = 64 + 449 = 513"),
])
def test_preflight_refuses_lengths_past_the_models_positions(tmp_path, bgekit_pm, task, lengths, words):
    from bgekit.preflight import PreflightError, check_recipe

    folder = model_folder(tmp_path)
    path = write(tmp_path / "r.yaml", f"task: {task}\noutput_dir: runs/x\n"
                 f"model: {{name_or_path: {folder}, {lengths[1:-1]}}}\n")
    with pytest.raises(PreflightError) as info:
        check_recipe(load_recipe(path))
    assert words.format(model=folder) in str(info.value)
    ok = write(tmp_path / "ok.yaml", path.read_text().replace("513", "512").replace("449", "448"))
    check_recipe(load_recipe(ok))  # at the limit is fine


def test_bgekit_run_fails_in_one_line_before_loading_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = model_folder(tmp_path)
    write(tmp_path / "train.jsonl", '{"query": "q", "pos": ["p"]}\n')
    write(tmp_path / "r.yaml", f"task: embedder\noutput_dir: runs/x\nmodel: {{name_or_path: {folder}}}\n"
          "data: {train: train.jsonl}\nevaluate: {corpus: c.jsonl, queries: q.jsonl, qrels: missing.tsv}\n"
          "device: {name: cpu}\n")
    result = CliRunner().invoke(main, ["run", "r.yaml", "~evaluate.corpus", "~evaluate.queries"])
    assert result.exit_code == 1, result.output
    assert result.output == ("error: evaluate.qrels: missing.tsv: no such file "
                             "(paths are relative to the folder you run in)\n")
    assert not (tmp_path / "runs").exists()  # no resolved_recipe.yaml left behind
