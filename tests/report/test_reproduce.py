"""``prefbench reproduce``: shipped tables validate, the demo table reproduces from the committed runs,
an off row is reported outside its CI with the right gap, and offline rows say what is missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prefbench.errors import UsageError
from prefbench.reproduce import builtin_tables, load_table, parse_table, validate
from tests.fixtures.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A copy of the committed demo test runs: the demo rows are answered from them."""
    root = tmp_path_factory.mktemp("results")
    shutil.copytree(ROOT / "results" / "demo-test", root / "demo-test")
    return root


def test_every_shipped_table_validates():
    tables = builtin_tables()
    assert {"demo", "seed-paper", "imagereward-test", "hpdv2-test", "hpdv3", "mmrb2-t2i", "genai-bench"} <= set(tables)
    for name in tables:
        table = load_table(name)
        assert table.source and table.read and table.rows, name
        assert validate(table) == [], name
        for row in table.rows:
            assert row.reference or row.scorer, (name, row.name)
            assert row.published is None or isinstance(row.published, float | int)
            if row.pending:
                assert "not" in row.pending or "issue" in row.pending, (name, row.name)


def test_validate_names_what_does_not_resolve(tmp_path):
    table = parse_table({"name": "t", "title": "T", "source": "s", "read": "2026-12-07", "dataset": "demo",
                         "split": "nope", "convention": "imagereward", "rows": [
                             {"name": "a", "published": 0.5, "scorer": "random", "options": {"bogus": 1}},
                             {"name": "b", "published": 0.5, "scorer": "no_such_scorer"}]}, "t.json")
    problems = validate(table)
    assert any("demo has no split 'nope'" in p for p in problems)
    assert any("takes no option(s) bogus" in p for p in problems)
    assert any(p.startswith("b:") for p in problems)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda t: t.pop("source"), "'source' must be a non-empty string"),
    (lambda t: t["rows"][0].update(published="65%"), "published must be a number"),
    (lambda t: t["rows"].append(dict(t["rows"][0])), "duplicate row name"),
    (lambda t: t["rows"][0].update(colour="red"), "unknown field(s) colour"),
    (lambda t: t["rows"][0].pop("scorer"), "needs a 'scorer'"),
])
def test_malformed_tables_are_refused_with_the_field_named(mutate, message):
    raw = {"name": "t", "title": "T", "source": "s", "read": "2026-12-07", "dataset": "demo", "split": "test",
           "convention": "imagereward", "rows": [{"name": "a", "published": 0.5, "scorer": "random"}]}
    mutate(raw)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_table(raw, "t.json")


def test_list_shows_the_tables_with_their_sources():
    proc = run_cli(["reproduce", "--list"])
    assert proc.returncode == 0, proc.stderr
    assert "mmrb2-t2i" in proc.stdout and "facebookresearch/MMRB2 README" in proc.stdout
    assert "arXiv 2503.19948" in proc.stdout


def test_the_demo_table_reproduces_from_the_committed_runs(results):
    proc = run_cli(["reproduce", "demo", "--results", results, "--strict", "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    assert "10 reproduced" in proc.stdout
    assert proc.stderr.count("cached:") == 10  # no row was scored again
    stored = json.loads((results / "reproduce" / "demo.json").read_text())
    assert [r["verdict"] for r in stored["rows"]] == ["reproduced"] * 10
    assert all(not Path(r["run_dir"]).is_absolute() for r in stored["rows"])
    # the committed copy in the repository is what the same command writes there
    assert stored == json.loads((ROOT / "results" / "reproduce" / "demo.json").read_text())


def _fixture_table(tmp_path: Path) -> Path:
    table = {"name": "fixture", "title": "A table with rows on and off", "source": "this test", "read": "2026-12-07",
             "dataset": "demo", "split": "test", "convention": "imagereward", "scale": 100, "rows": [
                 {"name": "random, as published", "published": 51.0, "scorer": "random"},
                 {"name": "random, claimed high", "published": 90.0, "scorer": "random"},
                 {"name": "random, within a tolerance", "published": 52.5, "scorer": "random", "tolerance": 2.0},
                 {"name": "random, beyond a tolerance", "published": 55.0, "scorer": "random", "tolerance": 2.0},
                 {"name": "a human", "published": 65.0, "reference": "one annotator against the others"},
                 {"name": "a future scorer", "published": 70.0, "scorer": "hpsv3", "pending": "the HPSv3 scorer (issue 34)"},
                 {"name": "an unpublished checkpoint", "published": 60.0, "scorer": "expected_rating",
                  "needs_model": "the paper's trained checkpoint"}]}
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(table))
    return path


def test_an_off_row_is_outside_its_ci_with_the_gap(tmp_path, results):
    proc = run_cli(["reproduce", _fixture_table(tmp_path), "--results", results, "--json", "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    rows = {r["row"]: r for r in json.loads(proc.stdout)[0]["rows"]}
    measured = rows["random, as published"]["measured"]
    assert rows["random, as published"]["verdict"] == "reproduced"
    off = rows["random, claimed high"]
    assert off["verdict"] == "outside CI" and off["gap"] == pytest.approx(measured * 100 - 90.0)
    assert off["ci_high"] * 100 < 90.0
    assert rows["random, within a tolerance"]["verdict"] == "reproduced"
    assert rows["random, beyond a tolerance"]["verdict"] == "outside CI"
    assert rows["random, beyond a tolerance"]["gap"] == pytest.approx(measured * 100 - 55.0)
    assert rows["a human"]["verdict"] == "reference"
    assert rows["a future scorer"]["verdict"] == "not run" and "issue 34" in rows["a future scorer"]["reason"]
    needs = rows["an unpublished checkpoint"]
    assert needs["verdict"] == "not run" and "--model DIR" in needs["reason"]
    # the text names the gap; --strict fails on the rows that ran and missed
    proc = run_cli(["reproduce", _fixture_table(tmp_path), "--results", results, "--strict", "--no-progress"])
    assert proc.returncode == 1
    assert f"gap {measured * 100 - 90.0:+.1f}" in proc.stdout
    assert "2 row(s) ran and did not reproduce" in proc.stderr


def test_offline_rows_say_exactly_what_is_missing(tmp_path):
    proc = run_cli(["reproduce", "mmrb2-t2i", "--results", tmp_path, "--json"])
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)[0]["rows"]
    assert {r["verdict"] for r in rows} == {"not run"}
    for r in rows:
        assert r["reason"].startswith(("data:", "not in this prefbench yet:")), r
        if r["reason"].startswith("data:"):
            assert "prefbench download mmrb2 --split t2i --data-dir DIR" in r["reason"]
    proc = run_cli(["reproduce", "mmrb2-t2i", "--results", tmp_path, "--data-dir", tmp_path / "nothing", "--json"])
    reasons = [r["reason"] for r in json.loads(proc.stdout)[0]["rows"] if r["reason"].startswith("data:")]
    assert reasons and all(str(tmp_path / "nothing") in r for r in reasons)


def test_the_report_shows_published_vs_measured(tmp_path, results):
    from prefbench.report import write_report

    run_cli(["reproduce", _fixture_table(tmp_path), "--results", results, "--no-progress"])
    md, html = write_report(results, tmp_path / "out", n_items=0, n_resamples=200)
    text = md.read_text()
    assert "## Published vs measured" in text and "### fixture: A table with rows on and off" in text
    assert "outside CI" in text and "gap " in text
    page = html.read_text()
    assert 'id="reproduce-fixture"' in page and "Published vs measured" in page


def test_only_and_model(tmp_path, results):
    proc = run_cli(["reproduce", "demo", "--only", "no such row", "--results", results])
    assert proc.returncode == 2 and "has no row 'no such row'" in proc.stderr
    proc = run_cli(["reproduce", "demo", "--model", "x", "--results", results])
    assert proc.returncode == 2 and "--only" in proc.stderr
    proc = run_cli(["reproduce", "nosuch", "--results", results])
    assert proc.returncode == 2 and "no reproduce table 'nosuch'" in proc.stderr
    proc = run_cli(["reproduce", "demo", "--only", "random floor", "--results", results, "--no-progress"])
    assert proc.returncode == 0 and "1 reproduced" in proc.stdout
