"""Token accounting: prompt, vision and generated tokens per image and per run, load and scoring
time, the model's size, and the report's utilisation table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.extras import skip_without_extra

skip_without_extra("vlm")


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("scorer", "budget"), [("expected_rating", 16), ("anchor_pairwise", 0)])
def test_transformers_runs_record_prompt_vision_and_generated_tokens(tmp_path, scorer, budget):
    from transformers import AutoModelForImageTextToText

    from prefbench.demo_zoo import bundled_model

    out = tmp_path / "run"
    proc = run_cli(["run", "--scorer", scorer, "--dataset", "demo", "--limit", "3", "-S", f"max_new_tokens={budget}",
                    "--out", out, "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    # every scored image but an anchor (0.5 by definition, no prompt of its own)
    rows = [r for r in _rows(out) if r["status"] == "ok" and not (r.get("detail") or {}).get("anchor")]
    assert rows
    model_dir = bundled_model(scorer)
    shown = 1 if scorer == "expected_rating" else 2  # a rating prompt shows one image, a comparison two
    for r in rows:
        assert r["prompt_tokens"] > r["vision_tokens"] > 0
        assert r["vision_tokens"] % shown == 0  # each image's placeholders: one block per image shown
        assert r["generated_tokens"] >= 0
    record = json.loads((out / "run.json").read_text())
    tp = record["throughput"]
    assert tp["prompt_tokens"] == sum(r.get("prompt_tokens") or 0 for r in _rows(out))
    assert tp["vision_tokens"] == sum(r.get("vision_tokens") or 0 for r in _rows(out))
    assert tp["prompt_tokens_per_s"] > 0 and tp["setup_s"] > 0
    n_params = sum(p.numel() for p in AutoModelForImageTextToText.from_pretrained(model_dir).parameters())
    assert record["scorer_summary"]["engine"]["n_parameters"] == n_params
    assert "accelerator" not in record  # scored on the CPU
    # the report shows it
    proc = run_cli(["report", "--results", tmp_path, "--items", "0"])
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "leaderboard.md").read_text()
    assert "### Tokens and utilisation" in md and f"{tp['prompt_tokens']:,}" in md
    assert "Tokens and utilisation" in (tmp_path / "leaderboard.html").read_text()


def test_openai_runs_record_the_servers_prompt_tokens(tmp_path):
    skip_without_extra("openai")
    from tests.fixtures.openai_fakes import FakeServer

    out = tmp_path / "run"
    with FakeServer() as srv:  # it reports usage.prompt_tokens = 50 for every request
        proc = run_cli(["run", "--scorer", "expected_rating", "--engine", "openai", "--base-url", srv.url,
                        "--model", "fake", "--dataset", "demo", "--limit", "2", "--out", out, "--no-progress",
                        "-S", "rollouts=2", "-S", "temperature=1.0"], env_extra={"OPENAI_API_KEY": "x"})
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out)
    assert rows and all(r["prompt_tokens"] == 2 * 50 for r in rows)  # two rollouts, each one prompt
    assert all("vision_tokens" not in r for r in rows)  # a server does not say: not written, never 0
    assert json.loads((out / "run.json").read_text())["throughput"]["prompt_tokens"] == 100 * len(rows)
