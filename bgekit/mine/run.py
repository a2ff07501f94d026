"""Mining a data file: read examples, build the pool, mine, write canonical JSONL atomically."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from bgekit.data.atomic import atomic_write
from bgekit.data.example import Example, RowError
from bgekit.errors import BgekitError
from bgekit.mine.engine import MiningStats, check_compatible, mine_examples
from bgekit.mine.pool import Pool, read_pool_file
from bgekit.mine.retriever import MiningContext, Retriever

#: row errors quoted in the message before "... and N more"
SHOWN_ERRORS = 10


@dataclass
class MineSummary:
    """What ``bgekit mine`` prints and a recipe step records."""

    output: str
    miner: str
    stats: MiningStats
    settings: dict[str, Any]
    retriever: dict[str, Any]

    @property
    def negatives_per_row(self) -> float:
        return self.stats.negatives / self.stats.rows if self.stats.rows else 0.0

    def to_json(self) -> dict[str, Any]:
        stats = asdict(self.stats)
        stats.update(seconds=self.stats.seconds, queries_per_second=self.stats.queries_per_second,
                     negatives_per_row=self.negatives_per_row)
        return {"output": self.output, "miner": self.miner, "stats": stats,
                "settings": self.settings, "retriever": self.retriever}


def read_training_examples(path: str | Path, fmt: str = "auto") -> list[Example]:
    """All examples of ``path``; any bad row stops mining with every problem listed."""
    from bgekit.data.readers import read_examples

    examples: list[Example] = []
    errors: list[RowError] = []
    for item in read_examples(path, fmt=fmt):
        (errors if isinstance(item, RowError) else examples).append(item)
    if errors:
        shown = "\n".join(f"  {e}" for e in errors[:SHOWN_ERRORS])
        more = f"\n  ... and {len(errors) - SHOWN_ERRORS} more" if len(errors) > SHOWN_ERRORS else ""
        raise BgekitError(f"{path}: {len(errors)} invalid row(s); fix them (bgekit data validate shows all):\n"
                          f"{shown}{more}")
    if not examples:
        raise BgekitError(f"{path}: no examples to mine negatives for")
    return examples


def build_retriever(miner: str, params: Mapping[str, Any], context: MiningContext,
                    registry: Any = None) -> Retriever:
    """The miner plugin's retriever, with schema defaults under ``params``."""
    if registry is None:
        from bgekit.plugins import get_registry

        registry = get_registry()
    spec = registry.get("miner", miner)
    try:
        retriever = spec.create(context=context, **{k: v for k, v in params.items() if k != "name"})
    except TypeError as err:
        raise BgekitError(f"miner '{miner}': bad parameters {dict(params)} ({err})") from err
    if not isinstance(retriever, Retriever):
        raise BgekitError(f"miner plugin '{miner}' returned {type(retriever).__name__}, not a bgekit Retriever")
    check_compatible(retriever, retriever.settings, f"miner '{miner}'")
    return retriever


def mine_file(input_path: str | Path, output_path: str | Path, miner: str, params: Mapping[str, Any],
              context: MiningContext, *, corpus: str | Path | None = None, fmt: str = "auto",
              progress: Callable[[int], None] | None = None, registry: Any = None) -> MineSummary:
    """Mine negatives for every example of ``input_path`` into ``output_path``."""
    retriever = build_retriever(miner, params, context, registry)
    examples = read_training_examples(input_path, fmt)
    pool = Pool.build(examples, read_pool_file(corpus) if corpus else None)
    mined, stats = mine_examples(examples, retriever, pool, retriever.settings, progress=progress)
    with atomic_write(output_path) as handle:
        for example in mined:
            handle.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
    settings = asdict(retriever.settings)
    settings["range"] = list(settings["range"])
    return MineSummary(str(output_path), miner, stats, settings, retriever.describe())


def format_summary(summary: MineSummary) -> list[str]:
    """Human lines for the terminal."""
    s = summary.stats
    lines = [
        f"mined {s.rows} rows with '{summary.miner}' into {summary.output}",
        f"  negatives per row: {summary.negatives_per_row:.2f} (asked {summary.settings['num_negatives']}); "
        f"rows filled at random: {s.filled_rows} ({s.filled_negatives} negatives)"
        + (f"; rows still short: {s.short_rows}" if s.short_rows else ""),
        f"  pool: {s.pool_size} passages; indexing {s.index_seconds:.1f}s, mining {s.search_seconds:.1f}s "
        f"({s.queries_per_second:.1f} queries/s)",
    ]
    if s.dropped_teacher_scores:
        lines.append(f"  dropped stale teacher scores from {s.dropped_teacher_scores} rows "
                     "(re-score them with bgekit score)")
    return lines
