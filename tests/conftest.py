"""Shared fixtures: real data layouts built on disk, the example plugin installed for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_IR = REPO.parent / "shared" / "data" / "imagereward" / "test.json"


def run_cli(args, cwd=None, env_extra=None, timeout=300):
    """Run `python -m prefbench ARGS` in a real subprocess."""
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "prefbench", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # the demo world is generated once per test session, outside the user's cache
    monkeypatch.setenv("PREFBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def ir_annotation() -> Path:
    if not SHARED_IR.is_file():
        pytest.skip(f"the real ImageReward annotation is not at {SHARED_IR}")
    return SHARED_IR


@pytest.fixture(scope="session")
def ir_data_dir(tmp_path_factory, ir_annotation) -> Path:
    """The real ImageReward test.json with a tiny placeholder image at every listed path."""
    from PIL import Image

    root = tmp_path_factory.mktemp("imagereward")
    shutil.copy(ir_annotation, root / "test.json")
    for k, item in enumerate(json.loads(ir_annotation.read_text())):
        for j, rel in enumerate(item["generations"]):
            path = root / "test_images" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), ((k * 7) % 256, (j * 40) % 256, 90)).save(path, format="WEBP")
    return root


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """tests/plugins/prefbench_example_plugin installed (pip --target) into a fresh folder."""
    target = tmp_path_factory.mktemp("plugin_site")
    src = REPO / "tests" / "plugins" / "prefbench_example_plugin"
    build = tmp_path_factory.mktemp("plugin_build")
    shutil.copytree(src, build / "pkg")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(build / "pkg")], capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return target


@pytest.fixture
def with_plugin(plugin_site, monkeypatch):
    """The plugin importable in this process and in CLI subprocesses."""
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugin_site), os.environ.get("PYTHONPATH")])))
    return plugin_site
