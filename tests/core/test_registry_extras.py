"""Install extras read from the package metadata (prefbench.extras), and the demo world reached
through the registries alone."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest

from prefbench import extras

LINES = [
    "numpy>=1.24",
    'torch>=2.4; extra == "vlm"',
    'transformers>=4.49; extra == "vlm"',
    'prefbench[vlm]; extra == "train"',
    'trl>=0.20; extra == "train"',
    'open-clip-torch>=2.24; extra == "hpsv2"',
    'prometheus_client>=0.20; extra == "serve"',
    'pytest-xdist>=3.5 ; python_version >= "3.10" and extra == "dev"',
    'prefbench[train,hpsv2]; extra == "test"',
    'prefbench[test]; extra == "loop"',
    'prefbench[loop]; extra == "test2"',
]


def test_extras_follow_self_references_and_map_distribution_names():
    table = extras.modules_by_extra(LINES)
    assert table["vlm"] == ("torch", "transformers")
    assert table["train"] == ("torch", "transformers", "trl")
    assert table["hpsv2"] == ("open_clip",)
    assert table["serve"] == ("prometheus_client",)
    assert table["dev"] == ("xdist",)
    assert table["test"] == ("torch", "transformers", "trl", "open_clip")
    assert table["test2"] == table["test"]  # a chain of extras, followed once
    assert "" not in table  # the core dependencies are not an extra


def test_the_installed_metadata_gives_every_extra_and_each_installed_distribution_is_importable():
    lines = importlib.metadata.distribution("prefbench").requires
    table = extras.modules_by_extra(lines)
    assert table == {k: v for k, v in extras.all_extras().items() if k not in extras.EXTERNAL}
    assert {"vlm", "train", "openai", "hpsv2", "serve", "ray", "pandas"} <= set(table)
    assert "peft" in table["vlm"] and "ray" in table["ray"]  # what the hand-kept table used to miss
    for line in lines:  # an installed distribution's import name is what prefbench checks for
        dist = extras.parse_requires([line])
        (name, _), = next(iter(dist.values()))
        if extras.import_name(name) == "prefbench":
            continue
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        assert importlib.util.find_spec(extras.import_name(name)) is not None, name


def test_without_metadata_the_fallback_answers(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    extras.all_extras.cache_clear()
    try:
        assert extras.extra_modules("hpsv2") == extras.FALLBACK["hpsv2"]
        assert extras.extra_modules("vllm") == ("vllm",)
    finally:
        monkeypatch.undo()
        extras.all_extras.cache_clear()


def test_an_entry_needs_every_module_of_its_extra(monkeypatch):
    from prefbench.errors import MissingExtraError
    from prefbench.registry import Entry

    monkeypatch.setattr(extras, "all_extras", lambda: {"fancy": ("json", "no_such_module_xyz")})
    entry = Entry("fancy_scorer", "json:dumps", "d", extra="fancy")
    assert not entry.installed and entry.missing_modules() == ["no_such_module_xyz"]
    with pytest.raises(MissingExtraError, match=r"pip install 'prefbench\[fancy\]'"):
        entry.load()
    assert Entry("fine", "json:dumps", extra="fancy", requires=("json",)).installed


def test_the_demo_world_is_registered_by_entry_points_as_builtins():
    from prefbench.data import MANIFEST as DATASETS
    from prefbench.data import dataset_info
    from prefbench.models import MANIFEST as ALIASES
    from prefbench.models import aliases
    from prefbench.registry import BUILTIN, lookup
    from prefbench.suites import suite_for

    assert "demo" not in DATASETS and "demo_oracle" not in BUILTIN and "prefbench-demo" not in ALIASES
    assert dataset_info("demo").source == "builtin" and lookup("demo_oracle").source == "builtin"
    assert lookup("demo_oracle").description.startswith("the demo world's noise-free utility")
    assert aliases()["prefbench-demo"].prefix == "prefbench-demo"
    suite = suite_for("demo")
    assert suite is not None and suite.dataset == "demo" and suite_for("imagereward") is None


def test_an_install_older_than_its_entry_points_says_to_reinstall(monkeypatch):
    import importlib.metadata as metadata

    from prefbench.errors import UnknownNameError
    from prefbench.registry import Registry

    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [])  # metadata without prefbench's own
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'demo'.*pip install --no-deps -e \."):
        Registry("dataset", "prefbench.datasets", {}).get("demo")
