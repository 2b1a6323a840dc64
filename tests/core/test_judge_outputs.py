"""``prefbench evaluate --judge-outputs FILE --protocol NAME`` through the CLI, on synthetic copies of the
benchmarks in their published layouts: the accuracy each parse-failure policy implies (computed here,
from the labels and the texts, without prefbench's conversion code) and the parse-failure count."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prefbench.data import load_dataset
from tests.fixtures import benchmarks as bm
from tests.fixtures.cli import run_cli


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _evaluate(data_dir, dataset, outputs, protocol, *extra):
    proc = run_cli(["evaluate", "--dataset", dataset, "--data-dir", data_dir, "--judge-outputs", outputs,
                    "--protocol", protocol, "--bootstrap-resamples", "200", "--json", *extra])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# --- MMRB2: JSON verdicts, both orders, each order one judgement -----------------------------------

def _mm(better):
    return json.dumps({"reasoning": {"overall_quality": "..."}, "score": 4, "better_response": better,
                       "confidence": 0.4})


def test_mmrb2_texts_both_orders_under_each_policy(tmp_path):
    data = bm.write_mmrb2(tmp_path / "mm", n=12, seed=3)
    rng = np.random.default_rng(1)
    rows, judged = [], []  # judged: (chosen, verdict in A/B terms of the pair or None for a failure)
    for k, pair in enumerate(data["pairs"]):
        for order in ("forward", "reverse"):
            if k % 5 == 0 and order == "reverse":
                text = _mm("A")[:30]  # truncated before better_response
            elif k == 3 and order == "forward":
                text = "I cannot judge these images."
            else:
                shown = str(rng.choice(["A", "B"]))  # the letter of the response shown first ...
                text = _mm(shown)
            verdict = None
            if "better_response" in text:
                letter = json.loads(text)["better_response"]
                verdict = letter if order == "forward" else {"A": "B", "B": "A"}[letter]
            judged.append((pair["chosen"], verdict))
            rows.append({"prompt_id": pair["id"], "image_a": 0, "image_b": 1, "order": order, "text": text})
    out = _write(tmp_path / "judge.jsonl", rows)
    failures = sum(v is None for _, v in judged)
    correct = sum(v == c for c, v in judged)
    assert failures == 4

    official = _evaluate(tmp_path / "mm", "mmrb2", out, "mmrb2")
    assert official["convention"] == "mmrb2" and official["policy"] == "exclude"
    assert official["accuracy"] == pytest.approx(correct / (len(judged) - failures))
    assert official["n_parse_failures"] == failures and official["n_uncounted_judgements"] == failures
    assert official["n_judgements"] == 24 and official["n_missing_pairs"] == 0

    wrong = _evaluate(tmp_path / "mm", "mmrb2", out, "mmrb2", "--on-parse-failure", "wrong")
    assert wrong["accuracy"] == pytest.approx(correct / len(judged)) and wrong["policy"] == "wrong"
    neutral = _evaluate(tmp_path / "mm", "mmrb2", out, "mmrb2", "--on-parse-failure", "neutral")
    assert neutral["accuracy"] == pytest.approx(correct / len(judged))  # a tie is never the chosen response
    assert neutral["n_parse_failures"] == failures


def test_mmrb2_a_pair_the_file_never_judges_is_reported_missing(tmp_path):
    data = bm.write_mmrb2(tmp_path / "mm", n=4)
    rows = [{"prompt_id": p["id"], "image_a": 0, "image_b": 1, "order": "forward", "text": _mm(p["chosen"])}
            for p in data["pairs"][1:]]
    got = _evaluate(tmp_path / "mm", "mmrb2", _write(tmp_path / "j.jsonl", rows), "mmrb2")
    assert got["accuracy"] == 1.0 and got["n_missing_pairs"] == 1 and got["n_parse_failures"] == 0


# --- GenAI-Bench: RationalRewards texts (per-image scores) and the 4-way judge rule ----------------------

def _rr(a, b):
    """A RationalRewards judgement with per-aspect scores a[k] / b[k] (strings: 'N/A' or junk allowed)."""
    titles = ("Text Faithfulness", "Physical and Visual Quality", "Text Rendering")
    body = "".join(f"{n + 1}. {t}:\n## Justification: ...\n## Score A: {a[n]}\n## Score B: {b[n]}\n## Winner: Image A\n"
                   for n, t in enumerate(titles))
    return "# User Request Analysis\n...\n# Detailed Judgement\n" + body + "# Summary: done\n"


def _num(v):
    try:
        return float(v)
    except ValueError:
        return 2.5  # N/A and unreadable: RationalRewards' fallback score


def test_rationalrewards_texts_on_genai_bench_give_the_accuracy_the_official_policy_implies(tmp_path):
    votes = bm.write_genai_bench(tmp_path / "gb", n=40, seed=2)
    split = load_dataset("genai_bench", "test_v1", tmp_path / "gb", with_images=False)
    rng = np.random.default_rng(7)
    rows, expect = [], []  # expect: (human h, left total - right total, parsed?)
    for k, item in enumerate(split.items):
        left = [f"{x:.2f}" for x in rng.uniform(1, 4, 3)]
        right = [f"{x:.2f}" for x in rng.uniform(1, 4, 3)]
        left[2] = right[2] = "N/A"
        if k % 7 == 0:
            left[1] = "looks fine"  # unreadable: a parse failure, filled with 2.5 by the official policy
        if k % 11 == 0:
            right = list(left)  # equal totals: a model tie, wrong under diff
        order = "forward" if k % 2 else "reverse"  # reverse: the right image was shown first, as A
        text = _rr(left, right) if order == "forward" else _rr(right, left)
        rows.append({"prompt_id": item.item_id, "image_a": 0, "image_b": 1, "order": order, "text": text})
        h = {"leftvote": 1, "rightvote": -1}.get(votes[k], 0)
        expect.append((h, sum(map(_num, left)) - sum(map(_num, right)), "looks fine" not in left))
    out = _write(tmp_path / "rr.jsonl", rows)

    got = _evaluate(tmp_path / "gb", "genai_bench", out, "rationalrewards", "--convention", "diff")
    decided = [(h, m) for h, m, _ in expect if h != 0]
    assert got["accuracy"] == pytest.approx(np.mean([h * m > 0 for h, m in decided]))
    assert got["n_parse_failures"] == sum(not ok for _, _, ok in expect) == 6
    assert got["policy"] == "fallback" and got["n_filled_by_fallback"] == 6 and got["n_excluded_items"] == 0

    excl = _evaluate(tmp_path / "gb", "genai_bench", out, "rationalrewards", "--convention", "diff",
                     "--on-parse-failure", "exclude")
    kept = [(h, m) for h, m, ok in expect if h != 0 and ok]
    assert excl["accuracy"] == pytest.approx(np.mean([h * m > 0 for h, m in kept]))
    assert excl["n_excluded_items"] == 6 and excl["n_prompts"] == len(kept)


def test_genai_bench_judge_texts_under_the_four_way_rule(tmp_path):
    votes = bm.write_genai_bench(tmp_path / "gb", n=24, seed=5)
    split = load_dataset("genai_bench", "test_v1", tmp_path / "gb", with_images=False)
    said = ["[[A>B]]", "[[B>A]]", "[[A=B=Good]]", "[[A=B=Bad]]", "no verdict here"]
    rows, credit = [], []
    for k, item in enumerate(split.items):
        text, order = said[k % 5], ("forward" if k % 3 else "reverse")
        rows.append({"prompt_id": item.item_id, "image_a": 0, "image_b": 1, "order": order,
                     "text": f"Model A shows ...; model B ...\n{text}"})
        left = {"[[A>B]]": "leftvote", "[[B>A]]": "rightvote"}.get(text)
        if left and order == "reverse":  # A was the right image
            left = {"leftvote": "rightvote", "rightvote": "leftvote"}[left]
        vote = left or {"[[A=B=Good]]": "tievote", "[[A=B=Bad]]": "bothbad_vote"}.get(text)
        credit.append(vote == votes[k])  # unparsed: wrong
    got = _evaluate(tmp_path / "gb", "genai_bench", _write(tmp_path / "g.jsonl", rows), "genai_bench",
                    "--convention", "genai_judge")
    assert got["accuracy"] == pytest.approx(np.mean(credit))
    assert got["n_parse_failures"] == got["n_unparsed_verdicts"] == sum(k % 5 == 4 for k in range(24))


# --- HPDv3 and ranked items: pairwise verdicts become per-image scores ----------------------------------

THINK = "<think>Image 1 (8/10) ...; Image 2 (6/10) ...</think>\n<answer>{}</answer>"


def test_think_on_hpdv3_both_orders_and_the_neutral_policy(tmp_path):
    bm.write_hpdv3(tmp_path / "h", n=8)
    rows, correct = [], 0
    for k in range(8):
        # forward: image 0 (path1, preferred) shown first; reverse: image 1 first
        fwd = "Image 1 is better" if k < 6 else "Image 2 is better"
        rev = "Image 2 is better" if k < 4 else ("Image 1 is better" if k < 6 else "unsure")
        rows += [{"prompt_id": str(k), "image_a": 0, "image_b": 1, "order": "forward", "text": THINK.format(fwd)},
                 {"prompt_id": str(k), "image_a": 0, "image_b": 1, "order": "reverse", "text": THINK.format(rev)}]
    # items 0-3: both orders pick image 0 -> correct; 4-5: the orders disagree -> a tie, wrong;
    # 6-7: forward picks image 1 and the reverse text fails (neutral: a tie) -> image 1 ahead, wrong
    correct = 4
    got = _evaluate(tmp_path / "h", "hpdv3", _write(tmp_path / "t.jsonl", rows), "unifiedreward_think")
    assert got["accuracy"] == pytest.approx(correct / 8) and got["policy"] == "neutral"
    assert got["n_parse_failures"] == 2
    assert got["n_pairs_both_orders"] == 6 and got["order_agreement"] == pytest.approx(4 / 6)
    assert got["first_shown_win_rate"] == pytest.approx(8 / 14)  # 0-3: 1 of 2; 4-5: 2 of 2; 6-7: 0 of 1


def test_anchor_judgements_on_ranked_items_score_the_anchor_one_half(tmp_path):
    rng = np.random.default_rng(0)
    items, rows, correct, pairs = [], [], 0, 0
    for p in range(6):
        ranks = [int(x) for x in rng.permutation(4) + 1]
        items.append({"prompt_id": f"p{p}", "prompt": "a red cube", "images": [f"{p}_{k}.png" for k in range(4)],
                      "ranks": ranks})
        anchor = p % 4
        won = {}
        for k in range(4):
            if k == anchor:
                continue
            first = bool(rng.integers(2))  # the candidate shown first?
            says_cand = bool(rng.random() < 0.7)
            won[k] = 1.0 if says_cand else 0.0
            answer = "Image 1 is better" if says_cand == first else "Image 2 is better"
            a, b = (k, anchor) if first else (anchor, k)
            rows.append({"prompt_id": f"p{p}", "image_a": a, "image_b": b, "order": "forward",
                         "text": THINK.format(answer)})
        score = [0.5 if k == anchor else won[k] for k in range(4)]
        for i in range(4):
            for j in range(i + 1, 4):
                if ranks[i] != ranks[j]:
                    better, worse = (i, j) if ranks[i] < ranks[j] else (j, i)
                    correct += score[better] > score[worse]
                    pairs += 1
    data = tmp_path / "own.jsonl"
    _write(data, items)
    got = _evaluate(data, "jsonl", _write(tmp_path / "a.jsonl", rows), "unifiedreward_think")
    assert got["convention"] == "imagereward" and got["accuracy"] == pytest.approx(correct / pairs)
    assert got["n_parse_failures"] == 0 and got["n_unjudged_images"] == 0


# --- pointwise --------------------------------------------------------------------------------------

def test_unifiedreward_pointwise_texts_and_flow_grpos_zero(tmp_path):
    bm.write_hpdv3(tmp_path / "h", n=6)
    rows, expect = [], []
    for k in range(6):
        s0, s1 = (4.5, 2.69) if k < 3 else (3.0, 3.5)
        t0 = f"Final Score: {s0}" if k != 4 else "I would rather not say."
        t1 = (f"Alignment Score (1-5): {s1}\nCoherence Score (1-5): {s1}\nStyle Score (1-5): {s1}")
        rows += [{"prompt_id": str(k), "image_index": 0, "text": t0}, {"prompt_id": str(k), "image_index": 1, "text": t1}]
        expect.append((0.0 if k == 4 else s0) > s1)  # flow_grpo: unparsed -> 0.0
    out = _write(tmp_path / "u.jsonl", rows)
    got = _evaluate(tmp_path / "h", "hpdv3", out, "unifiedreward")
    assert got["accuracy"] == pytest.approx(np.mean(expect)) and got["n_parse_failures"] == 1
    neutral = _evaluate(tmp_path / "h", "hpdv3", out, "unifiedreward", "--on-parse-failure", "neutral")
    assert neutral["accuracy"] == pytest.approx(np.mean(expect))  # 3.0 < 3.5: still wrong
    excl = _evaluate(tmp_path / "h", "hpdv3", out, "unifiedreward", "--on-parse-failure", "exclude")
    assert excl["n_prompts"] == 5 and excl["accuracy"] == pytest.approx(3 / 5)


def test_a_pointwise_protocol_on_mmrb2_uses_a_score_convention(tmp_path):
    data = bm.write_mmrb2(tmp_path / "mm", n=6, seed=1)
    rows = [{"prompt_id": p["id"], "image_index": i, "text": "Yes" if "AB"[i] == p["chosen"] else "No"}
            for p in data["pairs"] for i in (0, 1)]
    out = _write(tmp_path / "v.jsonl", rows)
    proc = run_cli(["evaluate", "--dataset", "mmrb2", "--data-dir", tmp_path / "mm", "--judge-outputs", out,
                    "--protocol", "vqascore"])
    assert proc.returncode == 2 and "vqascore is pointwise: choose a convention of per-image scores, e.g. " \
        "--convention hpdv3" in proc.stderr
    got = _evaluate(tmp_path / "mm", "mmrb2", out, "vqascore", "--convention", "hpdv3")
    assert got["accuracy"] == 1.0 and got["n_parse_failures"] == 0


# --- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, message", [
    ('{"prompt_id": "99", "image_a": 0, "image_b": 1, "order": "forward", "text": "x"}',
     "line 2: prompt_id '99' is not in hpdv3/test"),
    ('{"prompt_id": "1", "image_a": 0, "image_b": 2, "order": "forward", "text": "x"}',
     "line 2: image_b 2 out of range for prompt_id '1' (2 images)"),
    ('{"prompt_id": "1", "image_a": 0, "image_b": 1, "order": "sideways", "text": "x"}',
     "line 2: order must be 'forward' or 'reverse'"),
    ('{"prompt_id": "1", "image_a": 0, "image_b": 1, "order": "forward", "text": "x"',
     "line 2: invalid JSON"),
    ('{"prompt_id": "1", "image_index": 0, "text": "x"}',
     "line 2: missing key(s) image_a, image_b, order: a pairwise protocol (unifiedreward_think) reads rows of"),
    ('{"prompt_id": "0", "image_a": 1, "image_b": 0, "order": "reverse", "text": "x"}',
     "line 2: duplicate judgement of prompt_id '0', images 0 then 1 (first on line 1)"),
])
def test_bad_rows_name_the_line(tmp_path, line, message):
    bm.write_hpdv3(tmp_path / "h", n=3)
    first = json.dumps({"prompt_id": "0", "image_a": 0, "image_b": 1, "order": "forward", "text": "x"})
    out = _write(tmp_path / "bad.jsonl", [first, line])
    proc = run_cli(["evaluate", "--dataset", "hpdv3", "--data-dir", tmp_path / "h", "--judge-outputs", out,
                    "--protocol", "unifiedreward_think"])
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_the_text_report_names_failures_policy_and_bias(tmp_path):
    bm.write_hpdv3(tmp_path / "h", n=3)
    rows = [{"prompt_id": str(k), "image_a": 0, "image_b": 1, "order": "forward",
             "text": THINK.format("Image 1 is better") if k else ""} for k in range(3)]
    proc = run_cli(["evaluate", "--dataset", "hpdv3", "--data-dir", tmp_path / "h", "--judge-outputs",
                    _write(tmp_path / "t.jsonl", rows), "--protocol", "unifiedreward_think", "--on-parse-failure",
                    "wrong", "--bootstrap-resamples", "50", "--parsed-out", tmp_path / "parsed.jsonl"])
    assert proc.returncode == 0, proc.stderr
    audit = [json.loads(line) for line in (tmp_path / "parsed.jsonl").read_text().splitlines()]
    assert audit[0] == {"line": 1, "prompt_id": "0", "shown": [0, 1], "status": "parse_failure",
                        "parsed": {"ok": False, "reason": "empty text"}, "policy": "wrong", "counted_as": "wrong"}
    assert audit[1] == {"line": 2, "prompt_id": "1", "shown": [0, 1], "status": "ok",
                        "parsed": {"ok": True, "winner": "first"}, "counted_as": {"winner": "first", "p_first": 1.0}}
    assert f"one row per judgement: {tmp_path / 'parsed.jsonl'}" in proc.stdout
    assert "3 judgements, 1 parse failure(s) (lines 1); policy wrong (override)" in proc.stdout
    assert "overrides the official 'neutral'" in proc.stdout
    assert "the image shown first wins 1.000 of 2 decided judgements" in proc.stdout
    assert "accuracy 0.6667" in proc.stdout
    lone = run_cli(["evaluate", "--dataset", "hpdv3", "--data-dir", tmp_path / "h", "--protocol", "mmrb2"])
    assert lone.returncode == 2 and "--judge-outputs FILE and --protocol NAME go together" in lone.stderr
    stray = run_cli(["evaluate", "--dataset", "hpdv3", "--data-dir", tmp_path / "h", "--scores", tmp_path / "s.jsonl",
                     "--on-parse-failure", "exclude"])  # a judge option without judge outputs is not ignored
    assert stray.returncode == 2 and "--judge-outputs FILE and --protocol NAME go together" in stray.stderr


def test_a_runs_rows_give_each_judgement_once_and_every_rollout():
    """A round-robin comparison's judgements sit in both images' rows (read once), and two rollouts
    that wrote the same text are two judgements, not one."""
    from prefbench.judges.judgements import run_judgements, run_rows

    same = [{"shown": [0, 1], "order": "forward", "text": "<answer>Image 1 is better</answer>"}] * 2
    rows = [{"item_id": "p", "image_index": 0, "detail": {"judgements": same}},
            {"item_id": "p", "image_index": 1, "detail": {"judgements": same}},
            {"prompt_id": "q", "image_a": 0, "image_b": 1, "order": "forward", "text": "x"}]
    got = list(run_judgements(enumerate(rows, 1)))
    assert [(line, item) for line, item, _ in got] == [(1, "p"), (1, "p"), (3, None)]
    assert [r for _, r in run_rows(enumerate(rows, 1), pairwise=True)] == [
        {"prompt_id": "p", "text": same[0]["text"], "image_a": 0, "image_b": 1, "order": "forward"}] * 2 + [rows[2]]
