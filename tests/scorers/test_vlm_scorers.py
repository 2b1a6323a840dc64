"""The four VLM scorers end to end on the tiny Qwen2.5-VL, through the real runner and CLI."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from tests.fixtures.extras import skip_without_extra

skip_without_extra("vlm")

from prefbench.data.model import ImageRef, Item  # noqa: E402
from prefbench.registry import build  # noqa: E402
from prefbench.runner import RunConfig, run  # noqa: E402
from prefbench.scorers.vlm.scorers import anchor_index  # noqa: E402
from tests.fixtures.cli import run_cli  # noqa: E402

FAST = {"max_new_tokens": 4}


def _png(seed: int, size=(40, 32)) -> bytes:
    import io

    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _item(item_id: str, n: int, bad: tuple[int, ...] = ()) -> Item:
    refs = [ImageRef(f"{item_id}/{k}.png", data=b"not an image" if k in bad else _png(zlib.crc32(f"{item_id}/{k}".encode())))
            for k in range(n)]
    return Item(item_id, f"prompt of {item_id}", refs, list(range(1, n + 1)))


@pytest.fixture(scope="module")
def scorers(tiny_vlm_dir):
    """One loaded scorer per configuration used below (loading is the slow part)."""
    cache = {}

    def get(name, **params):
        key = (name, tuple(sorted(params.items())))
        if key not in cache:
            scorer, _ = build(name, {"model": str(tiny_vlm_dir), **FAST, **params})
            scorer.setup()
            cache[key] = scorer
        return cache[key]

    return get


def test_anchor_pairwise_makes_n_minus_1_comparisons_and_scores_the_anchor_half(scorers):
    scorer = scorers("anchor_pairwise", rollouts=2)
    items = [_item("p1", 4), _item("p2", 3), _item("p3", 5)]
    before = dict(scorer.engine.batch_stats)
    out = scorer.score_batch([(it, range(it.n_images)) for it in items])
    rows = scorer.engine.batch_stats["rows"] - before.get("rows", 0)
    assert rows == sum(it.n_images - 1 for it in items) * 2  # N-1 comparisons x 2 rollouts
    for it, res in zip(items, out):
        anchor = anchor_index(scorer.seed, it)
        assert res[anchor].score == 0.5 and res[anchor].detail["anchor"]
        others = [k for k in range(it.n_images) if k != anchor]
        for k in others:
            r = res[k]
            assert r.status == "ok" and r.anchor_index == anchor
            assert [ro["order"] for ro in r.detail["rollouts"]] == ["anchor_first"] * 2
            assert 0.0 < r.score < 1.0 and r.prob == r.score
            assert r.score == pytest.approx(np.mean(r.detail["rollout_scores"]))
            assert r.score == pytest.approx(np.mean([ro["p1"] for ro in r.detail["rollouts"]]))


def test_anchor_is_seeded_by_item_id_and_skips_undecodable_images():
    it = _item("p9", 6)
    assert anchor_index(0, it) == anchor_index(0, _item("p9", 6))
    assert len({anchor_index(s, it) for s in range(20)}) > 1
    first = anchor_index(0, it)
    assert anchor_index(0, it, usable=[k for k in range(6) if k != first]) != first


def test_both_orders_averages_and_records_position_bias(scorers):
    scorer = scorers("anchor_pairwise", both_orders=True)
    it = _item("q1", 4)
    before = scorer.engine.batch_stats.get("rows", 0)
    res = scorer.score_batch([(it, range(4))])[0]
    assert scorer.engine.batch_stats["rows"] - before == 2 * 3
    anchor = anchor_index(scorer.seed, it)
    bias = []
    for k in range(4):
        if k == anchor:
            continue
        ro = {r["order"]: r for r in res[k].detail["rollouts"]}
        assert set(ro) == {"anchor_first", "candidate_first"}
        # candidate first: P(candidate better) = P("0") = 1 - P("1")
        assert res[k].score == pytest.approx((ro["anchor_first"]["p1"] + 1 - ro["candidate_first"]["p1"]) / 2)
        bias.append(ro["anchor_first"]["p1"] + ro["candidate_first"]["p1"] - 1)
    summary = scorer.summary()
    assert summary["position_bias_n"] >= 3
    assert np.isclose(np.mean(scorer._bias[-3:]), np.mean(bias))


def test_expected_rating_mean_at_k_averages_distinct_rollouts(scorers):
    scorer = scorers("expected_rating", rollouts=3)
    res = scorer.score_batch([(_item("r1", 2), [0, 1])])[0]
    for r in res.values():
        texts = [ro["text"] for ro in r.detail["rollouts"]]
        assert len(texts) == 3 and len(set(texts)) == 3
        for ro in r.detail["rollouts"]:
            assert ro["score"] == pytest.approx(np.dot(range(1, 6), ro["probs"]), abs=1e-5)
            assert 1.0 <= ro["score"] <= 5.0
        assert r.score == pytest.approx(np.mean(r.detail["rollout_scores"]))
        assert r.forced and r.detail["forced_rollouts"] == 3
        assert r.generated_tokens == sum(ro["generated_tokens"] for ro in r.detail["rollouts"])


def test_seed_reproduces_and_changes_rollouts(tiny_vlm_dir):
    def once(seed):
        scorer, _ = build("expected_rating", {"model": str(tiny_vlm_dir), "seed": seed, **FAST})
        scorer.setup()
        res = scorer.score_batch([(_item("s1", 2), [0, 1])])[0]
        return [res[k].score for k in (0, 1)], [res[k].detail["rollouts"][0]["text"] for k in (0, 1)]

    a, b, c = once(1), once(1), once(2)
    assert a == b
    assert a[1] != c[1]


def test_bad_image_is_an_error_and_the_rest_is_scored(scorers):
    scorer = scorers("expected_rating")
    res = scorer.score_batch([(_item("b1", 3, bad=(1,)), [0, 1, 2])])[0]
    assert res[1].status == "error" and res[1].score is None and "b1/1.png" in res[1].error
    assert res[0].status == res[2].status == "ok"
    pair = scorers("anchor_pairwise")
    it = _item("b2", 3, bad=(anchor_index(pair.seed, _item("b2", 3)),))
    res = pair.score_batch([(it, [0, 1, 2])])[0]
    statuses = sorted(r.status for r in res.values())
    assert statuses == ["error", "ok", "ok"]  # a broken anchor is replaced by the next in seeded order
    good = [r for r in res.values() if r.status == "ok"]
    assert sorted(r.score == 0.5 for r in good) == [False, True]


def test_naive_sampling_counts_unparsed_answers_instead_of_scoring_them(scorers):
    scorer = scorers("naive_sampling", rollouts=2)
    res = scorer.score_batch([(_item("n1", 2), [0, 1])])[0]
    for r in res.values():
        # a random model never writes a valid "<answer>k</answer>": unparsed, no score
        assert r.status == "unparsed" and r.score is None
        assert r.detail["unparsed_rollouts"] == 2
        assert all(ro["parsed"] is None and "score" not in ro for ro in r.detail["rollouts"])
        assert all(ro["text"].count("<answer>") == 1 for ro in r.detail["rollouts"])


def test_options_are_validated(tiny_vlm_dir):
    from prefbench.errors import UsageError

    m = str(tiny_vlm_dir)
    with pytest.raises(UsageError, match="needs --model"):
        build("expected_rating", {})
    with pytest.raises(UsageError, match="identical rollouts"):
        build("expected_rating", {"model": m, "rollouts": 3, "temperature": 0})
    with pytest.raises(UsageError, match="task is 'rating'"):
        build("expected_rating", {"model": m, "task": "pairwise"})
    with pytest.raises(UsageError, match="both_orders"):
        build("zero_shot", {"model": m, "both_orders": True})
    with pytest.raises(UsageError, match="single digits"):
        build("expected_rating", {"model": m, "scale": "1-10"})
    # the default reasoning budget comes from the checkpoint's generation_config.json
    assert build("expected_rating", {"model": m})[1]["resolved"]["max_new_tokens"] == 32
    scorer, spec = build("zero_shot", {"model": m, "task": "pairwise", "readout": "hard"})
    assert spec["resolved"]["template"] == "zero_shot_pairwise_v1" and spec["resolved"]["readout"] == "hard"


def test_runner_records_forced_unparsed_throughput_and_prompt_hash(tiny_vlm_dir, tmp_path):
    common = dict(model=str(tiny_vlm_dir), dataset="demo", limit=2, rollouts=3, progress=False,
                  bootstrap_resamples=200, results_root=str(tmp_path))
    rec = run(RunConfig(scorer="zero_shot", params=dict(FAST), **common), log=lambda m: None)
    assert rec["status"] == "complete"
    n = rec["dataset"]["n_images"]
    assert rec["counts"]["ok"] == n and rec["counts"]["forced"] == n
    assert rec["metrics"]["accuracy"] is not None and rec["metrics"]["ci_low"] <= rec["metrics"]["ci_high"]
    assert rec["throughput"]["generated_tokens"] > 0 and rec["throughput"]["generated_tokens_per_s"] > 0
    assert rec["scorer"]["resolved"]["rollouts"] == 3 and rec["prompt_template_hash"]
    # 3 rollouts share one encoding of their image
    assert rec["scorer_summary"]["image_encodings_shared"] == 2 * rec["scorer_summary"]["images_encoded"]
    assert rec["model"]["revision"].startswith("sha256:")
    samples = [json.loads(line) for line in open(f"{rec['run_dir']}/samples.jsonl")]
    assert all(len(s["detail"]["rollouts"]) == 3 for s in samples)

    rec = run(RunConfig(scorer="naive_sampling", params=dict(FAST), **common), log=lambda m: None)
    assert rec["counts"]["unparsed"] == n and rec["counts"]["ok"] == 0
    # the same configuration again is answered from the finished run
    again = run(RunConfig(scorer="naive_sampling", params=dict(FAST), **common), log=lambda m: None)
    assert again.get("cached")


def test_cli_anchor_pairwise_end_to_end(tiny_vlm_dir, tmp_path):
    proc = run_cli(["run", "--scorer", "anchor_pairwise", "--model", tiny_vlm_dir, "--dataset", "demo",
                    "--limit", "2", "-S", "max_new_tokens=4", "--results", tmp_path, "--json", "--no-progress",
                    "--bootstrap-resamples", "200"], cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["scorer"] == "anchor_pairwise" and out["status"] == "complete"
    assert out["ci_low"] <= out["accuracy"] <= out["ci_high"]
    assert "brier" in out  # the runner's calibration from prob vs anchor_index
    rec = json.loads((tmp_path / out["run_dir"] / "run.json").read_text())
    assert rec["scorer_summary"]["task"] == "pairwise"


def test_resumed_run_ends_with_the_same_scores(tiny_vlm_dir, tmp_path):
    """Rows lost from samples.jsonl are rescored in other batches; per-row sampling seeds give
    the same rollouts, so the resumed run matches the uninterrupted one."""
    cfg = dict(scorer="expected_rating", model=str(tiny_vlm_dir), dataset="demo", limit=2, rollouts=2,
               progress=False, bootstrap_resamples=200, params=dict(FAST))
    full = run(RunConfig(**cfg, out=str(tmp_path / "full")), log=lambda m: None)
    rows = (tmp_path / "full" / "samples.jsonl").read_text().splitlines()
    part = tmp_path / "part"
    part.mkdir()
    (part / "run.json").write_text((tmp_path / "full" / "run.json").read_text())
    (part / "samples.jsonl").write_text("\n".join(rows[1::2]) + "\n")  # every other image survived
    resumed = run(RunConfig(**cfg, out=str(part)), log=lambda m: None)
    assert resumed["throughput"]["images_scored_this_session"] == len(rows) - len(rows[1::2])

    def scores(path):
        out = {}
        for line in path.read_text().splitlines():
            s = json.loads(line)
            out[(s["item_id"], s["image_index"])] = (s["score"], [r["text"] for r in s["detail"]["rollouts"]])
        return out

    a, b = scores(tmp_path / "full" / "samples.jsonl"), scores(part / "samples.jsonl")
    assert a.keys() == b.keys()
    for key in a:
        assert a[key][1] == b[key][1]  # identical traces
        assert a[key][0] == pytest.approx(b[key][0], abs=1e-5)
    assert resumed["metrics"]["accuracy"] == pytest.approx(full["metrics"]["accuracy"])


def test_mmrb2_with_both_orders_counts_two_judgements_per_pair(tiny_vlm_dir, tmp_path):
    # MMRB2's position-consistent protocol from a pairwise VLM scorer: each pair shown in both
    # orders gives two judgements (order_probs on the candidate's row), each counted once
    from prefbench.store import read_samples
    from tests.fixtures import benchmarks as bm

    bm.write_mmrb2(tmp_path / "data", n=4)
    rec = run(RunConfig(scorer="anchor_pairwise", model=str(tiny_vlm_dir), dataset="mmrb2", split="t2i",
                        data_dir=str(tmp_path / "data"), params={**FAST, "both_orders": True}, progress=False,
                        bootstrap_resamples=100, out=str(tmp_path / "run")), log=lambda m: None)
    rows = read_samples(tmp_path / "run" / "samples.jsonl")
    carried = [r for r in rows.values() if r.get("order_probs")]
    assert len(carried) == 4 and all(set(r["order_probs"]) == {"anchor_first", "candidate_first"} for r in carried)
    for r in carried:  # the image's score is the mean over the two orders' probabilities
        assert r["score"] == pytest.approx(np.mean(list(r["order_probs"].values())))
    assert rec["metrics"]["n_pairs"] == 8  # 4 pairs x 2 judgements
