"""For plugin authors: docs/plugins.md's examples run, and `bgekit plugins new` writes packages that work."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bgekit import api
from bgekit.commands.plugins import plugins
from bgekit.plugin_templates import KIND_NAMES, SPEC_KINDS, package_name, render
from bgekit.testing import assert_satisfies, fresh_plugin_manager, registered_plugin

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
BLOCK = re.compile(r"<!-- (\S+) -->\n```python\n(.*?)```\n", re.S)


def docs_files() -> dict[str, str]:
    """Every code block of docs/plugins.md under the file name in the comment above it."""
    return {path: code for path, code in BLOCK.findall(DOCS.read_text(encoding="utf-8"))}


def make_component(kind: str, spec, tmp_path: Path):
    if kind == "head":
        return spec.create(hidden_size=8)
    if kind == "miner":
        return spec.create(context=api.MiningContext(cache_dir=tmp_path))
    if kind == "metric":
        return spec.create().per_query
    return spec.create()


def protocol_for(kind: str, spec):
    protocol = api.PROTOCOLS[SPEC_KINDS.get(kind, kind)]
    return protocol[spec.task] if kind == "loss" else protocol


def check_task_or_command(kind: str, spec) -> None:
    """Tasks and commands have no Protocol: their runner or click command loads from the package."""
    if kind == "task":
        assert callable(spec.load_runner())
        section = spec.owned_sections()["my_task"]
        assert section["additionalProperties"] is False
        assert all("default" in value and "description" in value for value in section["properties"].values())
    else:
        assert isinstance(spec.load(), click.Command)


def test_docs_have_one_example_per_kind_equal_to_what_plugins_new_writes():
    blocks = docs_files()
    for kind in KIND_NAMES:
        files = render(f"my-{kind}", kind)
        package = package_name(f"my-{kind}")
        for path in (f"{package}/__init__.py", f"{package}/component.py", f"tests/test_{package}.py"):
            assert blocks.get(path) == files[path], f"docs/plugins.md is out of date for {path}"
    assert len(blocks) == 3 * len(KIND_NAMES)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_docs_example_registers_and_satisfies_its_protocol(kind, tmp_path, monkeypatch):
    package = package_name(f"my-{kind}")
    for path, code in docs_files().items():
        if path.startswith(f"{package}/"):
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text(code, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(package)
    try:
        with fresh_plugin_manager(load_entry_points=False) as pm, registered_plugin(module, pm=pm):
            spec = pm.registry.get(SPEC_KINDS.get(kind, kind), f"my-{kind}")
            if kind in ("task", "command"):
                check_task_or_command(kind, spec)
                return
            if kind == "callback":
                component = spec.create()
                assert [n for n in dir(component) if n.startswith("bgekit_on_")] == ["bgekit_on_step_end"]
                return
            assert_satisfies(make_component(kind, spec, tmp_path), protocol_for(kind, spec))
    finally:
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]


def write_packages(root: Path) -> dict[str, Path]:
    written = {}
    for kind in KIND_NAMES:
        target = root / f"my-{kind}"
        result = CliRunner().invoke(plugins, ["new", f"my-{kind}", "--kind", kind, "--output", str(target)])
        assert result.exit_code == 0, result.output
        written[kind] = target
    return written


def test_plugins_new_packages_are_found_and_their_tests_pass(tmp_path, plugin_site, run_bgekit):
    packages = write_packages(tmp_path)
    for kind, folder in packages.items():
        plugin_site.add_path(folder)
        plugin_site.add_dist(f"my-{kind}", f"my-{kind}", package_name(f"my-{kind}"))
    listed = run_bgekit("plugins", "list", "--json", env=plugin_site.env())
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    for kind in KIND_NAMES:
        row = rows[f"my-{kind}"]
        assert (row["status"], row["source"], row["error"]) == ("ok", "external", None), row
        assert row["provides"] == {SPEC_KINDS.get(kind, kind): [f"my-{kind}"]}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            *(str(folder / "tests") for folder in packages.values())],
                           cwd=tmp_path, env=plugin_site.env(OMP_NUM_THREADS="1"), capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    expected = sum(render(f"my-{kind}", kind)[f"tests/test_{package_name(f'my-{kind}')}.py"].count("\ndef test_")
                   for kind in KIND_NAMES)
    assert f"{expected} passed" in tests.stdout


def test_plugins_new_refuses_a_non_empty_folder_and_a_bad_name(tmp_path):
    (tmp_path / "my-loss").mkdir()
    (tmp_path / "my-loss" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(plugins, ["new", "my-loss", "--kind", "loss", "--output", str(tmp_path / "my-loss")])
    assert result.exit_code != 0 and "not empty" in str(result.exception)
    assert (tmp_path / "my-loss" / "keep.txt").read_text() == "mine"
    result = CliRunner().invoke(plugins, ["new", "My Loss", "--kind", "loss", "--output", str(tmp_path / "x")])
    assert result.exit_code != 0 and "lowercase" in str(result.exception)
    assert not (tmp_path / "x").exists()
