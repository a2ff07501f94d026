"""Plugin loading: built-ins, external entry points, broken plugins, conflicts, env controls."""

from __future__ import annotations

import json

import pytest

import bgekit
from bgekit.plugins import get_plugin_manager
from bgekit.registry import ConflictError, LossSpec
from bgekit.testing import fresh_plugin_manager, registered_plugin

BROKEN_SOURCE = """
raise ImportError("bgekit_broken_losses needs libfancy >= 2.0")
"""


def _infos(pm) -> dict:
    return {i.name: i for i in pm.plugin_infos()}


def test_every_builtin_plugin_loads(bgekit_pm):
    infos = _infos(bgekit_pm)
    builtin = {n: i for n, i in infos.items() if i.source == "built-in"}
    assert {"devices", "formats"} <= set(builtin)
    assert {n: (i.status, i.error) for n, i in builtin.items()} == {n: ("ok", None) for n in builtin}
    assert builtin["devices"].provides["device"] and "jsonl" in builtin["formats"].provides["data_format"]
    assert builtin["devices"].version == bgekit.__version__


def test_example_plugin_listed_as_external_by_real_cli(example_plugin_dir, plugin_site, run_bgekit):
    plugin_site.add_path(example_plugin_dir)
    plugin_site.add_dist("bgekit-broken-losses", "broken", "bgekit_broken_losses", BROKEN_SOURCE)
    result = run_bgekit("plugins", "list", "--json", env=plugin_site.env())
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert all(list(row) == ["name", "version", "status", "error", "source", "provides", "hooks"]
               for row in rows.values())
    example = rows["example"]
    assert (example["source"], example["status"], example["version"]) == ("external", "ok", "0.1.0")
    assert example["provides"] == {"data_format": ["qa-tsv"], "metric": ["r-precision"]}
    assert example["hooks"] == ["bgekit_data_formats", "bgekit_metrics"]
    broken = rows["broken"]
    assert (broken["source"], broken["status"]) == ("external", "error")
    assert "libfancy >= 2.0" in broken["error"]
    assert all(row["status"] == "ok" for row in rows.values() if row["source"] == "built-in")


def test_broken_plugin_does_not_break_listing_table(plugin_site, run_bgekit):
    plugin_site.add_dist("bgekit-broken-losses", "broken", "bgekit_broken_losses", BROKEN_SOURCE)
    result = run_bgekit("plugins", "list", env=plugin_site.env(COLUMNS="200"))
    assert result.returncode == 0, result.stderr
    assert "broken" in result.stdout and "error" in result.stdout and "libfancy" in result.stdout


def test_selecting_a_component_of_a_broken_plugin_fails_with_its_error(plugin_site, monkeypatch, tmp_path):
    plugin_site.add_dist("bgekit-broken-losses", "broken", "bgekit_broken_losses", BROKEN_SOURCE)
    plugin_site.activate(monkeypatch)
    with fresh_plugin_manager() as pm:
        assert _infos(pm)["broken"].status == "error"
        with pytest.raises(bgekit.BgekitError, match="libfancy >= 2.0"):
            pm.registry.get("loss", "fancy-loss")


def test_two_plugins_claiming_one_name_is_an_error_naming_both():
    class First:
        @bgekit.hookimpl
        def bgekit_losses(self):
            yield LossSpec(name="dup", factory=dict)

    class Second(First):
        pass

    with fresh_plugin_manager(load_entry_points=False) as pm:
        with registered_plugin(First(), name="first-plugin", pm=pm), \
                registered_plugin(Second(), name="second-plugin", pm=pm):
            with pytest.raises(ConflictError) as info:
                pm.registry
    message = str(info.value)
    assert "loss 'dup'" in message and "first-plugin" in message and "second-plugin" in message


def test_a_hook_returning_junk_is_reported():
    """A plugin whose registry hook returns something else than spec records is listed as broken, with what
    it returned; the registry (and every command, `plugins list` included) keeps working."""
    class Junk:
        @bgekit.hookimpl
        def bgekit_losses(self):
            return ["not a spec"]

    with fresh_plugin_manager(load_entry_points=False) as pm, registered_plugin(Junk(), name="junk", pm=pm):
        registry = pm.registry
        [info] = [i for i in pm.plugin_infos() if i.name == "junk"]
        assert info.status == "error" and "bgekit_losses returned 'not a spec'" in info.error
        assert "not a spec" not in registry.names("loss")


def test_registered_plugin_is_undone(bgekit_pm):
    class Extra:
        @bgekit.hookimpl
        def bgekit_losses(self):
            yield LossSpec(name="extra-loss", factory=dict)

    with registered_plugin(Extra(), name="extra"):
        assert "extra-loss" in get_plugin_manager().registry.names("loss")
        assert _infos(bgekit_pm)["extra"].source == "registered"
    assert "extra-loss" not in bgekit_pm.registry.names("loss")
    assert "extra" not in _infos(bgekit_pm)


def test_disable_list_blocks_builtin_and_external(example_plugin_dir, plugin_site, monkeypatch):
    plugin_site.add_path(example_plugin_dir)
    plugin_site.activate(monkeypatch)
    monkeypatch.setenv("BGEKIT_DISABLE_PLUGINS", "formats, example")
    with fresh_plugin_manager() as pm:
        infos = _infos(pm)
        assert infos["formats"].status == infos["example"].status == "disabled"
        assert infos["devices"].status == "ok"
        assert "jsonl" not in pm.registry.names("data_format")


@pytest.mark.parametrize("allow, loaded", [("", False), ("example", True), ("other", False)])
def test_allow_list_only_applies_to_external_plugins(example_plugin_dir, plugin_site, monkeypatch, allow, loaded):
    plugin_site.add_path(example_plugin_dir)
    plugin_site.activate(monkeypatch)
    monkeypatch.setenv("BGEKIT_LOAD_PLUGINS", allow)
    with fresh_plugin_manager() as pm:
        infos = _infos(pm)
        assert infos["example"].status == ("ok" if loaded else "disabled")
        assert infos["formats"].status == "ok"  # built-ins are not subject to the allow-list
        assert ("r-precision" in pm.registry.names("metric")) is loaded
