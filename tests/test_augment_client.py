"""bgekit augment against a loopback mock server: faults retried or reported, limits, resume, a secret key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bgekit.augment.cache import CompletionCache
from bgekit.augment.filters import FilterSettings
from bgekit.augment.limits import TokenBucket
from bgekit.augment.mock_server import MockChatServer
from bgekit.augment.retry import Backoff, retry_after_seconds
from bgekit.augment.settings import AugmentSettings, ClientSettings
from bgekit.augment.task import augment_file
from bgekit.cli import main
from bgekit.errors import BgekitError

PASSAGES = [f"Passage {i} tells of the {word} harbour and its lighthouse keeper number {i}."
            for i, word in enumerate(["amber", "basalt", "cedar", "dune", "ember", "fjord", "granite", "heron",
                                      "indigo", "juniper", "kelp", "lagoon"])]
SECRET = "sk-test-Zq8fK2-never-print-me"


def write_passages(path: Path, count: int = len(PASSAGES)) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{i}", "text": PASSAGES[i]}) + "\n" for i in range(count)))
    return path


def settings_for(tmp_path: Path, server: MockChatServer, count: int = 6, **client: object) -> AugmentSettings:
    options = {"timeout": 0.5, "max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05, "concurrency": 1,
               **client}
    return AugmentSettings(input=str(write_passages(tmp_path / "passages.jsonl", count)),
                           output=str(tmp_path / "out" / "train.jsonl"), method="queries",
                           client=ClientSettings(base_url=server.url, model="mock-llm", **options),
                           method_params={"language": "en", "per_passage": 2}, filters=FilterSettings())


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def test_every_injected_fault_is_retried_and_the_run_finishes(tmp_path, bgekit_pm):
    faults = ["429", "500", "timeout", "malformed", "truncated", "length", "empty"]
    with MockChatServer(retry_after="0", timeout_seconds=1.0) as server:
        server.fail_next(*faults)
        summary = augment_file(settings_for(tmp_path, server, max_retries=len(faults), price_per_1k_input=1.0,
                                            price_per_1k_output=2.0))
        seen = [r.fault for r in server.requests]
    assert seen[: len(faults)] == faults and len(seen) == 6 + len(faults)
    assert summary.usage["retries"] == len(faults) and summary.usage["requests"] == 6 + len(faults)
    assert not summary.failed and summary.written == 12
    written = rows(tmp_path / "out" / "train.jsonl")
    assert {r["passage_id"] for r in written} == {f"p{i}" for i in range(6)}
    assert all(r["pos"] == [PASSAGES[int(r["passage_id"][1:])]] and r["neg"] == [] for r in written)
    assert all(r["augment"] == {"method": "queries", "model": "mock-llm", "language": "en"} for r in written)
    assert (tmp_path / "out" / "train.errors.jsonl").read_text() == ""
    # usage: one line per completion received (6 good + the cut-off and the empty one), totals and cost agree
    usage = rows(tmp_path / "out" / "train.usage.jsonl")
    assert len(usage) == summary.usage["responses"] == 8 and not any(u["usage_estimated"] for u in usage)
    prompt, completion = sum(u["prompt_tokens"] for u in usage), sum(u["completion_tokens"] for u in usage)
    assert (summary.usage["prompt_tokens"], summary.usage["completion_tokens"]) == (prompt, completion) != (0, 0)
    assert summary.usage["cost"] == pytest.approx((prompt * 1.0 + completion * 2.0) / 1000)


def test_a_row_that_stays_unusable_is_reported_with_its_passage_id(tmp_path, bgekit_pm):
    def fault_for(body):
        prompt = body["messages"][-1]["content"]
        return {"basalt": "500", "dune": "malformed", "ember": "length"}.get(
            next((w for w in ("basalt", "dune", "ember") if w in prompt), ""))

    with MockChatServer(retry_after="0") as server:
        server.fail_when = fault_for
        summary = augment_file(settings_for(tmp_path, server, max_retries=2, concurrency=3))
        per_passage = sum("basalt" in r.body["messages"][-1]["content"] for r in server.requests)
    failed = {f["passage_id"]: f["reason"] for f in summary.failed}
    assert set(failed) == {"p1", "p3", "p4"} and per_passage == 3  # 1 try + 2 retries, then reported
    assert "HTTP 500" in failed["p1"] and "malformed" in failed["p3"] and "finish_reason: length" in failed["p4"]
    errors = rows(tmp_path / "out" / "train.errors.jsonl")
    assert {e["passage_id"] for e in errors} == {"p1", "p3", "p4"} and all(e["attempts"] == 3 for e in errors)
    assert {r["passage_id"] for r in rows(tmp_path / "out" / "train.jsonl")} == {"p0", "p2", "p5"}
    summary_file = json.loads((tmp_path / "out" / "train.augment.json").read_text())
    assert summary_file["items_failed"] == 3 and summary_file["written"] == 6


def test_every_item_failing_is_one_clear_error(tmp_path, bgekit_pm, run_bgekit):
    with MockChatServer(retry_after="0") as server:
        server.fail_when = lambda body: "500"
        done = run_bgekit("augment", "--input", str(write_passages(tmp_path / "p.jsonl", 2)), "--output",
                          str(tmp_path / "t.jsonl"), "--base-url", server.url, "--model", "m", "--max-retries", "0")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "all 2 item(s) failed" in done.stderr and "HTTP 500" in done.stderr


def test_retry_after_is_honoured(tmp_path, bgekit_pm):
    with MockChatServer(retry_after="1") as server:
        server.fail_next("429")
        augment_file(settings_for(tmp_path, server, count=1, backoff_base=0.01))
        first, second = server.requests[0].time, server.requests[1].time
    assert second - first >= 1.0


def test_backoff_grows_with_jitter_and_reads_every_retry_after_form():
    backoff = Backoff(base=1.0, maximum=8.0)
    delays = [backoff.delay(a) for a in range(1, 7)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and all(4.0 <= d <= 8.0 for d in delays[3:])
    assert backoff.delay(1, retry_after=30.0) == 30.0
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=lambda: 1445412480.0) == 10.0
    assert retry_after_seconds({}) is None


def test_requests_per_minute_hold_at_the_server(tmp_path, bgekit_pm):
    rpm = 600  # 10 a second, at most one second's worth at once
    with MockChatServer() as server:
        augment_file(settings_for(tmp_path, server, count=12, concurrency=8, requests_per_minute=rpm))
        times = sorted(r.time for r in server.requests)
    assert len(times) == 12
    rate, burst = rpm / 60, 10
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - times[i]) + 1, "more requests than the limit allows"
    assert times[-1] - times[0] >= (12 - burst) / rate - 0.05


def test_token_bucket_limits_tokens_per_minute_with_a_fake_clock():
    now = [0.0]
    bucket = TokenBucket(6000, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    for _ in range(10):
        bucket.acquire(500)  # 500 tokens a request at 100 a second: the first at once, each next 5 s later
    assert now[0] == pytest.approx(9 * 5, abs=0.01)


def test_a_killed_run_started_again_sends_nothing_for_passages_already_done(tmp_path, bgekit_pm):
    passages = write_passages(tmp_path / "passages.jsonl", 8)
    out = tmp_path / "out" / "train.jsonl"
    with MockChatServer() as server:
        command = [sys.executable, "-m", "bgekit.cli", "augment", "--input", str(passages), "--output", str(out),
                   "--base-url", server.url, "--model", "mock-llm", "--concurrency", "1", "--per-passage", "2"]
        server.hold_after = 3  # answer three requests, then hold the fourth until the client is killed
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(server.requests) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert len(server.requests) == 4 and not out.exists()
        done_before = {r.body["messages"][-1]["content"] for r in server.requests[:3]}
        server.hold_after = None
        server.requests.clear()
        again = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        resent = [r.body["messages"][-1]["content"] for r in server.requests]
    assert len(resent) == 5 and not done_before & set(resent)
    assert "answered from cache 3" in again.stdout
    assert {r["passage_id"] for r in rows(out)} == {f"p{i}" for i in range(8)}


def test_the_cache_survives_a_torn_write_and_never_holds_the_key(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = CompletionCache(path)
    from bgekit.augment.cache import CachedCompletion, cache_key

    key = cache_key([{"role": "user", "content": "q"}], "m", {"temperature": 0.7})
    assert key == cache_key([{"role": "user", "content": "q"}], "m", {"temperature": 0.7})
    assert key != cache_key([{"role": "user", "content": "q"}], "m", {"temperature": 0.2})
    cache.put(key, "m", CachedCompletion("[\"a\"]", "stop", 3, 2))
    cache.close()
    assert CompletionCache(path, read_only=True).get(key).text == "[\"a\"]"
    assert CompletionCache(tmp_path / "absent.sqlite", read_only=True).get(key) is None
    assert not (tmp_path / "absent.sqlite").exists()
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(BgekitError, match="not a readable completion cache"):
        CompletionCache(tmp_path / "junk.sqlite").get(key)


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_the_key_appears_nowhere(tmp_path, run_bgekit, bgekit_pm):
    """The key reaches the server and nothing else: stdout, stderr, outputs, cache, summary, saved recipe."""
    passages = write_passages(tmp_path / "passages.jsonl", 4)
    env = {**os.environ, "AUGMENT_TEST_KEY": SECRET}
    with MockChatServer(retry_after="0") as server:
        # a misbehaving proxy echoes the Authorization header in an error body
        server.fail_when = lambda body: "echo-auth" if "dune" in body["messages"][-1]["content"] else None
        server.fail_next("500", "timeout")
        cli = run_bgekit("augment", "--input", str(passages), "--output", str(tmp_path / "cli" / "train.jsonl"),
                         "--base-url", server.url, "--model", "mock-llm", "--api-key-env", "AUGMENT_TEST_KEY",
                         "--timeout", "0.5", "--max-retries", "3", "--json", env=env)
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(json.dumps({
            "task": "augment", "output_dir": str(tmp_path / "run"), "model": {"name_or_path": "BAAI/bge-m3"},
            "augment": {"input": str(passages), "method": {"name": "queries", "per_passage": 1},
                        "base_url": server.url, "model": "mock-llm", "api_key_env": "AUGMENT_TEST_KEY",
                        "filters": {"roundtrip": False}}}))
        with pytest.MonkeyPatch.context() as patch:  # the recipe run in-process, as `bgekit run` does it
            patch.setenv("AUGMENT_TEST_KEY", SECRET)
            run = CliRunner().invoke(main, ["run", str(recipe)])
        server.fail_next("401")  # a wrong key: the run stops with one line
        refused = run_bgekit("augment", "--input", str(passages), "--output", str(tmp_path / "refused" / "t.jsonl"),
                             "--base-url", server.url, "--model", "m", "--api-key-env", "AUGMENT_TEST_KEY",
                             "--concurrency", "1", env=env)
        authorizations = {r.headers.get("Authorization") for r in server.requests}
    assert authorizations == {f"Bearer {SECRET}"}  # the key was really sent
    assert cli.returncode == 0 and run.exit_code == 0, cli.stderr + run.output
    summary = json.loads(cli.stdout)
    assert summary["items_failed"] == 1 and "***" in summary["failed"][0]["reason"]
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr and "Traceback" not in refused.stderr
    assert (tmp_path / "run" / "resolved_recipe.yaml").is_file()
    files = _files_under(tmp_path / "cli") + _files_under(tmp_path / "run") + _files_under(tmp_path / "refused")
    assert any(p.name.endswith(".sqlite") for p in files)
    for text in (cli.stdout, cli.stderr, run.stdout, run.stderr, refused.stdout, refused.stderr):
        assert SECRET not in text
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), f"the key leaked into {path}"


def test_an_unset_key_variable_is_named_and_nothing_is_sent(tmp_path, run_bgekit):
    env = {k: v for k, v in os.environ.items() if k != "AUGMENT_UNSET_KEY"}
    with MockChatServer() as server:
        done = run_bgekit("augment", "--input", str(write_passages(tmp_path / "p.jsonl", 2)), "--output",
                          str(tmp_path / "t.jsonl"), "--base-url", server.url, "--model", "m",
                          "--api-key-env", "AUGMENT_UNSET_KEY", env=env)
        assert not server.requests
    assert done.returncode == 1 and "environment variable AUGMENT_UNSET_KEY is not set" in done.stderr


def test_dry_run_counts_requests_and_tokens_and_sends_nothing(tmp_path, run_bgekit):
    with MockChatServer() as server:
        done = run_bgekit("augment", "--input", str(write_passages(tmp_path / "p.jsonl", 5)), "--output",
                          str(tmp_path / "out" / "t.jsonl"), "--base-url", server.url, "--model", "m",
                          "--method", "queries", "--per-passage", "3", "--price-per-1k-input", "0.5",
                          "--price-per-1k-output", "1.5", "--dry-run")
        assert not server.requests
    assert done.returncode == 0, done.stderr
    assert "would send 5 request(s)" in done.stdout and "estimated tokens: ~" in done.stdout
    assert "estimated cost" in done.stdout and not (tmp_path / "out").exists()
