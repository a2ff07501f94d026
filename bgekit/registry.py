"""Typed spec records that plugins return, and the lookup over them.

Each registry hook returns small frozen dataclasses; :class:`Registry`
flattens them per kind, remembers which plugin provided each name, and
raises errors that name every provider on a conflict and suggest the nearest
name on a miss.
"""

from __future__ import annotations

import copy
import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Collection, Iterable, Mapping

from bgekit.errors import BgekitError


@dataclass(frozen=True)
class ComponentSpec:
    """What every component has: a name users write, a factory, a params schema.

    ``params_schema`` is a JSON-Schema fragment with ``properties`` (and
    optionally ``required``) for the keys a recipe may set beside ``name``;
    it is merged into the recipe schema with ``additionalProperties: false``.
    """

    name: str
    factory: Callable[..., Any]
    summary: str = ""
    params_schema: Mapping[str, Any] = field(default_factory=dict)

    kind: ClassVar[str] = "component"
    hook: ClassVar[str] = ""

    def create(self, **params: Any) -> Any:
        """Build the component with schema defaults filled in under ``params``."""
        return self.factory(**{**self.defaults(), **params})

    def defaults(self) -> dict[str, Any]:
        props = self.params_schema.get("properties", {})
        return {k: v["default"] for k, v in props.items() if "default" in v}


@dataclass(frozen=True)
class FormatSpec(ComponentSpec):
    """A data format. ``detect(sample)`` returns a confidence in [0, 1]
    for a :class:`bgekit.data.readers.Sample`; the factory builds a reader with
    ``read(path) -> Iterator[Example | RowError]``."""

    detect: Callable[[Any], float] = lambda sample: 0.0
    role: str = "train"  # "train" (canonical examples) or "eval" (BEIR corpus/queries/qrels)

    kind: ClassVar[str] = "data_format"
    hook: ClassVar[str] = "bgekit_data_formats"


@dataclass(frozen=True)
class HeadSpec(ComponentSpec):
    """A model head; ``factory(hidden_size, **params)`` returns an ``nn.Module``."""

    kind: ClassVar[str] = "head"
    hook: ClassVar[str] = "bgekit_heads"

    def create(self, hidden_size: int = 0, **params: Any) -> Any:  # type: ignore[override]
        return self.factory(hidden_size, **{**self.defaults(), **params})


@dataclass(frozen=True)
class LossSpec(ComponentSpec):
    """A training loss. ``citation`` says where the formula comes from.

    ``task`` is the recipe task whose scores the loss takes: ``"embedder"``
    (per-head score matrices from the embedder) or ``"reranker"`` ((Q, G)
    cross-encoder logits with graded labels).
    """

    citation: str = ""
    task: str = "embedder"

    kind: ClassVar[str] = "loss"
    hook: ClassVar[str] = "bgekit_losses"


@dataclass(frozen=True)
class MinerSpec(ComponentSpec):
    """A hard-negative miner."""

    kind: ClassVar[str] = "miner"
    hook: ClassVar[str] = "bgekit_miners"


@dataclass(frozen=True)
class MetricSpec(ComponentSpec):
    """A ranking metric; with ``takes_k`` users write ``name@k`` (``map``
    takes an optional cut-off, ``ndcg`` a required one)."""

    takes_k: bool = True
    requires_k: bool = True

    kind: ClassVar[str] = "metric"
    hook: ClassVar[str] = "bgekit_metrics"


@dataclass(frozen=True)
class DeviceSpec(ComponentSpec):
    """An accelerator backend. Auto-selection takes the available backend
    with the highest ``priority``."""

    priority: int = 0
    is_available: Callable[[], bool] = lambda: False

    kind: ClassVar[str] = "device"
    hook: ClassVar[str] = "bgekit_device_backends"


@dataclass(frozen=True)
class CallbackSpec(ComponentSpec):
    """A callback a recipe can select (loggers and the like).

    With ``always_on`` it runs in every training run, with its schema
    defaults, unless the recipe lists it itself (listing it sets its options);
    the JSONL metrics log is one, so every run leaves ``metrics.jsonl``.
    """

    always_on: bool = False

    kind: ClassVar[str] = "callback"
    hook: ClassVar[str] = "bgekit_callbacks"


@dataclass(frozen=True)
class AugmenterSpec(ComponentSpec):
    """A way to make training data with an LLM (``bgekit augment --method NAME``).

    The factory returns an object with ``read(path)``, ``run(item, ask)`` and
    ``output_language(item)``; see :mod:`bgekit.augment.augmenter`.
    """

    kind: ClassVar[str] = "augmenter"
    hook: ClassVar[str] = "bgekit_augmenters"


@dataclass(frozen=True)
class TaskSpec(ComponentSpec):
    """A job a recipe's ``task`` names (``embedder``, ``mine``, ...).

    ``runner`` is ``"module:function"`` (imported only when a recipe runs the
    task, so validating recipes and ``bgekit --help`` stay torch-free) or the
    function itself, with the signature ``run(recipe, backend) -> dict``.
    ``sections`` are the recipe sections the task owns, as JSON-Schema
    fragments by section name (the augment task owns ``augment``), or
    ``"module:attribute"`` naming that mapping (so a plugin need not import
    the module that defines them); they are merged into the recipe schema,
    where ``$component`` markers inside them work as anywhere else. With ``trains``, a recipe's pipeline ``train`` step
    can run the task: its runner writes the trained model to
    ``<output_dir>/model``. ``factory`` is filled in: it calls the runner.

    ``component_defaults`` are the components the task takes for recipe
    slots the recipe leaves out, by slot (dotted for a key inside a section),
    e.g. ``{"loss": {"name": "infonce"}}``: the core reads them with
    :func:`task_default` instead of naming a plugin component itself, so a
    plugin task (or a replacement of a built-in one) picks its own.
    """

    factory: Callable[..., Any] = None  # type: ignore[assignment]
    runner: str | Callable[..., Any] = ""
    sections: Mapping[str, Mapping[str, Any]] | str = field(default_factory=dict)
    trains: bool = False
    component_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    kind: ClassVar[str] = "task"
    hook: ClassVar[str] = "bgekit_tasks"

    def __post_init__(self) -> None:
        if self.factory is None:
            object.__setattr__(self, "factory", lambda recipe, backend: self.load_runner()(recipe, backend))

    def owned_sections(self) -> Mapping[str, Mapping[str, Any]]:
        """The recipe sections this task owns, by name (a ``"module:attribute"`` reference imported)."""
        if not isinstance(self.sections, str):
            return self.sections
        module_name, _, attribute = self.sections.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise BgekitError(f"task '{self.name}': its recipe sections '{self.sections}' cannot be loaded "
                              f"({exc}); reinstall the plugin that provides it") from exc

    def sections_problem(self, core_sections: Collection[str]) -> str | None:
        """Why this task's sections cannot join the recipe schema (None: they can): they do not load, are
        not a mapping of JSON-Schema objects, or claim one of bgekit's own sections. Checked when the
        registry is built, so such a plugin is listed as broken instead of failing every recipe."""
        try:
            sections = self.owned_sections()
        except Exception as exc:  # a plugin's module may raise anything while importing
            return f"task '{self.name}': its recipe sections cannot be loaded ({type(exc).__name__}: {exc})"
        if not isinstance(sections, Mapping) or not all(isinstance(v, Mapping) for v in sections.values()):
            return (f"task '{self.name}': its sections must map section names to JSON-Schema objects, "
                    f"not {type(sections).__name__}")
        claimed = [name for name in sections if name in core_sections]
        if claimed:
            return f"task '{self.name}' claims the recipe section '{claimed[0]}', which is bgekit's own"
        return None

    def default_component(self, slot: str) -> dict[str, Any] | None:
        """A fresh copy of the component this task takes for ``slot`` when a recipe leaves it out (None: none)."""
        value = self.component_defaults.get(slot)
        return copy.deepcopy(dict(value)) if value is not None else None

    def load_runner(self) -> Callable[..., Any]:
        """The runner function; a clear error when its module is not in this installation."""
        if callable(self.runner):
            return self.runner
        module_name, _, function = self.runner.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only the runner's own module being absent means "not available"; a missing
            # dependency inside it is a real error and keeps its message.
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                raise BgekitError(f"task '{self.name}' is not available in this version of bgekit") from exc
            raise
        runner = getattr(module, function, None) if function else None
        if not callable(runner):
            raise BgekitError(f"task '{self.name}': its runner '{self.runner}' is not a function of that module; "
                              "a runner is 'module:function'")
        return runner


@dataclass(frozen=True)
class CommandSpec(ComponentSpec):
    """A ``bgekit`` subcommand (a click command or group), as simonw/llm's ``register_commands``.

    ``command`` is ``"module:attribute"`` naming the click command, imported
    only when the command line is built, or the command object itself. The
    command is added under ``name``.
    """

    factory: Callable[..., Any] = None  # type: ignore[assignment]
    command: Any = ""

    kind: ClassVar[str] = "command"
    hook: ClassVar[str] = "bgekit_commands"

    def __post_init__(self) -> None:
        if self.factory is None:
            object.__setattr__(self, "factory", self.load)

    def load(self) -> Any:
        """The click command."""
        if not isinstance(self.command, str):
            return self.command
        module_name, _, attribute = self.command.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


SPEC_TYPES: tuple[type[ComponentSpec], ...] = (
    FormatSpec,
    HeadSpec,
    LossSpec,
    MinerSpec,
    MetricSpec,
    DeviceSpec,
    CallbackSpec,
    AugmenterSpec,
    TaskSpec,
    CommandSpec,
)
KINDS: dict[str, type[ComponentSpec]] = {t.kind: t for t in SPEC_TYPES}


def task_default(registry: "Registry", task: str, slot: str) -> dict[str, Any]:
    """The component ``task`` declares for recipe slot ``slot`` (see :attr:`TaskSpec.component_defaults`);
    an error asking the recipe to name one when the task declares none."""
    value = registry.get("task", task).default_component(slot)  # type: ignore[attr-defined]
    if value is None:
        raise BgekitError(f"{slot}: task '{task}' has no default for it; name one in the recipe, "
                          f"e.g. {slot.rpartition('.')[2]}: {{name: ...}}")
    return value


def lazy_factory(target: str) -> Callable[..., Any]:
    """A factory that imports ``"package.module:Class"`` on first call.

    Plugins use it so that listing them (``bgekit plugins list``, schema
    generation) does not import torch or other heavy modules.
    """
    module_name, _, attr = target.partition(":")

    def factory(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module_name), attr)(*args, **kwargs)

    factory.__qualname__ = factory.__name__ = target
    return factory


class ConflictError(BgekitError):
    """Two plugins provide a component of the same kind and name."""


class UnknownComponentError(BgekitError):
    """A recipe or command names a component nobody provides."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry:
    """All components of all loaded plugins, by kind and name."""

    def __init__(self, broken: Mapping[str, str] | None = None) -> None:
        self._specs: dict[str, dict[str, ComponentSpec]] = {k: {} for k in KINDS}
        self._providers: dict[tuple[str, str], str] = {}
        self._broken = dict(broken or {})

    def add(self, spec: ComponentSpec, provider: str) -> None:
        """Add one spec; a second provider of the same kind and name is a conflict."""
        if not isinstance(spec, ComponentSpec):
            raise BgekitError(
                f"plugin '{provider}' returned {spec!r} from a registry hook; "
                "return spec records such as LossSpec(...)"
            )
        key = (spec.kind, spec.name)
        if key in self._providers:
            raise ConflictError(
                f"{spec.kind} '{spec.name}' is provided by both '{self._providers[key]}' "
                f"and '{provider}'; disable one with BGEKIT_DISABLE_PLUGINS="
                f"{provider} (or uninstall it)"
            )
        self._providers[key] = provider
        self._specs[spec.kind][spec.name] = spec

    def names(self, kind: str) -> list[str]:
        return sorted(self._specs[kind])

    def all(self, kind: str) -> list[ComponentSpec]:
        return [self._specs[kind][n] for n in self.names(kind)]

    def provider(self, kind: str, name: str) -> str:
        return self._providers[(kind, name)]

    def get(self, kind: str, name: str) -> ComponentSpec:
        """The spec for ``name``, or an error with a suggestion and broken plugins."""
        if kind not in self._specs:
            raise BgekitError(f"unknown component kind '{kind}'; kinds: {', '.join(KINDS)}")
        if name in self._specs[kind]:
            return self._specs[kind][name]
        raise UnknownComponentError(self.unknown_message(kind, name))

    def unknown_message(self, kind: str, name: str) -> str:
        """Why ``name`` is not there: a near miss, or a plugin that failed to load."""
        known = self.names(kind)
        msg = f"unknown {kind} '{name}'{did_you_mean(name, known)}; known: {', '.join(known) or 'none'}"
        if self._broken:
            broken = "; ".join(f"'{p}': {e}" for p, e in self._broken.items())
            msg += f". Plugins that failed to load and may provide it: {broken}"
        return msg

    def metric(self, written: str) -> tuple[MetricSpec, int | None]:
        """Parse ``ndcg@10`` into the metric spec and its cut-off."""
        name, _, k = written.partition("@")
        spec = self.get("metric", name.strip().lower())
        assert isinstance(spec, MetricSpec)
        if spec.takes_k and spec.requires_k and not k:
            raise UnknownComponentError(f"metric '{written}' needs a cut-off, e.g. '{name}@10'")
        if k and not spec.takes_k:
            raise UnknownComponentError(f"metric '{name}' takes no cut-off; write '{name}'")
        if k and not k.isdigit():
            raise UnknownComponentError(f"metric '{written}': cut-off '{k}' is not a whole number")
        return spec, (int(k) if k else None)
