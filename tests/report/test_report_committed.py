"""The committed demo results: the leaderboard regenerates byte-identically, the committed
baseline passes, and a deliberately worsened run fails the gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fixtures.cli import REPO, run_cli

RESULTS = REPO / "results"
BASELINE = RESULTS / "baseline.json"


def _why_the_leaderboard_differs() -> str:
    """The failure message: the usual cause is a run the user made in this checkout (the report
    reads every run.json under results/), not a stale committed file."""
    import subprocess

    proc = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "--directory", "results"],
                          cwd=REPO, capture_output=True, text=True)
    extra = sorted({str(Path(p).parent) if p.endswith("run.json") else p.rstrip("/")
                    for p in proc.stdout.split()}) if proc.returncode == 0 else []
    if extra:
        return ("`prefbench report` on results/ no longer gives the committed results/leaderboard.md because "
                f"results/ holds runs that are not committed: {', '.join(extra)}. The report reads every run "
                "under results/, so these rows change it. Remove them (`git clean -nd results/` lists what "
                "`git clean -fd results/` deletes) or keep your runs elsewhere with `--results DIR`; regenerate "
                "and commit the leaderboard only when you mean to add runs to the committed results")
    return ("`prefbench report` on the committed runs no longer gives the committed results/leaderboard.md "
            "(no untracked runs under results/): the committed runs or the report's code changed, so "
            "regenerate it with `prefbench report` and commit it with them")


def test_committed_leaderboard_regenerates_byte_identically(tmp_path):
    committed = RESULTS / "leaderboard.md"
    assert committed.is_file(), "results/leaderboard.md is missing: run `prefbench report`"
    proc = run_cli(["report", "--results", RESULTS, "--out", tmp_path, "--items", "0"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "leaderboard.md").read_bytes() == committed.read_bytes(), _why_the_leaderboard_differs()
    assert (tmp_path / "leaderboard.html").stat().st_size > 0


def test_committed_html_regenerates_byte_identically(tmp_path):
    """The README's `prefbench report` rewrites results/leaderboard.html too: on the committed runs
    it must be the committed page, or the command changes a fresh clone."""
    proc = run_cli(["report", "--results", RESULTS, "--out", tmp_path])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "leaderboard.html").read_bytes() == (RESULTS / "leaderboard.html").read_bytes(), \
        _why_the_leaderboard_differs().replace("leaderboard.md", "leaderboard.html")


def test_committed_baseline_passes_on_committed_runs():
    proc = run_cli(["check", "--baseline", BASELINE, "--results", RESULTS])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n = len(json.loads(BASELINE.read_text())["entries"])
    assert f"all {n} baseline entries pass" in proc.stdout


def test_check_fails_on_a_deliberately_worsened_oracle_run(tmp_path):
    """Scores of every third item are negated in a copy of the committed demo_oracle run;
    `prefbench run` on that folder recomputes the metrics from the samples (no scoring); the
    gate then fails on it and still passes on the committed runs."""
    from prefbench.data import load_dataset

    committed = next(RESULTS.glob("demo-test/demo_oracle-*"))
    rec = json.loads((committed / "run.json").read_text())
    if load_dataset("demo", "test").content_hash() != rec["dataset"]["content_hash"]:
        pytest.skip("the demo world changed since results/ was generated: regenerate the committed runs "
                    "(docs/demo-world.md, 'The committed results')")
    worse = tmp_path / "worse" / "demo-test" / committed.name
    shutil.copytree(committed, worse)
    rows = [json.loads(line) for line in (worse / "samples.jsonl").read_text().splitlines()]
    items = sorted({r["item_id"] for r in rows})
    flipped = set(items[::3])
    for r in rows:
        if r["item_id"] in flipped:
            r["score"] = -r["score"]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    assert len(text.encode()) != (committed / "samples.jsonl").stat().st_size  # not the runner's cached path
    (worse / "samples.jsonl").write_text(text)
    proc = run_cli(["run", "--scorer", "demo_oracle", "--dataset", "demo", "--split", "test", "--out", worse,
                    "--no-progress", "--json"])
    assert proc.returncode == 0, proc.stderr
    worse_acc = json.loads(proc.stdout)["accuracy"]
    assert worse_acc < rec["metrics"]["accuracy"] - 0.1

    doc = json.loads(BASELINE.read_text())
    doc["entries"] = [e for e in doc["entries"] if e["scorer"] == "demo_oracle" and e["split"] == "test"]
    subset = tmp_path / "baseline.json"
    subset.write_text(json.dumps(doc))
    proc = run_cli(["check", "--baseline", subset, "--results", tmp_path / "worse"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL (significantly worse" in proc.stdout and f"{worse_acc:.4f}" in proc.stdout
    proc = run_cli(["check", "--baseline", subset, "--results", RESULTS])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_test_halves_script_splits_the_committed_runs():
    """scripts/demo_test_halves.py on the committed runs: the ceiling row's three cells match
    the noise-free utility scored directly on prompts 0-99, on 100-299 and on all 300."""
    import dataclasses
    import subprocess
    import sys

    from prefbench.data import load_dataset
    from prefbench.metrics import accuracy_for

    test = load_dataset("demo", "test", with_images=False)
    assert len(test) == 300
    expected = []
    for items in (test.items[:100], test.items[100:], test.items):
        part = dataclasses.replace(test, items=items)
        utility = {(it.item_id, k): u for it in items for k, u in enumerate(it.meta["utility"])}
        m, _ = accuracy_for(part, utility)
        expected.append(f"{m['accuracy']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "demo_test_halves.py"), "--results", str(RESULTS)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("ceiling"))
    assert [c.strip() for c in row.split("  ") if "[" in c] == expected
    assert "anchor_pairwise - zero_shot:" in proc.stdout
