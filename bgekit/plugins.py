"""The plugin manager: built-in plugins first, then third-party entry points.

Built-ins are registered through the same ``bgekit`` entry-point group as a
third party's package; they are told apart by the distribution that declares
them. Nothing loads at import time: :func:`get_plugin_manager` builds the
manager once, on first use. A plugin that fails to import is recorded as
broken and the rest keep working.

Environment:
  ``BGEKIT_DISABLE_PLUGINS=a,b``  never load these (built-in or external).
  ``BGEKIT_LOAD_PLUGINS=a,b``     load only these external plugins (empty: none).
"""

from __future__ import annotations

import inspect
import os
import threading
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from bgekit import hookspecs
from bgekit.errors import BgekitError
from bgekit.recipe_schema import outer_schema
from bgekit.registry import KINDS, ComponentSpec, Registry, TaskSpec, did_you_mean

ENTRY_POINT_GROUP = "bgekit"
BUILTIN_DISTRIBUTION = "bgekit"


@dataclass
class PluginInfo:
    """What ``bgekit plugins list`` shows for one plugin."""

    name: str
    version: str
    source: str  # "built-in", "external" or "registered" (added in code)
    status: str = "ok"  # "ok", "error" or "disabled"
    error: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)
    hooks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "source": self.source,
            "provides": self.provides,
            "hooks": self.hooks,
        }


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus plugin records and the component registry."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None

    # -- loading ---------------------------------------------------------
    def load_entry_points(self) -> None:
        """Load built-in entry points, then external ones, honouring the env controls."""
        disabled = _env_list("BGEKIT_DISABLE_PLUGINS") or set()
        allowed = _env_list("BGEKIT_LOAD_PLUGINS")  # None: all external plugins
        eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        builtin = [ep for ep in eps if _dist_name(ep) == BUILTIN_DISTRIBUTION]
        external = [ep for ep in eps if _dist_name(ep) != BUILTIN_DISTRIBUTION]
        for ep in sorted(builtin, key=lambda e: e.name) + sorted(external, key=lambda e: e.name):
            source = "built-in" if ep in builtin else "external"
            version = _dist_version(ep)
            if ep.name in self.infos:
                continue  # the same distribution seen twice on sys.path
            if ep.name in disabled or (source == "external" and allowed is not None and ep.name not in allowed):
                self.infos[ep.name] = PluginInfo(ep.name, version, source, status="disabled")
                continue
            try:
                plugin = ep.load()
                self.register(plugin, name=ep.name)
            except HookNameError as exc:  # registered nothing; its message says what to rename
                self.infos[ep.name] = PluginInfo(ep.name, version, source, status="error", error=str(exc))
                continue
            except Exception as exc:  # a broken plugin must not break bgekit
                self.infos[ep.name] = PluginInfo(
                    ep.name, version, source, status="error", error=f"{type(exc).__name__}: {exc}"
                )
                continue
            self.infos[ep.name] = PluginInfo(ep.name, version, source)

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """Register ``plugin`` after :func:`check_hook_names`; a misspelled hook raises
        :class:`HookNameError` and nothing of the plugin is registered."""
        check_hook_names(plugin, name or self.get_canonical_name(plugin), set(self._hookspec_names()))
        registered = super().register(plugin, name=name)
        self._registry = None
        if registered and registered not in self.infos:
            version = str(getattr(plugin, "__version__", "") or "")
            self.infos[registered] = PluginInfo(registered, version, "registered")
        return registered

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        removed = super().unregister(plugin=plugin, name=name)
        self._registry = None
        key = name or (self.get_name(removed) if removed is not None else None)
        for pname in [n for n, info in self.infos.items() if info.source == "registered"]:
            if pname == key or self.get_plugin(pname) is None:
                self.infos.pop(pname, None)
        return removed

    def _hookspec_names(self) -> list[str]:
        return [n for n, caller in vars(self.hook).items() if getattr(caller, "spec", None) is not None]

    # -- registry --------------------------------------------------------
    @property
    def registry(self) -> Registry:
        """Components of every loaded plugin; rebuilt after (un)registering."""
        if self._registry is None:
            self._registry = self._build_registry()
        return self._registry

    def _build_registry(self) -> Registry:
        broken = {n: i.error or "" for n, i in self.infos.items() if i.status == "error"}
        registry = Registry(broken)
        for info in self.infos.values():
            info.provides = {}
        core_sections = set(outer_schema()["properties"])
        for kind, spec_type in KINDS.items():
            hook = getattr(self.hook, spec_type.hook)
            for impl in hook.get_hookimpls():
                provider = impl.plugin_name
                try:
                    specs = list(impl.function() or [])
                except Exception as exc:
                    self._mark_broken(provider, f"{spec_type.hook} raised {type(exc).__name__}: {exc}")
                    continue
                problem = next(filter(None, (spec_problem(spec, spec_type.hook, core_sections) for spec in specs)), None)
                if problem:  # a broken plugin is listed as such; the rest of bgekit keeps working
                    self._mark_broken(provider, problem)
                    continue
                for spec in specs:
                    registry.add(spec, provider)
                    if isinstance(spec, ComponentSpec):
                        self._info(provider).provides.setdefault(kind, []).append(spec.name)
        for info in self.infos.values():
            plugin = self.get_plugin(info.name)
            if plugin is not None:
                info.hooks = sorted(h.name for h in self.get_hookcallers(plugin) or [])
        registry._broken = {n: i.error or "" for n, i in self.infos.items() if i.status == "error"}
        return registry

    def _info(self, name: str) -> PluginInfo:
        if name not in self.infos:
            self.infos[name] = PluginInfo(name, "", "registered")
        return self.infos[name]

    def _mark_broken(self, name: str, error: str) -> None:
        info = self._info(name)
        info.status, info.error = "error", error

    def plugin_infos(self) -> list[PluginInfo]:
        self.registry  # fill in provides/hooks
        return sorted(self.infos.values(), key=lambda i: (i.source != "built-in", i.name))


def spec_problem(spec: Any, hook: str, core_sections: set[str]) -> str | None:
    """Why a record a registry hook returned cannot be registered (None: it can)."""
    if not isinstance(spec, ComponentSpec):
        return f"{hook} returned {spec!r}; return spec records such as LossSpec(...)"
    if isinstance(spec, TaskSpec):
        return spec.sections_problem(core_sections)
    return None


class HookNameError(BgekitError):
    """A plugin has a ``bgekit_*`` function that no hook is called, or a hook function left unmarked."""


def check_hook_names(plugin: Any, name: str, hook_names: set[str]) -> None:
    """Strict registration: every ``bgekit_*`` routine of ``plugin`` must be a hook and marked.

    pluggy would register ``bgekit_loss`` (no such hook) as a hook nobody calls, and
    ignore ``bgekit_losses`` without ``@bgekit.hookimpl``; both would do nothing,
    silently. This says which function, in which plugin, and the hook meant.
    """
    problems = []
    for attribute in sorted(dir(plugin)):
        if not attribute.startswith("bgekit_"):
            continue
        value = inspect.getattr_static(plugin, attribute, None)
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if not inspect.isroutine(value):
            continue  # e.g. a module bgekit_heads imported into the plugin's namespace
        marked = getattr(value, f"{hookspecs.PROJECT_NAME}_impl", None) is not None
        if attribute not in hook_names:
            if marked or did_you_mean(attribute, hook_names):
                problems.append(f"'{attribute}' is not a bgekit hook{did_you_mean(attribute, hook_names)}")
        elif not marked:
            problems.append(f"'{attribute}' is not marked @bgekit.hookimpl, so bgekit would never call it")
    if problems:
        raise HookNameError(f"plugin '{name}': {'; '.join(problems)} (hooks: bgekit/hookspecs.py)")


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return (dist.metadata["Name"] or "").lower() if dist is not None else ""


def _dist_version(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else ""


_lock = threading.Lock()
_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide manager, built on first use."""
    global _manager
    with _lock:
        if _manager is None:
            pm = PluginManager()
            pm.load_entry_points()
            _manager = pm
        return _manager


def set_plugin_manager(pm: PluginManager | None) -> PluginManager | None:
    """Swap the process-wide manager (tests); returns the previous one."""
    global _manager
    with _lock:
        previous, _manager = _manager, pm
        return previous


def get_registry() -> Registry:
    return get_plugin_manager().registry


def require(kind: str, name: str) -> ComponentSpec:
    """Look a component up, failing with the reason users need."""
    return get_registry().get(kind, name)
