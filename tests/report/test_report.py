"""`prefbench report`: leaderboard.md and leaderboard.html from run folders."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from prefbench.cli import main
from prefbench.report import write_report
from prefbench.report.markdown import md_escape
from prefbench.report.runs import build_leaderboard, find_runs
from tests.fixtures.cli import run_cli
from tests.fixtures.report import SCRIPT_PROMPT, bernoulli_prompts, hand_run, make_real_runs


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory, plugin_site):
    return make_real_runs(tmp_path_factory.getbasetemp() / "report_real", plugin_site)


@pytest.fixture
def three_runs(tmp_path):
    """A strong, a middling and a weak scorer on the same 60 prompts, plus one unfinished run."""
    results = tmp_path / "results"
    hand_run(results, "demo-test/good", "good", *bernoulli_prompts(0.80, seed=1), model="org/good-model")
    hand_run(results, "demo-test/mid", "mid", *bernoulli_prompts(0.78, seed=2))
    hand_run(results, "demo-test/weak", "weak", *bernoulli_prompts(0.55, seed=3))
    hand_run(results, "demo-test/crashed", "crashy", [1], [1], status="interrupted")
    return results


def _table_rows(md: str, section_start: str) -> list[list[str]]:
    """Cells of the first Markdown table after the line starting with ``section_start``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(section_start))
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
        elif table:
            break
    return table[2:]  # skip header and rule


def test_markdown_ranks_marks_and_lists_unfinished_runs(three_runs, tmp_path):
    assert main(["report", "--results", str(three_runs), "--out", str(tmp_path / "out"),
                 "--bootstrap-resamples", "2000"]) == 0
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    rows = _table_rows(md, "## demo / test")
    assert [(r[2], r[3]) for r in rows] == [("good", "org/good-model"), ("mid", "—"), ("weak", "—")]
    # best row marked; mid is within noise of good (paired p >= 0.05); weak is clearly below
    assert [r[1] for r in rows] == ["★", "≈", ""]
    acc = [float(r[4]) for r in rows]
    assert acc == sorted(acc, reverse=True)
    good = json.loads((three_runs / "demo-test/good/run.json").read_text())
    assert rows[0][4] == f"{good['metrics']['accuracy']:.4f}"
    assert rows[0][5] == f"[{good['metrics']['ci_low']:.4f}, {good['metrics']['ci_high']:.4f}]"
    assert rows[0][6:13] == ["60", "360", "1", "3", "2", "12.5", "2026-01-02"]
    assert rows[0][13:] == ["01234567", "`demo-test/good`"]
    # the matrix: good vs weak is a significant positive difference
    matrix = _table_rows(md, "### Paired comparisons")
    assert matrix[0][0].startswith("#1 good")
    diff, p = re.match(r"([+-][\d.]+) \[.*\] p([=<][\d.]+)", matrix[0][3]).groups()
    assert float(diff) == pytest.approx(acc[0] - acc[2], abs=1e-3)
    assert p == "<0.001" or float(p[1:]) < 0.01
    assert matrix[2][1].startswith("-")  # antisymmetric
    unfinished = _table_rows(md, "## Runs not ranked")
    assert unfinished == [["crashy", "demo/test", "interrupted", "5", "`demo-test/crashed`"]]


def test_markdown_is_byte_identical_across_regenerations_and_locations(three_runs, tmp_path):
    write_report(three_runs, tmp_path / "a", n_items=0, n_resamples=500)
    write_report(three_runs, tmp_path / "b", n_items=0, n_resamples=500)
    moved = tmp_path / "elsewhere" / "results"
    shutil.copytree(three_runs, moved)
    write_report(moved, tmp_path / "c", n_items=0, n_resamples=500)
    a = (tmp_path / "a" / "leaderboard.md").read_bytes()
    assert a == (tmp_path / "b" / "leaderboard.md").read_bytes() == (tmp_path / "c" / "leaderboard.md").read_bytes()
    assert (tmp_path / "a" / "leaderboard.html").read_bytes() == (tmp_path / "c" / "leaderboard.html").read_bytes()
    assert str(tmp_path) not in a.decode()


def test_labels_tell_apart_runs_that_differ_only_in_options(tmp_path):
    for seed in (0, 1):
        hand_run(tmp_path, f"s{seed}", "random", *bernoulli_prompts(0.5, seed=seed), params={"seed": seed, "x": 1})
    board = build_leaderboard(find_runs(tmp_path)[1], n_resamples=200)
    assert sorted(r.label for r in board.groups[0].runs) == ["random (seed=0)", "random (seed=1)"]


def test_splits_and_conventions_get_separate_sections(tmp_path):
    hand_run(tmp_path, "a", "s", *bernoulli_prompts(0.6), split="test")
    hand_run(tmp_path, "b", "s", *bernoulli_prompts(0.6), split="ood")
    hand_run(tmp_path, "c", "s", *bernoulli_prompts(0.6), dataset="hpdv2", convention="hpdv2")
    md = write_report(tmp_path, tmp_path / "out", n_items=0, n_resamples=200)[0].read_text()
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads == ["## demo / ood — imagereward convention", "## demo / test — imagereward convention",
                     "## hpdv2 / test — hpdv2 convention"]
    assert "Paired comparisons" not in md  # one run per split: nothing to compare


def test_runs_on_different_data_are_not_paired(tmp_path):
    hand_run(tmp_path, "a", "one", *bernoulli_prompts(0.7), content_hash="aaaaaaaa11")
    hand_run(tmp_path, "b", "two", *bernoulli_prompts(0.6), content_hash="bbbbbbbb22")
    md_path, html_path = write_report(tmp_path, tmp_path / "out", n_items=1, n_resamples=200)
    md = md_path.read_text()
    assert "2 different versions of the data (content hashes aaaaaaaa, bbbbbbbb)" in md
    matrix = _table_rows(md, "### Paired comparisons")
    assert matrix[0][2] == "different data" and matrix[1][1] == "different data"
    html = html_path.read_text()
    assert "runs #2 scored other data and are not shown here" in html
    # neither hash is the demo split's: the browser says so instead of showing wrong items
    assert "differs from the scored one" in html and 'class="item"' not in html


def test_runs_without_per_prompt_statistics_are_ranked_but_not_paired(tmp_path):
    hand_run(tmp_path, "a", "one", *bernoulli_prompts(0.7))
    old = hand_run(tmp_path, "b", "two", *bernoulli_prompts(0.6))
    rec = json.loads((old / "run.json").read_text())
    del rec["per_prompt"]  # an older record
    (old / "run.json").write_text(json.dumps(rec))
    md = write_report(tmp_path, tmp_path / "out", n_items=0, n_resamples=200)[0].read_text()
    assert [r[2] for r in _table_rows(md, "## demo / test")] == ["one", "two"]
    matrix = _table_rows(md, "### Paired comparisons")
    assert matrix[0][2] == "no per-prompt data" and matrix[1][1] == "no per-prompt data"


def test_markdown_escapes_text_from_models_and_datasets(tmp_path):
    hand_run(tmp_path, "a", "evil", *bernoulli_prompts(0.6), model="<script>x</script>|col`tick`")
    md = write_report(tmp_path, tmp_path / "out", n_items=0, n_resamples=200)[0].read_text()
    assert "<script>" not in md
    rows = _table_rows(md, "## demo / test")
    assert len(rows[0]) == 15  # the pipe in the model id did not split the row
    assert rows[0][3] == md_escape("<script>x</script>|col`tick`") == "&lt;script&gt;x&lt;/script&gt;\\|col\\`tick\\`"


def test_mean_at_k_and_reliability(tmp_path):
    for k, p in ((1, 0.6), (2, 0.66), (4, 0.7)):
        hand_run(tmp_path, f"er-k{k}", "expected_rating", *bernoulli_prompts(p, seed=k), model="m",
                 params={"rollouts": k, "seed": 0})
    bins = [{"bin": b, "mean_prob": b / 10 + 0.05, "freq": min(1.0, b / 10 + 0.1), "count": 10 + b} for b in range(10)]
    hand_run(tmp_path, "ap", "anchor_pairwise", *bernoulli_prompts(0.65, seed=9), model="m",
             extra={"reliability": bins}, params={"seed": 0})
    rec = json.loads((tmp_path / "ap/run.json").read_text())
    rec["metrics"].update(brier=0.2123, ece=0.0456, n_calibration_pairs=120)
    (tmp_path / "ap/run.json").write_text(json.dumps(rec))
    md_path, html_path = write_report(tmp_path, tmp_path / "out", n_items=0, n_resamples=200)
    md = md_path.read_text()
    mk = _table_rows(md, "### Mean@k")
    assert [(r[0], r[1]) for r in mk] == [("expected\\_rating · m", "1"), ("expected\\_rating · m", "2"),
                                          ("expected\\_rating · m", "4")]
    cal = _table_rows(md, "### Calibration")
    assert cal == [[cal[0][0], "anchor\\_pairwise · m", "0.2123", "0.0456", "120"]]
    html = html_path.read_text()
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    kinds = [re.search(r'class="plot ([\w-]+)"', s).group(1) for s in svgs]
    assert kinds == ["ci-plot", "line-plot", "reliability-plot"]
    for s in svgs:  # each plot is well-formed XML
        ET.fromstring(s)
    line = ET.fromstring(svgs[1])
    ns = "{http://www.w3.org/2000/svg}"
    assert len(line.findall(f".//{ns}g[@class='series']/{ns}circle")) == 3
    reliability = ET.fromstring(svgs[2])
    assert len(reliability.findall(f".//{ns}g[@class='series']/{ns}circle")) == 10
    ci = ET.fromstring(svgs[0])
    assert len(ci.findall(f".//{ns}g[@class='ci-row']")) == 4


def test_html_is_self_contained_and_script_free(real_runs, tmp_path):
    _, html_path = write_report(real_runs["results"], tmp_path, n_items=5, n_resamples=300)
    html = html_path.read_text()
    assert "<script" not in html.lower()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs and all(r.startswith(("data:image/jpeg;base64,", "#")) for r in refs)
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    # the <script> prompt is shown, as text
    assert SCRIPT_PROMPT.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        '"', "&quot;") in html
    # every image of the 5 items is an inline thumbnail
    assert html.count('src="data:image/jpeg;base64,') == 5 * 4
    assert "showing the first 5 of 30 items" in html


def test_item_browser_shows_scores_traces_and_escapes_them(real_runs, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(real_runs["results"], results)
    run_dir = next(p.parent for p in results.rglob("run.json") if "coin_pairwise" in p.parent.name)
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    evil = "step 1 </pre><script>alert(1)</script> & so on"
    for row in samples:
        where = f"{row['item_id']}/{row['image_index']}"
        row.setdefault("detail", {})["traces"] = [evil, f"trace two of {where}"]
        # the VLM scorers' format: one record per rollout, its reasoning text included
        row["detail"]["rollouts"] = [
            {"text": f"<think>rollout one of {where}</think><answer>1</answer>", "order": "anchor_first",
             "score": 0.25, "forced": True, "generated_tokens": 9},
            {"text": "rollout two", "order": "candidate_first", "score": 0.75, "generated_tokens": 3}]
        row["detail"]["rollout_scores"] = [0.25, 0.75]
        row["detail"]["generated_tokens"] = 12
    samples[1]["status"], samples[1]["score"], samples[1]["error"] = "unparsed", None, "no <answer> tag"
    (run_dir / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in samples))
    html = write_report(results, tmp_path / "out", n_items=2, n_resamples=300)[1].read_text()
    assert "<script" not in html
    assert "step 1 &lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; so on" in html
    assert "trace two of p000/0" in html and "trace two of p001/3" in html
    assert "trace two of p002/0" not in html  # only the 2 items shown are read
    assert "rollouts: 0.25, 0.75" in html
    assert "image 3 · rollout 1 (anchor_first, score 0.25, forced)</summary><pre>&lt;think&gt;rollout one of p001/3" in html
    assert "rollout 2 (candidate_first, score 0.75)</summary><pre>rollout two</pre>" in html
    assert "generated_tokens: 12" in html and "prob: " not in html  # other detail shown, duplicates not
    assert 'title="no &lt;answer&gt; tag">unparsed' in html
    first = samples[0]
    assert f"{first['score']:.4f}" in html
    assert "anchor" in html  # the anchor image of the anchor-pairwise run is flagged


def test_item_browser_survives_broken_samples(real_runs, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(real_runs["results"], results)
    broken, missing = sorted(p.parent for p in results.rglob("run.json") if "random" in p.parent.name)
    (broken / "samples.jsonl").write_text('{"no_item_id": 1}\n')
    (missing / "samples.jsonl").unlink()
    html = write_report(results, tmp_path / "out", n_items=1, n_resamples=200)[1].read_text()
    rel = lambda p: p.relative_to(results).as_posix()  # noqa: E731
    assert f"{rel(broken)}: unreadable samples.jsonl, line 1: bad row (no item_id); its scores are not shown" in html
    assert f"{rel(missing)}: no samples.jsonl; its scores are not shown" in html
    assert html.count('<td class="missing">n/a</td>') == 2 * 4  # two runs x four images of the item


def test_item_browser_notes_a_dataset_that_changed(real_runs, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(real_runs["results"], results)
    data = tmp_path / "changed" / "test.jsonl"
    data.parent.mkdir()
    lines = real_runs["data"].read_text().splitlines()
    data.write_text("\n".join(lines[:-1]) + "\n")
    for run_json in results.rglob("run.json"):
        rec = json.loads(run_json.read_text())
        assert rec["dataset"]["source"] == "test.jsonl"  # relative to the recorded data dir
        rec["dataset"]["data_dir"] = str(data.parent)
        run_json.write_text(json.dumps(rec))
    html = write_report(results, tmp_path / "out", n_items=3, n_resamples=300)[1].read_text()
    assert "differs from the scored one" in html
    assert "data:image/jpeg" not in html


@pytest.mark.parametrize("breakage, message", [
    (lambda rec: "{not json", "invalid JSON"),
    (lambda rec: {k: v for k, v in rec.items() if k != "schema_version"}, "no schema_version"),
    (lambda rec: {**rec, "schema_version": 99}, "schema_version 99"),
    (lambda rec: {**rec, "metrics": {k: v for k, v in rec["metrics"].items() if k != "accuracy"}},
     "missing field 'metrics.accuracy'"),
    (lambda rec: {**rec, "scorer": {}}, "missing field 'scorer.name'"),
    (lambda rec: {**rec, "per_prompt": {"item_ids": ["a"], "num": [1, 2], "den": [1, 1]}}, "differ in length"),
])
def test_malformed_run_json_is_exit_2_naming_the_file(tmp_path, breakage, message):
    hand_run(tmp_path / "results", "ok-run", "fine", *bernoulli_prompts(0.6))
    hand_run(tmp_path / "results", "other", "fine2", *bernoulli_prompts(0.6))
    bad = tmp_path / "results" / "other" / "run.json"
    broken = breakage(json.loads(bad.read_text()))
    bad.write_text(broken if isinstance(broken, str) else json.dumps(broken))
    proc = run_cli(["report", "--results", tmp_path / "results", "--out", tmp_path / "out",
                    "--bootstrap-resamples", "100"])
    assert proc.returncode == 2, proc.stderr
    assert str(bad) in proc.stderr and message in proc.stderr
    assert not (tmp_path / "out" / "leaderboard.md").exists()


def test_empty_results_and_bad_options_are_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_cli(["report", "--results", tmp_path / "empty"])
    assert proc.returncode == 2 and "no run.json files found" in proc.stderr
    proc = run_cli(["report", "--results", tmp_path / "nope"])
    assert proc.returncode == 2 and "no such results folder" in proc.stderr
    hand_run(tmp_path / "r", "a", "s", *bernoulli_prompts(0.6))
    proc = run_cli(["report", "--results", tmp_path / "r", "--items", "-1"])
    assert proc.returncode == 2 and "--items" in proc.stderr


def test_report_on_real_runs_ranks_the_skilled_scorer_first(real_runs, tmp_path):
    proc = run_cli(["report", "--results", real_runs["results"], "--out", tmp_path, "--items", "0",
                    "--bootstrap-resamples", "1000"])
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "leaderboard.md").read_text()
    rows = _table_rows(md, "## jsonl / test")
    assert [r[2] for r in rows][0] == "coin\\_pairwise"
    assert sorted(r[2] for r in rows[1:]) == ["random (seed=0)", "random (seed=1)"]
    recs = {json.loads(p.read_text())["scorer"]["name"]: json.loads(p.read_text())
            for p in real_runs["results"].rglob("run.json") if "coin" in str(p)}
    assert rows[0][4] == f"{recs['coin_pairwise']['metrics']['accuracy']:.4f}"
    # calibration comes from the real anchor-pairwise run
    cal = _table_rows(md, "### Calibration")
    assert cal[0][2] == f"{recs['coin_pairwise']['metrics']['brier']:.4f}"
    assert np.isfinite(float(cal[0][3]))


def test_controls_bidi_overrides_and_huge_prompts_are_shown_inert(tmp_path):
    from prefbench.report.markdown import PROMPT_CHARS, md_escape, shown_text

    nasty = "safe\x00text\u202eevil\x1b[31m"
    assert shown_text(nasty) == "safe\\u0000text\\u202eevil\\u001b[31m"
    assert "\u202e" not in md_escape(nasty) and "\x00" not in md_escape(nasty)
    huge = "x" * 1_000_000
    assert len(shown_text(huge)) < PROMPT_CHARS + 60 and "1000000 characters in all" in shown_text(huge)
    assert shown_text("a\tb\nc") == "a\tb\nc"  # ordinary whitespace stays


def test_a_limited_run_says_so_on_the_leaderboard(tmp_path):
    """`prefbench run --limit 20` scores the first 20 items: the report's section says so, in the
    Markdown and the HTML, naming the rows (issue 30 item 10)."""
    hand_run(tmp_path / "full", "demo-test/full", "good", *bernoulli_prompts(0.8, seed=1))
    shutil.copytree(tmp_path / "full", tmp_path / "both")
    hand_run(tmp_path / "both", "demo-test/lim", "random", *bernoulli_prompts(0.5, n=20, seed=2),
             extra={"dataset": {"name": "demo", "split": "test", "content_hash": "hash-b", "n_items": 20,
                                "source": "", "note": "", "limit": 20}})
    md_path, html_path = write_report(tmp_path / "both", tmp_path / "out", n_items=0, n_resamples=200)
    note = "run #2: --limit 20, so only the split's first 20 items were scored; the accuracy is not the whole split's"
    assert f"> {note}" in md_path.read_text()
    assert note.replace("'", "&#x27;") in html_path.read_text()
    assert "--limit" not in write_report(tmp_path / "full", tmp_path / "o2", n_items=0,
                                         n_resamples=200)[0].read_text()


def test_null_parameters_are_not_labels(tmp_path):
    """A run of an older prefbench recorded options that are null today (share_images=null): the
    report neither shows them nor lets them split a Mean@k series (issue 30 item 10)."""
    hand_run(tmp_path, "k1", "expected_rating", *bernoulli_prompts(0.6, seed=1), model="m",
             params={"rollouts": 1, "seed": 0, "share_images": None})
    hand_run(tmp_path, "k3", "expected_rating", *bernoulli_prompts(0.65, seed=2), model="m",
             params={"rollouts": 3, "seed": 0})
    hand_run(tmp_path, "s1", "random", *bernoulli_prompts(0.5, seed=3), params={"seed": 1, "x": None})
    hand_run(tmp_path, "s2", "random", *bernoulli_prompts(0.5, seed=4), params={"seed": 2})
    md_path, html_path = write_report(tmp_path, tmp_path / "out", n_items=0, n_resamples=200)
    md = md_path.read_text()
    assert "null" not in md and "null" not in html_path.read_text()
    assert [(r[0], r[1]) for r in _table_rows(md, "### Mean@k")] == [("expected\\_rating · m", "1"),
                                                                    ("expected\\_rating · m", "3")]
    labels = sorted(r.label for r in build_leaderboard(find_runs(tmp_path)[1], n_resamples=200).groups[0].runs)
    assert "random (seed=1)" in labels and "random (seed=2)" in labels


def test_item_browser_columns_name_their_runs(real_runs, tmp_path):
    """The browser's score columns carry the run's label under #N, not #N alone."""
    html = write_report(real_runs["results"], tmp_path, n_items=1, n_resamples=300)[1].read_text()
    board = build_leaderboard(find_runs(real_runs["results"])[1], n_resamples=300)
    table = html[html.index('<table class="images">'):]
    table = table[:table.index("</thead>")]
    for i, r in enumerate(board.groups[0].runs):
        label = r.label.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert f'>#{i + 1}<div class="sub">{label}</div></th>' in table
