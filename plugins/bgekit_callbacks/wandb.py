"""``wandb``: losses, learning rate, throughput and evaluation metrics for Weights & Biases.

Needs ``pip install 'bgekit[wandb]'``. The API key is never a parameter: wandb
reads ``WANDB_API_KEY`` (or its own login) from the environment, and
``WANDB_MODE=offline`` keeps the run on disk (``wandb sync`` uploads it later).
The recipe is sent as the run's config with every secret masked: values read
from ``${env:NAME}`` (bgekit passes them as they were written when it can),
any value under a key that names a secret (``api_key``, ``token``, ``password``,
...), and any string equal to a secret-looking environment variable.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from bgekit.api import BgekitError, CallbackSpec, hookimpl

#: keys and environment variable names that hold secrets
SECRET_NAME = re.compile(r"(api[_-]?key|token|secret|password|passwd|credential|auth)", re.IGNORECASE)
MASK = "***"


def _secret_environment_values() -> set[str]:
    return {value for name, value in os.environ.items() if SECRET_NAME.search(name) and len(value) >= 4}


def mask_secrets(value: Any, secrets: set[str] | None = None, key: str = "") -> Any:
    """A copy of ``value`` (dicts, lists, scalars) with secrets replaced by ``***``."""
    secrets = _secret_environment_values() if secrets is None else secrets
    if isinstance(value, dict):
        return {k: mask_secrets(v, secrets, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v, secrets, key) for v in value]
    if isinstance(value, str):
        if (SECRET_NAME.search(key) and value) or any(secret in value for secret in secrets):
            return MASK
    return value


class WandbLogger:
    """Every numeric metric becomes ``train/<name>`` per step and ``eval/<name>`` per evaluation."""

    def __init__(self, project: str = "bgekit", entity: str | None = None, name: str | None = None,
                 group: str | None = None, tags: list[str] | None = None, mode: str | None = None,
                 log_config: bool = True) -> None:
        if importlib.util.find_spec("wandb") is None:
            raise BgekitError("callback 'wandb' needs the wandb package: pip install 'bgekit[wandb]' "
                              "(or drop it from callbacks)")
        self.options = {"project": project, "entity": entity, "name": name, "group": group,
                        "tags": list(tags or []), "mode": mode}
        self.log_config = log_config
        self.run: Any = None

    @hookimpl
    def bgekit_on_run_start(self, run: Any) -> None:
        if not run.is_main_process:
            return
        import wandb

        config = mask_secrets(dict(run.recipe)) if self.log_config else None
        options = {k: v for k, v in self.options.items() if v not in (None, [])}
        self.run = wandb.init(dir=str(Path(run.output_dir)), config=config,
                              job_type=str(getattr(run, "task", None) or "train"), **options)

    def _log(self, prefix: str, step: int, metrics: dict) -> None:
        if self.run is None:
            return
        values = {f"{prefix}/{name}": value for name, value in metrics.items()
                  if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "step"}
        if values:
            self.run.log(values, step=step)

    @hookimpl
    def bgekit_on_step_end(self, run: Any, step: int, metrics: dict) -> None:
        self._log("train", step, metrics)

    @hookimpl
    def bgekit_on_evaluate_end(self, run: Any, step: int, metrics: dict) -> None:
        self._log("eval", step, metrics)

    @hookimpl
    def bgekit_on_run_end(self, run: Any, status: str) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if status == "ok" else 1)
            self.run = None


@hookimpl
def bgekit_callbacks():
    yield CallbackSpec(
        name="wandb",
        summary="log losses, learning rate, throughput and evaluation metrics to Weights & Biases "
                "(WANDB_MODE=offline keeps them on disk)",
        factory=WandbLogger,
        params_schema={"properties": {
            "project": {"type": "string", "default": "bgekit", "description": "W&B project"},
            "entity": {"type": ["string", "null"], "default": None,
                       "description": "W&B team or user (default: yours)"},
            "name": {"type": ["string", "null"], "default": None, "description": "run name (default: W&B's)"},
            "group": {"type": ["string", "null"], "default": None, "description": "group runs together"},
            "tags": {"type": "array", "items": {"type": "string"}, "default": [], "description": "run tags"},
            "mode": {"type": ["string", "null"], "enum": ["online", "offline", "disabled", None], "default": None,
                     "description": "online, offline or disabled (default: WANDB_MODE, else online)"},
            "log_config": {"type": "boolean", "default": True,
                           "description": "send the recipe (secrets masked) as the run's config"},
        }},
    )
