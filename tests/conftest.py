"""Shared test setup: bgekit's own fixtures plus helpers to install plugins into a temp dir.

Tests run tiny models, where two or more torch/BLAS threads per test only
thrash (one test took 26.9 s with two threads, 1.0 s with one). Threads are
pinned to ``BGEKIT_TEST_THREADS`` (default 1; ``0`` leaves the libraries'
defaults, for comparison) before torch or numpy load, and subprocesses the
tests start inherit the setting through the environment.
"""

from __future__ import annotations

import os

TEST_THREADS = int(os.environ.get("BGEKIT_TEST_THREADS", "1"))
if TEST_THREADS > 0:
    for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                      "NUMEXPR_NUM_THREADS"):
        os.environ[_variable] = str(TEST_THREADS)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import importlib  # noqa: E402 - the thread settings above must come before any library loads
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["bgekit.testing"]


def pytest_configure(config: pytest.Config) -> None:
    if TEST_THREADS > 0:
        import torch

        torch.set_num_threads(TEST_THREADS)
        try:
            torch.set_num_interop_threads(TEST_THREADS)
        except RuntimeError:  # already set, or parallel work already started in this process
            pass


REPO = Path(__file__).resolve().parent.parent
FIXTURE_PLUGINS = Path(__file__).resolve().parent / "plugin_fixtures"


class PluginSite:
    """A folder on ``sys.path`` holding fake installed distributions.

    ``importlib.metadata`` finds a ``NAME-VERSION.dist-info`` folder with an
    ``entry_points.txt`` on ``sys.path`` exactly as it finds an installed
    package, so this is what ``pip install`` would leave behind, minus pip.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths = [str(root)]
        root.mkdir(parents=True, exist_ok=True)

    def add_dist(self, dist: str, entry_name: str, module: str, source: str | None = None,
                 version: str = "0.1.0") -> None:
        """Declare ``entry_name = module`` in group ``bgekit``; write ``module`` if source is given."""
        if source is not None:
            (self.root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[bgekit]\n{entry_name} = {module}\n")

    def add_path(self, path: str | Path) -> None:
        self.paths.append(str(path))

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a subprocess that sees these plugins."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(self.paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env.update(extra)
        return env

    def activate(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make the plugins visible in this process (then use a fresh plugin manager)."""
        for path in reversed(self.paths):
            monkeypatch.syspath_prepend(path)
        importlib.invalidate_caches()


@pytest.fixture
def plugin_site(tmp_path: Path) -> PluginSite:
    return PluginSite(tmp_path / "site")


@pytest.fixture
def toy_site(plugin_site: PluginSite) -> PluginSite:
    """A site where the toy test components are installed as external plugin 'toy'."""
    plugin_site.add_path(FIXTURE_PLUGINS)
    plugin_site.add_dist("bgekit-toy-components", "toy", "bgekit_toy_components")
    return plugin_site


@pytest.fixture
def toy_plugin(bgekit_pm):
    """The toy components registered on a fresh plugin manager for one test."""
    sys.path.insert(0, str(FIXTURE_PLUGINS))
    try:
        module = importlib.import_module("bgekit_toy_components")
    finally:
        sys.path.remove(str(FIXTURE_PLUGINS))
    from bgekit.testing import registered_plugin

    with registered_plugin(module, name="toy", pm=bgekit_pm):
        yield module


@pytest.fixture(scope="session")
def example_plugin_dir(tmp_path_factory) -> Path:
    """examples/plugin-example really pip-installed (``--target``) into a temp folder."""
    source = tmp_path_factory.mktemp("example-src") / "plugin-example"
    shutil.copytree(REPO / "examples" / "plugin-example", source)  # builds leave files behind
    target = tmp_path_factory.mktemp("example-installed")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True, text=True,
    )
    return target


def _run_bgekit(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``bgekit ARGS`` as a real subprocess, through the installed console script when there is one."""
    script = Path(sys.executable).parent / "bgekit"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bgekit.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=180)


@pytest.fixture
def run_bgekit():
    """Run the CLI in a subprocess: ``run_bgekit("plugins", "list", env=...)``."""
    return _run_bgekit
