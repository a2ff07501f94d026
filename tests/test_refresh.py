"""``miner.refresh_every``: negatives re-mined with the model being trained, used from the next epoch."""

from __future__ import annotations

import json
import types

from bgekit.data.example import example_from_mapping
from bgekit.devices import select_backend
from bgekit.train import embedder_task
from bgekit.train.refresh import RefreshingSampler

PASSAGES = [f"passage {i} 北京 river {i % 7} data {i % 3}" for i in range(30)]
ROWS = [{"query": f"question {i} 长江", "pos": [PASSAGES[i]], "neg": [PASSAGES[29 - i]]} for i in range(8)]


def test_sampler_switches_to_new_negatives_at_the_epoch_given():
    old = [example_from_mapping(r, "t.jsonl", i + 1) for i, r in enumerate(ROWS)]
    new = [example_from_mapping({**r, "neg": ["a brand new negative"]}, "t.jsonl", i + 1) for i, r in enumerate(ROWS)]
    sampler = RefreshingSampler(old, group_size=2, seed=0)
    sampler.schedule(new, from_epoch=1, step=2)
    assert sampler.sample(0, epoch=0).passages[1] == PASSAGES[29]
    assert sampler.sample(0, epoch=1).passages[1] == "a brand new negative" and sampler.active_step == 2


def test_refresh_mines_with_the_current_weights_and_feeds_the_next_epoch(tmp_path, tiny_model_dir, bgekit_pm):
    from bgekit.mine.engine import mine_examples
    from bgekit.mine.pool import Pool
    from bgekit.mine.retriever import MiningContext
    from bgekit.mine.run import build_retriever
    from bgekit.models import Embedder

    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n")
    miner = {"name": "dense", "range": [0, 6], "num_negatives": 2, "sampling": "top", "refresh_every": 2}
    values = {"task": "embedder", "output_dir": str(tmp_path / "out"), "seed": 1,
              "model": {"name_or_path": str(tiny_model_dir), "query_max_length": 16, "passage_max_length": 16},
              "data": {"train": str(tmp_path / "train.jsonl"), "group_size": 2},
              "miner": miner,
              "train": {"dtype": "fp32", "max_steps": 4, "batch_size": 4, "learning_rate": 1e-3, "logging_steps": 1,
                        "save_steps": 2, "save_total_limit": 5},
              "callbacks": []}
    recipe = types.SimpleNamespace(values=values, save=lambda out: None)
    summary = embedder_task.run(recipe, select_backend(bgekit_pm.registry, "cpu"), show_progress=False)

    # 8 examples in batches of 4: 2 steps an epoch; refreshed at step 2 (not at the last step), used from epoch 1
    assert summary["negative_refreshes"] == 1
    refreshed = tmp_path / "out" / "negatives" / "step-2-epoch-1.jsonl"
    mined = [json.loads(x) for x in refreshed.read_text(encoding="utf-8").splitlines()]
    assert [r["query"] for r in mined] == [r["query"] for r in ROWS]
    assert any(r["neg"] != o["neg"] for r, o in zip(mined, ROWS)), "negatives did not change"

    # independently: mining with the step-2 checkpoint's weights gives exactly these negatives
    model = Embedder.from_pretrained(str(tmp_path / "out" / "checkpoint-2" / "model")).eval()
    examples = [example_from_mapping(r, "t.jsonl", i + 1) for i, r in enumerate(ROWS)]
    context = MiningContext(embedder=model, query_max_length=16, passage_max_length=16)
    retriever = build_retriever("dense", {k: v for k, v in miner.items() if k != "name"}, context)
    expected, _ = mine_examples(examples, retriever, Pool.build(examples), retriever.settings)
    assert [r["neg"] for r in mined] == [e.neg for e in expected]
