"""The built-in plugins import from bgekit only what a third-party plugin can: ``bgekit.api``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from bgekit import api

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"

def bgekit_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a ``bgekit`` module in ``path``, at any depth
    (``from bgekit import x`` counts as ``bgekit.x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "bgekit":
            modules = [f"bgekit.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [(node.lineno, m) for m in modules if m == "bgekit" or m.startswith("bgekit.")]
    return found


def internal_imports(path: Path) -> list[tuple[int, str]]:
    return [(line, module) for line, module in bgekit_imports(path) if module != "bgekit.api"]


def plugin_modules() -> list[Path]:
    return sorted(PLUGINS.glob("bgekit_*/**/*.py"))


def test_built_in_plugins_import_only_the_public_api():
    modules = plugin_modules()
    assert len(modules) > 30  # the glob found the plugins
    wrong = [f"{path.relative_to(PLUGINS)}:{line}: {module}"
             for path in modules
             for line, module in internal_imports(path)]
    assert not wrong, "import these through bgekit.api:\n" + "\n".join(wrong)


def test_the_check_catches_every_way_of_importing_an_internal(tmp_path):
    source = tmp_path / "plugin.py"
    source.write_text("import bgekit\nimport bgekit.data.example as e\nfrom bgekit import registry, api\n"
                      "from bgekit.api import Example\nimport bgekit_formats\n\n"
                      "def f():\n    from bgekit.errors import BgekitError\n")
    assert [m for _, m in internal_imports(source)] == ["bgekit", "bgekit.data.example", "bgekit.registry",
                                                         "bgekit.errors"]


@pytest.mark.parametrize("name", sorted(api.__all__))
def test_every_public_name_resolves(name):
    assert getattr(api, name) is not None
    assert name in dir(api)


def test_public_api_stays_torch_free_until_a_heavy_name_is_used():
    code = ("import sys, bgekit.api as api; assert 'torch' not in sys.modules and 'numpy' not in sys.modules; "
            "api.parse_json; api.KNOWN_FIELDS; assert 'torch' not in sys.modules, 'reader helpers pulled in torch'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_docs_name_every_helper():
    docs = (PLUGINS.parent / "docs" / "plugins.md").read_text(encoding="utf-8")
    missing = [name for name in api._HELPERS if f"`{name}`" not in docs]
    assert not missing, f"docs/plugins.md does not mention {missing}"


def test_loading_every_plugin_for_help_imports_no_torch():
    """``bgekit --help`` loads every plugin (commands are plugins); none may pull in torch or numpy at import."""
    code = ("import sys; from click.testing import CliRunner; from bgekit.cli import main; "
            "result = CliRunner().invoke(main, ['--help']); assert result.exit_code == 0, result.output; "
            "assert 'mine' in result.output; "
            "assert 'torch' not in sys.modules, 'a plugin imported torch at load time'; "
            "assert 'numpy' not in sys.modules, 'a plugin imported numpy at load time'")
    subprocess.run([sys.executable, "-c", code], check=True)
