"""Model references: a folder, ``pkg:NAME`` or a hub id, the same way everywhere, failing in one line.

The hub is faked, never reached: a local HTTP server answers the one
"does this repository exist" request, an endpoint on a closed port stands for
no network, and a hub cache built from a tiny model stands for a model
downloaded earlier.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.errors import BgekitError
from bgekit.model_paths import local_model_dir, resolve_model_path

#: a port nothing listens on: connecting is refused at once, as with no network
CLOSED_ENDPOINT = "http://127.0.0.1:9"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def model_package(tmp_path, monkeypatch):
    """An installed-looking package ``fake_model_pkg`` with its model in ``model/``."""
    package = tmp_path / "site" / "fake_model_pkg"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('a model reference must not import the package')\n")
    (package / "model" / "config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return package / "model"


def populate_hub_cache(cache: Path, repo_id: str, model_dir: Path) -> Path:
    """What downloading ``repo_id`` leaves in a hub cache (``HF_HUB_CACHE``): its snapshot folder."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    shutil.copytree(model_dir, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """Point huggingface_hub at an empty temp cache and a closed endpoint, online; tests adjust it."""
    from huggingface_hub import constants

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", CLOSED_ENDPOINT)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return cache


def offline(monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


class _FakeHub(http.server.BaseHTTPRequestHandler):
    known = {"org/tiny"}

    def do_GET(self):  # noqa: N802 - http.server's name
        repo = self.path.split("/api/models/", 1)[-1].split("/revision/")[0].split("?")[0]
        if repo in self.known:
            body = json.dumps({"id": repo, "sha": COMMIT, "siblings": []}).encode()
            self.send_response(200)
        else:
            body = b'{"error": "Repository not found"}'
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def fake_hub(hub, monkeypatch):
    from huggingface_hub import constants

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield hub
    server.shutdown()


def test_a_package_reference_resolves_to_its_model_folder_without_importing_it(model_package):
    assert resolve_model_path("pkg:fake-model-pkg") == str(model_package)


def test_a_missing_package_says_what_to_install():
    with pytest.raises(BgekitError, match=r"pip install no-such-model-pkg"):
        resolve_model_path("pkg:no_such_model_pkg")


@pytest.mark.parametrize("reference", ["./no-such-model", "/no/such/model", "no-such-model/", "a/b/c", "~/nope"])
def test_a_path_that_does_not_exist_is_no_such_model_folder(reference, hub):
    started = time.monotonic()
    with pytest.raises(BgekitError, match="no such model folder") as error:
        resolve_model_path(reference)
    assert "\n" not in str(error.value) and time.monotonic() - started < 1  # no hub request at all


def test_a_folder_is_itself_and_a_file_is_refused(tmp_path):
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(BgekitError, match="is a file, not a model folder"):
        resolve_model_path(str(tmp_path / "weights.bin"))


def test_an_unreachable_hub_is_one_line_within_seconds(hub):
    started = time.monotonic()
    with pytest.raises(BgekitError) as error:
        resolve_model_path("BAAI/bge-reranker-v2-m3")
    message = str(error.value)
    assert "hub" in message and "unreachable" in message and "HF_HUB_OFFLINE=1" in message and "\n" not in message
    assert time.monotonic() - started < 10


def test_offline_without_the_model_in_the_cache_says_so(hub, monkeypatch):
    offline(monkeypatch)
    with pytest.raises(BgekitError, match=r"HF_HUB_OFFLINE=1.*not in its cache"):
        resolve_model_path("org/tiny")


def test_a_cached_model_loads_offline_and_as_a_folder_when_the_hub_is_unreachable(hub, monkeypatch,
                                                                                   tiny_model_dir):
    from bgekit.models import Embedder

    snapshot = populate_hub_cache(hub, "org/tiny", Path(tiny_model_dir))
    assert resolve_model_path("org/tiny") == str(snapshot)  # unreachable hub: the cached snapshot, no retries
    offline(monkeypatch)
    assert resolve_model_path("org/tiny") == "org/tiny"  # offline: transformers reads its cache
    assert local_model_dir("org/tiny") == str(snapshot)
    model = Embedder.from_pretrained("org/tiny")
    assert model.encode(["北京"], heads=["dense"])["dense"].shape == (1, model.hidden_size)


def test_a_reachable_hub_passes_known_ids_through_and_names_unknown_ones(fake_hub):
    assert resolve_model_path("org/tiny") == "org/tiny"  # loading stays transformers' own
    with pytest.raises(BgekitError, match="no such model on the Hugging Face hub") as error:
        resolve_model_path("org/no-such-model")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("args", [
    ["score", "--reranker", "{ref}", "--input", "{data}", "--output", "{out}"],
    ["rerank", "--model", "{ref}", "--input", "{data}", "--output", "{out}"],
    ["encode", "--model", "{ref}", "--input", "{data}", "--output", "{out}"],
    ["mine", "--model", "{ref}", "--input", "{data}", "--output", "{out}"],
    ["eval", "retriever", "--model", "{ref}", "--eval-data", "{dir}"],
    ["eval", "reranker", "--model", "{ref}", "--eval-data", "{dir}"],
    ["eval", "pipeline", "--retriever", "{ref}", "--reranker", "{ref}", "--eval-data", "{dir}"],
    ["compare", "--baseline", "{ref}", "--candidate", "{ref}", "--eval-data", "{dir}"],
    ["bench", "--model", "{ref}"],
])
@pytest.mark.parametrize("reference, expected", [
    ("./no-such-model", "no such model folder"),
    ("ORG/NAME", "unreachable"),
])
def test_every_command_that_takes_a_model_fails_in_one_line(args, reference, expected, hub, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"query": "q", "pos": ["p"], "passage": "p", "text": "t"}\n', encoding="utf-8")
    values = {"ref": reference, "data": str(data), "out": str(tmp_path / "out.jsonl"), "dir": str(tmp_path)}
    result = CliRunner().invoke(main, [a.format(**values) for a in args])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert expected in result.output and "not a directory" not in result.output


def test_score_with_a_hub_reranker_and_no_network_says_the_hub_is_unreachable(run_bgekit, tmp_path):
    """A real subprocess, as a user types it: no traceback, no minute of retries."""
    import os

    data = tmp_path / "mined.jsonl"
    data.write_text('{"query": "q", "pos": ["p"], "neg": ["n"]}\n', encoding="utf-8")
    env = {**os.environ, "HF_ENDPOINT": CLOSED_ENDPOINT, "HF_HUB_CACHE": str(tmp_path / "cache")}
    env.pop("HF_HUB_OFFLINE", None)
    started = time.monotonic()
    result = run_bgekit("score", "--reranker", "BAAI/bge-reranker-v2-m3", "--input", str(data),
                        "--output", str(tmp_path / "scored.jsonl"), env=env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "hub" in result.stderr and "unreachable" in result.stderr
    assert "not a directory" not in result.stderr and time.monotonic() - started < 60


def test_a_hub_model_becomes_a_local_folder_of_root_model_files(fake_hub, monkeypatch, tmp_path):
    """Commands that read a model's files fetch a snapshot: one weights format, no sub-folders (onnx/ ...),
    and for a tokenizer no weights at all."""
    import huggingface_hub

    repo_files = ["config.json", "tokenizer.json", "sentencepiece.bpe.model", "model.safetensors",
                  "pytorch_model.bin", "colbert_linear.pt", "onnx/model.onnx", "onnx/config.json", "imgs/a.png"]
    asked = []
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, repo, revision=None: repo_files)

    def snapshot_download(repo, revision=None, allow_patterns=None, **kwargs):
        asked.append(sorted(allow_patterns))
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert local_model_dir("org/tiny") == str(tmp_path)
    assert asked[-1] == ["colbert_linear.pt", "config.json", "model.safetensors", "sentencepiece.bpe.model",
                         "tokenizer.json"]
    local_model_dir("org/tiny", weights=False)
    assert asked[-1] == ["config.json", "sentencepiece.bpe.model", "tokenizer.json"]
