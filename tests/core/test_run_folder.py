"""The run-folder lifecycle on its own: a kind of run that neither the runner nor bench-generators
knows plugs in (lock, cached answer, rows, interrupt, resume, atomic record)."""

from __future__ import annotations

import json

import pytest

from prefbench.errors import UsageError
from prefbench.record import RUN_SCHEMA_VERSION, RunRecord
from prefbench.run_folder import RunFolder, unscored

HASH = "a" * 64
OPTIONS = {"tolerance": 0.01}


def _record(folder: RunFolder) -> RunRecord:
    return RunRecord(schema_version=RUN_SCHEMA_VERSION, kind="acceptance", status="running",
                     run_dir=folder.record_dir, config_hash=folder.config_hash, created=folder.created,
                     stat_options=OPTIONS)


def _row(item: str, score: float | None = 1.0, **extra) -> dict:
    return {"item_id": item, "image_index": 0, "score": score, "status": "ok" if score is not None else "error",
            **extra}


def _session(path, items: list[str], interrupt_after: int | None = None, log=None):
    """One session of a toy kind of run: score the items without a row, one at a time."""
    with RunFolder.open(path, HASH, "acceptance", log=log or (lambda m: None)) as folder:
        if (cached := folder.cached_answer("stat_options", OPTIONS)) is not None:
            return cached
        rows = folder.rows()
        record = _record(folder)
        folder.begin(record)
        todo = [i for i in items if unscored(rows, (i, 0))]
        with folder.scoring(record) as writer:
            for n, item in enumerate(todo):
                if interrupt_after is not None and n == interrupt_after:
                    raise KeyboardInterrupt
                writer.write([_row(item)])
        rows = folder.rows()
        done = not [i for i in items if unscored(rows, (i, 0))]
        return folder.finish(record, done, {"counts": {"ok": len(rows)}, "throughput": folder.throughput(len(todo), 1.0),
                                            **folder.samples_fingerprint()})


def test_a_new_kind_runs_is_interrupted_resumes_and_is_answered_from_cache(tmp_path):
    path = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _session(path, ["a", "b", "c"], interrupt_after=2)
    on_disk = json.loads((path / "run.json").read_text())
    assert on_disk["status"] == "interrupted" and on_disk["kind"] == "acceptance"
    assert len((path / "samples.jsonl").read_text().splitlines()) == 2  # the rows before the interrupt are kept

    messages: list[str] = []
    rec = _session(path, ["a", "b", "c"], log=messages.append)
    assert rec.status == "complete" and rec.counts.ok == 3 and not rec.cached
    assert rec.throughput.images_scored_this_session == 1  # only "c" was left
    on_disk = json.loads((path / "run.json").read_text())
    assert list(on_disk) == ["schema_version", "kind", "status", "run_dir", "config_hash", "created", "stat_options",
                             "finished", "counts", "throughput", "samples_bytes", "samples_sha256"]
    assert on_disk["created"] == rec.created

    again = _session(path, ["a", "b", "c"], log=messages.append)
    assert again.cached and again.run_dir == str(path)
    assert any(m.startswith("cached:") for m in messages)
    assert json.loads((path / "run.json").read_text()) == on_disk  # the cached answer wrote nothing


def test_an_edited_samples_file_is_scored_again_not_answered_from_cache(tmp_path):
    path = tmp_path / "run"
    _session(path, ["a", "b"])
    samples = path / "samples.jsonl"
    text = samples.read_text()
    samples.write_text(text.replace('"score": 1.0', '"score": 2.0', 1))  # same size, other content
    rec = _session(path, ["a", "b"])
    assert not rec.cached and rec.status == "complete"


def test_a_retryable_row_keeps_the_run_open(tmp_path):
    path = tmp_path / "run"
    with RunFolder.open(path, HASH, "acceptance") as folder:
        record = _record(folder)
        folder.begin(record)
        with folder.scoring(record) as writer:
            writer.write([_row("a"), _row("b", None, retryable=True)])
        rows = folder.rows()
        assert [unscored(rows, (i, 0)) for i in ("a", "b", "c")] == [False, True, True]
        folder.finish(record, False, folder.samples_fingerprint())
    rec = _session(path, ["a", "b"])  # b is scored again
    assert rec.status == "complete"


def test_another_kind_another_configuration_and_a_second_writer_are_refused(tmp_path):
    path = tmp_path / "run"
    _session(path, ["a"])
    with pytest.raises(UsageError, match="holds a acceptance run with a different configuration"):
        with RunFolder.open(path, HASH, "scoring"):
            pass
    with pytest.raises(UsageError, match=r"holds a run with a different configuration \(config hash aaaaaaaa vs "
                                          r"bbbbbbbb\)"):
        with RunFolder.open(path, "b" * 64, "acceptance"):
            pass
    with RunFolder.open(path, HASH, "acceptance"):
        with pytest.raises(UsageError, match="another prefbench process is writing"):
            with RunFolder.open(path, HASH, "acceptance"):
                pass
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(UsageError, match="is a symlink"):
        with RunFolder.open(link, HASH, "acceptance"):
            pass


def test_a_record_from_a_newer_prefbench_is_refused(tmp_path):
    path = tmp_path / "run"
    _session(path, ["a"])
    data = json.loads((path / "run.json").read_text())
    (path / "run.json").write_text(json.dumps(dict(data, schema_version=RUN_SCHEMA_VERSION + 1)))
    with pytest.raises(UsageError, match="newer than this prefbench writes"):
        _session(path, ["a"])
