"""`prefbench check`: the CI regression gate."""

from __future__ import annotations

import json
import shutil

import pytest

from prefbench.cli import main
from prefbench.report.check import check_entry, load_baseline, run_check, write_baseline
from prefbench.report.runs import find_runs
from tests.fixtures.cli import run_cli
from tests.fixtures.report import bernoulli_prompts, hand_run, make_real_runs


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory, plugin_site):
    return make_real_runs(tmp_path_factory.getbasetemp() / "report_real", plugin_site)


def _check(args, capsys):
    rc = main(["check", *map(str, args), "--bootstrap-resamples", "2000"])
    return rc, capsys.readouterr()


def test_write_baseline_then_check_passes_on_the_same_runs(real_runs, tmp_path, capsys):
    baseline = tmp_path / "ci" / "baseline.json"
    rc, out = _check(["--baseline", baseline, "--results", real_runs["results"], "--write-baseline"], capsys)
    assert rc == 0 and "3 entries" in out.out
    doc = json.loads(baseline.read_text())
    assert doc["format"] == "prefbench-baseline" and doc["version"] == 1
    entries = {(e["scorer"], e["params"].get("seed"), e["params"].get("skill")): e for e in doc["entries"]}
    assert set(entries) == {("random", 0, None), ("random", 1, None), ("coin_pairwise", 0, 0.9)}
    coin = entries[("coin_pairwise", 0, 0.9)]
    rec = json.loads(next(p for p in real_runs["results"].rglob("run.json") if "coin" in str(p)).read_text())
    assert coin["accuracy"] == rec["metrics"]["accuracy"] and coin["per_prompt"] == rec["per_prompt"]
    assert coin["content_hash"] == rec["dataset"]["content_hash"]

    rc, out = _check(["--baseline", baseline, "--results", real_runs["results"]], capsys)
    assert rc == 0, out.out
    assert "all 3 baseline entries pass" in out.out
    assert out.out.count("paired (30 prompts)") == 3 and "+0.0000" in out.out
    # p is labelled as what it is: an unchanged run's 1.000 is a share of resamples, not P(worse)
    assert "p(worse)" not in out.out and "p one-sided" in out.out.splitlines()[0]
    assert "p one-sided: the share of paired-bootstrap resamples with current >= baseline" in out.out

    rc, out = _check(["--baseline", baseline, "--results", real_runs["results"], "--json"], capsys)
    rows = json.loads(out.out)
    assert rc == 0 and [r["verdict"] for r in rows] == ["PASS"] * 3
    assert {r["run"] for r in rows} == {e["run"] for e in doc["entries"]}
    assert all(r["difference"] == 0 and r["p_worse"] == 1.0 for r in rows)


def test_check_fails_on_a_deliberately_worse_run(real_runs, tmp_path, capsys):
    """The baseline entry for coin_pairwise names no options, so the skill-0 run in `worse`
    matches it: a real run of the same scorer that got worse."""
    baseline = tmp_path / "baseline.json"
    write_baseline(baseline, find_runs(real_runs["results"])[1])
    doc = json.loads(baseline.read_text())
    entry = next(e for e in doc["entries"] if e["scorer"] == "coin_pairwise")
    del entry["params"]
    baseline.write_text(json.dumps({**doc, "entries": [entry]}))
    proc = run_cli(["check", "--baseline", baseline, "--results", real_runs["worse"], "--bootstrap-resamples", "2000"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("0 "))
    assert "FAIL (significantly worse (p < 0.05))" in line and "paired (30 prompts)" in line
    assert "1 of 1 baseline entries failed" in proc.stdout

    # the same comparison without per-prompt statistics falls back to the CI rule, and still fails
    del entry["per_prompt"]
    baseline.write_text(json.dumps({**doc, "entries": [entry]}))
    rc, out = _check(["--baseline", baseline, "--results", real_runs["worse"]], capsys)
    assert rc == 1 and "CI rule" in out.out and "FAIL" in out.out

    # and the baseline still passes against its own results folder
    rc, out = _check(["--baseline", baseline, "--results", real_runs["results"]], capsys)
    assert rc == 0 and "PASS" in out.out


def test_paired_test_sees_what_the_ci_rule_misses(tmp_path):
    """A small but consistent drop on the same prompts: the paired test catches it, the
    (independent-samples) CI rule does not."""
    num, den = bernoulli_prompts(0.75, n=200, seed=4)
    worse = num.copy()
    worse[::8] = worse[::8] - 1  # one pair fewer right on every 8th prompt: about -2 points
    old, new = tmp_path / "old", tmp_path / "new"
    hand_run(old, "r", "s", num, den)
    hand_run(new, "r", "s", worse, den)
    baseline = tmp_path / "b.json"
    write_baseline(baseline, find_runs(old)[1])
    runs = find_runs(new)[1]
    paired = run_check(baseline, runs, n_resamples=2000)[0]
    assert paired.method == "paired (200 prompts)" and paired.verdict == "FAIL"
    assert paired.difference == pytest.approx((worse.sum() - num.sum()) / den.sum())
    entry = load_baseline(baseline)[0]
    del entry["per_prompt"]
    ci_rule = check_entry(entry, 0, runs[0], 0.05, 2000, baseline)
    assert ci_rule.method == "CI rule" and ci_rule.verdict == "PASS" and ci_rule.p_worse > 0.05
    assert ci_rule.difference == pytest.approx(paired.difference)


def test_alpha_and_noise(tmp_path):
    base, cur = tmp_path / "base", tmp_path / "cur"
    hand_run(base, "r", "s", *bernoulli_prompts(0.70, seed=1))
    hand_run(cur, "r", "s", *bernoulli_prompts(0.70, seed=2))  # same skill, different luck
    baseline = tmp_path / "b.json"
    write_baseline(baseline, find_runs(base)[1])
    row = run_check(baseline, find_runs(cur)[1], alpha=0.05, n_resamples=2000)[0]
    assert row.method.startswith("paired") and row.verdict == "PASS"
    strict = run_check(baseline, find_runs(cur)[1], alpha=min(0.99, row.p_worse + 0.01), n_resamples=2000)[0]
    assert strict.verdict == "FAIL"
    with pytest.raises(Exception, match="--alpha"):
        run_check(baseline, find_runs(cur)[1], alpha=1.5)


def test_different_data_uses_the_ci_rule(tmp_path):
    base, cur = tmp_path / "base", tmp_path / "cur"
    hand_run(base, "r", "s", *bernoulli_prompts(0.8, seed=1), content_hash="v1")
    hand_run(cur, "r", "s", *bernoulli_prompts(0.5, seed=2), content_hash="v2")
    baseline = tmp_path / "b.json"
    write_baseline(baseline, find_runs(base)[1])
    row = run_check(baseline, find_runs(cur)[1], n_resamples=500)[0]
    assert row.method == "CI rule (different data)" and row.verdict == "FAIL"


def test_unfinished_run_fails_the_gate(tmp_path, capsys):
    base, cur = tmp_path / "base", tmp_path / "cur"
    hand_run(base, "r", "s", *bernoulli_prompts(0.8))
    hand_run(cur, "r", "s", [1], [1], status="interrupted")
    baseline = tmp_path / "b.json"
    write_baseline(baseline, find_runs(base)[1])
    rc, out = _check(["--baseline", baseline, "--results", cur], capsys)
    assert rc == 1 and "FAIL (run is interrupted)" in out.out


def test_no_match_and_ambiguous_match_are_exit_2(tmp_path):
    base = tmp_path / "base"
    hand_run(base, "a", "s", *bernoulli_prompts(0.8), params={"seed": 0})
    baseline = tmp_path / "b.json"
    write_baseline(baseline, find_runs(base)[1])
    other = tmp_path / "other"
    hand_run(other, "x", "different_scorer", *bernoulli_prompts(0.8))
    proc = run_cli(["check", "--baseline", baseline, "--results", other])
    assert proc.returncode == 2
    assert str(baseline) in proc.stderr and "entry 0 (scorer='s'" in proc.stderr and "matches no run" in proc.stderr

    two = tmp_path / "two"
    hand_run(two, "a", "s", *bernoulli_prompts(0.8), params={"seed": 0})
    hand_run(two, "b", "s", *bernoulli_prompts(0.8), params={"seed": 1})
    doc = json.loads(baseline.read_text())
    del doc["entries"][0]["params"]
    baseline.write_text(json.dumps(doc))
    proc = run_cli(["check", "--baseline", baseline, "--results", two])
    assert proc.returncode == 2 and "matches 2 runs (a, b)" in proc.stderr

    # two stored copies of one configuration cannot both become baseline entries
    shutil.copytree(two / "a", two / "a-copy")
    proc = run_cli(["check", "--baseline", tmp_path / "new.json", "--results", two, "--write-baseline"])
    assert proc.returncode == 2 and "could not tell them apart" in proc.stderr


@pytest.mark.parametrize("content, message", [
    ("{broken", "invalid JSON"),
    (json.dumps({"entries": []}), "not a prefbench baseline"),
    (json.dumps({"format": "prefbench-baseline", "version": 7, "entries": [{}]}), "version 7"),
    (json.dumps({"format": "prefbench-baseline", "version": 1, "entries": []}), "non-empty list"),
    (json.dumps({"format": "prefbench-baseline", "version": 1, "entries": [{"scorer": "s"}]}),
     "entry 0: 'dataset' is missing"),
    (json.dumps({"format": "prefbench-baseline", "version": 1, "entries": [
        {"scorer": "s", "dataset": "d", "split": "t", "accuracy": 0.9, "ci_low": 0.1, "ci_high": 0.5}]}),
     "ci_low <= accuracy <= ci_high"),
    (json.dumps({"format": "prefbench-baseline", "version": 1, "entries": [
        {"scorer": "s", "dataset": "d", "split": "t", "accuracy": 0.3, "ci_low": 0.1, "ci_high": 0.5,
         "per_prompt": {"item_ids": ["a"], "num": [1]}}]}), "per_prompt needs lists"),
])
def test_malformed_baseline_is_exit_2_naming_the_file(tmp_path, content, message):
    hand_run(tmp_path / "results", "a", "s", *bernoulli_prompts(0.8))
    baseline = tmp_path / "baseline.json"
    baseline.write_text(content)
    proc = run_cli(["check", "--baseline", baseline, "--results", tmp_path / "results"])
    assert proc.returncode == 2, proc.stdout
    assert str(baseline) in proc.stderr and message in proc.stderr


def test_missing_baseline_file_is_exit_2(tmp_path):
    hand_run(tmp_path / "results", "a", "s", *bernoulli_prompts(0.8))
    proc = run_cli(["check", "--baseline", tmp_path / "none.json", "--results", tmp_path / "results"])
    assert proc.returncode == 2 and "baseline file not found" in proc.stderr
