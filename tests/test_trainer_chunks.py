"""GradCache (``train.chunk_size``) and the out-of-memory retry, through the trainer (``bgekit run``'s path).

Chunked and whole micro-batches are compared on a model without dropout: with dropout
the two draw different masks (one per chunk instead of one per batch), which the
engine's own tests (tests/test_gradcache.py) cover by replaying the masks. Without
dropout the two steps compute the same gradients up to float summation order; the
logged loss and gradient norm must agree to 1e-5 relative (they are computed before
the first update, so step 1 is the exact comparison) and the whole weight update to
1e-3 (Adam divides each gradient entry by its own size, which turns float noise in a
near-zero entry into a full-size update difference for that entry; measured ~1e-5).
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers.models.xlm_roberta import modeling_xlm_roberta

import bgekit
from bgekit.devices import select_backend
from bgekit.errors import BgekitError
from bgekit.testing import tiny_cross_encoder, tiny_encoder
from bgekit.train import checkpoint as ckpt
from bgekit.train import embedder_task, reranker_task
from bgekit.train.batching import LengthGroupedBatcher, SamplerState
from bgekit.train.loader import BatchLoader
from bgekit.train.oom import halved_chunk, is_out_of_memory

TOPICS = ["river", "capital", "Beijing", "Yangtze", "Dream", "Machine", "retrieval", "computers"]


def rows(n: int = 16) -> list[dict]:
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        others = [t for t in TOPICS if t != topic]
        out.append({"query": f"what about the {topic} {i}?" + " more words" * (i % 3),
                    "pos": [f"the {topic} is described here, part {i}"],
                    "neg": [f"the {others[(i + k) % len(others)]} is described here" + " again" * k
                            for k in range(3)]})
    return out


def without_dropout(directory: Path) -> Path:
    config = json.loads((directory / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    """A tiny XLM-R with dropout: resumed and retried steps must replay its masks."""
    return tiny_encoder(tmp_path_factory.mktemp("enc"), hidden_size=32, num_layers=2)


@pytest.fixture(scope="module")
def encoder_no_dropout(tmp_path_factory) -> Path:
    return without_dropout(tiny_encoder(tmp_path_factory.mktemp("enc-nodrop"), hidden_size=32, num_layers=2))


@pytest.fixture(scope="module")
def cross_encoder_no_dropout(tmp_path_factory) -> Path:
    return without_dropout(tiny_cross_encoder(tmp_path_factory.mktemp("rer-nodrop")))


def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows()), encoding="utf-8")
    return path


def recipe(tmp_path: Path, model: Path, out: str, *, task: str = "embedder", heads=None, loss=None,
           **train) -> types.SimpleNamespace:
    values = {
        "task": task, "output_dir": str(tmp_path / out), "seed": 5,
        "model": {"name_or_path": str(model), "query_max_length": 16, "passage_max_length": 24},
        "data": {"train": str(data_file(tmp_path)), "group_size": 4, "format": "auto"},
        "loss": loss or {"name": "infonce", "temperature": 0.05},
        "train": {"max_steps": 3, "batch_size": 4, "learning_rate": 2e-3, "warmup_ratio": 0.0,
                  "logging_steps": 1, "dtype": "fp32", "save_steps": 0, "max_grad_norm": 1e6, **train},
        "callbacks": [{"name": "jsonl-logger"}],
    }
    if heads is not None:
        values["model"]["heads"] = heads
    return types.SimpleNamespace(values=values, path=tmp_path / "recipe.yaml", save=lambda out: None)


def cpu():
    return select_backend(bgekit.plugins.get_registry(), "cpu")


def run(r) -> dict:
    task = {"embedder": embedder_task, "reranker": reranker_task}[r.values["task"]]
    return task.run(r, cpu(), show_progress=False)


def logged(out: Path) -> list[dict]:
    return [x for x in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if x["event"] == "train"]


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def assert_same_training(tmp_path: Path, base_model: Path, whole: dict, chunked: dict, ignore=()) -> None:
    a, b = logged(tmp_path / "whole"), logged(tmp_path / "chunked")
    assert [x["step"] for x in a] == [x["step"] for x in b] == [1, 2, 3]
    assert a[0]["loss"] == pytest.approx(b[0]["loss"], rel=1e-5)
    assert a[0]["grad_norm"] == pytest.approx(b[0]["grad_norm"], rel=1e-5)
    assert [x["loss"] for x in a] == pytest.approx([x["loss"] for x in b], rel=1e-4)
    base, one, two = weights(base_model), weights(Path(whole["model_dir"])), weights(Path(chunked["model_dir"]))
    base = {k: v for k, v in base.items() if k not in ignore}
    update = torch.cat([(one[k] - base[k]).flatten() for k in base])
    apart = torch.cat([(two[k] - one[k]).flatten() for k in base])
    assert update.norm() > 0, "training changed nothing"
    assert apart.norm() < 1e-3 * update.norm(), float(apart.norm() / update.norm())


M3_HEADS = [{"name": "dense"}, {"name": "sparse"}, {"name": "colbert"}]


def test_m3_unified_with_self_distillation_trains_the_same_chunked(tmp_path, encoder_no_dropout, bgekit_pm):
    """Chunks of 3: the 4 queries in 2 chunks, the 16 passages in 6 (the last of one), with accumulation."""
    common = dict(heads=M3_HEADS, loss={"name": "m3-unified", "self_distill": True}, gradient_accumulation_steps=2,
                  batch_size=2)
    whole = run(recipe(tmp_path, encoder_no_dropout, "whole", **common))
    chunked = run(recipe(tmp_path, encoder_no_dropout, "chunked", chunk_size=3, **common))
    assert_same_training(tmp_path, encoder_no_dropout, whole, chunked)


def test_reranker_listwise_trains_the_same_chunked(tmp_path, cross_encoder_no_dropout, bgekit_pm):
    common = dict(task="reranker", loss={"name": "listwise-ce"}, batch_size=2, gradient_accumulation_steps=2)
    whole = run(recipe(tmp_path, cross_encoder_no_dropout, "whole", **common))
    chunked = run(recipe(tmp_path, cross_encoder_no_dropout, "chunked", chunk_size=3, **common))
    # The listwise loss does not change when every logit of a group shifts by the same amount, so the
    # score's bias has a gradient of exactly 0 up to float noise, which Adam turns into a full +-lr step
    # whose sign is that noise's (measured: 0.002 apart in either run, on an update of 0.0007).
    assert_same_training(tmp_path, cross_encoder_no_dropout, whole, chunked, ignore={"classifier.out_proj.bias"})


class _KillAt:
    """A callback that kills the run at a given step, like a pre-empted job."""

    def __init__(self, step: int) -> None:
        self.step = step

    @bgekit.hookimpl
    def bgekit_on_step_end(self, run, step, metrics):
        if step == self.step:
            raise KeyboardInterrupt(f"killed at step {step}")


def test_killed_and_resumed_chunked_run_equals_an_uninterrupted_one(tmp_path, encoder, bgekit_pm):
    """With dropout and a worker process feeding batches: the resumed run replays the same masks."""
    from bgekit.testing import registered_plugin

    common = dict(heads=M3_HEADS, loss={"name": "m3-unified", "self_distill": True}, max_steps=6, save_steps=2,
                  chunk_size=5)
    straight = run(recipe(tmp_path, encoder, "straight", **common))
    killed = recipe(tmp_path, encoder, "killed", **common)
    killed.values["data"]["num_workers"] = 1
    with registered_plugin(_KillAt(3), name="kill-at-3", pm=bgekit_pm):
        with pytest.raises(KeyboardInterrupt):
            run(killed)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "killed")] == ["checkpoint-2"]
    killed.values["train"]["resume_from"] = "latest"
    resumed = run(killed)
    assert resumed["steps"] == 6
    a, b = weights(Path(straight["model_dir"])), weights(Path(resumed["model_dir"]))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


# -- out of memory -------------------------------------------------------------------------------------------
def fail_above(monkeypatch, rows_limit: int) -> list[int]:
    """The encoder raises ``torch.OutOfMemoryError`` for a forward pass of more than ``rows_limit`` texts;
    the sizes of every forward pass are recorded."""
    forward = modeling_xlm_roberta.XLMRobertaModel.forward
    sizes: list[int] = []

    def limited(self, input_ids=None, *args, **kwargs):
        sizes.append(int(input_ids.shape[0]))
        if input_ids.shape[0] > rows_limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory (test: {input_ids.shape[0]} > {rows_limit} texts)")
        return forward(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(modeling_xlm_roberta.XLMRobertaModel, "forward", limited)
    return sizes


def test_out_of_memory_retries_the_step_in_halved_chunks_like_a_run_chunked_from_the_start(
        tmp_path, encoder, bgekit_pm, monkeypatch, capfd):
    """4 queries + 16 passages = 20 texts: unchunked runs out, 10 too, 5 fits; the retried step restores the
    random state, so dropout draws what a run with chunk_size 5 from the start draws."""
    common = dict(heads=M3_HEADS, loss={"name": "m3-unified", "self_distill": True}, max_steps=3, save_steps=0)
    reference = run(recipe(tmp_path, encoder, "reference", chunk_size=5, **common))
    sizes = fail_above(monkeypatch, 5)
    retried = run(recipe(tmp_path, encoder, "retried", **common))
    # unchunked, the 16 passages ran out (the 4 queries fitted); then chunks of 10; chunks of 5 fit
    assert sizes[:6] == [4, 16, 4, 10, 4, 5] and max(sizes[6:]) == 5
    err = capfd.readouterr().err
    assert "out of memory at step 1 with unchunked micro-batches" in err and "train.chunk_size 10" in err
    assert "out of memory at step 1 with chunks of 10" in err and "train.chunk_size 5" in err
    assert err.count("out of memory at step") == 2  # not at every step: the smaller chunk is kept
    a, b = weights(Path(reference["model_dir"])), weights(Path(retried["model_dir"]))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    assert not (tmp_path / "retried" / "errors.jsonl").exists()  # a retried step is not a failed batch
    state, _ = ckpt.load_trainer_state(Path(retried["last_checkpoint"]), 0)
    assert state["chunk_size"] == 5  # a resumed run goes on with the chunk that fitted


def test_a_step_that_runs_out_of_memory_even_in_chunks_of_one_counts_as_a_failed_batch(
        tmp_path, encoder, bgekit_pm, monkeypatch):
    sizes = fail_above(monkeypatch, 0)
    with pytest.raises(BgekitError, match="out of memory; train.max_failed_batches is 2"):
        run(recipe(tmp_path, encoder, "oom", max_failed_batches=2))
    lines = [json.loads(x) for x in (tmp_path / "oom" / "errors.jsonl").read_text().splitlines()]
    assert [x["reason"] for x in lines] == ["out of memory (even with train.chunk_size 1)"] * 3
    assert all(len(x["examples"]) == 4 for x in lines)  # the batch's examples, with their line numbers
    # step 1: the 4 queries whole, in chunks of 10 and 5 (all 4), 2, 1; steps 2 and 3 keep chunks of 1
    assert sizes == [4, 4, 4, 2, 1, 1, 1]
    assert not list((tmp_path / "oom").glob("checkpoint-*"))


def test_only_out_of_memory_errors_are_retried():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("NPU out of memory. Tried to allocate 2.00 GiB"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))
    assert halved_chunk(0, 20) == 10 and halved_chunk(64, 20) == 10 and halved_chunk(8, 20) == 4
    assert halved_chunk(1, 20) == 0


# -- the input pipeline ---------------------------------------------------------------------------------------
class _Groups:
    def __len__(self) -> int:
        return 12

    def sample(self, index: int, epoch: int = 0):
        return (index, epoch)


def test_worker_loader_leaves_the_models_random_stream_alone():
    """A DataLoader seeds its workers from the global generator unless given its own: at every epoch start,
    and at a different point in a resumed run, which would change the dropout masks."""
    batcher = LengthGroupedBatcher(list(range(12)), 4, seed=0)
    loader = BatchLoader(batcher, _Groups(), lambda groups: groups, num_workers=1, with_indices=True)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    stream = loader.stream(SamplerState())
    served = [next(stream) for _ in range(5)]  # into the second epoch: two loaders built
    assert torch.equal(torch.rand(3), expected)
    assert [indices for indices, _ in served][:3] == batcher.epoch_batches(0)
    assert all([i for i, _ in groups] == indices for indices, groups in served)
