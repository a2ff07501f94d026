"""``pkg:NAME`` model references: in recipes (resolve_model_path) and on the command line (MODEL_DIR)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from bgekit.commands.params import MODEL_DIR
from bgekit.errors import BgekitError
from bgekit.model_paths import resolve_model_path


@pytest.fixture
def model_package(tmp_path, monkeypatch):
    """An installed-looking package ``fake_model_pkg`` with its model in ``model/``."""
    package = tmp_path / "site" / "fake_model_pkg"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('a model reference must not import the package')\n")
    (package / "model" / "config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return package / "model"


@click.command()
@click.option("--model", type=MODEL_DIR, required=True)
def show(model: str) -> None:
    click.echo(model)


def test_a_package_reference_resolves_to_its_model_folder_without_importing_it(model_package):
    assert resolve_model_path("pkg:fake-model-pkg") == str(model_package)
    assert resolve_model_path("BAAI/bge-m3") == "BAAI/bge-m3"  # hub ids pass through


def test_a_missing_package_says_what_to_install():
    with pytest.raises(BgekitError, match=r"pip install no-such-model-pkg"):
        resolve_model_path("pkg:no_such_model_pkg")


def test_commands_take_a_directory_or_a_package_reference(model_package, tmp_path):
    runner = CliRunner()
    assert runner.invoke(show, ["--model", "pkg:fake_model_pkg"]).output.strip() == str(model_package)
    assert runner.invoke(show, ["--model", str(tmp_path)]).output.strip() == str(tmp_path)
    missing = runner.invoke(show, ["--model", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "is not a directory" in missing.output and "pkg:NAME" in missing.output
    unknown = runner.invoke(show, ["--model", "pkg:no_such_model_pkg"])
    assert unknown.exit_code == 2 and "no installed package 'no_such_model_pkg'" in unknown.output
