"""A misspelled or unmarked hook implementation is an error naming the hook, the plugin and the hook meant."""

from __future__ import annotations

import json

import pytest
import yaml

import bgekit
from bgekit.plugins import HookNameError
from bgekit.testing import fresh_plugin_manager, registered_plugin

TYPO_SOURCE = """
import bgekit
from bgekit.api import MetricSpec


@bgekit.hookimpl
def bgekit_loss():          # meant: bgekit_losses
    return []


@bgekit.hookimpl
def bgekit_metrics():
    yield MetricSpec(name="typo-metric", factory=lambda: None)
"""

MESSAGE = "plugin 'typo': 'bgekit_loss' is not a bgekit hook (did you mean 'bgekit_losses'?)"


@pytest.fixture
def typo_site(plugin_site):
    plugin_site.add_dist("bgekit-typo", "typo", "bgekit_typo_plugin", TYPO_SOURCE)
    return plugin_site


def test_plugins_list_reports_the_misspelled_hook(typo_site, run_bgekit):
    result = run_bgekit("plugins", "list", "--json", env=typo_site.env())
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert (rows["typo"]["status"], rows["typo"]["source"]) == ("error", "external")
    assert MESSAGE in rows["typo"]["error"]
    assert rows["typo"]["provides"] == {}  # nothing of it is registered, not even its good hook
    assert all(row["status"] == "ok" for row in rows.values() if row["source"] == "built-in")


def test_a_recipe_using_its_component_fails_with_that_message(typo_site, monkeypatch, tmp_path):
    from bgekit.recipe import load_recipe

    typo_site.activate(monkeypatch)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "task": "evaluate", "output_dir": str(tmp_path / "out"), "model": {"name_or_path": "m"},
        "evaluate": {"corpus": "c.jsonl", "queries": "q.jsonl", "qrels": "r.tsv", "metrics": ["typo-metric"]},
    }))
    with fresh_plugin_manager() as pm:
        with pytest.raises(bgekit.BgekitError) as error:
            load_recipe(recipe)
        assert "typo-metric" in str(error.value) and MESSAGE in str(error.value)
        with pytest.raises(bgekit.BgekitError, match="did you mean 'bgekit_losses'"):
            pm.registry.get("metric", "typo-metric")


def test_registering_in_code_refuses_a_misspelled_method():
    class Logger:
        @bgekit.hookimpl
        def bgekit_on_step_ended(self, run, step, metrics):  # meant: bgekit_on_step_end
            pass

    with fresh_plugin_manager(load_entry_points=False) as pm:
        with pytest.raises(HookNameError, match=r"'bgekit_on_step_ended' is not a bgekit hook "
                                                r"\(did you mean 'bgekit_on_step_end'\?\)"):
            pm.register(Logger(), name="logger")
        assert pm.get_plugin("logger") is None


def test_a_hook_function_without_the_marker_is_refused():
    class Unmarked:
        def bgekit_metrics(self):
            return []

    with fresh_plugin_manager(load_entry_points=False) as pm:
        with pytest.raises(HookNameError, match="'bgekit_metrics' is not marked @bgekit.hookimpl"):
            pm.register(Unmarked(), name="unmarked")


def test_correct_plugins_and_unrelated_names_still_register():
    class Fine:
        bgekit_version_note = "not a function, not checked"

        @bgekit.hookimpl
        def bgekit_on_run_end(self, run, status):
            pass

        def bgekit_helper_that_is_no_hook_at_all(self):
            """Far from every hook name: not reported."""

    with fresh_plugin_manager(load_entry_points=False) as pm, registered_plugin(Fine(), name="fine", pm=pm):
        assert pm.get_plugin("fine") is not None
