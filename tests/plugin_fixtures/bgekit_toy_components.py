"""Components for the core's tests, so they do not depend on the built-in losses or heads.

Registered in-process with ``bgekit.testing.registered_plugin`` or, for
subprocess tests, through a ``bgekit`` entry point (see ``conftest.py``).
"""

from __future__ import annotations

import bgekit
from bgekit.registry import CallbackSpec, HeadSpec, LossSpec

__version__ = "0.0.1"

CALLS: list[dict] = []


@bgekit.hookimpl
def bgekit_losses():
    yield LossSpec(
        name="toy-contrastive",
        summary="a loss with a temperature, for tests",
        factory=dict,
        citation="none: a test double",
        params_schema={
            "properties": {
                "temperature": {"type": "number", "exclusiveMinimum": 0, "default": 0.05,
                                "description": "softmax temperature"},
                "symmetric": {"type": "boolean", "default": False, "description": "also passage-to-query"},
            },
        },
    )


@bgekit.hookimpl
def bgekit_heads():
    yield HeadSpec(
        name="toy-pool",
        summary="a head, for tests",
        factory=lambda hidden_size, **params: params,
        params_schema={"properties": {"pooling": {"enum": ["cls", "mean"], "default": "cls",
                                                  "description": "which token(s) to pool"}}},
    )


@bgekit.hookimpl
def bgekit_callbacks():
    yield CallbackSpec(
        name="toy-logger",
        summary="a callback with a secret, for tests",
        factory=dict,
        params_schema={"properties": {"api_key": {"type": "string", "description": "service token"}},
                       "required": ["api_key"]},
    )


def fake_run(recipe, backend) -> dict:
    """A task runner that only records what it was given."""
    CALLS.append({"recipe": recipe, "backend": backend})
    return {"task": recipe.values["task"], "device": backend.name}
