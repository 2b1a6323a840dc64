"""The demo zoo: the no-argument suite, bundled checkpoints, the miniature tables, the recipe."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from prefbench.demo_zoo import ASSETS, BUNDLED, bundled_model
from prefbench.demo_zoo.recipe import model_commands, result_commands
from prefbench.demo_zoo.tables import render


def test_suite_runs_offline_and_prints_a_leaderboard(tmp_path):
    proc = run_cli(["run", "--limit", "8", "--no-progress"], cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1"},
                   timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "demo world, test split" in out and "random floor" in out and "ceiling (noise-free utility)" in out
    data = json.loads(run_cli(["run", "--limit", "8", "--no-progress", "--json"], cwd=tmp_path,
                              env_extra={"HF_HUB_OFFLINE": "1"}, timeout=900).stdout)
    by_scorer = {row["scorer"]: row for row in data}
    assert by_scorer["random"]["cached"], "the second invocation must reuse the finished runs"
    for scorer in BUNDLED:
        row = by_scorer[scorer]
        if bundled_model(scorer) is not None:
            assert "skipped" not in row, row
            assert row["counts"]["ok"] + row["counts"]["unparsed"] + row["counts"]["error"] > 0


def test_suite_refuses_a_model_without_a_scorer(tmp_path):
    proc = run_cli(["run", "--model", "x"], cwd=tmp_path)
    assert proc.returncode == 2 and "--scorer is required" in proc.stderr


@pytest.mark.parametrize("name", sorted(set(BUNDLED.values())))
def test_bundled_checkpoints_are_small_and_complete(name):
    folder = ASSETS / name
    if not (folder / "config.json").is_file():
        pytest.skip(f"{folder} is not built (python -m prefbench.demo_zoo.recipe)")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 10e6, f"{name} is {size / 1e6:.1f} MB"
    assert (folder / "model.safetensors").is_file()
    assert (folder / "prefbench_train.json").is_file() or (folder / "prefbench_pretrain.json").is_file()


def test_tables_on_real_runs(tmp_path):
    for seed in (0, 1):
        assert run_cli(["run", "--scorer", "random", "--seed", str(seed), "--results", "res", "--no-progress"],
                       cwd=tmp_path).returncode == 0
    assert run_cli(["run", "--scorer", "demo_oracle", "--results", "res", "--no-progress"], cwd=tmp_path).returncode == 0
    text = render(tmp_path / "res", splits=("test",), n_resamples=500)
    assert "| ceiling: noise-free utility | `demo_oracle` | 0.877" in text
    assert "| random floor | `random` |" in text
    assert "| trained vs zero-shot (paper Tables 1-2: zero-shot rows) | not run |" in text


def test_recipe_commands_are_the_documented_cli():
    cmds = model_commands(ASSETS / "work")
    assert cmds[1][1:5] == ["-m", "prefbench", "train", "--task"]
    assert any("--write-baseline" in c for c in result_commands(ASSETS / "res"))
