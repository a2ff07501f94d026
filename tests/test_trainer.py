"""The training loop on a tiny model: it learns, checkpoints atomically, resumes exactly."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import bgekit
from bgekit.devices import select_backend
from bgekit.testing import registered_plugin, tiny_encoder
from bgekit.train import checkpoint as ckpt
from bgekit.train import embedder_task
from bgekit.train.collate import Collator
from bgekit.train.sampling import GroupSampler
from bgekit.train.trainer import all_parameters, clip_gradients

#: Words the tiny test tokenizer was trained on (bgekit.testing.TRAINING_TEXT), so they are not <unk>.
TOPICS = ["river", "capital", "Beijing", "Yangtze", "Dream", "Machine", "retrieval", "computers"]


def toy_rows(n: int = 32) -> list[dict]:
    """Queries whose positive shares a topic word; negatives are other topics."""
    rows = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        others = [t for t in TOPICS if t != topic]
        rows.append({"query": f"what about the {topic} {i}?",
                     "pos": [f"the {topic} is described here, part {i}"],
                     "neg": [f"the {others[(i + k) % len(others)]} is described here" for k in range(3)]})
    return rows


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny XLM-R with dropout (so resuming must restore RNG state to match)."""
    return tiny_encoder(tmp_path_factory.mktemp("tiny"), hidden_size=32, num_layers=2)


@pytest.fixture(scope="module")
def no_dropout_model_dir(tmp_path_factory) -> Path:
    out = tiny_encoder(tmp_path_factory.mktemp("tiny-nodrop"), hidden_size=32, num_layers=2)
    config = json.loads((out / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (out / "config.json").write_text(json.dumps(config))
    return out


def write_data(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def recipe(tmp_path: Path, model: Path, data: Path, out: str = "out", loss=None, **train) -> types.SimpleNamespace:
    values = {
        "task": "embedder", "output_dir": str(tmp_path / out), "seed": 3,
        "model": {"name_or_path": str(model), "heads": [{"name": "dense"}],
                  "query_max_length": 16, "passage_max_length": 24},
        "data": {"train": str(data), "group_size": 4, "format": "auto"},
        "loss": loss or {"name": "infonce", "temperature": 0.05},
        "train": {"max_steps": 6, "batch_size": 4, "learning_rate": 2e-3, "warmup_ratio": 0.0,
                  "logging_steps": 1, "dtype": "fp32", "save_steps": 0, **train},
        "callbacks": [],
    }
    return types.SimpleNamespace(values=values, path=tmp_path / "recipe.yaml", save=lambda out: None)


def cpu():
    return select_backend(bgekit.plugins.get_registry(), "cpu")


def run(r) -> dict:
    return embedder_task.run(r, cpu(), show_progress=False)


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def fixed_batch_loss(model_path: Path, rows: list[dict]) -> float:
    """InfoNCE of a saved model on all toy rows at once, computed here, not by the trainer."""
    from bgekit.data.example import Example
    from bgekit.models import Embedder

    model = Embedder.from_pretrained(str(model_path), heads=[{"name": "dense", "pooling": "mean"}]).eval()
    examples = [Example(query=r["query"], pos=r["pos"], neg=r["neg"]) for r in rows]
    sampler = GroupSampler(examples, group_size=4, seed=0)
    batch = Collator(model.tokenizer, query_max_length=16, passage_max_length=24)(
        [sampler.sample(i) for i in range(len(examples))])
    with torch.no_grad():
        scores = model(batch.queries, batch.passages)["dense"] / 0.05
    targets = torch.arange(batch.num_queries) * 4
    return float(torch.nn.functional.cross_entropy(scores, targets))


def test_training_lowers_the_loss_on_a_fixed_set(tmp_path, no_dropout_model_dir, bgekit_pm):
    rows = toy_rows()
    r = recipe(tmp_path, no_dropout_model_dir, write_data(tmp_path, rows), max_steps=16, learning_rate=5e-3)
    r.values["model"]["heads"] = [{"name": "dense", "pooling": "mean"}]
    result = run(r)
    assert result["steps"] == 16
    before = fixed_batch_loss(no_dropout_model_dir, rows)
    after = fixed_batch_loss(Path(result["model_dir"]), rows)
    assert after < before - 0.15, (before, after)  # measured: 4.79 -> 4.41


def test_metrics_log_has_a_line_per_logged_step(tmp_path, model_dir, bgekit_pm):
    result = run(recipe(tmp_path, model_dir, write_data(tmp_path, toy_rows()), max_steps=3))
    lines = [json.loads(x) for x in Path(result["metrics_log"]).read_text().splitlines()]
    train = [x for x in lines if x["event"] == "train"]
    assert [x["step"] for x in train] == [1, 2, 3]
    for key in ("loss", "learning_rate", "grad_norm", "passages_per_s", "tokens_per_s"):
        assert key in train[0]
    assert lines[-1] == {**lines[-1], "event": "end", "status": "ok"}


class CrashAt:
    """A callback that kills the run at a given step, like a pre-empted job."""

    def __init__(self, step: int) -> None:
        self.step = step

    @bgekit.hookimpl
    def bgekit_on_step_end(self, run, step, metrics):
        if step == self.step:
            raise KeyboardInterrupt(f"killed at step {step}")


def test_killed_and_resumed_run_ends_with_the_same_weights(tmp_path, model_dir, bgekit_pm):
    data = write_data(tmp_path, toy_rows(24))  # 6 batches of 4: steps cross an epoch boundary
    straight = run(recipe(tmp_path, model_dir, data, out="straight", max_steps=8, save_steps=3))

    with registered_plugin(CrashAt(5), name="crash", pm=bgekit_pm):
        with pytest.raises(KeyboardInterrupt):
            run(recipe(tmp_path, model_dir, data, out="killed", max_steps=8, save_steps=3))
    killed = tmp_path / "killed"
    assert [p.name for p in ckpt.list_checkpoints(killed)] == ["checkpoint-3"]
    assert not (killed / "model").exists()

    resumed = run(recipe(tmp_path, model_dir, data, out="killed", max_steps=8, save_steps=3, resume_from="latest"))
    assert resumed["steps"] == 8
    a, b = weights(Path(straight["model_dir"])), weights(Path(resumed["model_dir"]))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    # and the run did change the weights, so the comparison means something
    base = weights(model_dir)
    assert any(not torch.allclose(base[n], a[n]) for n in a if n in base)
    # the log of the resumed run continues where the killed one stopped: the re-run steps are not repeated
    steps = [json.loads(x)["step"] for x in (killed / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["event"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_checkpoint_is_invisible_until_complete(tmp_path, monkeypatch):
    class Broken:
        def save_pretrained(self, directory):
            Path(directory).mkdir(parents=True)
            (Path(directory) / "half.bin").write_bytes(b"x")
            raise OSError("disk full")

    with pytest.raises(bgekit.BgekitError, match="could not write checkpoint"):
        ckpt.save_checkpoint(tmp_path, 7, model=Broken(), trainer_state={}, save_total_limit=2)
    assert ckpt.list_checkpoints(tmp_path) == []
    assert not (tmp_path / "checkpoint-7").exists()
    assert list(tmp_path.iterdir()) == []  # the partial temp folder was removed
    (tmp_path / "checkpoint-7.tmp-0f0f").mkdir()  # as a kill -9 while saving leaves it
    for name in ("retriever.tmp-ab12", "reranker.tmp-cd34"):  # a joint run killed while saving its models
        (tmp_path / name).mkdir()
    (tmp_path / "notes.tmp-keep").mkdir()  # not a folder bgekit writes: left alone
    ckpt.remove_stale_temps(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.tmp-keep"]


def test_only_the_last_checkpoints_are_kept(tmp_path):
    class Fine:
        def save_pretrained(self, directory):
            Path(directory).mkdir(parents=True)
            (Path(directory) / "w.bin").write_bytes(b"w")

    for step in (2, 4, 6, 8):
        ckpt.save_checkpoint(tmp_path, step, model=Fine(), trainer_state={"step": step}, save_total_limit=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["checkpoint-6", "checkpoint-8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-6", "checkpoint-8"]
    assert ckpt.resolve_resume("latest", tmp_path) == tmp_path / "checkpoint-8"


def test_gradient_accumulation_matches_one_big_batch(tmp_path, no_dropout_model_dir, bgekit_pm):
    """Without in-batch negatives the loss is a mean over queries, so 2 x 4 accumulated = 1 x 8."""
    data = write_data(tmp_path, toy_rows(16))
    loss = {"name": "infonce", "temperature": 0.05, "in_batch_negatives": False}
    common = dict(max_steps=2, max_grad_norm=1e6)  # never clips, but logs the gradient norm
    r_big = recipe(tmp_path, no_dropout_model_dir, data, out="big", loss=loss, batch_size=8, **common)
    r_acc = recipe(tmp_path, no_dropout_model_dir, data, out="acc", loss=loss, batch_size=4,
                   gradient_accumulation_steps=2, **common)
    for r in (r_big, r_acc):
        r.values["data"].update(shuffle=False, length_grouping=False)
        r.values["model"]["heads"] = [{"name": "dense", "pooling": "mean"}]
    big, acc = run(r_big), run(r_acc)
    base = weights(no_dropout_model_dir)
    a, b = weights(Path(big["model_dir"])), weights(Path(acc["model_dir"]))
    # Adam's first steps are ~lr * sign(grad): float noise can flip the sign of a near-zero
    # gradient entry, so compare the whole update, not each entry.
    update_a = torch.cat([(a[n] - base[n]).flatten() for n in base])
    update_b = torch.cat([(b[n] - base[n]).flatten() for n in base])
    assert update_a.norm() > 0
    assert (update_a - update_b).norm() / update_a.norm() < 1e-2
    assert big["final_loss"] == pytest.approx(acc["final_loss"], rel=1e-4)
    # Adam hides the gradient's scale; the logged norm does not (a missing 1/accumulation doubles it)
    norms = [[x["grad_norm"] for x in map(json.loads, (tmp_path / out / "metrics.jsonl").read_text().splitlines())
              if x["event"] == "train"] for out in ("big", "acc")]
    assert norms[0] == pytest.approx(norms[1], rel=1e-3)


def grads_of(*norms: float) -> list[torch.nn.Parameter]:
    """One parameter per norm, its gradient (3, 4) * norm / 5 along a fixed direction: ||grad|| == norm."""
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in norms]
    for p, n in zip(params, norms):
        p.grad = torch.tensor([3.0, 4.0]) * n / 5
    return params


def test_one_clip_group_is_torchs_shared_clipping():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    model(torch.ones(1, 3)).sum().mul(100).backward()
    expected = [p.grad.clone() for p in model.parameters()]
    total = torch.cat([g.flatten() for g in expected]).norm()  # by hand: all gradients scaled by one factor
    assert total > 1.0
    expected = [g * (1.0 / (total + 1e-6)) for g in expected]
    norm = clip_gradients(all_parameters(model), 1.0)
    assert float(norm) == pytest.approx(float(total), rel=1e-6)
    for p, g in zip(model.parameters(), expected):
        torch.testing.assert_close(p.grad, g)


def test_each_clip_group_is_clipped_on_its_own():
    big, small = grads_of(10.0), grads_of(0.5)
    norm = clip_gradients([big, small], max_norm=1.0)
    assert float(norm) == pytest.approx((10.0 ** 2 + 0.5 ** 2) ** 0.5)  # the norm before clipping, over all
    assert float(big[0].grad.norm()) == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(small[0].grad, torch.tensor([0.3, 0.4]))  # untouched: under max_norm on its own
