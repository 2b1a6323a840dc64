"""Model aliases (prefbench.models): the demo zoo's ids through the registry, and a third-party
alias declared under the ``prefbench.models`` entry-point group of a real installed distribution."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from prefbench.demo_zoo import ASSETS
from prefbench.errors import UsageError
from prefbench.models import aliases, default_model, portable_model_path, resolve_model
from tests.fixtures.cli import run_cli
from tests.fixtures.extras import skip_without_extra


def test_demo_alias_resolves_and_offers_defaults_on_demo_only():
    resolved = resolve_model("prefbench-demo/rating")
    assert resolved.path == ASSETS / "rating"
    assert resolved.revision == hashlib.sha256((ASSETS / "rating" / "model.safetensors").read_bytes()).hexdigest()[:16]
    assert default_model("expected_rating", "demo") == "prefbench-demo/rating"
    assert default_model("expected_rating", None) == "prefbench-demo/rating"  # the API / rank / serve
    assert default_model("expected_rating", "imagereward") is None
    assert default_model("random", "demo") is None
    assert resolve_model("Qwen/Qwen2.5-VL-7B-Instruct") is None  # not an alias: a hub id stays as it is
    assert portable_model_path(str(ASSETS / "clip" / "config.json")) == "prefbench-demo/clip/config.json"


@pytest.mark.parametrize("bad", ["prefbench-demo/nope", "prefbench-demo/../rating", "prefbench-demo/"])
def test_unknown_bundled_name_lists_the_bundled_ones(bad):
    with pytest.raises(UsageError, match="bundled: .*prefbench-demo/rating"):
        resolve_model(bad)


@pytest.fixture
def alias_plugin(tmp_path, monkeypatch):
    """A distribution on sys.path declaring the alias ``lab`` whose folder holds a copy of the
    bundled CLIP checkpoint as ``lab/clip-v2``."""
    site = tmp_path / "site"
    pkg = site / "lab_models"
    pkg.mkdir(parents=True)
    shutil.copytree(ASSETS / "clip", tmp_path / "zoo" / "clip-v2")
    (pkg / "__init__.py").write_text(
        "from pathlib import Path\nfrom prefbench.models import ModelAlias\n"
        f"ALIAS = ModelAlias('lab', Path({str(tmp_path / 'zoo')!r}), 'our lab checkpoints')\n"
        "NOT_AN_ALIAS = 42\n")
    info = site / "lab_models-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-models\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[prefbench.models]\nlab = lab_models:ALIAS\nodd = lab_models:NOT_AN_ALIAS\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    return tmp_path


def test_plugin_alias_is_resolved_and_recorded_portably(alias_plugin, tmp_path):
    skip_without_extra("clip")
    with pytest.warns(UserWarning, match="'odd' is a int, not a ModelAlias"):
        assert "lab" in aliases()
    out = tmp_path / "run"
    proc = run_cli(["run", "--scorer", "clip", "--model", "lab/clip-v2", "--limit", "2", "--out", out,
                    "--no-progress", "--bootstrap-resamples", "100"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "run.json").read_text())
    weights = (alias_plugin / "zoo" / "clip-v2" / "model.safetensors").read_bytes()
    assert record["model"]["id"] == "lab/clip-v2"
    assert record["model"]["revision"] == hashlib.sha256(weights).hexdigest()[:16]
    assert str(tmp_path) not in json.dumps(record["scorer"])  # the folder is recorded as the alias
