"""Every recipe under recipes/ validates, dry-runs, and carries its header."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.recipe import load_recipe
from bgekit.shipped_recipes import describe

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"
SHIPPED = sorted(RECIPES_DIR.rglob("*.yaml"))
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(RECIPES_DIR)) for p in SHIPPED])
def test_shipped_recipe_validates_and_dry_runs(path, bgekit_pm):
    lines = path.read_text(encoding="utf-8").splitlines()
    match = MODELINE.match(lines[0])
    assert match, f"{path.name}: first line must be '# yaml-language-server: $schema=...'"
    schema = match.group(1)
    assert "://" in schema or (path.parent / schema).resolve().is_file(), f"{path.name}: {schema} does not exist"
    header = [ln for ln in lines if ln.startswith("#")]
    assert any("bgekit run" in ln for ln in header), f"{path.name}: header must show the command that runs it"
    assert describe(path), f"{path.name}: header needs a one-line description"

    load_recipe(path)
    result = CliRunner().invoke(main, ["run", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "# from: recipe file" in result.output
