"""Generated malformed inputs: no traceback, no hang, and every data row accounted for.

Each data file is built from rows known to be valid and rows known to be
invalid (one deliberate defect each), in a random order, with random text
(Chinese, emoji, quotes, backslashes, control characters where the format can
hold them). Reading it must keep exactly the valid rows and reject exactly
the invalid ones, each at its own line. Recipes are shipped recipes with
random damage (control bytes, alias bombs and cycles, deep nesting, huge or
non-finite numbers, bad ``${env:}`` references, cut-off text) or random YAML
trees: each must load or fail with a :class:`RecipeError`, within the time
limit. Qrels and run files get damaged lines: a one-line error naming that
line, or a clean parse.

    python benchmarks/fuzz_inputs.py --examples 2000      # per kind: 6 kinds -> 12,000 inputs

Prints one JSON object with the counts per kind; exit status 1 when any input
gave a traceback, a hang or a wrong split. ``tests/test_fuzz_inputs.py`` runs
the same checks with a few dozen examples per kind in the default suite.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
HANG_SECONDS = 5.0

# ---------------------------------------------------------------------------
# Text and rows
# ---------------------------------------------------------------------------

_WORDS = st.sampled_from(["长江", "黄河", "question", "naïve", "😀", 'say "hi"', "back\\slash", "tab\there",
                          "数学题", "Россия", "한국어", "العربية", "{", "}", "[", "]", ",", ":", "'", "#", "  "])
#: texts with at least one visible character; `control` adds characters only escaped formats can hold
_PLAIN = st.lists(_WORDS, min_size=1, max_size=4).map(" ".join).filter(lambda t: t.strip())
_CONTROL = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda t: t.strip())


def texts(control: bool) -> st.SearchStrategy[str]:
    return st.one_of(_PLAIN, _CONTROL) if control else _PLAIN


@st.composite
def valid_row(draw, control: bool = True) -> dict:
    """A canonical example bgekit must keep."""
    text = texts(control)
    pos = draw(st.lists(text, min_size=1, max_size=3))
    taken = {p.strip() for p in pos}
    neg = [n for n in draw(st.lists(text, max_size=3)) if n.strip() not in taken]
    row: dict[str, Any] = {"query": draw(text), "pos": pos, "neg": neg}
    if draw(st.booleans()):
        score = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
        row["pos_scores"] = [draw(score) for _ in pos]
        row["neg_scores"] = [draw(score) for _ in neg]
    if draw(st.booleans()):
        row["pos_labels"] = [draw(st.integers(1, 100)) for _ in pos]
    if draw(st.booleans()):
        row["source"] = draw(st.one_of(text, st.integers(), st.lists(st.integers(), max_size=3)))
    return row


#: (name, damage) pairs: each turns a valid row into one bgekit must reject, as a JSON text
ROW_DAMAGE: list[tuple[str, Callable[[dict], str]]] = [
    ("empty query", lambda r: json.dumps({**r, "query": "  "})),
    ("no query", lambda r: json.dumps({k: v for k, v in r.items() if k != "query"})),
    ("no pos", lambda r: json.dumps({k: v for k, v in r.items() if k != "pos"})),
    ("pos not strings", lambda r: json.dumps({**r, "pos": [1, 2]})),
    ("empty positive", lambda r: json.dumps({**r, "pos": r["pos"] + [" "]})),
    ("neg equals pos", lambda r: json.dumps({**r, "neg": r["neg"] + [r["pos"][0]]})),
    ("score count", lambda r: json.dumps({**r, "pos_scores": [0.5] * (len(r["pos"]) + 1)})),
    ("NaN score", lambda r: json.dumps({**r, "pos_scores": [float("nan")] * len(r["pos"])})),
    ("infinite score", lambda r: json.dumps({**r, "pos_scores": [float("inf")] * len(r["pos"])})),
    ("1e308 score", lambda r: json.dumps({**r, "pos_scores": [1e308] * len(r["pos"])})),
    ("401-digit score", lambda r: json.dumps({**r, "pos_scores": [int("9" * 401)] * len(r["pos"])})),
    ("401-digit label", lambda r: json.dumps({**r, "pos_labels": [int("9" * 401)] * len(r["pos"])})),
    ("zero label", lambda r: json.dumps({**r, "pos_labels": [0] * len(r["pos"])})),
    ("bool score", lambda r: json.dumps({**r, "pos_scores": [True] * len(r["pos"])})),
    ("lone surrogate", lambda r: json.dumps({**r, "query": r["query"] + "\ud800"})),
    ("surrogate in extra", lambda r: json.dumps({**r, "note": "\udfff"})),
    ("NaN in extra", lambda r: json.dumps({**r, "note": float("nan")})),
    ("prompt not string", lambda r: json.dumps({**r, "prompt": ["x"]})),
    ("not an object", lambda r: json.dumps([r])),
    ("a string", lambda r: json.dumps(r["query"])),
    ("deep nesting", lambda r: '{"query": "q", "pos": ' + "[" * 20_000 + "]" * 20_000 + "}"),
    ("5000-digit number", lambda r: '{"query": "q", "pos": ["p"], "n": ' + "7" * 5000 + "}"),
]
#: damage that leaves text which is not JSON at all (only line formats recover from it)
SYNTAX_DAMAGE: list[tuple[str, Callable[[dict], str]]] = [
    ("cut off", lambda r: json.dumps(r)[:-1]),
    ("garbage", lambda r: "GARBAGE " + json.dumps(r)),
    ("single quotes", lambda r: json.dumps(r).replace('"', "'")),
    ("deep brackets", lambda r: "[" * 100_000),
]


@st.composite
def jsonl_case(draw) -> tuple[str, list[int | None], list[str]]:
    """``(text, expected line of each invalid row ..., kinds)``: the file, and for each row its fate."""
    rows = draw(st.lists(st.tuples(st.booleans(), valid_row(), st.integers(0, 10**6)), min_size=1, max_size=8))
    lines, bad_lines, kinds = [], [], []
    damage = ROW_DAMAGE + SYNTAX_DAMAGE
    for keep, row, pick in rows:
        if draw(st.booleans()):
            lines.append("")  # blank lines are skipped, not rows
        if keep:
            lines.append(json.dumps(row, ensure_ascii=draw(st.booleans())))
            kinds.append("valid")
        else:
            name, hurt = damage[pick % len(damage)]
            lines.append(hurt(row))
            bad_lines.append(len(lines))
            kinds.append(name)
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"])), bad_lines, kinds


@st.composite
def json_case(draw) -> tuple[str, list[int], list[str]]:
    """A top-level array with one element per line, optionally followed by stray values."""
    rows = draw(st.lists(st.tuples(st.booleans(), valid_row(), st.integers(0, 10**6)), min_size=1, max_size=8))
    elements, bad_lines, kinds = [], [], []
    for keep, row, pick in rows:
        if keep:
            elements.append(json.dumps(row, ensure_ascii=draw(st.booleans())))
            kinds.append("valid")
        else:
            name, hurt = ROW_DAMAGE[pick % len(ROW_DAMAGE)]
            elements.append(hurt(row))
            bad_lines.append(len(elements) + 1)
            kinds.append(name)
    text = "[\n" + ",\n".join(elements) + "\n]"
    line = len(elements) + 2
    for extra in draw(st.lists(st.sampled_from(["[]", '{"query": "x", "pos": ["y"]}', '"tail"', "7",
                                                '[{"query": "b", "pos": ["y"]}]']), max_size=2)):
        text += "\n" + extra
        line += 1
        bad_lines.append(line)
        kinds.append("trailing value")
    if draw(st.booleans()):
        text += "\nGARBAGE"
        bad_lines.append(line + 1)
        kinds.append("trailing garbage")
    return text + "\n", bad_lines, kinds


@st.composite
def delimited_case(draw, delimiter: str) -> tuple[str, list[int], list[str]]:
    """CSV/TSV with a header; list cells as JSON, bad cells or widths as defects."""
    rows = draw(st.lists(st.tuples(st.booleans(), valid_row(control=False), st.integers(0, 10**6)),
                         min_size=1, max_size=8))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["query", "pos", "neg", "pos_scores"])
    bad_lines, kinds = [], []
    damage = [
        ("empty query", lambda r: ["", json.dumps(r["pos"]), "[]", ""]),
        ("short row", lambda r: [r["query"], json.dumps(r["pos"])]),
        ("long row", lambda r: [r["query"], json.dumps(r["pos"]), "[]", "", "extra"]),
        ("bad list", lambda r: [r["query"], "[oops", "[]", ""]),
        ("bad score", lambda r: [r["query"], json.dumps(r["pos"]), "[]", "high"]),
        ("infinite score", lambda r: [r["query"], json.dumps(r["pos"]), "[]", "inf"]),
        ("huge score", lambda r: [r["query"], json.dumps(r["pos"]), "[]", "1" * 400]),
        ("score count", lambda r: [r["query"], json.dumps(r["pos"]), "[]", json.dumps([0.1] * 9)]),
        ("deep list", lambda r: [r["query"], "[" * 5000 + "]" * 5000, "[]", ""]),
        ("surrogate", lambda r: [r["query"], json.dumps([r["pos"][0] + "\ud800"]), "[]", ""]),
    ]
    for keep, row, pick in rows:
        line = out.getvalue().count("\n") + 1
        if keep:
            scores = json.dumps(row["pos_scores"]) if "pos_scores" in row else ""
            writer.writerow([row["query"], json.dumps(row["pos"], ensure_ascii=False),
                             json.dumps(row["neg"], ensure_ascii=False), scores])
            kinds.append("valid")
        else:
            name, hurt = damage[pick % len(damage)]
            writer.writerow(hurt(row))
            bad_lines.append(line)
            kinds.append(name)
    return out.getvalue(), bad_lines, kinds


# ---------------------------------------------------------------------------
# Qrels, runs, BEIR
# ---------------------------------------------------------------------------

QREL_DAMAGE = ["q1 d1", "q1 0 d1 1 extra", "q1 0 d1 high", "q1 0 d1 1.5", "q1 0 d1 nan", "q1 0 d1 inf",
               "q1 0 d1 " + "9" * 30, "q1\t\t1"]
RUN_DAMAGE = ["q1 Q0 d1 1 0.5", "q1 Q0 d1 1 high bgekit", "q1 Q0 d1 1 nan bgekit", "q1 Q0 d1 1 -inf bgekit",
              "q1 Q0 d1 1 1e999 bgekit"]


@st.composite
def judged_case(draw) -> tuple[str, str, int | None]:
    """``(kind, text, line of the first bad line or None)`` for a qrels or run file."""
    kind = draw(st.sampled_from(["qrels", "run"]))
    n = draw(st.integers(1, 6))
    if kind == "qrels":
        good = [f"q{i} 0 d{i}_{j} {draw(st.integers(0, 3))}" for i in range(n) for j in range(2)]
    else:
        good = [f"q{i} Q0 d{i}_{j} {j + 1} {draw(st.floats(-1e6, 1e6, allow_nan=False)):.6g} tag"
                for i in range(n) for j in range(2)]
    bad_at = None
    if draw(st.booleans()):
        at = draw(st.integers(0, len(good)))
        good.insert(at, draw(st.sampled_from(QREL_DAMAGE if kind == "qrels" else RUN_DAMAGE)))
        bad_at = at + 1
    return kind, "\n".join(good) + "\n", bad_at


@st.composite
def beir_case(draw) -> tuple[dict[str, str], int, int, str | None]:
    """``(files, valid examples, invalid rows, expected error)`` of a BEIR folder."""
    n = draw(st.integers(1, 5))
    docs = [{"_id": f"d{i}", "text": draw(_PLAIN), **({"title": "t"} if i % 2 else {})} for i in range(n)]
    queries = [{"_id": f"q{i}", "text": draw(_PLAIN)} for i in range(n)]
    qrels = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t{draw(st.integers(1, 3))}" for i in range(n)]
    valid, invalid, error = n, 0, None
    defects = draw(st.lists(st.sampled_from(["bad qrels line", "unknown query", "unknown doc", "no positive"]),
                            max_size=3, unique=True))
    if draw(st.integers(0, 2)) == 0:  # a file-level defect: the folder is refused with that line
        defects = [draw(st.sampled_from(["dup doc", "list id", "dup query"]))]
    for defect in defects:
        if defect == "bad qrels line":
            qrels.append("qX\tdX")
            invalid += 1
        elif defect == "unknown query":
            qrels.append("nope\td0\t1")
            invalid += 1
        elif defect == "unknown doc":
            queries.append({"_id": "qd", "text": "q"})
            qrels.append("qd\tmissing\t1")
            invalid += 1
        elif defect == "no positive":
            queries.append({"_id": "qz", "text": "q"})
            qrels.append("qz\td0\t0")
            invalid += 1
        elif defect == "dup doc":
            docs.append({"_id": "d0", "text": "again"})
            error = f"corpus.jsonl:{len(docs)}  $.id  document id 'd0' is already used at line 1"
        elif defect == "list id":
            docs.append({"_id": ["d9"], "text": "x"})
            error = f"corpus.jsonl:{len(docs)}  $._id  the corpus id must be"
        else:
            queries.append({"_id": "q0", "text": "again"})
            error = f"queries.jsonl:{len(queries)}  $.id  query id 'q0' is already used at line 1"
    files = {"corpus.jsonl": "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs),
             "queries.jsonl": "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries),
             "qrels/test.tsv": "\n".join(qrels) + "\n"}
    return files, valid, invalid, error


# ---------------------------------------------------------------------------
# Recipes
# ---------------------------------------------------------------------------

SHIPPED = sorted((REPO / "recipes").glob("*.yaml"))
RECIPE_DAMAGE = [
    "\x00", "\x07", "\x1b", "\ufeff", "\t", ": :", "- - -", "&a [*a]", "*nope", "!!python/object:os.system",
    "[" * 200, "{" * 80, "1e999", ".inf", ".nan", "-.inf", "9" * 500, "${env:}", "${env:1X}", "${env:NAME",
    "${env:BGEKIT_FUZZ_UNSET}", "'", '"', "\\", "\n  - x", "\n:", "~", "<<: *a", "? [a, b]\n: c",
]


def alias_bomb(levels: int) -> str:
    lines = ["bomb0: &b0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"bomb{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@st.composite
def recipe_case(draw) -> str:
    """A shipped recipe with random damage, or a random YAML tree."""
    if draw(st.integers(0, 4)) == 0:
        scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts(True))
        tree = draw(st.recursive(scalars, lambda kids: st.one_of(
            st.lists(kids, max_size=4), st.dictionaries(_PLAIN, kids, max_size=4)), max_leaves=20))
        import yaml

        base = {"task": "embedder", "output_dir": "runs/fuzz", "model": {"name_or_path": "m"}}
        key = draw(st.sampled_from(["train", "model", "data", "evaluate", "extra", "seed", "loss", "callbacks"]))
        return yaml.safe_dump({**base, key: tree}, allow_unicode=True)
    text = SHIPPED[draw(st.integers(0, len(SHIPPED) - 1))].read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(text)))
        choice = draw(st.integers(0, len(RECIPE_DAMAGE) + 4))
        if choice < len(RECIPE_DAMAGE):
            text = text[:where] + RECIPE_DAMAGE[choice] + text[where:]
        elif choice == len(RECIPE_DAMAGE):
            text = text[:where]  # cut off
        elif choice == len(RECIPE_DAMAGE) + 1:
            text += alias_bomb(draw(st.integers(3, 9)))
        elif choice == len(RECIPE_DAMAGE) + 2:  # thousands of unknown keys, top level or in a section
            indent = draw(st.sampled_from(["", "  "]))
            text += ("" if not indent else "\ntrain:\n") + "".join(
                f"{indent}k{i}: {i}\n" for i in range(draw(st.integers(100, 6000))))
        elif choice == len(RECIPE_DAMAGE) + 3:  # thousands of unknown component or metric names
            n = draw(st.integers(100, 3000))
            text += draw(st.sampled_from([
                "\ncallbacks:\n" + "".join(f"  - {{name: cb{i}}}\n" for i in range(n)),
                "\nevaluate:\n  metrics:\n" + "".join(f"    - ndcg{i}@1O\n" for i in range(n))]))
        else:
            text = text.replace("extends: reranker.yaml", draw(st.sampled_from(
                ["extends: /etc/passwd", "extends: ../../x.yaml", "extends: [a]", "extends: reranker.yaml"])))
    return text


# ---------------------------------------------------------------------------
# Running one input
# ---------------------------------------------------------------------------


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`Hang` when the block runs longer than ``seconds`` (main thread, POSIX)."""

    def alarm(signum, frame):
        raise Hang(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Tally:
    """Counts per kind of input; ``failures`` keeps the first few for the report."""

    inputs: Counter = field(default_factory=Counter)
    rows_valid: Counter = field(default_factory=Counter)
    rows_invalid: Counter = field(default_factory=Counter)
    clean_errors: Counter = field(default_factory=Counter)
    tracebacks: Counter = field(default_factory=Counter)
    hangs: Counter = field(default_factory=Counter)
    wrong: Counter = field(default_factory=Counter)
    slowest: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    strict: bool = False  # raise at the first failure (tests: hypothesis then shrinks it)
    recipe_seconds: list[float] = field(default_factory=list)

    def fail(self, counter: Counter, kind: str, message: str) -> None:
        counter[kind] += 1
        if len(self.failures) < 20:
            self.failures.append(f"{kind}: {message}")
        if self.strict:
            raise AssertionError(f"{kind}: {message}")


def checked(tally: Tally, kind: str, work: Callable[[], None]) -> None:
    """Run one input's ``work``; tracebacks and hangs are counted (``BgekitError`` is a clean refusal)."""
    from bgekit.errors import BgekitError

    tally.inputs[kind] += 1
    started = time.perf_counter()
    try:
        with time_limit(HANG_SECONDS):
            work()
    except Hang as exc:
        tally.fail(tally.hangs, kind, str(exc))
    except AssertionError as exc:
        tally.fail(tally.wrong, kind, str(exc))
    except BgekitError as exc:
        tally.fail(tally.wrong, kind, f"unexpected error: {exc}")
    except Exception:  # noqa: BLE001 - this is what the harness counts
        tally.fail(tally.tracebacks, kind, traceback.format_exc(limit=-3))
    finally:
        tally.slowest[kind] = max(tally.slowest.get(kind, 0.0), time.perf_counter() - started)


def check_rows(tally: Tally, kind: str, path: Path, fmt: str, bad_lines: list[int], kinds: list[str]) -> None:
    """Validate ``path`` as ``fmt``: exactly the valid rows kept, each invalid one rejected at its line."""
    from bgekit.data.conversion import convert
    from bgekit.data.validation import validate

    def work() -> None:
        report = validate(path, fmt=fmt, max_reported=10**6)
        valid = kinds.count("valid")
        got = sorted(e.line for e in report.errors)
        assert (report.valid, report.invalid) == (valid, len(bad_lines)), \
            f"{fmt}: kept {report.valid} rejected {report.invalid}, expected {valid}/{len(bad_lines)} " \
            f"({kinds}); rejected lines {got}, expected {bad_lines}; {[str(e) for e in report.errors][:3]}"
        assert got == sorted(bad_lines), f"{fmt}: rejected lines {got}, expected {bad_lines} ({kinds})"
        assert all(e.reason for e in report.errors)
        out = path.with_name("out.jsonl")
        done = convert(path, out, fmt=fmt)
        assert (done.written, done.rejected) == (valid, len(bad_lines))
        # split on "\n" only: JSON text may hold U+2028 and friends, which splitlines() would cut at
        kept = [json.loads(ln) for ln in out.read_text(encoding="utf-8").split("\n") if ln]
        assert len(kept) == valid
        if done.rejected:
            rejected = [ln for ln in Path(done.rejected_path).read_text(encoding="utf-8").split("\n") if ln]
            assert len(rejected) == len(bad_lines) and all(json.loads(r)["reason"] for r in rejected)
        tally.rows_valid[kind] += valid
        tally.rows_invalid[kind] += len(bad_lines)

    checked(tally, kind, work)

    def detect() -> None:  # auto-detection may refuse the file, never crash on it
        from bgekit.errors import BgekitError

        with contextlib.suppress(BgekitError):
            validate(path)

    checked(tally, kind + " (auto-detected)", detect)


def run(examples: int, tally: Tally | None = None, workdir: Path | None = None) -> Tally:
    """Generate ``examples`` inputs of each kind and check them; returns the tally."""
    from bgekit.errors import BgekitError

    tally = tally or Tally()
    root = Path(workdir or tempfile.mkdtemp(prefix="bgekit-fuzz-"))
    counter = iter(range(10**9))

    def fresh() -> Path:
        folder = root / f"case{next(counter)}"
        folder.mkdir(parents=True)
        return folder

    options = settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                       suppress_health_check=list(HealthCheck), print_blob=True)

    @options
    @given(jsonl_case())
    def fuzz_jsonl(case):
        text, bad, kinds = case
        path = fresh() / "train.jsonl"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        check_rows(tally, "jsonl", path, "jsonl", bad, kinds)

    @options
    @given(json_case())
    def fuzz_json(case):
        text, bad, kinds = case
        path = fresh() / "train.json"
        path.write_text(text, encoding="utf-8")
        check_rows(tally, "json", path, "json", bad, kinds)

    @options
    @given(st.sampled_from([",", "\t"]).flatmap(lambda d: st.tuples(st.just(d), delimited_case(d))))
    def fuzz_delimited(case):
        delimiter, (text, bad, kinds) = case
        name = "csv" if delimiter == "," else "tsv"
        path = fresh() / f"train.{name}"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        if "\ud800" in text:  # a surrogate cannot be in a UTF-8 file: such bytes are an encoding error
            path.write_text(text.replace("\ud800", "\\ud800"), encoding="utf-8")
        check_rows(tally, name, path, name, bad, kinds)

    @options
    @given(beir_case())
    def fuzz_beir(case):
        files, valid, invalid, error = case
        folder = fresh()
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")

        def work() -> None:
            from bgekit.data.validation import validate
            from bgekit.evaluate.retrieval import load_eval_data

            if error:
                for load in (lambda: validate(folder, fmt="beir"),
                             lambda: load_eval_data(folder / "corpus.jsonl", folder / "queries.jsonl",
                                                    folder / "qrels/test.tsv")):
                    try:
                        load()
                    except BgekitError as exc:
                        assert error in str(exc), f"{exc} lacks {error!r}"
                    else:
                        raise AssertionError(f"accepted a folder with: {error}")
                tally.clean_errors["beir"] += 1
                return
            report = validate(folder, fmt="beir")
            assert (report.valid, report.invalid) == (valid, invalid), \
                f"kept {report.valid} rejected {report.invalid}, expected {valid}/{invalid}"
            tally.rows_valid["beir"] += valid
            tally.rows_invalid["beir"] += invalid

        checked(tally, "beir", work)

    @options
    @given(judged_case())
    def fuzz_judged(case):
        kind, text, bad_at = case
        path = fresh() / f"{kind}.txt"
        path.write_text(text, encoding="utf-8")

        def work() -> None:
            from bgekit.evaluate.trec import read_qrels, read_run

            read = read_qrels if kind == "qrels" else read_run
            try:
                read(path)
            except BgekitError as exc:
                assert bad_at is not None and f"{path}:{bad_at}" in str(exc), f"{exc} (bad line {bad_at})"
                assert "\n" not in str(exc)
                tally.clean_errors[kind] += 1
                return
            assert bad_at is None, f"accepted a bad line {bad_at}: {text.splitlines()[bad_at - 1]!r}"

        checked(tally, kind, work)

    @options
    @given(recipe_case())
    def fuzz_recipe(text):
        from bgekit.recipe import RecipeError, load_recipe

        folder = fresh()
        for shipped in SHIPPED:  # so that 'extends: reranker.yaml' resolves
            (folder / shipped.name).write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
        path = folder / "fuzz.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))

        def work() -> None:
            started = time.perf_counter()
            try:
                load_recipe(path)
            except RecipeError as exc:
                assert exc.problems and all("\n" not in p for p in exc.problems)
                tally.clean_errors["recipe"] += 1
            tally.recipe_seconds.append(time.perf_counter() - started)

        checked(tally, "recipe", work)

    os.environ.pop("BGEKIT_FUZZ_UNSET", None)
    for fuzz in (fuzz_jsonl, fuzz_json, fuzz_delimited, fuzz_beir, fuzz_judged, fuzz_recipe):
        fuzz()
    return tally


def summary(tally: Tally, seconds: float) -> dict[str, Any]:
    kinds = sorted(tally.inputs)
    return {
        "inputs": sum(v for k, v in tally.inputs.items() if "auto-detected" not in k),
        "auto_detect_reruns": sum(v for k, v in tally.inputs.items() if "auto-detected" in k),
        "tracebacks": sum(tally.tracebacks.values()), "hangs_over_5s": sum(tally.hangs.values()),
        "wrong_splits_or_errors": sum(tally.wrong.values()),
        "per_kind": {k: {"inputs": tally.inputs[k], "rows_kept": tally.rows_valid[k],
                         "rows_rejected": tally.rows_invalid[k], "clean_errors": tally.clean_errors[k],
                         "tracebacks": tally.tracebacks[k], "hangs": tally.hangs[k], "wrong": tally.wrong[k],
                         "slowest_s": round(tally.slowest.get(k, 0.0), 3)} for k in kinds},
        "recipes_over_1s": sum(t > 1.0 for t in tally.recipe_seconds),
        "recipe_seconds_p99": round(sorted(tally.recipe_seconds)[int(0.99 * (len(tally.recipe_seconds) - 1))], 3)
        if tally.recipe_seconds else None,
        "seconds": round(seconds, 1), "first_failures": tally.failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="generated inputs per kind (6 kinds)")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bgekit-fuzz-") as workdir:
        tally = run(args.examples, workdir=Path(workdir))
    result = summary(tally, time.perf_counter() - started)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 1 if result["tracebacks"] or result["hangs_over_5s"] or result["wrong_splits_or_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
