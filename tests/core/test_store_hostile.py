"""The run store under hostile conditions: no write through a symlink, no good row dropped on
resume, one writer per run folder."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prefbench.errors import UsageError
from prefbench.runner import RunConfig, run
from prefbench.store import (
    QUARANTINE_FILE,
    SAMPLES_FILE,
    SampleWriter,
    read_samples,
    write_json_atomic,
    write_text_atomic,
)
from tests.fixtures.cli import REPO


def _cfg(out: Path, **kw) -> RunConfig:
    return RunConfig(scorer="random", dataset="demo", limit=20, out=str(out), progress=False, **kw)


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    return victim


def test_samples_symlink_is_refused_and_its_target_untouched(tmp_path):
    out = tmp_path / "run"
    run(_cfg(out))
    victim = _victim(tmp_path)
    (out / SAMPLES_FILE).unlink()
    (out / SAMPLES_FILE).symlink_to(victim)
    with pytest.raises(UsageError, match="symlink"):
        run(_cfg(out))
    assert victim.read_text() == "precious\n"


def test_writer_and_repair_never_follow_a_symlink(tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "samples.jsonl"
    link.symlink_to(victim)
    with pytest.raises(UsageError, match="symlink"):
        SampleWriter(link)
    with pytest.raises(UsageError, match="symlink"):
        read_samples(link)
    assert victim.read_text() == "precious\n"


def test_atomic_writes_replace_a_symlink_instead_of_writing_through_it(tmp_path):
    victim = _victim(tmp_path)
    target = tmp_path / "run.json"
    target.symlink_to(victim)
    tmp_link = tmp_path / ".run.json.tmp"  # the old fixed temporary name, planted as a symlink
    tmp_link.symlink_to(victim)
    write_json_atomic(target, {"a": 1})
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and json.loads(target.read_text()) == {"a": 1}
    page = tmp_path / "leaderboard.md"
    page.symlink_to(victim)
    write_text_atomic(page, "# board\n")
    assert victim.read_text() == "precious\n" and page.read_text() == "# board\n"


def test_a_symlinked_run_folder_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UsageError, match="symlink"):
        run(_cfg(tmp_path / "results" / "run"))
    assert list(elsewhere.iterdir()) == []


def test_report_outputs_are_not_written_through_symlinks(tmp_path):
    from prefbench.report import write_report

    results = tmp_path / "results"
    run(RunConfig(scorer="random", dataset="demo", limit=5, results_root=str(results), progress=False))
    victim = _victim(tmp_path)
    (results / "leaderboard.md").symlink_to(victim)
    (results / "leaderboard.html").symlink_to(victim)
    write_report(results, results, n_items=0, n_resamples=100)
    assert victim.read_text() == "precious\n"
    assert "random" in (results / "leaderboard.md").read_text()


@pytest.mark.parametrize("bad", [b"{not json\n", b"\n", b"\x00\x00\x00\n", b"\xff\xfe garbage\n",
                                 b'{"item_id": "x"}\n', b'["a list"]\n', b'{"item_id": "0", "image_index": -1}\n'])
def test_a_bad_middle_line_is_set_aside_and_no_good_row_is_lost(tmp_path, bad):
    out = tmp_path / "run"
    first = run(_cfg(out))
    path = out / SAMPLES_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) > 10
    path.write_bytes(b"".join(lines[:5]) + bad + b"".join(lines[5:]))
    logs = []
    again = run(_cfg(out), log=logs.append)
    assert again["metrics"]["accuracy"] == first["metrics"]["accuracy"]
    assert again["throughput"]["images_scored_this_session"] == 0  # nothing re-scored
    assert any("line 6" in m and QUARANTINE_FILE in m for m in logs), logs
    assert path.read_bytes() == b"".join(lines)  # the bad line moved out, every good row kept
    kept = [json.loads(x) for x in (out / QUARANTINE_FILE).read_text().splitlines()]
    assert kept[0]["line"] == 6


def test_only_a_final_line_without_newline_is_a_torn_write(tmp_path):
    out = tmp_path / "run"
    run(_cfg(out))
    path = out / SAMPLES_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:-9])  # a kill mid-write
    again = run(_cfg(out), log=lambda m: None)
    assert again["throughput"]["images_scored_this_session"] == 1
    assert path.read_bytes().count(b"\n") == len(lines)
    assert not (out / QUARANTINE_FILE).exists()


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from prefbench.store import RunLock\n"
        "lock = RunLock(Path(sys.argv[1])); lock.acquire(); print('held', flush=True); time.sleep(30)"),
        str(out)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError, match="another prefbench process"):
            run(_cfg(out))
        t0 = time.monotonic()
        holder.kill()
        rec = run(_cfg(out, wait=True))
        assert rec["status"] == "complete" and time.monotonic() - t0 < 30
    finally:
        holder.kill()
        holder.wait()
    rows = [x for x in (out / SAMPLES_FILE).read_text().splitlines() if x]
    assert len(rows) == rec["dataset"]["n_images"]  # one row per image: nobody scored twice


def test_an_edited_samples_file_of_the_same_size_is_not_answered_from_the_cache(tmp_path):
    out = tmp_path / "run"
    first = run(_cfg(out))
    assert first["samples_sha256"]
    path = out / SAMPLES_FILE
    text = path.read_text()
    score = repr(json.loads(text.splitlines()[0])["score"])
    edited = score[:-1] + ("1" if score[-1] != "1" else "2")  # one digit changed: the same size
    path.write_text(text.replace(score, edited, 1))
    assert path.stat().st_size == first["samples_bytes"]
    again = run(_cfg(out), log=lambda m: None)
    assert not again.get("cached") and again["samples_sha256"] != first["samples_sha256"]
