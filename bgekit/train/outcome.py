"""What a finished training run leaves its user: base vs fine-tuned scores, and a model card.

A fine-tune is only worth keeping if it beats the model it started from on
held-out queries, so when the recipe has an ``evaluate`` section the base
model is scored once before the first step (``OUTPUT_DIR/eval/base``) and the
fine-tuned model after the last (``OUTPUT_DIR/eval/final``); both are result
folders ``bgekit compare`` reads, and their paired comparison (delta,
bootstrap interval, p-value per metric) goes into the summary and the model
card. A resumed run reads the base result it wrote before instead of scoring
already-trained weights as the "base".

Every saved model folder gets a Hugging Face model card
(:mod:`bgekit.models.model_card`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from bgekit.data.example import Example, RowError
from bgekit.train.settings import setting

BASE_RESULT = Path("eval") / "base"
FINAL_RESULT = Path("eval") / "final"


class HeldOutEvaluation:
    """The recipe's ``evaluate`` section, loaded once, for an embedder being trained."""

    def __init__(self, spec: dict[str, Any], output_dir: Path) -> None:
        from bgekit.evaluate.retrieval import load_eval_data

        self.spec = spec
        self.output_dir = output_dir
        self.data = load_eval_data(spec["corpus"], spec["queries"], spec["qrels"])
        self.base: Any = None  # the base model's EvalResult, once known

    def result(self, model: Any, label: str) -> Any:
        """``model``'s EvalResult (per query and aggregate) on the held-out data."""
        from bgekit.evaluate.retrieval import evaluate_retriever

        result, _ = evaluate_retriever(model, self.data, self.spec.get("metrics", ["ndcg@10"]), label=label,
                                       mode=self.spec.get("mode", "dense"), top_k=self.spec.get("top_k", 100),
                                       batch_size=setting(self.spec, "evaluate", "batch_size"))
        return result

    def metrics(self, model: Any, step: int) -> dict[str, float]:
        """Aggregate metrics: the trainer's evaluator (``evaluate.every_steps``, ``select_best``)."""
        return self.result(model, f"step-{step}").metrics

    def score_base(self, model: Any, resuming: bool) -> None:
        """Score the base model before training, or read that score back when resuming."""
        from bgekit.evaluate.results import is_result_dir, read_result, write_result

        folder = self.output_dir / BASE_RESULT
        if is_result_dir(folder):
            self.base = read_result(folder)
        elif not resuming:  # weights restored from a checkpoint are not the base model's
            self.base = self.result(model, "base")
            write_result(folder, self.base)

    def score_final(self, model: Any) -> tuple[dict[str, float], dict[str, Any] | None]:
        """The fine-tuned model's metrics, and its paired comparison with the base model when scored."""
        from bgekit.evaluate.compare import compare_results
        from bgekit.evaluate.results import write_result

        final = self.result(model, "fine-tuned")
        write_result(self.output_dir / FINAL_RESULT, final)
        comparison = compare_results(self.base, final).to_json() if self.base is not None else None
        return final.metrics, comparison


def data_summary(paths: Any, examples: Sequence[Example], errors: Sequence[RowError]) -> dict[str, Any]:
    """Rows trained on, rows skipped and the files they came from, for the model card."""
    sources = [paths] if isinstance(paths, str) else list(paths or [])
    return {"rows": len(examples), "skipped_rows": len(errors), "sources": [str(p) for p in sources]}


def _card_recipe(recipe: Any) -> Any:
    """What the card shows of the recipe: a Recipe masks its own secrets; anything else shows its values."""
    return recipe if hasattr(recipe, "masked_values") else getattr(recipe, "values", recipe)


def write_embedder_card(folder: Path, model: Any, recipe: Any, data: dict[str, Any],
                        comparison: dict[str, Any] | None, metrics: dict[str, float] | None) -> None:
    """The model card of a saved embedder (its heads, dense pooling and passage length)."""
    from bgekit.models.model_card import write_model_card

    dense = model.heads["dense"] if "dense" in model.heads else None
    write_model_card(folder, kind="embedder", base_model=str(recipe.values["model"]["name_or_path"]),
                     recipe=_card_recipe(recipe), data=data, comparison=comparison, metrics=None if comparison else metrics,
                     heads=list(model.heads), pooling=getattr(dense, "pooling", "cls"),
                     max_length=model.passage_max_length)


def write_reranker_card(folder: Path, model: Any, recipe: Any, data: dict[str, Any],
                        model_values: dict[str, Any] | None = None) -> None:
    """The model card of a saved cross-encoder."""
    from bgekit.models.model_card import write_model_card

    values = model_values or recipe.values["model"]
    write_model_card(folder, kind="reranker", base_model=str(values["name_or_path"]), recipe=_card_recipe(recipe), data=data,
                     max_length=getattr(model, "max_length", None))


def comparison_lines(comparison: dict[str, Any]) -> list[str]:
    """``ndcg@10 0.2630 -> 0.5820 (+0.3190 [+0.28, +0.36], p 0.001)`` per metric."""
    lines = []
    for row in comparison.get("metrics", []):
        low, high = row.get("ci_low"), row.get("ci_high")
        interval = f" [{low:+.4f}, {high:+.4f}]" if low is not None and high is not None else ""
        p = f", p {row['p_value']:.3g}" if row.get("p_value") is not None else ""
        lines.append(f"{row['metric']} {row['baseline']:.4f} -> {row['candidate']:.4f} "
                     f"({row['delta']:+.4f}{interval}{p})")
    return lines
