"""Every built-in component satisfies its bgekit.api Protocol, and the API is what plugins import."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import bgekit
from bgekit import api, hookspecs
from bgekit.registry import SPEC_TYPES
from bgekit.testing import assert_satisfies, protocol_problems


def specs(pm, kind):
    return [(spec.name, spec) for spec in pm.registry.all(kind)]


def test_loss_output_is_the_core_record_everywhere():
    from bgekit_losses.common import LossOutput as from_plugin

    assert api.LossOutput is bgekit.LossOutput is from_plugin


def test_api_exports_every_spec_record_and_stays_light():
    for spec_type in SPEC_TYPES:
        assert getattr(api, spec_type.__name__) is spec_type
    assert set(api.__all__) <= set(dir(api))
    code = "import sys, bgekit.api; assert 'torch' not in sys.modules and 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_hookspec_has_a_version():
    specs_in_module = {n for n, f in vars(hookspecs).items() if n.startswith("bgekit_") and callable(f)}
    assert specs_in_module == set(hookspecs.HOOK_SINCE)
    assert all(1 <= v <= hookspecs.HOOKSPEC_VERSION for v in hookspecs.HOOK_SINCE.values())


def test_built_in_losses(bgekit_pm):
    for name, spec in specs(bgekit_pm, "loss"):
        loss = spec.create()
        protocol = api.PROTOCOLS["loss"][spec.task]
        assert isinstance(loss, protocol), name
        assert_satisfies(loss, protocol)


def test_built_in_heads(bgekit_pm):
    for name, spec in specs(bgekit_pm, "head"):
        head = spec.create(hidden_size=8)
        assert isinstance(head, api.HeadProtocol), name
        assert_satisfies(head, api.HeadProtocol)


def test_built_in_miners(bgekit_pm, tmp_path, tiny_model_dir):
    pytest.importorskip("bm25s")
    for name, spec in specs(bgekit_pm, "miner"):
        factory_params = inspect.signature(spec.factory).parameters
        assert "context" in factory_params, name  # MinerFactory: factory(context=..., **params)
        retriever = spec.create(context=api.MiningContext(model=str(tiny_model_dir), device="cpu",
                                                          cache_dir=tmp_path))
        assert isinstance(retriever, api.RetrieverProtocol), name
        assert_satisfies(retriever, api.RetrieverProtocol)


def test_built_in_formats(bgekit_pm):
    for name, spec in specs(bgekit_pm, "data_format"):
        reader = spec.create()
        assert isinstance(reader, api.FormatReader), name
        assert_satisfies(reader, api.FormatReader)
        assert_satisfies(spec.detect, api.FormatDetector)


def test_built_in_metrics(bgekit_pm):
    for name, spec in specs(bgekit_pm, "metric"):
        metric = spec.create()
        assert isinstance(metric, api.RankingMetric), name
        assert_satisfies(metric.per_query, api.MetricFunction)


def test_built_in_devices(bgekit_pm):
    for name, spec in specs(bgekit_pm, "device"):
        backend = spec.create()
        assert_satisfies(backend, api.DeviceBackendProtocol)
        if spec.is_available():
            assert isinstance(backend, api.DeviceBackendProtocol), name
            assert set(backend.autocast_dtypes) <= {"bf16", "fp16", "fp32"}


def test_built_in_callbacks(bgekit_pm):
    # checked on the class: tensorboard's factory refuses to build without its optional package
    for name, spec in specs(bgekit_pm, "callback"):
        assert inspect.isclass(spec.factory), name
        hooks = [n for n in dir(spec.factory) if n.startswith("bgekit_on_")]
        assert hooks, name  # any subset of CallbackProtocol's hooks is allowed
        for hook in hooks:
            expected = inspect.signature(getattr(api.CallbackProtocol, hook)).parameters
            assert inspect.signature(getattr(spec.factory, hook)).parameters.keys() == expected.keys(), (name, hook)


def test_built_in_augmenters(bgekit_pm):
    for name, spec in specs(bgekit_pm, "augmenter"):
        augmenter = spec.create()
        assert isinstance(augmenter, api.AugmenterProtocol), name
        assert_satisfies(augmenter, api.AugmenterProtocol)


def test_protocol_problems_finds_what_is_missing():
    class HalfLoss:
        def __call__(self, scores, targets, group_size):  # no teacher_scores, no step
            return api.LossOutput(loss=0.0)

    assert protocol_problems(HalfLoss(), api.EmbedderLoss) == ["__call__() does not take teacher_scores, step"]

    class NoSearch:
        has_scores = True
        settings = None

        def index(self, passages):
            pass

    problems = protocol_problems(NoSearch(), api.RetrieverProtocol)
    assert "has no method search()" in problems and "has no method score()" in problems
