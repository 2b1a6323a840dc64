"""Nonsense input ends in one line naming the problem (exit 2) or a per-item status, never a
traceback, a silent merge or a silent 0."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from PIL import Image

from prefbench.cli import main
from prefbench.data import load_dataset
from prefbench.errors import DataError
from tests.fixtures.cli import run_cli


def _ir(tmp_path: Path, items: list[dict]) -> Path:
    (tmp_path / "test_images").mkdir(parents=True, exist_ok=True)
    (tmp_path / "test.json").write_text(json.dumps(items))
    return tmp_path


def _item(id_, ranking=(1, 2)):
    return {"id": id_, "prompt": "p", "generations": ["a.png", "b.png"], "ranking": list(ranking)}


@pytest.mark.parametrize("ids", [["5", 5], [None, None], ["x", "x"]])
def test_duplicate_item_ids_are_refused_with_file_and_item(tmp_path, ids):
    data = _ir(tmp_path, [_item(i) for i in ids])
    with pytest.raises(DataError, match=r"test\.json: item [01]: (duplicate id|id must be)"):
        load_dataset("imagereward", "test", data, with_images=False)


def test_null_and_bool_ids_are_refused(tmp_path):
    with pytest.raises(DataError, match="id must be a string or an integer, got True"):
        load_dataset("imagereward", "test", _ir(tmp_path, [_item(True)]), with_images=False)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_ranks_are_refused(tmp_path, bad):
    (tmp_path / "test.json").write_text(
        f'[{{"id": "a", "prompt": "p", "generations": ["a.png", "b.png"], "ranking": [1, {bad}]}}]')
    with pytest.raises(DataError, match="not a finite number"):
        load_dataset("imagereward", "test", tmp_path, with_images=False)
    jsonl = tmp_path / "j"
    jsonl.mkdir()
    (jsonl / "test.jsonl").write_text(f'{{"prompt_id": "a", "prompt": "p", "images": ["a", "b"], "ranks": [{bad}, 1]}}\n')
    with pytest.raises(DataError, match="not a finite number"):
        load_dataset("jsonl", "test", jsonl, with_images=False)


def test_unreadable_files_are_one_line_errors(tmp_path):
    (tmp_path / "test.json").write_bytes(b"[\xff\xfe]")
    proc = run_cli(["evaluate", "--dataset", "imagereward", "--data-dir", tmp_path, "--scores", tmp_path / "s"])
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "test.json").write_text("[" * 100_000 + "]" * 100_000)
    proc = run_cli(["evaluate", "--dataset", "imagereward", "--data-dir", tmp_path, "--scores", tmp_path / "s"])
    assert proc.returncode == 2 and "nested too deeply" in proc.stderr and "Traceback" not in proc.stderr


def test_a_400_digit_score_is_a_clear_error(tmp_path):
    data = _ir(tmp_path, [_item("a")])
    scores = tmp_path / "scores.jsonl"
    scores.write_text('{"prompt_id": "a", "image_index": 0, "score": ' + "9" * 400 + "}\n"
                      '{"prompt_id": "a", "image_index": 1, "score": 1}\n')
    proc = run_cli(["evaluate", "--dataset", "imagereward", "--data-dir", data, "--scores", scores])
    assert proc.returncode == 2 and "line 1" in proc.stderr and "finite number" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr) < 400


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "-1"], "--batch-size: must be at least 1"),
    (["--bootstrap-resamples", "0"], "--bootstrap-resamples: must be at least 1"),
    (["--limit", "x"], "--limit: expected a whole number"),
    (["--tie-threshold", "-0.1"], "--tie-threshold: must be a finite number >= 0"),
    (["-S", "seed=abc"], "option seed must be int, got 'abc'"),
    (["-S", "check_images=maybe"], "option check_images must be bool"),
])
def test_nonsense_options_exit_2(tmp_path, args, message):
    proc = run_cli(["run", "--scorer", "random", "--limit", "2", "--out", tmp_path / "r", *args])
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r" / "samples.jsonl").exists()


def test_a_run_where_no_image_scored_says_n_a_and_exits_1(tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    (data / "a.png").write_bytes(b"")
    (data / "b.png").write_bytes(b"not a png")
    (data / "test.jsonl").write_text('{"prompt_id": "p", "prompt": "t", "images": ["a.png", "b.png"], "ranks": [1, 2]}\n')
    rc = main(["run", "--scorer", "random", "--dataset", "jsonl", "--data-dir", str(data), "--out",
               str(tmp_path / "r"), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "accuracy n/a (0 of 2 scored)" in out and "accuracy 0.0000" not in out
    assert "no image scored (2 error" in err
    rec = json.loads((tmp_path / "r" / "run.json").read_text())
    assert rec["metrics"]["accuracy"] is None and rec["counts"]["error"] == 2


def test_a_full_disk_is_one_line_with_how_to_resume(tmp_path, capsys, monkeypatch):
    from prefbench import store

    def full(self, rows):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "r" / "samples.jsonl"))

    monkeypatch.setattr(store.SampleWriter, "write", full)
    Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
    rc = main(["run", "--scorer", "random", "--limit", "3", "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "No space left on device" in err and "rerun the same command to resume" in err


def _two_runs(tmp_path):
    from prefbench.runner import RunConfig, run

    a = run(RunConfig(scorer="random", limit=6, out=str(tmp_path / "a"), progress=False), log=lambda m: None)
    b = run(RunConfig(scorer="random", seed=1, limit=6, out=str(tmp_path / "b"), progress=False), log=lambda m: None)
    return a, b


def _edit(run_dir: Path, change) -> None:
    rec = json.loads((run_dir / "run.json").read_text())
    change(rec)
    (run_dir / "run.json").write_text(json.dumps(rec))


@pytest.mark.parametrize("change, message", [
    (lambda r: r["dataset"].update(content_hash="0" * 64), "scored different data"),
    (lambda r: r.update(status="running"), "not a finished run"),
    (lambda r: r.update(schema_version=99), "schema_version 99 is not one this prefbench reads"),
    (lambda r: r.pop("metrics"), "missing field 'metrics'"),
    (lambda r: r["dataset"].update(split="ood"), "different splits"),
])
def test_compare_refuses_runs_it_cannot_pair(tmp_path, capsys, change, message):
    _two_runs(tmp_path)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    capsys.readouterr()
    _edit(tmp_path / "b", change)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_run_does_not_rewrite_a_newer_schema(tmp_path):
    from prefbench.errors import UsageError
    from prefbench.runner import RunConfig, run

    _two_runs(tmp_path)
    _edit(tmp_path / "a", lambda r: r.update(schema_version=99))
    before = (tmp_path / "a" / "run.json").read_bytes()
    with pytest.raises(UsageError, match="newer than this prefbench writes"):
        run(RunConfig(scorer="random", limit=6, out=str(tmp_path / "a"), progress=False))
    assert (tmp_path / "a" / "run.json").read_bytes() == before
