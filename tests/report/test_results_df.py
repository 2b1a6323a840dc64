"""prefbench.results: runs and samples as DataFrames, read from the run store."""

from __future__ import annotations

import json

import pytest

from prefbench.errors import DataError
from tests.fixtures.cli import REPO
from tests.fixtures.extras import requires_extra

pytestmark = requires_extra("pandas")


def test_runs_df_has_one_row_per_committed_run_with_its_numbers():
    from prefbench.results import RUN_COLUMNS, runs_df

    files = sorted((REPO / "results").rglob("run.json"))
    frame = runs_df(REPO / "results")
    assert list(frame.columns) == list(RUN_COLUMNS)
    assert len(frame) == len(files)
    for file, (_, row) in zip(files, frame.iterrows()):
        rec = json.loads(file.read_text())
        assert row["run"] == file.parent.relative_to(REPO / "results").as_posix()
        assert row["scorer"] == rec["scorer"]["name"]
        assert row["accuracy"] == pytest.approx(rec["metrics"]["accuracy"])
        assert row["ci_low"] == pytest.approx(rec["metrics"]["ci_low"])
        assert row["ok"] == rec["counts"]["ok"]


def test_samples_df_one_row_per_image(tmp_path):
    from prefbench.results import samples_df

    run = next(p.parent for p in sorted((REPO / "results" / "demo-test").rglob("run.json"))
               if "anchor_pairwise-pairwise" in str(p))
    rec = json.loads((run / "run.json").read_text())
    frame = samples_df(run)
    assert len(frame) == rec["dataset"]["n_images"]
    assert set(frame["scorer"]) == {"anchor_pairwise"} and set(frame["dataset"]) == {"demo"}
    assert (frame["status"] == "ok").sum() == rec["counts"]["ok"]
    assert int(frame["forced"].sum()) == rec["counts"]["forced"]
    anchors = frame[frame["image_index"] == frame["anchor_index"]]
    assert (anchors["score"] == 0.5).all() and anchors["item_id"].is_unique


def test_a_broken_run_json_is_named_or_skipped(tmp_path):
    from prefbench.results import runs_df

    good = next((REPO / "results" / "demo-test").rglob("run.json"))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "run.json").write_text(good.read_text())
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "run.json").write_text("{not json")
    with pytest.raises(DataError, match="b/run.json"):
        runs_df(tmp_path)
    with pytest.warns(UserWarning, match="skipped"):
        frame = runs_df(tmp_path, errors="skip")
    assert list(frame["run"]) == ["a"]
