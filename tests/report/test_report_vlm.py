"""The report over real VLM scorer runs (the tiny offline Qwen2.5-VL): Mean@k from runs that
differ only in ``rollouts``, the reliability diagram of anchor_pairwise, and the reasoning text
of every rollout in the item browser."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("vlm")

from prefbench.report import write_report  # noqa: E402
from prefbench.runner import RunConfig, run  # noqa: E402


@pytest.mark.slow
def test_report_over_real_vlm_runs(tiny_vlm_dir, tmp_path):  # noqa: F811
    results = tmp_path / "results"
    common = dict(model=str(tiny_vlm_dir), dataset="demo", limit=2, progress=False, bootstrap_resamples=200,
                  results_root=str(results))
    recs = [run(RunConfig(scorer="expected_rating", rollouts=k, params={"max_new_tokens": 4}, **common),
                log=lambda m: None) for k in (1, 2)]
    recs.append(run(RunConfig(scorer="anchor_pairwise", params={"max_new_tokens": 4}, **common), log=lambda m: None))
    md_path, html_path = write_report(results, tmp_path / "out", n_items=1, n_resamples=200)
    md = md_path.read_text()
    mean_at_k = md.split("### Mean@k")[1].split("###")[0]
    rows = [line for line in mean_at_k.splitlines() if line.startswith("| expected")]
    assert [row.split(" | ")[1] for row in rows] == ["1", "2"]
    for rec, row in zip(recs[:2], rows, strict=True):
        assert f"{rec['metrics']['accuracy']:.4f}" in row
    assert f"{recs[2]['metrics']['brier']:.4f}" in md.split("### Calibration")[1]

    html = html_path.read_text()
    assert re.findall(r'<svg class="plot ([\w-]+)"', html) == ["ci-plot", "line-plot", "reliability-plot"]
    # every rollout's reasoning text of the one shown item is in the browser, escaped
    first_item = recs[0]["per_prompt"]["item_ids"][0]
    n_texts = 0
    for rec in recs:
        for line in (Path(rec["run_dir"]) / "samples.jsonl").read_text().splitlines():
            row = json.loads(line)
            if row["item_id"] != first_item:
                continue
            for roll in row["detail"].get("rollouts", []):  # the anchor image has no rollout
                assert f"<pre>{escape(roll['text'], quote=True)}</pre>" in html
                n_texts += 1
    assert n_texts >= 3 * 4 - 1  # 3 runs x at least 4 images (less the anchor), one rollout or more each
    assert "<script" not in html
