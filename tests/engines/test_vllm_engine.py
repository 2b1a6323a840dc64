"""The in-process vLLM engine (``--engine vllm``) against the transformers engine, both run by
``DIR/bin/prefbench`` in the vLLM venv made by ``scripts/setup_vllm_env.sh`` (same torch and
transformers for both, so a difference is the engine's own).

Parity: prefill-only soft scores (``-S max_new_tokens=0``) of the two engines agree within 1e-3
on the tiny Qwen2.5-VL (expected_rating and anchor_pairwise) and on the bundled demo rating
model; with reasoning, every image is ok, forced rollouts are flagged and their text carries
the forced suffix, exactly as the transformers engine does it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from prefbench.testing.vllm_server import find_vllm_python

VLLM_PYTHON, WHY_NOT = find_vllm_python()
REQUIRED = os.environ.get("PREFBENCH_REQUIRE_VLLM", "") not in ("", "0")
pytestmark = [pytest.mark.vllm,
              pytest.mark.skipif(VLLM_PYTHON is None and not REQUIRED, reason=f"vLLM engine tests need vLLM: {WHY_NOT}")]

TOL = 1e-3


def _prefbench(args, tmp_path, timeout=900):
    if VLLM_PYTHON is None:
        pytest.fail(f"PREFBENCH_REQUIRE_VLLM is set, but {WHY_NOT}")
    exe = VLLM_PYTHON.parent / "prefbench"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_ENABLE_V1_MULTIPROCESSING="0",
               VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", PYTHONWARNINGS="ignore")
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc, time.perf_counter() - t0


def _run(tmp_path, engine, scorer, model, extra=(), limit=4):
    out = tmp_path / f"{engine}-{scorer}"
    _prefbench(["run", "--scorer", scorer, "--model", model, "--engine", engine, "--dataset", "demo",
                "--limit", limit, "--out", out, "--no-progress", "--json", "-S", "dtype=float32",
                *(x for s in extra for x in ("-S", s))], tmp_path)
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return {(r["item_id"], r["image_index"]): r for r in rows}, json.loads((out / "run.json").read_text())


@pytest.mark.parametrize("scorer", ["expected_rating", "anchor_pairwise"])
def test_prefill_scores_equal_the_transformers_engine(scorer, tiny_vlm_dir, tmp_path):
    hf, _ = _run(tmp_path, "transformers", scorer, tiny_vlm_dir, ["max_new_tokens=0"])
    vl, rec = _run(tmp_path, "vllm", scorer, tiny_vlm_dir, ["max_new_tokens=0"])
    assert hf.keys() == vl.keys()
    assert all(r["status"] == "ok" for r in [*hf.values(), *vl.values()])
    diffs = [abs(hf[k]["score"] - vl[k]["score"]) for k in hf]
    assert max(diffs) < TOL, f"max |vllm - transformers| = {max(diffs):.2e}"
    assert rec["model"]["engine"] == "vllm" and rec["scorer"]["engine"] == "vllm"
    summary = rec["scorer_summary"]["engine"]
    assert summary["name"] == "vllm" and summary["missing_answer_tokens"] == 0
    if scorer == "anchor_pairwise":
        assert rec["scorer_summary"]["anchor_kv_prefix_sharing"] is True
        assert all(vl[k].get("anchor_index") == hf[k].get("anchor_index") for k in hf)


def test_reasoning_follows_the_same_read_out_rules(tiny_vlm_dir, tmp_path):
    # a 6-token budget: every rollout of the random model runs out and is forced
    hf, _ = _run(tmp_path, "transformers", "expected_rating", tiny_vlm_dir, ["max_new_tokens=6"], limit=2)
    vl, rec = _run(tmp_path, "vllm", "expected_rating", tiny_vlm_dir, ["max_new_tokens=6", "rollouts=2"], limit=2)
    assert hf.keys() == vl.keys()
    for k, row in vl.items():
        assert row["status"] == hf[k]["status"] == "ok"
        assert row["forced"] is True and hf[k]["forced"] is True
        for roll in row["detail"]["rollouts"]:
            assert roll["forced"] and roll["text"].endswith("</think>\n<answer>" + roll["text"][-1:])
            assert 1.0 <= roll["score"] <= 5.0 and roll["generated_tokens"] >= 6
    assert rec["counts"]["forced"] == len(vl) and rec["scorer_summary"]["engine"]["forced"] == 2 * len(vl)


def test_the_demo_rating_model_agrees_across_engines(tmp_path):
    hf, _ = _run(tmp_path, "transformers", "expected_rating", "prefbench-demo/rating", ["max_new_tokens=0"], limit=20)
    vl, _ = _run(tmp_path, "vllm", "expected_rating", "prefbench-demo/rating", ["max_new_tokens=0"], limit=20)
    diffs = [abs(hf[k]["score"] - vl[k]["score"]) for k in hf]
    assert max(diffs) < TOL, f"max |vllm - transformers| = {max(diffs):.2e} over {len(diffs)} images"



THINK_TEMPLATE = ("Compare the two images for the caption {prompt}. Reason in <think></think>, then answer "
                  "<answer>Image 1 is better</answer> or <answer>Image 2 is better</answer>.")


def test_a_judge_soft_read_out_at_its_own_answer_prefix_equals_the_transformers_engine(tiny_vlm_dir, tmp_path):
    """The judge scorer's answer format (``<answer>Image `` then "1"/"2") on the real vLLM engine:
    prefill-only soft read-outs agree with the transformers engine's, as the paper scorers' do."""
    template = tmp_path / "think.txt"
    template.write_text(THINK_TEMPLATE)
    opts = ["protocol=unifiedreward_think", "mode=anchor", "readout=soft", "max_new_tokens=0",
            f"template={template}"]
    hf, _ = _run(tmp_path, "transformers", "judge", tiny_vlm_dir, opts, limit=3)
    vl, rec = _run(tmp_path, "vllm", "judge", tiny_vlm_dir, opts, limit=3)
    assert hf.keys() == vl.keys() and all(r["status"] == "ok" for r in [*hf.values(), *vl.values()])
    candidates = [k for k in hf if not hf[k]["detail"].get("anchor")]
    assert candidates and all(0 < vl[k]["score"] < 1 for k in candidates)
    diffs = [abs(hf[k]["score"] - vl[k]["score"]) for k in hf]
    assert max(diffs) < TOL, f"max |vllm - transformers| = {max(diffs):.2e}"
    assert rec["scorer_summary"]["protocol"] == "unifiedreward_think"
    assert rec["scorer_summary"]["engine"]["missing_answer_tokens"] == 0
