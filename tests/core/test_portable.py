"""A run's identity and record do not depend on where the checkout, the virtualenv or the data
live: the same data at two paths gives the same config hash and run folder name, and run.json
holds no absolute machine path."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from prefbench.demo_zoo import ASSETS
from prefbench.provenance import expand_path, portable_command, portable_path, portable_values
from prefbench.runner import RunConfig, run


def test_portable_path_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert portable_path(ASSETS / "clip") == "prefbench-demo/clip"
    assert portable_path(ASSETS / "clip" / "config.json") == "prefbench-demo/clip/config.json"
    assert portable_path(tmp_path / "data") == "data"
    assert portable_path(tmp_path) == "."
    assert portable_path(Path.home() / "x" / "y") == "~/x/y" or str(Path.home()) == "/"
    assert portable_path("relative/stays") == "relative/stays"
    assert portable_path("/opt/elsewhere/model") == "/opt/elsewhere/model"  # a user's own absolute path
    assert portable_values({"a": [str(tmp_path / "data"), "Qwen/Qwen2.5-VL-7B"], "b": 3}) == \
        {"a": ["data", "Qwen/Qwen2.5-VL-7B"], "b": 3}
    assert expand_path("prefbench-demo/clip") == ASSETS / "clip"
    assert portable_command(["/some/venv/bin/prefbench", "run", "--out", str(tmp_path / "r")]) == \
        ["prefbench", "run", "--out", "r"]


def _data(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for k in range(3):
        Image.new("RGB", (8, 8), (k * 60, 0, 0)).save(root / f"{k}.png")
    (root / "test.jsonl").write_text(json.dumps(
        {"prompt_id": "p", "prompt": "t", "images": ["0.png", "1.png", "2.png"], "ranks": [1, 2, 3]}) + "\n")
    return root


def _strings(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


def test_same_data_at_two_paths_is_the_same_run(tmp_path, monkeypatch):
    recs = []
    for where in ("one/checkout", "two/elsewhere/deeper"):
        home = tmp_path / where
        _data(home / "data")
        monkeypatch.chdir(home)
        recs.append(run(RunConfig(scorer="random", dataset="jsonl", data_dir=str(home / "data"),
                                  results_root=str(home / "results"), progress=False)))
        for text in _strings(recs[-1]):
            assert str(tmp_path) not in text, text
    a, b = recs
    assert a["config_hash"] == b["config_hash"]
    assert a["run_dir"] == b["run_dir"] and a["run_dir"].startswith("results/jsonl-test/random-")
    assert a["dataset"]["data_dir"] == "data" and a["dataset"]["source"] == "test.jsonl"
    assert a["command"][0] == "prefbench"


def test_the_report_finds_the_data_from_the_portable_record(tmp_path, monkeypatch):
    from prefbench.report import write_report

    home = tmp_path / "project"
    _data(home / "data")
    monkeypatch.chdir(home)
    run(RunConfig(scorer="random", dataset="jsonl", data_dir="data", results_root="results", progress=False))
    moved = tmp_path / "moved"
    shutil.copytree(home, moved)  # the whole project folder moves: data and results together
    monkeypatch.chdir(moved)
    write_report(Path("results"), Path("results"), n_items=5)
    html = (moved / "results" / "leaderboard.html").read_text()
    assert html.count('<img src="data:image/jpeg;base64,') == 3
    assert str(home) not in html


def test_demo_record_names_the_generated_world_not_the_cache_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rec = run(RunConfig(scorer="random", dataset="demo", results_root="results", progress=False, limit=3))
    assert rec["dataset"]["source"].startswith("demo-v")
    assert rec["dataset"]["data_dir"] is None
    assert rec["run_dir"].startswith("results/demo-test/random-")
    for text in _strings({k: v for k, v in rec.items() if k != "command"}):  # pytest's own argv aside
        assert not text.startswith(os.sep), text


def _json_strings(path: Path):
    try:
        yield from _strings(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return


def test_no_committed_record_holds_a_machine_path():
    """run.json files, baselines, training records and benchmark results carry portable paths only."""
    import subprocess

    from tests.fixtures.cli import REPO

    proc = subprocess.run(["git", "ls-files", "*.json"], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("not a git checkout")
    files = [REPO / f for f in proc.stdout.split() if not f.startswith("tests/") and (REPO / f).is_file()]
    assert any("results/" in str(f) for f in files)
    bad = [(f.relative_to(REPO).as_posix(), s) for f in files for s in _json_strings(f)
           if s.startswith(("/", "~/")) and len(s) > 1]
    assert not bad, bad[:10]
