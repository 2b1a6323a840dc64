"""`prefbench run --scorer a,b --dataset x,y --split s,t`: every cell an ordinary run (stored,
cached, shown by `prefbench report`), a failing cell reported at the end without stopping the
others, exit 1 when a cell failed; mistyped names refused before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.cli import run_cli

MATRIX = ["run", "--scorer", "random,demo_oracle", "--dataset", "demo,imagereward", "--split", "test,ood",
          "--results", "r", "--no-progress"]


def _run_dirs(root: Path) -> list[str]:
    return sorted(p.parent.relative_to(root).as_posix() for p in root.rglob("run.json"))


def test_matrix_runs_every_cell_continues_past_failures_and_reports(tmp_path):
    res = run_cli(MATRIX, cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    out = res.stdout
    # 2 scorers x 2 demo splits ran; the imagereward cells failed, each with its reason
    assert "demo/test" in out and "demo/ood" in out
    assert "4 of 8 cells ran; 4 failed:" in out
    assert "random on imagereward/test: dataset 'imagereward' needs --data-dir" in out
    assert "demo_oracle on imagereward/ood: dataset 'imagereward' has no split 'ood'" in out
    runs = _run_dirs(tmp_path / "r")
    assert [r.split("/")[0] for r in runs] == ["demo-ood", "demo-ood", "demo-test", "demo-test"]
    assert sorted(r.split("/")[1].split("-")[0] for r in runs) == ["demo_oracle"] * 2 + ["random"] * 2
    # the ceiling beats the floor on each split, in the printed order (best first)
    for split in ("test", "ood"):
        block = out.split(f"demo/{split} —")[1].split("\n\n")[0]
        assert block.index("demo_oracle") < block.index("random")

    # the cells are ordinary runs: a rerun is answered from them, and so is a lone run of one cell
    again = run_cli([*MATRIX, "--json"], cwd=tmp_path)
    assert again.returncode == 1
    rows = json.loads(again.stdout)
    ran = [r for r in rows if "failed" not in r]
    assert len(rows) == 8 and len(ran) == 4 and all(r["cached"] for r in ran)
    assert {(r["scorer"], r["split"]) for r in rows if "failed" in r} == {
        (s, sp) for s in ("random", "demo_oracle") for sp in ("test", "ood")}
    lone = run_cli(["run", "--scorer", "random", "--split", "ood", "--results", "r", "--json"], cwd=tmp_path)
    assert lone.returncode == 0, lone.stderr
    single = json.loads(lone.stdout)
    assert single["cached"] and single["run_dir"] in {r["run_dir"] for r in ran}

    # `prefbench report` shows the matrix's runs as it shows any run
    rep = run_cli(["report", "--results", "r", "--items", "0", "--bootstrap-resamples", "200"], cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    board = (tmp_path / "r" / "leaderboard.md").read_text()
    assert "demo" in board and "ood" in board and board.count("demo_oracle") >= 2 and board.count("random") >= 2


def test_matrix_all_cells_ok_exits_0(tmp_path):
    res = run_cli(["run", "--scorer", "random,demo_oracle", "--dataset", "demo", "--split", "ood", "--results", "r",
                   "--no-progress"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "2 of 2 cells ran" in res.stdout and "failed" not in res.stdout


def test_matrix_refuses_a_mistyped_name_before_running_anything(tmp_path):
    res = run_cli(["run", "--scorer", "random,randon", "--dataset", "demo", "--split", "test,ood", "--results", "r"],
                  cwd=tmp_path)
    assert res.returncode == 2
    assert "randon" in res.stderr
    assert not (tmp_path / "r").exists()
    res = run_cli(["run", "--scorer", "random", "--dataset", "demo,imagerewrd", "--results", "r"], cwd=tmp_path)
    assert res.returncode == 2 and "imagerewrd" in res.stderr
    res = run_cli(["run", "--scorer", "random,demo_oracle", "--out", "x", "--results", "r"], cwd=tmp_path)
    assert res.returncode == 2 and "--out" in res.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "x").exists()
    res = run_cli(["run", "--split", "test,ood", "--results", "r"], cwd=tmp_path)  # the demo suite: one split
    assert res.returncode == 2 and "prefbench run --scorer random,clip --split test,ood" in res.stderr
    assert not (tmp_path / "r").exists()


def test_a_data_dir_per_dataset_and_a_model_per_scorer(tmp_path):
    from prefbench.errors import UsageError
    from prefbench.matrix import cells

    (tmp_path / "img").mkdir()
    from PIL import Image

    lines = []
    for i in range(3):
        for k in range(2):
            Image.new("RGB", (4, 4), (i * 40, k * 90, 0)).save(tmp_path / "img" / f"{i}_{k}.png")
        lines.append(json.dumps({"prompt_id": f"p{i}", "prompt": f"prompt {i}", "images": [f"img/{i}_0.png",
                                 f"img/{i}_1.png"], "ranks": [1, 2]}))
    (tmp_path / "mine.jsonl").write_text("\n".join(lines) + "\n")
    # demo takes no data dir (empty entry), jsonl takes the file; demo_oracle cannot score jsonl items
    res = run_cli(["run", "--scorer", "random,demo_oracle", "--dataset", "demo,jsonl", "--data-dir", ",mine.jsonl",
                   "--split", "ood,test", "--results", "r", "--no-progress", "--json"], cwd=tmp_path)
    rows = json.loads(res.stdout)
    ok = {(r["scorer"], r["dataset"], r["split"]) for r in rows if "failed" not in r}
    assert ("random", "jsonl", "test") in ok and ("demo_oracle", "demo", "ood") in ok and ("random", "demo", "ood") in ok
    failed = {(r["scorer"], r["dataset"], r["split"]): r["failed"] for r in rows if "failed" in r}
    assert ("demo_oracle", "jsonl", "test") in failed and res.returncode == 1
    assert next(r for r in rows if (r["scorer"], r["dataset"], r["split"]) == ("random", "jsonl", "test")
                )["counts"]["ok"] == 6

    pairs = cells(["random", "clip"], ["demo"], ["test"], model=",prefbench-demo/clip")
    assert [(c.scorer, c.model) for c in pairs] == [("random", None), ("clip", "prefbench-demo/clip")]
    with pytest.raises(UsageError, match="--model has 3 values for 2 scorers"):
        cells(["random", "clip"], ["demo"], [], model="a,b,c")
