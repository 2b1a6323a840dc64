"""The OpenAI backend against a real vLLM server serving the tiny Qwen2.5-VL.

A session fixture starts ``vllm.entrypoints.openai.api_server`` from the vLLM venv made by
``scripts/setup_vllm_env.sh`` (``.ci/run`` makes it), waits for /health and stops it at the
end. Without that venv the tests skip and say why.

Every soft score is checked against an independent request: the rollout's recorded text up to
the answer prefix, sent again as a continued assistant turn with greedy decoding, must give
log-probabilities whose expected rating / P("1") equals the stored score within 1e-4.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("openai")

from prefbench.testing.vllm_server import VLLMServer, find_vllm_python  # noqa: E402
from tests.fixtures.cli import run_cli  # noqa: E402

VLLM_PYTHON, WHY_NOT = find_vllm_python()
# PREFBENCH_REQUIRE_VLLM=1 turns the skip into a failure (for a CI that must run these)
REQUIRED = os.environ.get("PREFBENCH_REQUIRE_VLLM", "") not in ("", "0")
pytestmark = [pytest.mark.vllm,
              pytest.mark.skipif(VLLM_PYTHON is None and not REQUIRED, reason=f"real-server tests need vLLM: {WHY_NOT}")]

LIMIT = 2
COMMON = ["--dataset", "demo", "--limit", str(LIMIT), "--no-progress", "--json", "-S", "max_new_tokens=6"]


@pytest.fixture(scope="session")
def vllm_server(tiny_vlm_dir, tmp_path_factory):
    if VLLM_PYTHON is None:
        pytest.fail(f"PREFBENCH_REQUIRE_VLLM is set, but {WHY_NOT}")
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    server = VLLMServer(tiny_vlm_dir, "tiny", log_path=log)
    server.start(timeout=420)
    print(f"\nvLLM server up in {server.startup_s:.1f} s at {server.base_url} (log: {log})")
    yield server
    server.stop()


def _post(root: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(root + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def _token_id(server, text: str) -> int:
    (tid,) = _post(server.root, "/tokenize", {"model": "tiny", "prompt": text, "add_special_tokens": False})["tokens"]
    return tid


def _messages(item, indices, template, scale="1-5"):
    from prefbench.engines.openai import image_data_url
    from prefbench.scorers.vlm import prompts

    msgs = prompts.render_messages(template, item.prompt, prompts.RatingScale.parse(scale))
    images = iter(indices)
    for part in msgs[0]["content"]:
        if part.get("type") == "image":
            part.clear()
            part.update({"type": "image_url", "image_url": {"url": image_data_url(item.images[next(images)].open())}})
    return msgs


def _served_logprobs(server, messages, prefix: str, tokens) -> dict[str, float]:
    """Full-vocabulary log P(token) at the position after ``prefix``, asked anew."""
    ids = [_token_id(server, t) for t in tokens]
    body = {"model": "tiny", "messages": [*messages, {"role": "assistant", "content": prefix}], "max_tokens": 1,
            "temperature": 0, "logprobs": True, "logprob_token_ids": ids, "continue_final_message": True,
            "add_generation_prompt": False}
    (pos,) = _post(server.root, "/v1/chat/completions", body)["choices"][0]["logprobs"]["content"]
    lp = {e["token"]: e["logprob"] for e in pos["top_logprobs"]}
    return {t: lp[t] for t in tokens}


def _served_probs(server, messages, prefix: str, tokens) -> list[float]:
    """P(token) renormalised over ``tokens`` at the position after ``prefix``, asked anew."""
    lp = _served_logprobs(server, messages, prefix, tokens)
    w = [math.exp(lp[t]) for t in tokens]
    return [x / sum(w) for x in w]


def _prefix(text: str) -> str:
    from prefbench.scorers.vlm.prompts import ANSWER_PREFIX

    return text[: text.index(ANSWER_PREFIX) + len(ANSWER_PREFIX)]


def _run(server, out, scorer, *extra):
    proc = run_cli(["run", "--scorer", scorer, "--engine", "openai", "--base-url", server.base_url, "--model", "tiny",
                    "--out", out, *COMMON, *extra], timeout=900)
    assert proc.stdout, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    if summary["counts"]["ok"] == 0:  # the tiny random model may answer nothing parsable: exit 1, said so
        assert proc.returncode == 1 and "no image scored" in proc.stderr, proc.stderr[-3000:]
    else:
        assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return summary, json.loads((out / "run.json").read_text()), rows


def _items():
    from prefbench.data import load_dataset

    return {item.item_id: item for item in load_dataset("demo", None, None, limit=LIMIT).items}


@pytest.mark.parametrize("scorer,extra,template", [
    ("expected_rating", ["--rollouts", "2"], "rating_v1"),
    ("zero_shot", [], "zero_shot_rating_v1"),
    ("expected_rating", ["-S", "logprob_token_ids=false"], "rating_v1"),
])
def test_rating_scores_equal_the_served_probabilities(vllm_server, tmp_path, scorer, extra, template):
    summary, record, rows = _run(vllm_server, tmp_path / "run", scorer, *extra)
    items = _items()
    assert len(rows) == sum(it.n_images for it in items.values()) and summary["status"] == "complete"
    k = 2 if "--rollouts" in extra else 1
    checked = 0
    for row in rows:
        rolls = row["detail"]["rollouts"]
        assert len(rolls) == k
        msgs = _messages(items[row["item_id"]], [row["image_index"]], template)
        if "logprob_token_ids=false" in extra:
            # top-20 only: a rating token reported missing really is outside the top 20 (its
            # log-probability, asked for exactly, is below the 20th), and the score uses the rest
            for roll in rolls:
                if not roll.get("missing_answer_tokens"):
                    continue
                exact = _served_logprobs(vllm_server, msgs, _prefix(roll["text"]), "12345")
                assert roll["top_logprobs_n"] >= 20 and 0 < roll["mass_outside_top_logprobs"] < 1
                for t in roll["missing_answer_tokens"]:
                    assert exact[t] <= roll["missing_logprob_upper_bound"] + 1e-4
                checked += 1
        if row["status"] != "ok":  # only possible with top-N: every rating token outside the top 20
            assert "logprob_token_ids=false" in extra and all(len(r["missing_answer_tokens"]) == 5 for r in rolls)
            assert row["error"].startswith("no answer token among the server's top 20") and row["score"] is None
            continue
        roll_scores = []
        for roll in rolls:
            probs = _served_probs(vllm_server, msgs, _prefix(roll["text"]), "12345")
            if "logprob_token_ids=false" in extra and roll.get("missing_answer_tokens"):
                present = [str(t) for t in range(1, 6) if str(t) not in roll["missing_answer_tokens"]]
                w = {int(t): probs[int(t) - 1] for t in present}
                expected = sum(r * p for r, p in w.items()) / sum(w.values())
            else:
                expected = sum((r + 1) * p for r, p in enumerate(probs))
            assert roll["score"] == pytest.approx(expected, abs=1e-4)
            roll_scores.append(roll["score"])
            checked += 1
        assert row["score"] == pytest.approx(sum(roll_scores) / k, abs=1e-9)  # Mean@k
    assert checked >= len(rows) // 2
    oa = record["scorer_summary"]["engine"]
    assert oa["usage"]["requests"] == 2 * len(rows) * k and oa["usage"]["prompt_tokens"] > 0
    assert oa["rollouts"] == len(rows) * k and oa["failed"] == 0
    source = "top_logprobs=20" if "logprob_token_ids=false" in extra else "logprob_token_ids"
    assert all(roll["answer_token_source"] == source for row in rows for roll in row["detail"]["rollouts"])


def test_anchor_pairwise_scores_equal_served_p1(vllm_server, tmp_path):
    _, record, rows = _run(vllm_server, tmp_path / "run", "anchor_pairwise", "--rollouts", "2")
    items = _items()
    for row in rows:
        d = row.get("detail") or {}
        anchor = row["anchor_index"]  # a typed sample field
        if row["image_index"] == anchor:
            assert row["score"] == 0.5
            continue
        assert row["status"] == "ok"
        msgs = _messages(items[row["item_id"]], [anchor, row["image_index"]], "pairwise_v1")
        for roll in d["rollouts"]:
            p0, p1 = _served_probs(vllm_server, msgs, _prefix(roll["text"]), "01")
            assert roll["score"] == pytest.approx(p1, abs=1e-4)
        assert row["score"] == pytest.approx(sum(r["score"] for r in d["rollouts"]) / 2, abs=1e-9)
        assert row["prob"] == row["score"]
    n_items = len(items)
    assert record["scorer_summary"]["engine"]["rollouts"] == 2 * (len(rows) - n_items)  # N-1 comparisons per item
    assert record["metrics"].get("brier") is not None


def test_naive_sampling_parses_the_sampled_answer(vllm_server, tmp_path):
    from prefbench.scorers.vlm.prompts import parse_rating

    _, record, rows = _run(vllm_server, tmp_path / "run", "naive_sampling", "--rollouts", "2")
    for row in rows:
        for roll in row["detail"]["rollouts"]:
            parsed = parse_rating(roll["text"])
            assert roll["parsed"] == parsed.value
            assert roll.get("score") == (None if parsed.value is None else float(parsed.value))
        scores = [r["score"] for r in row["detail"]["rollouts"] if r.get("score") is not None]
        assert row["status"] == ("ok" if scores else "unparsed")
    counts = record["counts"]
    assert counts["ok"] + counts["unparsed"] == len(rows) and counts["error"] == 0


def test_prefill_only_scoring(vllm_server, tmp_path):
    from prefbench.engines.base import PREFILL_ANSWER

    _, _, rows = _run(vllm_server, tmp_path / "run", "expected_rating", "-S", "max_new_tokens=0")
    items = _items()
    for row in rows[:3]:
        (roll,) = row["detail"]["rollouts"]
        probs = _served_probs(vllm_server, _messages(items[row["item_id"]], [row["image_index"]], "rating_v1"),
                              PREFILL_ANSWER, "12345")
        assert row["score"] == pytest.approx(sum((r + 1) * p for r, p in enumerate(probs)), abs=1e-4)


def test_killed_server_mid_run_leaves_a_resumable_run(vllm_server, tiny_vlm_dir, tmp_path):
    """A second server is killed (SIGKILL) while a run is scoring; the run stores what it
    finished and marks the rest retryable; the same command against the surviving server
    scores only what is missing and completes with nothing lost."""
    out = tmp_path / "run"
    doomed = VLLMServer(tiny_vlm_dir, "tiny", log_path=tmp_path / "doomed.log").start(timeout=420)
    args = [sys.executable, "-m", "prefbench", "run", "--scorer", "expected_rating", "--engine", "openai",
            "--model", "tiny", "--out", str(out), "--dataset", "demo", "--limit", "4", "--no-progress", "--json",
            "-S", "max_new_tokens=16", "--rollouts", "2", "--batch-size", "1", "-S", "max_concurrency=2",
            "-S", "max_retries=1", "-S", "request_timeout=30"]
    try:
        proc = subprocess.Popen([*args, "--base-url", doomed.base_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        samples = out / "samples.jsonl"
        deadline = time.time() + 600
        while time.time() < deadline and not (samples.is_file() and samples.read_text().count("\n") >= 3):
            time.sleep(0.2)
        doomed.kill()
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        doomed.stop()
    assert proc.returncode == 0, stderr[-3000:]
    first = {(r["item_id"], r["image_index"]): r for r in map(json.loads, samples.read_text().splitlines())}
    record = json.loads((out / "run.json").read_text())
    ok_before = {k: r for k, r in first.items() if r["status"] == "ok"}
    failed = [r for r in first.values() if r["status"] == "error"]
    assert ok_before and failed, "the kill should land mid-run"
    assert record["status"] == "incomplete" and all(r["retryable"] for r in failed)
    assert all("cannot reach" in r["error"] or "timed out" in r["error"] or "HTTP 5" in r["error"] for r in failed)

    proc = subprocess.run([*args, "--base-url", vllm_server.base_url], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming" in proc.stderr
    final = {}
    for r in map(json.loads, samples.read_text().splitlines()):
        final[(r["item_id"], r["image_index"])] = r  # later rows win, as in the runner
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["counts"]["error"] == 0 and record["counts"]["missing"] == 0
    assert set(final) == set(first) and all(r["status"] == "ok" for r in final.values())
    for key, row in ok_before.items():  # what was scored before the kill is kept, not redone
        assert final[key] == row


def test_inline_answer_request_without_an_answer_position_is_unparsed(vllm_server, tmp_path):
    """One plain request per rollout: the tiny model never writes <answer> in 6 tokens, so there
    is no answer position, nothing is forced, and every image says so."""
    _, record, rows = _run(vllm_server, tmp_path / "run", "expected_rating", "-S", "answer_request=inline")
    for row in rows:
        (roll,) = row["detail"]["rollouts"]
        if "<answer>" in roll["text"]:  # the model did write it: the score is read there
            continue
        assert row["status"] == "unparsed" and roll["no_answer_position"] and not roll.get("forced")
    oa = record["scorer_summary"]["engine"]
    assert oa["usage"]["requests"] == len(rows) and oa["forced"] == 0
