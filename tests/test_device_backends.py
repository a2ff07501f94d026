"""Device backends own every device detail: options, RNG states, names; the core asks them.

No GPU or NPU here: CUDA is tested with ``torch.cuda`` functions monkeypatched,
Ascend with a fake ``torch_npu`` that registers a fake ``torch.npu``, and a
third-party accelerator with a backend registered as a plugin.
"""

from __future__ import annotations

import importlib.machinery
import io
import random
import sys
import tokenize
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import bgekit
from bgekit.api import DeviceBackend, DeviceBackendProtocol, DeviceSpec
from bgekit.devices import select_backend
from bgekit.testing import assert_satisfies, registered_plugin
from bgekit.train import checkpoint as ckpt
from bgekit.train.gradcache import RandomState
from bgekit_devices import AscendBackend, CpuBackend, CudaBackend, ascend_available

BGEKIT = Path(__file__).resolve().parents[1] / "bgekit"


class FakeDeviceModule:
    """What ``torch.cuda`` / ``torch.npu`` offer for random states, with one CPU generator per device."""

    def __init__(self, count: int = 2, bf16: bool = True) -> None:
        self.generators = [torch.Generator().manual_seed(100 + i) for i in range(count)]
        self.bf16 = bf16
        self.current = 0

    @staticmethod
    def _index(device) -> int:
        index = device if isinstance(device, int) else getattr(device, "index", None)
        return 0 if index is None else index

    def draw(self, index: int = 0) -> torch.Tensor:
        return torch.rand(4, generator=self.generators[index])

    def get_rng_state(self, device=0) -> torch.Tensor:
        return self.generators[self._index(device)].get_state()

    def set_rng_state(self, state, device=0) -> None:
        self.generators[self._index(device)].set_state(state)

    def get_rng_state_all(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.generators]

    def is_initialized(self) -> bool:
        return True

    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return len(self.generators)

    def set_device(self, index: int) -> None:
        self.current = index

    def is_bf16_supported(self) -> bool:
        return self.bf16

    def get_device_name(self, device=None) -> str:
        return "Fake 910B"


class FakeModel:
    def save_pretrained(self, path: Path) -> None:
        Path(path).mkdir(parents=True)
        (Path(path) / "weights.bin").write_bytes(b"w")


def save_and_load(tmp_path: Path, backend) -> dict:
    """Save a checkpoint through ``backend`` and load its RNG states back (``weights_only=True``)."""
    path = ckpt.save_checkpoint(tmp_path, 1, model=FakeModel(), trainer_state={"step": 1}, save_total_limit=0,
                                backend=backend)
    _, rng = ckpt.load_trainer_state(path)
    return rng


def draws() -> tuple:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


@pytest.fixture
def fake_cuda(monkeypatch):
    fake = FakeDeviceModule(count=2)
    for name in ("get_rng_state_all", "set_rng_state", "is_initialized", "device_count", "set_device",
                 "is_bf16_supported", "get_device_name"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    return fake


@pytest.fixture
def fake_npu(monkeypatch):
    """A fake torch_npu: importing it "registers" ``torch.npu`` (here: already set)."""
    fake = FakeDeviceModule(count=2, bf16=False)
    module = types.ModuleType("torch_npu")
    module.__spec__ = importlib.machinery.ModuleSpec("torch_npu", None)
    monkeypatch.setitem(sys.modules, "torch_npu", module)
    monkeypatch.setattr(torch, "npu", fake, raising=False)
    return fake


# -- each backend's options ------------------------------------------------------------

def test_cpu_backend_needs_nothing_extra():
    cpu = CpuBackend()
    device = cpu.device(0)
    assert (cpu.distributed_backend, cpu.pin_memory) == ("gloo", False)
    assert cpu.optimizer_options() == cpu.ddp_options(device) == cpu.process_group_options(device) == {}
    assert cpu.rng_state() == {}
    assert set(cpu.device_info(device)) == {"name", "threads"}
    assert_satisfies(cpu, DeviceBackendProtocol)


def test_base_backend_defaults_are_a_cpu():
    base = DeviceBackend()
    assert (base.pin_memory, base.optimizer_options(), base.ddp_options(None), base.rng_state()) == (False, {}, {},
                                                                                                       {})
    base.set_rng_state({"0": torch.zeros(1)})  # nothing to restore on a CPU: accepted and ignored


def test_cuda_backend_options(fake_cuda):
    cuda = CudaBackend()
    device = cuda.device(1)
    assert device == torch.device("cuda", 1) and fake_cuda.current == 1
    assert (cuda.distributed_backend, cuda.pin_memory) == ("nccl", True)
    assert cuda.optimizer_options() == {"fused": True}
    assert cuda.ddp_options(device) == {"device_ids": [1]}
    assert cuda.process_group_options(device) == {"device_id": device}
    assert cuda.autocast_dtypes[0] == "bf16"
    assert cuda.device_info(device) == {"name": "Fake 910B"}
    fake_cuda.bf16 = False
    assert cuda.autocast_dtypes == ("fp16", "fp32")


def test_cuda_rng_state_round_trip(fake_cuda):
    cuda = CudaBackend()
    state = cuda.rng_state()
    assert sorted(state) == ["0", "1"] and all(isinstance(t, torch.Tensor) for t in state.values())
    expected = [fake_cuda.draw(0), fake_cuda.draw(1)]
    cuda.set_rng_state(state)
    assert torch.equal(fake_cuda.draw(0), expected[0]) and torch.equal(fake_cuda.draw(1), expected[1])


def test_rng_state_saved_with_more_devices_restores_those_present(fake_cuda):
    cuda = CudaBackend()
    state = cuda.rng_state()
    state["7"] = state["0"].clone()  # a device this machine does not have
    expected = fake_cuda.draw(0)
    cuda.set_rng_state(state)
    assert torch.equal(fake_cuda.draw(0), expected)


def test_cuda_not_started_saves_no_state(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    assert CudaBackend().rng_state() == {}


def test_ascend_backend_options(fake_npu):
    npu = AscendBackend()
    device = types.SimpleNamespace(type="npu", index=3)  # torch.device("npu") needs the real torch_npu
    assert (npu.distributed_backend, npu.pin_memory, npu.device_type) == ("hccl", False, "npu")
    assert npu.optimizer_options() == {}
    assert npu.ddp_options(device) == {"device_ids": [3]}
    assert npu.process_group_options(device) == {"device_id": device}
    assert npu.autocast_dtypes == ("fp16", "fp32")  # this fake NPU has no bf16 (Atlas training series)
    fake_npu.bf16 = True
    assert npu.autocast_dtypes == ("bf16", "fp16", "fp32")
    assert npu.device_count() == 2 and npu.device_info(device) == {"name": "Fake 910B"}
    assert_satisfies(npu, DeviceBackendProtocol)


def test_ascend_is_chosen_first_when_torch_npu_is_there(fake_npu, bgekit_pm):
    assert ascend_available()
    assert select_backend(bgekit_pm.registry).name == "ascend"


def test_process_group_gets_the_backends_options(monkeypatch, fake_cuda):
    from bgekit.train.distributed import setup_process

    calls = []
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv("WORLD_SIZE", "2"), monkeypatch.setenv("RANK", "1"), monkeypatch.setenv("LOCAL_RANK", "1")
    process = setup_process(CudaBackend())
    assert calls == [{"backend": "nccl", "device_id": torch.device("cuda", 1)}]
    assert (process.rank, process.device) == (1, torch.device("cuda", 1))
    setup_process(CpuBackend())
    assert calls[-1] == {"backend": "gloo"}


def test_bench_names_the_device_through_the_backend():
    from bgekit.evaluate.bench import _report

    model = torch.nn.Linear(2, 2)
    model.device = torch.device("cpu")

    class Named(CpuBackend):
        def device_info(self, device):
            return {"name": f"accelerator for {device}"}

    report = _report(model, Named(), "retriever", 8, 1, [])
    assert report["device"] == {"backend": "cpu", "device": "cpu", "name": "accelerator for cpu"}
    assert set(_report(model, CpuBackend(), "retriever", 8, 1, [])["device"]) == {"backend", "device", "name",
                                                                                   "threads"}


# -- RNG states through the checkpoint functions ---------------------------------------

def test_cpu_resume_draws_the_same_numbers(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    rng = save_and_load(tmp_path, CpuBackend())
    assert "device" not in rng  # a CPU has no state beyond torch's own
    first = draws()
    draws()
    ckpt.set_rng_states(rng, CpuBackend())
    assert draws() == first


def test_ascend_resume_restores_the_npu_state(tmp_path, fake_npu):
    npu = AscendBackend()
    rng = save_and_load(tmp_path, npu)
    assert sorted(rng["device"]["ascend"]) == ["0", "1"]
    first = fake_npu.draw(1)
    fake_npu.draw(1)
    ckpt.set_rng_states(rng, npu)
    assert torch.equal(fake_npu.draw(1), first)


class NpuLikeBackend(DeviceBackend):
    """A third-party accelerator: its random state lives in its own runtime (here a generator)."""

    name = "npu-like"
    calls: list[str] = []

    def __init__(self) -> None:
        self.generator = torch.Generator().manual_seed(7)

    def device(self, local_rank=None):
        return torch.device("cpu")

    def rng_state(self):
        NpuLikeBackend.calls.append("rng_state")
        return {"0": self.generator.get_state()}

    def set_rng_state(self, state):
        NpuLikeBackend.calls.append("set_rng_state")
        self.generator.set_state(state["0"])


class NpuLikePlugin:
    @bgekit.hookimpl
    def bgekit_device_backends(self):
        yield DeviceSpec(name="npu-like", priority=100, is_available=lambda: True, factory=NpuLikeBackend,
                         summary="a third-party accelerator")


def test_third_party_backend_state_is_saved_and_restored(tmp_path, bgekit_pm):
    NpuLikeBackend.calls.clear()
    with registered_plugin(NpuLikePlugin(), name="npu-like", pm=bgekit_pm):
        backend = select_backend(bgekit_pm.registry)
        assert backend.name == "npu-like"
        rng = save_and_load(tmp_path, backend)
        first = torch.rand(4, generator=backend.generator)
        torch.rand(4, generator=backend.generator)
        resumed = select_backend(bgekit_pm.registry)  # a new process: a new backend object
        ckpt.set_rng_states(rng, resumed)
        assert torch.equal(torch.rand(4, generator=resumed.generator), first)
    assert NpuLikeBackend.calls == ["rng_state", "set_rng_state"]


def test_state_of_another_device_family_is_not_restored(tmp_path):
    NpuLikeBackend.calls.clear()
    rng = save_and_load(tmp_path, NpuLikeBackend())
    ckpt.set_rng_states(rng, CpuBackend())  # resumed on a CPU: nothing to give the accelerator's state to
    assert NpuLikeBackend.calls == ["rng_state"]


def test_old_checkpoint_with_a_cuda_key_still_loads(tmp_path, fake_cuda):
    """Before backends saved their own state, checkpoints held ``torch.cuda.get_rng_state_all()`` as "cuda"."""
    folder = tmp_path / "checkpoint-3"
    folder.mkdir()
    old = ckpt.rng_states()
    old["cuda"] = fake_cuda.get_rng_state_all()
    torch.save(old, folder / ckpt.rng_file(0))
    torch.save({"step": 3}, folder / ckpt.STATE_FILE)
    _, rng = ckpt.load_trainer_state(folder)
    expected = [fake_cuda.draw(0), fake_cuda.draw(1)]
    ckpt.set_rng_states(rng, CudaBackend())
    assert torch.equal(fake_cuda.draw(0), expected[0]) and torch.equal(fake_cuda.draw(1), expected[1])
    ckpt.set_rng_states(rng, CpuBackend())  # the same checkpoint resumed on a CPU: the "cuda" states are unused


# -- GradCache's replay on any accelerator -----------------------------------------------

def test_random_state_replays_and_restores_an_accelerator(monkeypatch):
    fake = FakeDeviceModule(count=1)
    monkeypatch.setattr(torch, "fakeacc", fake, raising=False)
    device = types.SimpleNamespace(type="fakeacc", index=0)  # any device type torch has a module for
    start = RandomState.capture(device)
    first = (torch.rand(2), fake.draw(0))
    after = RandomState.capture(device)
    with start.replay():
        replayed = (torch.rand(2), fake.draw(0))
    assert torch.equal(replayed[0], first[0]) and torch.equal(replayed[1], first[1])
    # the streams are back where they were before the replay: they draw what ``after`` draws
    with after.replay():
        expected = (torch.rand(2), fake.draw(0))
    assert torch.equal(torch.rand(2), expected[0]) and torch.equal(fake.draw(0), expected[1])


def test_random_state_on_cpu():
    start = RandomState.capture(torch.device("cpu"))
    assert start.accelerator is None
    first = torch.rand(3)
    with start.replay():
        assert torch.equal(torch.rand(3), first)
    assert not torch.equal(torch.rand(3), first)


# -- the core names no device ---------------------------------------------------------------

def test_core_has_no_device_type_branches():
    """``grep -rn 'type == "cuda"\\|type == "npu"' bgekit/`` finds nothing, nor any other use of those names as
    string literals in code (``in ("cuda", "npu")``, ``!= "cuda"``): device details belong to the backends
    (plugins/bgekit_devices). Comments and docstrings may mention them."""
    found = [f"{path.relative_to(BGEKIT.parent)}:{number}: {line.strip()}"
             for path in sorted(BGEKIT.rglob("*")) if path.is_file() and "__pycache__" not in path.parts
             for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             if 'type == "cuda"' in line or 'type == "npu"' in line]
    for path in sorted(BGEKIT.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.STRING and token.string.strip("'\"").lower() in {"cuda", "npu"}:
                found.append(f"{path.relative_to(BGEKIT.parent)}:{token.start[0]}: {token.line.strip()}")
    assert not found, "\n".join(sorted(set(found)))
