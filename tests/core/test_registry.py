"""The registry with a real installed plugin package (tests/plugins/prefbench_example_plugin)."""

from __future__ import annotations

import json
import warnings

import pytest

from prefbench import registry
from prefbench.errors import UnknownScorerError, UsageError
from tests.fixtures.cli import run_cli


def test_builtin_lookup_needs_no_plugin_scan(monkeypatch):
    def boom():
        raise AssertionError("plugins were scanned for a built-in name")

    monkeypatch.setattr(registry.SCORERS, "plugins", boom)
    assert registry.lookup("random").target == "prefbench.scorers.random:RandomScorer"


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownScorerError, match="Did you mean: random"):
        registry.lookup("randon")


def test_build_records_passed_and_resolved_params():
    scorer, spec = registry.build("random", {"seed": 4})
    assert spec["passed"] == {"seed": 4}
    assert spec["resolved"] == {"seed": 4, "check_images": True}
    with pytest.raises(UsageError, match="no option.*nope.*its options: check_images, seed"):
        registry.build("random", {"nope": 1})


def test_parse_param():
    assert registry.parse_param("delay=0.5") == ("delay", 0.5)
    assert registry.parse_param("check-images=false") == ("check_images", False)
    assert registry.parse_param("prompt=hello world") == ("prompt", "hello world")
    with pytest.raises(UsageError):
        registry.parse_param("novalue")


def test_plugin_found_builtin_wins_broken_warns(with_plugin):
    registry.SCORERS._cache_key = None  # entry points are scanned once per sys.path: scan again here
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = registry.entries()
    messages = [str(w.message) for w in caught]
    assert "coin_pairwise" in found and "sleepy" in found
    assert found["coin_pairwise"].source.startswith("plugin: prefbench-example-plugin")
    assert found["random"].source == "builtin"
    assert any("broken" in m and "missing_module" in m for m in messages)
    assert any("clashes with a built-in" in m for m in messages)
    assert "broken" not in found


def test_plugin_scorer_runs_through_the_cli_with_calibration(tmp_path, with_plugin):
    listing = run_cli(["list", "--json"], cwd=tmp_path)
    assert listing.returncode == 0
    names = {s["name"]: s for s in json.loads(listing.stdout)["scorers"]}
    assert names["coin_pairwise"]["installed"] and names["random"]["source"] == "builtin"
    assert "could not load plugin scorer 'broken'" in listing.stderr
    proc = run_cli(["run", "--scorer", "coin_pairwise", "-S", "skill=0.45", "--json", "--no-progress"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert 0 <= out["brier"] <= 1 and 0 <= out["ece"] <= 1
    assert out["accuracy"] > 0.6  # the coin leans towards the truth
    record = json.loads((tmp_path / out["run_dir"] / "run.json").read_text())
    assert record["reliability"] and sum(b["count"] for b in record["reliability"]) == record["metrics"]["n_calibration_pairs"]


def test_plugin_dataset_lists_loads_and_runs(with_plugin, tmp_path):
    from prefbench import data

    data._registry()._cache_key = None  # entry points are scanned once per sys.path: scan again here
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = data.datasets()
    assert any("plugin dataset 'demo'" in str(w.message) and "the built-in wins" in str(w.message) for w in caught)
    assert found["demo"].source == "builtin" and found["toy"].source.startswith("plugin: prefbench-example-plugin")
    split = data.load_dataset("toy")
    assert len(split.items) == 6 and split.items[0].images[0].open().size == (24, 16)
    proc = run_cli(["list", "--json"])
    listed = {d["name"]: d for d in json.loads(proc.stdout)["datasets"]}
    assert listed["toy"]["source"].startswith("plugin") and listed["pickapic"]["kind"] == "pair"
    out = tmp_path / "run"
    proc = run_cli(["run", "--scorer", "random", "--dataset", "toy", "--out", out, "--no-progress", "--json"])
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((out / "run.json").read_text())
    assert rec["dataset"]["name"] == "toy" and rec["counts"]["ok"] == 18 and rec["metrics"]["accuracy"] is not None
    proc = run_cli(["run", "--scorer", "random", "--dataset", "toyy", "--out", tmp_path / "r2"])
    assert proc.returncode == 2 and "Did you mean: toy?" in proc.stderr


def test_plugin_convention_scores_a_run_and_a_wrong_name_fails_before_scoring(with_plugin, tmp_path):
    from prefbench.metrics import conventions, lookup_convention

    assert conventions()["top1"].source.startswith("plugin: prefbench-example-plugin")
    rule = lookup_convention("top1")
    import numpy as np

    assert rule.item(np.array([1.0, 2.0]), np.array([0.9, 0.1]), None, 0.0) == (1.0, 1.0, 1)
    assert rule.item(np.array([1.0, 2.0]), np.array([0.1, 0.9]), None, 0.0)[0] == 0.0
    out = tmp_path / "run"
    proc = run_cli(["run", "--scorer", "random", "--dataset", "toy", "--convention", "top1", "--out", out,
                    "--no-progress", "--json", "--bootstrap-resamples", "200"])
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((out / "run.json").read_text())
    assert rec["metrics"]["convention"] == "top1" and rec["metrics"]["n_prompts"] == 6
    assert rec["metrics"]["accuracy"] in {k / 6 for k in range(7)}
    proc = run_cli(["run", "--scorer", "random", "--dataset", "toy", "--convention", "tpo1", "--out", tmp_path / "r2"])
    assert proc.returncode == 2 and "Did you mean: top1?" in proc.stderr
    assert not (tmp_path / "r2" / "samples.jsonl").exists()
    listed = json.loads(run_cli(["list", "--json"]).stdout)["conventions"]
    assert {c["name"] for c in listed} >= {"imagereward", "hpdv2", "pickapic", "top1"}
