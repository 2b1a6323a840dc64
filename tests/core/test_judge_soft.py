"""The soft read-out of a judge protocol (the seed paper's: probabilities of the candidate tokens at the
answer position instead of the sampled verdict), from the answer position itself and through
``prefbench evaluate --judge-outputs ... --read-out soft``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from prefbench.judges import lookup
from tests.fixtures import benchmarks as bm
from tests.fixtures.cli import run_cli


def test_answer_positions_read_candidate_probabilities():
    think = lookup("unifiedreward_think").answer
    assert think.read({"1": 0.6, "2": 0.2, "Image": 0.2}) == pytest.approx(0.75)  # renormalised over 1 and 2
    assert think.read({" 1": 0.3}) == 1.0 and think.read({"2": 0.1, "two": 0.9}) == 0.0
    assert think.read({"Image": 1.0}) is None
    vqa = lookup("vqascore").answer
    assert vqa.read({"Yes": 0.3, "No": 0.6}) == pytest.approx(0.3)  # P(Yes) over the whole vocabulary
    assert vqa.read({"no": 0.6, "The": 0.2}) == pytest.approx(0.4)  # t2v_metrics: 1 - P(no) without yes
    assert vqa.read({" yes": 0.2, "Yes": 0.5}) == pytest.approx(0.5)  # the likeliest spelling counts
    assert lookup("unifiedreward").answer.read({"4": 0.25, "5": 0.25}) == pytest.approx(4.5)
    assert lookup("mmrb2").answer.read({"A": 0.2, "B": 0.6}) == pytest.approx(0.25)


def _run(data_dir, rows, tmp_path, protocol, *extra):
    out = tmp_path / "soft.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_cli(["evaluate", "--dataset", "hpdv3", "--data-dir", data_dir, "--judge-outputs", out, "--protocol",
                    protocol, "--read-out", "soft", "--json", "--bootstrap-resamples", "100", *extra])


def test_think_soft_both_orders_on_hpdv3(tmp_path):
    bm.write_hpdv3(tmp_path / "h", n=10)
    rng = np.random.default_rng(4)
    rows, p0 = [], []
    for k in range(10):
        wins = []
        for order in ("forward", "reverse"):
            p1, p2 = rng.uniform(0.05, 0.9, 2)
            probs = {"1": math.log(p1), "2": math.log(p2), "Both": math.log(0.01)}
            if k == 9 and order == "reverse":
                probs = {"Both": 0.0}  # no candidate: a parse failure, 0.5 under the official policy
                wins.append(0.5)
            else:
                first = p1 / (p1 + p2)
                wins.append(first if order == "forward" else 1 - first)  # P(image 0 wins)
            rows.append({"prompt_id": str(k), "image_a": 0, "image_b": 1, "order": order,
                         "text": "<answer>ignored: the soft read-out does not parse text</answer>",
                         "answer_logprobs": probs})
        p0.append(np.mean(wins))
    proc = _run(tmp_path / "h", rows, tmp_path, "unifiedreward_think")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["read_out"] == "soft" and got["n_parse_failures"] == 1 and got["policy"] == "neutral"
    assert got["accuracy"] == pytest.approx(np.mean([p > 0.5 for p in p0]))  # path1 (image 0) preferred
    assert got["parse_failures"] == [{"line": 20, "reason": "none of 1, 2 among the answer tokens"}]


def test_vqascore_soft_pointwise_with_t2v_metrics_zero(tmp_path):
    bm.write_hpdv3(tmp_path / "h", n=8)
    rng = np.random.default_rng(9)
    rows, expect = [], []
    for k in range(8):
        p = rng.uniform(0, 1, 2)
        probs = [{"Yes": p[0], "No": 1 - p[0]}, {"Yes": p[1]}]
        if k == 2:
            probs[0] = {"Maybe": 0.9}  # neither: t2v_metrics' 0.0
            p[0] = 0.0
        rows += [{"prompt_id": str(k), "image_index": i, "text": "", "answer_probs": probs[i]} for i in (0, 1)]
        expect.append(p[0] > p[1])
    proc = _run(tmp_path / "h", rows, tmp_path, "vqascore")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["accuracy"] == pytest.approx(np.mean(expect)) and got["n_parse_failures"] == 1
    assert got["policy"] == "fallback"


def test_soft_read_out_errors(tmp_path):
    bm.write_hpdv3(tmp_path / "h", n=2)
    row = {"prompt_id": "0", "image_a": 0, "image_b": 1, "order": "forward", "text": "x"}
    proc = _run(tmp_path / "h", [dict(row, answer_probs={"1": 1.0}), dict(row, order="reverse")], tmp_path,
                "unifiedreward_think")
    assert proc.returncode == 2 and "line 2: a soft read-out needs answer_probs" in proc.stderr
    proc = _run(tmp_path / "h", [dict(row, answer_probs={"1": 1.5})], tmp_path, "unifiedreward_think")
    assert proc.returncode == 2 and "line 1: answer_probs must be an object of probabilities" in proc.stderr
    proc = _run(tmp_path / "h", [row], tmp_path, "rationalrewards")
    assert proc.returncode == 2 and "'rationalrewards' has no soft read-out" in proc.stderr
