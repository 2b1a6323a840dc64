"""The ``judge`` scorer over ``--engine openai`` against a scripted judge on 127.0.0.1 (canned texts and
answer-token logprobs, tests/fixtures/judge_server.py): the scores each mode and read-out must give,
parse failures under every policy, position bias, and the run record's scorer summary. The prompts
are stand-in templates written here (the real ones are never copied into prefbench)."""

from __future__ import annotations

import json
import math

import pytest

from prefbench.data import load_dataset
from prefbench.errors import UsageError
from tests.fixtures.extras import requires_extra
from tests.fixtures.judge_server import JudgeServer

pytestmark = requires_extra("openai")

THINK_TEMPLATE = ("Compare the two images for the caption {prompt}. Reason in <think></think>, then answer "
                  "<answer>Image 1 is better</answer> or <answer>Image 2 is better</answer>.")
TEMPLATES = {
    "unifiedreward_think": THINK_TEMPLATE,
    "unifiedreward": "<image>\nRate how well this image shows {prompt}. End with 'Final Score: x' (1-5).",
    "vqascore": 'Is "{}" what this picture shows? Answer Yes or No.',
    "mmrb2": "Judge which response better follows the prompt; answer JSON with better_response A or B.",
    "genai_bench": "Prompt: <prompt>\nA: <left_image>\nB: <right_image>\nVerdict as [[A>B]] or [[B>A]].",
    "rationalrewards": "Request: {request}\nImage A: <image>\nImage B: <image>\nScore each aspect.",
}


@pytest.fixture
def templates(tmp_path):
    out = {}
    for name, text in TEMPLATES.items():
        out[name] = tmp_path / f"{name}.txt"
        out[name].write_text(text)
    return out


@pytest.fixture(scope="module")
def demo():
    data = load_dataset("demo", None, None)
    data.items = data.items[:3]
    from prefbench.engines.openai import image_data_url

    urls = {image_data_url(im.open()): (it.item_id, k) for it in data.items for k, im in enumerate(it.images)}
    return data, urls


def _scorer(server, templates, protocol="unifiedreward_think", logprob_token_ids="auto", **opts):
    from prefbench.scorers.judge.scorer import JudgeScorer

    return JudgeScorer(protocol=protocol, template=str(templates[protocol]), model="judge", max_new_tokens=64,
                       engine="openai", engine_options={"base_url": server.url, "max_retries": 0,
                                                        "logprob_token_ids": logprob_token_ids}, **opts)


def _score(scorer, data):
    scorer.setup()
    try:
        results = scorer.score_batch([(it, list(range(it.n_images))) for it in data.items])
    finally:
        scorer.close()
    return results


def always(text, logprobs=None):
    return lambda images, body: (text, logprobs)


def test_anchor_mode_hard_gives_every_candidate_its_verdict_and_the_anchor_one_half(templates, demo):
    from prefbench.scorers.vlm.scorers import anchor_index

    data, _ = demo
    with JudgeServer(always("<think>B is sharper</think><answer>Image 2 is better</answer>")) as server:
        scorer = _scorer(server, templates, mode="anchor")
        results = _score(scorer, data)
        assert not any(b.get("logprobs") or b.get("stop") for b in server.requests)  # free text: nothing forced
    for item, res in zip(data.items, results):
        anchor = anchor_index(0, item)
        assert sorted(res) == list(range(item.n_images))
        for k, r in res.items():
            assert r.status == "ok" and r.anchor_index == anchor
            if k == anchor:
                assert r.score == 0.5 and r.detail["anchor"]
                continue
            # the anchor is shown first, so "Image 2 is better" is the candidate's win
            assert r.score == 1.0 and r.prob == 1.0
            [j] = r.detail["judgements"]
            assert j["shown"] == [anchor, k] and j["status"] == "ok" and j["parsed"]["winner"] == "second"
            assert j["text"].endswith("<answer>Image 2 is better</answer>")
    s = scorer.summary()
    assert (s["protocol"], s["mode"], s["readout"], s["policy"]) == ("unifiedreward_think", "anchor", "hard", "neutral")
    assert s["template"]["source"] == "file" and len(s["template"]["sha256"]) == 64
    assert s["n_judgements"] == sum(it.n_images - 1 for it in data.items) and s["n_parse_failures"] == 0
    assert s["position_bias"]["first_shown_win_rate"] == 0.0


def test_both_orders_measures_position_bias_and_fills_order_probs(templates, demo):
    data, _ = demo
    with JudgeServer(always("<answer>Image 2 is better</answer>")) as server:
        scorer = _scorer(server, templates, mode="anchor", both_orders=True)
        results = _score(scorer, data)
    for res in results:
        for r in res.values():
            if r.detail.get("anchor"):
                continue
            # each order picks whichever image came second: the orders cancel out
            assert r.score == 0.5 and r.order_probs == {"anchor_first": 1.0, "candidate_first": 0.0}
            assert sorted(j["order"] for j in r.detail["judgements"]) == ["forward", "reverse"]
    bias = scorer.summary()["position_bias"]
    n_pairs = sum(it.n_images - 1 for it in data.items)
    assert bias == {"n_decided": 2 * n_pairs, "first_shown_win_rate": 0.0, "n_pairs_both_orders": n_pairs,
                    "order_agreement": 0.0}


def _quality_judge(urls, garbage=lambda a, b: False):
    """A judge that prefers the image with the higher index (by its data URL), and writes garbage for pairs
    ``garbage`` picks."""
    def reply(images, body):
        (_, a), (_, b) = urls[images[0]], urls[images[1]]
        if garbage(a, b):
            return "I cannot decide.", None
        return f"<answer>Image {1 if a > b else 2} is better</answer>", None
    return reply


def test_round_robin_scores_win_rates(templates, demo):
    data, urls = demo
    with JudgeServer(_quality_judge(urls)) as server:
        results = _score(_scorer(server, templates, mode="round_robin", both_orders=True), data)
        n_requests = len(server.requests)
    assert n_requests == sum(it.n_images * (it.n_images - 1) for it in data.items)  # every pair, both orders
    for item, res in zip(data.items, results):
        for k, r in res.items():
            assert r.score == pytest.approx(k / (item.n_images - 1)) and r.anchor_index is None


@pytest.mark.parametrize("policy,target,anchor_score,counted", [
    ("official", 0.5, 0.5, "neutral"),  # UnifiedReward-Think's official policy: a tie (Pref-GRPO's 0.5)
    ("neutral", 0.5, 0.5, "neutral"),
    ("wrong", None, None, "wrong"),     # both images of the failed judgement lose their scores
    ("exclude", None, 0.5, "exclude"),  # the judgement is dropped; the candidate has no other
])
def test_a_parse_failure_is_counted_and_handled_by_the_policy(templates, demo, policy, target, anchor_score, counted):
    from prefbench.scorers.vlm.scorers import anchor_index

    data, urls = demo
    anchors = {it.item_id: anchor_index(0, it) for it in data.items}
    targets = {it.item_id: min(k for k in range(it.n_images) if k != anchors[it.item_id]) for it in data.items}

    def reply(images, body):
        item, cand = urls[images[1]]
        if cand == targets[item]:
            return "<think>no idea</think><answer>both are fine</answer>", None
        return "<answer>Image 2 is better</answer>", None

    with JudgeServer(reply) as server:
        scorer = _scorer(server, templates, on_parse_failure=policy)
        results = _score(scorer, data)
    for item, res in zip(data.items, results):
        t, a = targets[item.item_id], anchors[item.item_id]
        assert res[t].score == target and res[a].score == anchor_score
        [j] = res[t].detail["judgements"]
        assert j["status"] == "parse_failure" and j["policy"] == counted
        assert j["parsed"]["reason"] == "the answer names neither image"
        if target is None:
            assert res[t].status == "unparsed" and policy in res[t].error
        others = [k for k in range(item.n_images) if k not in (t, a)]
        assert all(res[k].score == 1.0 for k in others)
    s = scorer.summary()
    assert s["n_parse_failures"] == len(data.items) and s["policy"] == counted
    assert s["parse_failure_examples"][0]["reason"] == "the answer names neither image"
    assert s["on_parse_failure"] == policy


def test_soft_read_out_uses_the_answer_tokens_after_the_protocols_prefix(templates, demo):
    data, _ = demo
    logprobs = {"1": math.log(0.2), "2": math.log(0.6), " x": math.log(0.2)}
    with JudgeServer(always("", logprobs)) as server:
        scorer = _scorer(server, templates, readout="soft", mode="anchor")
        results = _score(scorer, data)
        reasoning = [b for b in server.requests if b.get("stop")]
        answers = [b for b in server.requests if b.get("logprobs")]
    assert reasoning and all(b["stop"] == ["<answer>Image "] for b in reasoning)
    # the answer request continues the assistant text that ends with the protocol's prefix
    assert all(b["messages"][-1]["content"].endswith("<answer>Image ") for b in answers)
    for res in results:
        for r in res.values():
            if not r.detail.get("anchor"):
                # P(first shown wins) = 0.2 / 0.8; the candidate is shown second
                assert r.score == pytest.approx(0.75) and r.prob == pytest.approx(0.75)
                assert r.detail["judgements"][0]["answer_probs"] == pytest.approx({"1": 0.2, "2": 0.6})
    s = scorer.summary()
    assert s["answer_position"] == {"prefix": "<answer>Image ", "candidates": ["1", "2"], "score": "expected"}
    assert s["position_bias"]["mean_p_first_shown"] == pytest.approx(0.25)


def test_soft_read_out_without_a_candidate_token_is_a_parse_failure(templates, demo):
    data, _ = demo
    with JudgeServer(always("", {" x": math.log(0.9)})) as server:
        scorer = _scorer(server, templates, readout="soft", on_parse_failure="wrong", logprob_token_ids="false")
        results = _score(scorer, data)
    assert all(r.status == "unparsed" for res in results for r in res.values())
    assert scorer.summary()["n_parse_failures"] == sum(it.n_images - 1 for it in data.items)


def test_vqascore_is_p_yes_at_the_first_token(templates, demo):
    data, _ = demo
    with JudgeServer(always("", {"Yes": math.log(0.7), "No": math.log(0.2)})) as server:
        scorer = _scorer(server, templates, protocol="vqascore")
        results = _score(scorer, data)
        assert not any(b.get("stop") for b in server.requests)  # no reasoning request: the first token
        assert all(b["messages"][-1]["role"] == "user" and b.get("add_generation_prompt") for b in server.requests)
        assert all(b.get("logprob_token_ids") == [1000, 1001] for b in server.requests)
    assert scorer.readout == "soft" and scorer.mode == "pointwise"
    for res in results:
        for r in res.values():
            assert r.status == "ok" and r.score == pytest.approx(0.7)  # over the full vocabulary
    with pytest.raises(UsageError, match="pointwise"):
        _scorer(server, templates, protocol="vqascore", mode="anchor")


def test_pointwise_hard_read_out_and_the_official_fallback(templates, demo):
    data, urls = demo

    def reply(images, body):
        _, k = urls[images[0]]
        return ("The image is blurry." if k == 0 else f"Looks right.\nFinal Score: {k + 1}"), None

    with JudgeServer(reply) as server:
        scorer = _scorer(server, templates, protocol="unifiedreward")
        results = _score(scorer, data)
    for res in results:
        assert res[0].score == 0.0 and res[0].detail["judgements"][0]["policy"] == "fallback"  # flow_grpo's 0.0
        assert all(res[k].score == k + 1 for k in range(1, len(res)))
    s = scorer.summary()
    assert s["n_parse_failures"] == s["n_filled_by_fallback"] == len(data.items) and s["policy"] == "fallback"
    assert "position_bias" not in s


def test_genai_bench_template_markers_put_each_image_in_its_place(templates, demo):
    data, urls = demo
    seen = []

    def reply(images, body):
        seen.append([part.get("type") for part in body["messages"][0]["content"]])
        return _quality_judge(urls)(images, body)[0].replace("<answer>Image 1 is better</answer>", "[[A>B]]") \
            .replace("<answer>Image 2 is better</answer>", "[[B>A]]"), None

    with JudgeServer(reply) as server:
        results = _score(_scorer(server, templates, protocol="genai_bench", mode="round_robin"), data)
    assert seen[0] == ["text", "image_url", "text", "image_url", "text"]
    for item, res in zip(data.items, results):
        assert [res[k].score for k in range(item.n_images)] == pytest.approx(
            [k / (item.n_images - 1) for k in range(item.n_images)])


def test_pairs_mode_on_mmrb2_both_orders_through_a_run(templates, tmp_path):
    from prefbench.runner import RunConfig, run
    from prefbench.store import read_samples
    from tests.fixtures import benchmarks as bm

    bm.write_mmrb2(tmp_path / "data", n=4)
    # a judge that always picks the response shown first: each pair gets A once and B once
    with JudgeServer(always('```json\n{"reasoning": {}, "score": 4, "better_response": "A", "confidence": 0.8}\n```')) \
            as server:
        rec = run(RunConfig(scorer="judge", model="judge", dataset="mmrb2", split="t2i", data_dir=str(tmp_path / "data"),
                            engine="openai",
                            params={"protocol": "mmrb2", "mode": "pairs", "both_orders": True,
                                    "template": str(templates["mmrb2"]), "max_new_tokens": 64,
                                    "base_url": server.url},
                            progress=False, bootstrap_resamples=100, out=str(tmp_path / "run")), log=lambda m: None)
    rec = rec if isinstance(rec, dict) else rec.to_json()
    rows = read_samples(tmp_path / "run" / "samples.jsonl")
    carried = [r for r in rows.values() if r.get("order_probs")]
    assert len(carried) == 4 and all(r["order_probs"] == {"anchor_first": 0.0, "candidate_first": 1.0} for r in carried)
    assert all(r["score"] == 0.5 and r["detail"]["judgements"] for r in rows.values())
    assert rec["metrics"]["n_pairs"] == 8 and rec["metrics"]["accuracy"] == pytest.approx(0.5)
    summary = json.loads((tmp_path / "run" / "run.json").read_text())["scorer_summary"]
    assert summary["protocol"] == "mmrb2" and summary["mode"] == "pairs" and summary["policy"] == "exclude"
    assert summary["position_bias"]["first_shown_win_rate"] == 1.0
    assert summary["position_bias"]["order_agreement"] == 0.0


def test_pairs_mode_refuses_items_of_more_than_two_images_per_image(templates, demo):
    data, _ = demo
    with JudgeServer(always("<answer>Image 1 is better</answer>")) as server:
        results = _score(_scorer(server, templates, mode="pairs"), data)
        assert not server.requests
    assert all(r.status == "error" and "mode=pairs judges two-image items" in r.error
               for res in results for r in res.values())


def test_bad_options_are_clear_errors(templates, tmp_path, monkeypatch):
    from prefbench.errors import MissingDataError
    from prefbench.scorers.judge.scorer import JudgeScorer

    with pytest.raises(UsageError, match="needs -S protocol"):
        JudgeScorer(model="m", engine="openai", engine_options={"base_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(UsageError, match="no soft read-out"):
        JudgeScorer(protocol="genai_bench", readout="soft", template=str(templates["genai_bench"]), model="m",
                    engine="openai", engine_options={"base_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(UsageError, match="mode must be one of"):
        JudgeScorer(protocol="mmrb2", mode="league", template=str(templates["mmrb2"]), model="m",
                    engine="openai", engine_options={"base_url": "http://127.0.0.1:9/v1"})
    bad = tmp_path / "bad.txt"
    bad.write_text("No placeholder here.")
    with pytest.raises(UsageError, match="has no '{prompt}'"):
        JudgeScorer(protocol="unifiedreward_think", template=str(bad), model="m", engine="openai",
                    engine_options={"base_url": "http://127.0.0.1:9/v1"})
    # offline, the pinned template's error says where to put the file
    monkeypatch.setenv("PREFBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PREFBENCH_GITHUB_RAW", "http://127.0.0.1:9")
    with pytest.raises(MissingDataError, match="Put that file"):
        JudgeScorer(protocol="unifiedreward_think", model="m", engine="openai",
                    engine_options={"base_url": "http://127.0.0.1:9/v1"})


def test_plan_and_outcomes_without_a_model():
    from prefbench.judges.base import Parsed
    from prefbench.judges.judgements import Judgement, JudgeTally
    from prefbench.scorers.judge.plan import pairwise_outcomes, plan

    assert [c.shown for c in plan("anchor", [0, 1, 2], [0, 1, 2], 1, False)] == [(1, 0), (1, 2)]
    assert [c.shown for c in plan("round_robin", [2], [0, 1, 2], None, True)] == [(0, 2), (2, 0), (1, 2), (2, 1)]
    assert plan("anchor", [0, 2], [0, 1], 1, False)[0].shown == (1, 0)  # an undecodable image is not compared
    js = [Judgement(0, "p", (0, 1), Parsed(True, winner="first"), winner="first"),
          Judgement(0, "p", (1, 0), Parsed(True, winner="first"), winner="first")]
    out = pairwise_outcomes(js, [0, 1], None, "pairs")
    assert out[0].score == 0.5 and out[1].order_probs == {"anchor_first": 0.0, "candidate_first": 1.0}
    tally = JudgeTally()
    for shown in ((0, 1), (1, 0)):  # each picks the image shown first
        tally.add("p", {"shown": list(shown), "status": "ok", "counted_as": {"winner": "first", "p_first": 1.0}})
    tally.add("p", {"shown": [0, 2], "status": "parse_failure", "policy": "neutral",
                    "parsed": {"ok": False, "reason": "empty"}, "counted_as": {"winner": "tie", "p_first": 0.5}})
    assert tally.position_bias() == {"n_decided": 2, "first_shown_win_rate": 1.0, "n_pairs_both_orders": 1,
                                     "order_agreement": 0.0}
    assert tally.counts() == {"n_judgements": 3, "n_parse_failures": 1, "n_filled_by_fallback": 0,
                              "parse_failure_examples": [{"prompt_id": "p", "shown": [0, 2], "reason": "empty"}]}


@pytest.mark.parametrize("mode,policy", [("anchor", "wrong"), ("round_robin", "official"), ("anchor", "exclude")])
def test_a_runs_judgements_score_the_same_through_evaluate_judge_outputs(templates, tmp_path, mode, policy):
    """The texts a run got, written as a --judge-outputs file, give the run's accuracy: one rule set."""
    from prefbench.engines.openai import image_data_url
    from prefbench.judges.outputs import evaluate_judge_outputs
    from prefbench.runner import RunConfig, run
    from prefbench.store import read_samples
    from tests.fixtures import benchmarks as bm

    bm.write_evalmuse(tmp_path / "data", n_prompts=6)
    data = load_dataset("evalmuse", None, tmp_path / "data")
    urls = {image_data_url(im.open()): k for it in data.items for k, im in enumerate(it.images)}
    # prefers the higher index, except that it cannot decide between images 1 and 2
    reply = _quality_judge({u: (None, k) for u, k in urls.items()}, garbage=lambda a, b: {a, b} == {1, 2})
    with JudgeServer(reply) as server:
        rec = run(RunConfig(scorer="judge", model="judge", dataset="evalmuse", data_dir=str(tmp_path / "data"),
                            engine="openai",
                            params={"protocol": "unifiedreward_think", "mode": mode, "both_orders": True,
                                    "on_parse_failure": policy, "template": str(templates["unifiedreward_think"]),
                                    "max_new_tokens": 64, "base_url": server.url},
                            progress=False, bootstrap_resamples=100, out=str(tmp_path / "run")), log=lambda m: None)
    rec = rec if isinstance(rec, dict) else rec.to_json()
    rows = read_samples(tmp_path / "run" / "samples.jsonl")
    judged = {}
    for r in rows.values():
        for j in r["detail"]["judgements"]:
            a, b = sorted(j["shown"])
            judged[(r["item_id"], tuple(j["shown"]))] = {
                "prompt_id": r["item_id"], "image_a": a, "image_b": b,
                "order": "forward" if j["shown"][0] == a else "reverse", "text": j["text"]}
    written = tmp_path / "judge.jsonl"
    written.write_text("".join(json.dumps(v) + "\n" for v in judged.values()))
    # the run's samples.jsonl is read as a judge-outputs file too: each judgement once
    for path in (written, tmp_path / "run" / "samples.jsonl"):
        _same_as_the_run(evaluate_judge_outputs("evalmuse", path, "unifiedreward_think", data_dir=tmp_path / "data",
                                     on_parse_failure=policy, n_resamples=100), rec, tmp_path, policy)


def test_a_resumed_run_counts_the_judgements_of_every_session(templates, tmp_path):
    """The run summary's judgement counts and position bias cover the whole run: a run whose first
    session lost one prompt to a dropped connection (retryable) and scored it when resumed reports the
    same counts as one that ran through, not only the second session's."""
    from prefbench.engines.openai import image_data_url
    from prefbench.runner import RunConfig, run
    from tests.fixtures import benchmarks as bm

    bm.write_evalmuse(tmp_path / "data", n_prompts=4)
    data = load_dataset("evalmuse", None, tmp_path / "data")
    urls = {image_data_url(im.open()): (it.item_id, k) for it in data.items for k, im in enumerate(it.images)}
    judge = _quality_judge(urls, garbage=lambda a, b: {a, b} == {1, 2})
    lost = data.items[0].item_id

    def dropping(images, body):
        if urls[images[0]][0] == lost:
            raise ConnectionResetError("the server went away")  # the handler dies: no answer
        return judge(images, body)

    def session(reply, out):
        with JudgeServer(reply) as server:
            rec = run(RunConfig(scorer="judge", model="judge", dataset="evalmuse", data_dir=str(tmp_path / "data"),
                                engine="openai",
                                params={"protocol": "unifiedreward_think", "mode": "round_robin", "both_orders": True,
                                        "template": str(templates["unifiedreward_think"]), "max_new_tokens": 64,
                                        "base_url": server.url, "max_retries": 0},
                                progress=False, bootstrap_resamples=100, out=str(out)), log=lambda m: None)
        return rec.to_json(), json.loads((out / "run.json").read_text())["scorer_summary"]

    first, partial = session(dropping, tmp_path / "resumed")
    assert first["status"] != "complete" and first["counts"]["error"] == data.items[0].n_images
    resumed_rec, resumed = session(judge, tmp_path / "resumed")
    whole_rec, whole = session(judge, tmp_path / "whole")
    assert resumed_rec["status"] == whole_rec["status"] == "complete"
    n_pairs = sum(it.n_images * (it.n_images - 1) // 2 for it in data.items)
    assert whole["n_judgements"] == 2 * n_pairs and whole["n_parse_failures"] == 2 * len(data.items)
    assert partial["n_judgements"] < whole["n_judgements"]
    for key in ("n_judgements", "n_parse_failures", "position_bias"):
        assert resumed[key] == whole[key], key
    assert whole["position_bias"]["n_pairs_both_orders"] == n_pairs - len(data.items)


def test_evaluate_with_the_runs_limit_gives_a_limited_runs_accuracy(templates, tmp_path):
    """A run made with --limit judged only its first N prompts: `evaluate --judge-outputs` of its
    samples.jsonl with the same --limit gives the run's accuracy; without it, the other prompts'
    images are unjudged and count wrong. --limit on --scores reads past the rows of the others."""
    from prefbench.engines.openai import image_data_url
    from prefbench.runner import RunConfig, run
    from tests.fixtures import benchmarks as bm
    from tests.fixtures.cli import run_cli

    bm.write_evalmuse(tmp_path / "data", n_prompts=6)
    data = load_dataset("evalmuse", None, tmp_path / "data")
    urls = {image_data_url(im.open()): (it.item_id, k) for it in data.items for k, im in enumerate(it.images)}
    with JudgeServer(_quality_judge(urls, garbage=lambda a, b: {a, b} == {0, 1})) as server:
        rec = run(RunConfig(scorer="judge", model="judge", dataset="evalmuse", data_dir=str(tmp_path / "data"),
                            engine="openai", limit=2,
                            params={"protocol": "unifiedreward_think", "mode": "anchor",
                                    "template": str(templates["unifiedreward_think"]), "max_new_tokens": 64,
                                    "base_url": server.url},
                            progress=False, bootstrap_resamples=100, out=str(tmp_path / "run")), log=lambda m: None)
    rec = rec.to_json()

    def evaluate(*extra, what=("--judge-outputs", tmp_path / "run" / "samples.jsonl", "--protocol",
                               "unifiedreward_think")):
        proc = run_cli(["evaluate", "--dataset", "evalmuse", "--data-dir", tmp_path / "data", *what,
                        "--bootstrap-resamples", "100", "--json", *extra])
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    limited, whole = evaluate("--limit", "2"), evaluate()
    assert limited["limit"] == 2 and limited["n_unjudged_images"] == 0 and limited["n_prompts"] == 2
    assert limited["accuracy"] == pytest.approx(rec["metrics"]["accuracy"])
    assert limited["n_judgements"] == rec["scorer_summary"]["n_judgements"]
    assert whole["n_unjudged_images"] == sum(it.n_images for it in data.items[2:])
    assert whole["accuracy"] != pytest.approx(rec["metrics"]["accuracy"])
    # per-image scores: a file of the whole split, evaluated on the first 2 prompts
    scores = tmp_path / "scores.jsonl"
    scores.write_text("".join(json.dumps({"prompt_id": it.item_id, "image_index": k, "score": float(k)}) + "\n"
                              for it in data.items for k in range(it.n_images)))
    first_two = evaluate("--limit", "2", what=("--scores", scores))
    assert first_two["n_prompts"] == 2 and first_two["limit"] == 2


def _same_as_the_run(out, rec, tmp_path, policy):
    summary = json.loads((tmp_path / "run" / "run.json").read_text())["scorer_summary"]
    assert out["n_parse_failures"] == summary["n_parse_failures"] > 0
    assert out["n_judgements"] == summary["n_judgements"]
    if policy != "exclude":  # evaluate drops an item whose image lost every judgement; a run cannot
        assert out["accuracy"] == pytest.approx(rec["metrics"]["accuracy"])


def _rationale(a: str, b: str) -> str:
    """A RationalRewards-shaped judgement: per aspect Score A / Score B (text rendering not applicable)."""
    def block(n, title, ab):
        return f"{n}. {title}:\n## Justification: compared.\n## Score A: {ab[0]}\n## Score B: {ab[1]}\n## Winner: -\n"
    return ("# User Request Analysis\nThe request.\n# Detailed Judgement\n" + block(1, "Text Faithfulness", (a, b))
            + block(2, "Physical and Visual Quality", ("3", "3")) + block(3, "Text Rendering", ("N/A", "N/A"))
            + "# Summary: done.\n")


def test_rationalrewards_sums_aspects_and_fills_an_unreadable_one_with_its_fallback(templates, demo):
    data, urls = demo

    def reply(images, body):
        (_, a), (_, b) = urls[images[0]], urls[images[1]]
        if {a, b} == {0, 1}:  # an unreadable aspect: the official fallback scores it 2.5
            return _rationale("unclear", "2"), None
        return _rationale(str(1.0 + a), str(1.0 + b)), None

    with JudgeServer(reply) as server:
        scorer = _scorer(server, templates, protocol="rationalrewards", mode="round_robin")
        results = _score(scorer, data)
    for item, res in zip(data.items, results):
        n = item.n_images
        # the higher index wins every pair, except (0, 1): 2.5 + 3 + 2.5 against 2 + 3 + 2.5 gives 0 the win
        expected = [(k - (k == 1) + (k == 0)) / (n - 1) for k in range(n)]
        assert [res[k].score for k in range(n)] == pytest.approx(expected)
        j = next(j for j in res[0].detail["judgements"] if set(j["shown"]) == {0, 1})
        assert j["status"] == "parse_failure" and j["policy"] == "fallback" and not j["parsed"]["ok"]
        assert j["counted_as"] == {"winner": "first", "p_first": 1.0}  # 8.0 (with the 2.5 filled in) > 7.5
    s = scorer.summary()
    assert s["n_parse_failures"] == s["n_filled_by_fallback"] == len(data.items) and s["policy"] == "fallback"
