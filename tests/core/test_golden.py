"""prefbench's conventions and loaders against the official code's own numbers (golden values).

``tests/fixtures/golden/<source>.json`` holds what each benchmark's official evaluation code
computed on the seeded inputs of ``tests/fixtures/golden_inputs.py`` (written by
``scripts/make_golden.py`` from a checkout of the official repository, whose commit the file names).
Each test rebuilds the inputs, checks their digest against the golden file, runs them through
prefbench's real path (the convention, and the dataset loader where the official side read raw
files) and asks for agreement to 1e-12. ``tests/core/test_golden_mutations.py`` proves these tests
fail when a rule is changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import prefbench
from prefbench.evaluate import evaluate_file
from prefbench.metrics import ItemData, lookup_convention, per_prompt, per_prompt_data, tune_tie_threshold
from prefbench.metrics.conventions import PICKSCORE_GRID
from tests.fixtures.golden_inputs import CASES, build, digest

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
TOL = 1e-12
#: PLCC comes from an iterative fit of a four-parameter logistic (scipy's curve_fit): the same code
#: on another CPU (numpy's AVX-512 exp and log vs AVX2) lands 1.6e-11 away, so it is held to 1e-9
PLCC_TOL = 1e-9


def test_runs_the_prefbench_it_should():
    # the mutation tests run this file against a mutated copy of the package
    expected = os.environ.get("PREFBENCH_GOLDEN_EXPECT")
    if expected:
        assert Path(prefbench.__file__).resolve().is_relative_to(Path(expected).resolve())


def _case(source: str, case: str) -> tuple[dict, dict]:
    golden = json.loads((GOLDEN / f"{source}.json").read_text())
    assert golden["source"] == source and golden["commit"] and golden["repository"]
    inputs = build(source, case)
    entry = golden["cases"][case]
    assert digest(inputs) == entry["inputs_sha256"], (
        f"the inputs of {source}/{case} changed: regenerate tests/fixtures/golden/{source}.json with "
        "scripts/make_golden.py and a checkout of the official repository")
    return inputs, entry["expected"]


def _ids(n: int) -> list[str]:
    return [str(k) for k in range(n)]


def test_every_source_has_a_golden_file_with_every_case():
    for source, cases in CASES.items():
        golden = json.loads((GOLDEN / f"{source}.json").read_text())
        assert set(golden["cases"]) == set(cases), source
        assert golden["generated_by"] == "scripts/make_golden.py" and golden["files"]


@pytest.mark.parametrize("case", CASES["imagereward"])
def test_imagereward_matches_the_official_test_script(case):
    inputs, expected = _case("imagereward", case)
    got = per_prompt("imagereward", _ids(len(inputs["ranks"])), inputs["ranks"], inputs["scores"]).accuracy
    assert got == pytest.approx(expected["accuracy"], abs=TOL)


@pytest.mark.parametrize("case", CASES["hpsv2"])
def test_hpsv2_rules_match_hpsv2(case):
    inputs, expected = _case("hpsv2", case)
    convention = "hpdv2" if case.startswith("hpdv2") else "imagereward_per_prompt"
    got = per_prompt(convention, _ids(len(inputs["ranks"])), inputs["ranks"], inputs["scores"]).accuracy
    assert got == pytest.approx(expected["accuracy"], abs=TOL)


def test_hpdv2_constant_scorer_is_about_a_half():
    inputs, expected = _case("hpsv2", "hpdv2_constant")
    assert 0.4 < expected["accuracy"] < 0.6
    # the expectation over random tie orders is exactly 1/2 for a strict human ranking
    got = per_prompt("hpdv2_expected_ties", _ids(len(inputs["ranks"])), inputs["ranks"], inputs["scores"]).accuracy
    assert got == pytest.approx(0.5, abs=TOL)


def _pick(part: dict, threshold: float) -> float:
    n = len(part["label_0"])
    return per_prompt("pickapic", _ids(n), [[1, 2]] * n, part["scores"], part["label_0"], threshold).accuracy


def test_pickapic_matches_pickscore_at_fixed_thresholds():
    inputs, expected = _case("pickscore", "fixed_thresholds")
    for t in inputs["thresholds"]:
        assert _pick(inputs, t) == pytest.approx(expected[f"t={t}"], abs=TOL), t


def test_pickapic_tie_threshold_is_tuned_on_pickscores_grid():
    inputs, expected = _case("pickscore", "tune")
    assert list(PICKSCORE_GRID) == pytest.approx(expected["grid"], abs=0)
    val = inputs["validation"]
    n = len(val["label_0"])
    threshold, accuracy = tune_tie_threshold(_ids(n), [[1, 2]] * n, val["scores"], val["label_0"])
    assert threshold == pytest.approx(expected["threshold"], abs=TOL)
    assert accuracy == pytest.approx(expected["validation_accuracy"], abs=TOL)
    assert _pick(inputs["test"], threshold) == pytest.approx(expected["test_accuracy"], abs=TOL)


@pytest.mark.parametrize("case", CASES["videoalign"])
def test_tau_and_diff_match_videoalign(case):
    inputs, expected = _case("videoalign", case)
    ranks = [[1, 2] if h > 0 else [2, 1] if h < 0 else [1, 1] for h in inputs["h"]]
    scores = [[m, 0.0] for m in inputs["m"]]
    for name in ("tau", "diff"):
        got = per_prompt(name, _ids(len(ranks)), ranks, scores).accuracy
        assert got == pytest.approx(expected[name], abs=TOL), name


def test_genai_judge_matches_genai_bench_parse_response():
    inputs, expected = _case("genai_bench", "answers")
    datas = [ItemData(str(k), np.asarray([1.0, 1.0]), np.asarray([np.nan, np.nan]), label=vote,
                      verdicts={"verdict": text})
             for k, (vote, text) in enumerate(zip(inputs["votes"], inputs["responses"], strict=True))]
    assert per_prompt_data("genai_judge", datas).accuracy == pytest.approx(expected["accuracy"], abs=TOL)
    assert lookup_convention("genai_judge").summary(datas)["n_unparsed_verdicts"] == expected["n_unparsed"]


def test_mmrb2_matches_compute_accuracy_through_a_verdict_file(tmp_path):
    inputs, expected = _case("mmrb2", "judgements")
    pairs = [{"id": str(k), "prompt_content": [["text", f"prompt {k}"]], "prompt_source": "oneigbench",
              "response_a": {"model_name": "a", "response_content": [["image", f"images/{k}_a.jpg"]]},
              "response_b": {"model_name": "b", "response_content": [["image", f"images/{k}_b.jpg"]]},
              "chosen": c, "human_annotations": [1]} for k, c in enumerate(inputs["chosen"])]
    (tmp_path / "t2i.json").write_text(json.dumps({"pairs": pairs}))
    lines = [json.dumps({"prompt_id": pid, "order": order, "verdict": j})
             for pid, pred in inputs["predictions"].items() for order, j in pred.items()]
    (tmp_path / "verdicts.jsonl").write_text("\n".join(lines) + "\n")
    out = evaluate_file("mmrb2", None, "t2i", tmp_path, "mmrb2", n_resamples=20, verdicts_path=tmp_path / "verdicts.jsonl")
    assert out["accuracy"] == pytest.approx(expected["accuracy"], abs=TOL)
    assert out["n_missing_pairs"] == expected["missing_pairs"]
    assert out["n_pairs"] == expected["total_evaluated"]


def _scores_file(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("case", CASES["t2v_metrics"])
def test_genai_rank_matches_t2v_metrics_from_the_raw_ratings(tmp_path, case):
    # the loader turns each image's annotator ratings into its human score, as t2v_metrics'
    # GenAIBench_Ranking does; the official side read the same ratings itself
    inputs, expected = _case("t2v_metrics", case)
    rating = {str(p): {"id": str(p), "prompt": f"prompt {p}",
                       "models": {"DALLE_3": {str(k + 1): r for k, r in enumerate(per_image)}}}
              for p, per_image in enumerate(inputs["ratings"])}
    (tmp_path / "human_rating.json").write_text(json.dumps(rating))
    scores = _scores_file(tmp_path / "s.jsonl", [{"prompt_id": str(p), "image_index": k, "score": s}
                                                 for p, row in enumerate(inputs["scores"]) for k, s in enumerate(row)])
    for name in ("genai_rank_top1", "genai_rank_top1_by3", "genai_rank_best9", "genai_rank_best3"):
        out = evaluate_file("genai_rank", scores, "DALLE_3", tmp_path, name, n_resamples=20)
        assert out["accuracy"] == pytest.approx(expected[name], abs=TOL), name
    best3 = evaluate_file("genai_rank", scores, "DALLE_3", tmp_path, "genai_rank_best3", n_resamples=20)
    assert best3["random_baseline"] == pytest.approx(expected["random"], abs=TOL)
    assert best3["oracle"] == pytest.approx(expected["oracle_by3"], abs=TOL)
    best9 = evaluate_file("genai_rank", scores, "DALLE_3", tmp_path, "genai_rank_best9", n_resamples=20)
    assert best9["oracle"] == pytest.approx(expected["oracle_by9"], abs=TOL)


def test_evalmuse_train_list_and_metrics_match_the_authors_code(tmp_path):
    # train_list.json as published: annotator lists for the total score and for every element;
    # the loader averages them as the authors' process_train.py does, then the metrics follow
    inputs, expected = _case("evalmuse", "train_list")
    (tmp_path / "train_list.json").write_text(json.dumps(inputs["rows"]))
    from prefbench.data import load_dataset

    data = load_dataset("evalmuse", "train", tmp_path, with_images=False)
    by_path = {ref.key: (it, k) for it in data.items for k, ref in enumerate(it.images)}
    assert [by_path[r["img_path"]][0].human[by_path[r["img_path"]][1]] for r in inputs["rows"]] == \
        pytest.approx(expected["averaged_total_scores"], abs=TOL)
    labels = [v for r in inputs["rows"]
              for v in by_path[r["img_path"]][0].elements[by_path[r["img_path"]][1]].values()]
    assert labels == pytest.approx(expected["averaged_element_labels"], abs=TOL)
    rows = []
    for r, s, el in zip(inputs["rows"], inputs["scores"], inputs["element_preds"], strict=True):
        item, k = by_path[r["img_path"]]
        rows.append({"prompt_id": item.item_id, "image_index": k, "score": s, "elements": el})
    scores = _scores_file(tmp_path / "s.jsonl", rows)
    got = {c: evaluate_file("evalmuse", scores, "train", tmp_path, c, n_resamples=20)["accuracy"]
           for c in ("srcc", "plcc", "evalmuse_element", "evalmuse")}
    assert got["srcc"] == pytest.approx(expected["srcc"], abs=TOL)
    assert got["plcc"] == pytest.approx(expected["plcc"], abs=PLCC_TOL)
    assert got["evalmuse_element"] == pytest.approx(expected["element_accuracy"], abs=TOL)
    assert got["evalmuse"] == pytest.approx(expected["final"], abs=PLCC_TOL)  # PLCC/4 + SRCC/4 + acc/2
