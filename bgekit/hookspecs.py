"""Every hook bgekit calls, in one place.

A plugin is any module or object with functions marked ``@bgekit.hookimpl``
and named like the specs below. Registry hooks return an iterable of typed
spec records (see :mod:`bgekit.registry`); the core flattens them and refuses
two plugins that claim one name. Lifecycle hooks are called on every
registered plugin, including the callback objects a recipe selects, which the
trainer registers for the length of a run.

Versions: :data:`HOOKSPEC_VERSION` is raised when a hook is added or its
arguments change; :data:`HOOK_SINCE` says in which version each hook
appeared. A hook that is to go away is marked
``@hookspec(warn_on_impl=DeprecationWarning(...))`` for one version first, so
its implementers get a warning at registration (none is deprecated now).
The public API that plugins import is :mod:`bgekit.api`.
"""

from __future__ import annotations

from typing import Any, Iterable

import pluggy

PROJECT_NAME = "bgekit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: the version of this set of hooks (see the module docstring)
HOOKSPEC_VERSION = 2


# --------------------------------------------------------------------------
# Registries: each returns spec records of one kind.
# --------------------------------------------------------------------------


@hookspec
def bgekit_data_formats() -> Iterable["FormatSpec"]:  # noqa: F821
    """Data formats this plugin can read into canonical examples.

    Example::

        @bgekit.hookimpl
        def bgekit_data_formats():
            yield FormatSpec(
                name="my-tsv",
                summary="query<TAB>positive<TAB>negative rows",
                detect=lambda sample: 0.9 if sample.text.count("\\t") >= 2 else 0.0,
                factory=MyTsvReader,          # MyTsvReader(**params).read(path)
                params_schema={"properties": {"skip_header": {"type": "boolean"}}},
            )
    """


@hookspec
def bgekit_heads() -> Iterable["HeadSpec"]:  # noqa: F821
    """Model heads that turn encoder hidden states into representations.

    Example::

        @bgekit.hookimpl
        def bgekit_heads():
            yield HeadSpec(name="dense", summary="CLS pooling, L2-normalised",
                           factory=DenseHead)   # DenseHead(hidden_size, **params)
    """


@hookspec
def bgekit_losses() -> Iterable["LossSpec"]:  # noqa: F821
    """Training losses.

    Example::

        @bgekit.hookimpl
        def bgekit_losses():
            yield LossSpec(name="infonce", summary="contrastive loss",
                           factory=InfoNCELoss,
                           params_schema={"properties": {
                               "temperature": {"type": "number", "default": 0.02}}})
    """


@hookspec
def bgekit_miners() -> Iterable["MinerSpec"]:  # noqa: F821
    """Hard-negative miners.

    Example::

        @bgekit.hookimpl
        def bgekit_miners():
            yield MinerSpec(name="shuffle", summary="uniform from the pool",
                            factory=make_shuffle,
                            params_schema=miner_params_schema({}))

        def make_shuffle(context=None, **params):   # context: a MiningContext
            settings, own = MiningSettings.split(params)   # range, num_negatives, ...
            return ShuffleRetriever(settings, **own)       # a bgekit.api.Retriever

    The factory gets the recipe's ``miner`` values (schema defaults filled in,
    without ``name``) and ``context=MiningContext(...)``; see
    :class:`bgekit.api.MinerFactory`.
    """


@hookspec
def bgekit_metrics() -> Iterable["MetricSpec"]:  # noqa: F821
    """Ranking metrics, written by users as ``name@k`` (``ndcg@10``).

    Example::

        @bgekit.hookimpl
        def bgekit_metrics():
            yield MetricSpec(name="recall", summary="share of relevant found in top k",
                             factory=lambda: recall_at_k, takes_k=True)
    """


@hookspec
def bgekit_device_backends() -> Iterable["DeviceSpec"]:  # noqa: F821
    """Accelerator backends; the available one with the highest priority wins.

    Example::

        @bgekit.hookimpl
        def bgekit_device_backends():
            yield DeviceSpec(name="cpu", priority=0, summary="always there",
                             is_available=lambda: True, factory=CpuBackend)
    """


@hookspec
def bgekit_callbacks() -> Iterable["CallbackSpec"]:  # noqa: F821
    """Callbacks a recipe can select under ``callbacks:`` (loggers, ...).

    The factory returns an object whose ``bgekit_on_*`` methods are marked
    ``@hookimpl``; the trainer registers it for the length of the run.

    Example::

        @bgekit.hookimpl
        def bgekit_callbacks():
            yield CallbackSpec(name="print", summary="print losses",
                               factory=PrintCallback)
    """


@hookspec
def bgekit_augmenters() -> Iterable["AugmenterSpec"]:  # noqa: F821
    """Ways to make training data with an LLM, selected by ``bgekit augment --method NAME``.

    The factory returns an :class:`bgekit.augment.augmenter.Augmenter`; its
    ``run(item, ask)`` calls ``ask(messages, parse)`` for each chat completion it
    needs (cached, rate-limited and retried by bgekit) and returns new texts.

    Example::

        @bgekit.hookimpl
        def bgekit_augmenters():
            yield AugmenterSpec(name="titles", summary="a title for each passage",
                                factory=TitleAugmenter,
                                params_schema={"properties": {"language": {"type": "string"}}})
    """


@hookspec
def bgekit_tasks() -> Iterable["TaskSpec"]:  # noqa: F821
    """Jobs a recipe's ``task:`` can name, each with the recipe sections it owns.

    The runner is imported only when a recipe runs the task; it gets the
    resolved :class:`bgekit.recipe.Recipe` and the device backend and returns
    a small JSON-able summary. A section's schema may use ``{"$component": KIND}``
    for a component slot, as the core sections do.

    Example::

        @bgekit.hookimpl
        def bgekit_tasks():
            yield TaskSpec(name="count", summary="count the training rows",
                           runner="my_plugin.count:run",   # run(recipe, backend) -> dict
                           sections={"count": {"type": "object", "additionalProperties": False,
                                               "properties": {"limit": {"type": "integer", "default": 10}}}})
    """


@hookspec
def bgekit_commands() -> Iterable["CommandSpec"]:  # noqa: F821
    """``bgekit`` subcommands: click commands or groups, loaded when the command line is built.

    A command whose module fails to import is shown in ``bgekit --help`` as
    failed, with the error; the other commands keep working.

    Example::

        @bgekit.hookimpl
        def bgekit_commands():
            yield CommandSpec(name="hello", summary="say hello",
                              command="my_plugin.cli:hello")   # a @click.command()
    """


# --------------------------------------------------------------------------
# Data augmentation: the first plugin that answers wins.
# --------------------------------------------------------------------------


@hookspec(firstresult=True)
def bgekit_generate_queries(passages: list[str], n: int) -> list[list[str]] | None:
    """Write up to ``n`` search queries for each passage (``bgekit data pairs --method generate``).

    Return one list of queries per passage, in order, or None to let the
    next plugin answer.

    Example::

        @bgekit.hookimpl
        def bgekit_generate_queries(passages, n):
            return [llm.complete(f"Write {n} questions answered by:\n{p}").splitlines()[:n]
                    for p in passages]
    """


# --------------------------------------------------------------------------
# Lifecycle hooks: called on every registered plugin.
# --------------------------------------------------------------------------


@hookspec
def bgekit_on_run_start(run: Any) -> None:
    """A job starts. ``run`` has ``recipe`` (resolved dict), ``output_dir``, ``is_main_process``.

    Example::

        @bgekit.hookimpl
        def bgekit_on_run_start(run):
            print("writing to", run.output_dir)
    """


@hookspec
def bgekit_on_step_end(run: Any, step: int, metrics: dict) -> None:
    """An optimiser step ended; ``metrics`` holds loss parts, learning rate, throughput.

    Example::

        @bgekit.hookimpl
        def bgekit_on_step_end(run, step, metrics):
            if step % 100 == 0:
                print(step, metrics["loss"])
    """


@hookspec
def bgekit_on_evaluate_end(run: Any, step: int, metrics: dict) -> None:
    """An evaluation ended; ``metrics`` maps names such as ``ndcg@10`` to values.

    Example::

        @bgekit.hookimpl
        def bgekit_on_evaluate_end(run, step, metrics):
            print("eval", step, metrics.get("ndcg@10"))
    """


@hookspec
def bgekit_on_checkpoint(run: Any, step: int, path: str) -> None:
    """A checkpoint was written (atomically) to ``path``.

    Example::

        @bgekit.hookimpl
        def bgekit_on_checkpoint(run, step, path):
            upload(path)
    """


@hookspec
def bgekit_on_run_end(run: Any, status: str) -> None:
    """A job ended with ``status`` ``"ok"`` or ``"error"``.

    Example::

        @bgekit.hookimpl
        def bgekit_on_run_end(run, status):
            print("done:", status)
    """


#: the hookspec version in which each hook first appeared
HOOK_SINCE: dict[str, int] = {
    "bgekit_data_formats": 1,
    "bgekit_heads": 1,
    "bgekit_losses": 1,
    "bgekit_miners": 1,
    "bgekit_metrics": 1,
    "bgekit_device_backends": 1,
    "bgekit_callbacks": 1,
    "bgekit_augmenters": 1,
    "bgekit_tasks": 2,
    "bgekit_commands": 2,
    "bgekit_generate_queries": 1,
    "bgekit_on_run_start": 1,
    "bgekit_on_step_end": 1,
    "bgekit_on_evaluate_end": 1,
    "bgekit_on_checkpoint": 1,
    "bgekit_on_run_end": 1,
}
