"""The ``judge`` scorer on tiny random checkpoints of two families (Qwen2.5-VL and Gemma 3), through
``prefbench run`` on the demo world: every image gets a score and a status, every judgement's text,
parse and policy is in its sample row, and the run's scorer summary names the protocol, the template's
hash, the policy and the parse-failure count. A random model writes no verdict, so the hard read-out
is all parse failures (UnifiedReward-Think's official policy makes them ties) and the soft read-out
is forced to ``<answer>Image `` and read there."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.extras import skip_without_extra

TEMPLATE = ("Compare the two images for the caption {prompt}. Reason in <think></think>, then answer "
            "<answer>Image 1 is better</answer> or <answer>Image 2 is better</answer>.")


@pytest.fixture(scope="module")
def gemma3_dir(tmp_path_factory):
    skip_without_extra("vlm")
    from prefbench.testing.tiny_families import build_tiny_family

    return build_tiny_family("gemma3", tmp_path_factory.mktemp("gemma3") / "model")


@pytest.fixture
def template(tmp_path):
    path = tmp_path / "think.txt"
    path.write_text(TEMPLATE)
    return path


def _run(model, template, tmp_path, *extra):
    tmp_path.mkdir(exist_ok=True)
    proc = run_cli(["run", "--scorer", "judge", "-S", "protocol=unifiedreward_think", "-S", "mode=anchor",
                    "-S", f"template={template}", "-S", "max_new_tokens=4", *extra, "--model", model,
                    "--dataset", "demo", "--limit", "2", "--results", tmp_path, "--json", "--no-progress",
                    "--bootstrap-resamples", "50"], cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    run_dir = tmp_path / out["run_dir"]
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    return out, json.loads((run_dir / "run.json").read_text()), rows


@pytest.mark.parametrize("family", ["qwen2_5_vl", "gemma3"])
def test_judge_anchor_mode_on_a_tiny_model_scores_every_image(family, tiny_vlm_dir, gemma3_dir, template, tmp_path):
    model = tiny_vlm_dir if family == "qwen2_5_vl" else gemma3_dir
    out, rec, rows = _run(model, template, tmp_path)
    from prefbench.data import load_dataset

    assert out["status"] == "complete"
    assert len(rows) == sum(it.n_images for it in load_dataset("demo", None, None).items[:2])
    assert all(r["status"] == "ok" and r["score"] is not None for r in rows)
    anchors = [r for r in rows if r["detail"].get("anchor")]
    assert len(anchors) == 2 and all(r["score"] == 0.5 for r in anchors)
    for r in rows:
        if r["detail"].get("anchor"):
            continue
        [j] = r["detail"]["judgements"]
        # random weights write no <answer>: a parse failure, a tie under the official (neutral) policy
        assert j["status"] == "parse_failure" and j["policy"] == "neutral" and r["score"] == 0.5
        assert isinstance(j["text"], str) and j["parsed"]["ok"] is False
    s = rec["scorer_summary"]
    assert s["protocol"] == "unifiedreward_think" and s["policy"] == "neutral" and s["readout"] == "hard"
    assert s["template"]["sha256"] == hashlib.sha256(TEMPLATE.encode()).hexdigest()
    assert s["n_parse_failures"] == s["n_judgements"] == len(rows) - 2

    # soft: forced to "<answer>Image " and read there; P(candidate beats the anchor) in (0, 1)
    out, rec, rows = _run(model, template, tmp_path / "soft", "-S", "readout=soft")
    for r in rows:
        assert r["status"] == "ok" and 0 < r["score"] < 1
        if not r["detail"].get("anchor"):
            [j] = r["detail"]["judgements"]
            # forced: the text is the reasoning, the forced prefix and the sampled answer token
            assert j["forced"] and "\n</think>\n<answer>Image " in j["text"]
            assert set(j["answer_probs"]) <= {"1", "2"}
            assert r["prob"] == r["score"]
    assert rec["scorer_summary"]["answer_position"]["prefix"] == "<answer>Image "
    assert "brier" in out  # the runner's calibration reads prob vs anchor_index


def test_wrong_policy_leaves_failed_images_unscored(tiny_vlm_dir, template, tmp_path):
    proc = run_cli(["run", "--scorer", "judge", "-S", "protocol=unifiedreward_think", "-S", f"template={template}",
                    "-S", "max_new_tokens=4", "-S", "on_parse_failure=wrong", "--model", tiny_vlm_dir,
                    "--dataset", "demo", "--limit", "2", "--results", tmp_path, "--no-progress"],
                    cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1"})
    # every judgement failed and counts wrong: no image has a score, and the run says why
    assert proc.returncode != 0 and "counts wrong (on_parse_failure=wrong)" in proc.stderr
    [samples] = list(tmp_path.glob("demo-test/judge-*/samples.jsonl"))
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert rows and all(r["status"] == "unparsed" and r["score"] is None for r in rows)
    assert all(r["detail"]["judgements"][0]["policy"] == "wrong" for r in rows if not r["detail"].get("anchor"))
    # the run's texts, read again by `evaluate --judge-outputs` under the official policy: no re-inference
    proc = run_cli(["evaluate", "--dataset", "demo", "--judge-outputs", samples, "--protocol", "unifiedreward_think",
                    "--json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["n_judgements"] == out["n_parse_failures"] == len(rows) - 2 and out["policy"] == "neutral"
