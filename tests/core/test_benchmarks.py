"""The 2025-26 sets end to end: loaded from their published layout, scored by `prefbench run`
(random; CLIP on the tiny checkpoint) and `prefbench evaluate`, and bad input refused clearly."""

from __future__ import annotations

import json

import pytest

from prefbench.data import load_dataset
from prefbench.errors import DataError, UsageError
from prefbench.runner import RunConfig, run
from tests.fixtures import benchmarks as bm
from tests.fixtures.cli import run_cli

SETS = {
    "hpdv3": ("test", lambda d: bm.write_hpdv3(d, n=8)),
    "genai_bench": ("test_v1", lambda d: bm.write_genai_bench(d, n=12, shards=True)),
    "genai_rank": ("DALLE_3", lambda d: bm.write_genai_rank(d, n_prompts=3)),
    "mmrb2": ("t2i", lambda d: bm.write_mmrb2(d, n=8)),
    "evalmuse": ("train", lambda d: bm.write_evalmuse(d, n_prompts=5, per_prompt=3)),
}


@pytest.mark.parametrize("name", list(SETS))
def test_run_random_on_each_set(name, tmp_path):
    split, write = SETS[name]
    write(tmp_path / "data")
    rec = run(RunConfig(scorer="random", dataset=name, split=split, data_dir=str(tmp_path / "data"),
                        results_root=str(tmp_path / "runs"), progress=False, bootstrap_resamples=100))
    assert rec["counts"]["ok"] == load_dataset(name, split, tmp_path / "data").n_images
    assert rec["metrics"]["convention"] == load_dataset(name, split, tmp_path / "data").convention
    assert rec["metrics"]["accuracy"] is not None


@pytest.mark.parametrize("name", ["hpdv3", "genai_rank"])
def test_run_clip_encoder_on_a_set(name, tmp_path, tiny_encoders):
    split, write = SETS[name]
    write(tmp_path / "data")
    proc = run_cli(["run", "--scorer", "clip", "--model", tiny_encoders / "clip", "--dataset", name, "--split", split,
                    "--data-dir", tmp_path / "data", "--results", tmp_path / "runs", "--no-progress", "--json",
                    "--bootstrap-resamples", "100"], env_extra={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accuracy"] is not None


def test_evaluate_cli_with_verdicts(tmp_path):
    bm.write_genai_bench(tmp_path, n=8)
    data = load_dataset("genai_bench", "test_v1", tmp_path, with_images=False)
    v = tmp_path / "v.jsonl"
    v.write_text("".join(json.dumps({"prompt_id": it.item_id, "verdict": "[[A>B]]"}) + "\n" for it in data.items))
    proc = run_cli(["evaluate", "--dataset", "genai_bench", "--data-dir", tmp_path, "--verdicts", v,
                    "--convention", "genai_judge", "--bootstrap-resamples", "50"])
    assert proc.returncode == 0, proc.stderr
    assert "genai_judge convention" in proc.stdout and "rule: counted wrong" in proc.stdout


def test_element_conventions_refused_in_a_run(tmp_path):
    bm.write_evalmuse(tmp_path / "data", n_prompts=2)
    with pytest.raises(UsageError, match="per-element predictions"):
        run(RunConfig(scorer="random", dataset="evalmuse", split="train", data_dir=str(tmp_path / "data"),
                      convention="evalmuse", results_root=str(tmp_path / "runs"), progress=False))


def test_bad_labels_name_file_and_row(tmp_path):
    bm.write_mmrb2(tmp_path, n=3)
    raw = json.loads((tmp_path / "t2i.json").read_text())
    raw["pairs"][1]["chosen"] = "C"
    (tmp_path / "t2i.json").write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"pair 1: chosen must be 'A' or 'B'") as exc:
        load_dataset("mmrb2", "t2i", tmp_path)
    assert "t2i.json" in str(exc.value)
    rows = bm.write_evalmuse(tmp_path / "em", n_prompts=2)
    rows[3]["total_score"] = [7, 7, 7]  # the file holds annotator lists: this one's mean is out of range
    (tmp_path / "em" / "train_list.json").write_text(json.dumps(rows))
    with pytest.raises(DataError, match=r"row 3: total_score 7\.0 is outside 1-5"):
        load_dataset("evalmuse", "train", tmp_path / "em")
    h = tmp_path / "h"
    bm.write_hpdv3(h, n=2)
    rows = json.loads((h / "test.json").read_text())
    del rows[1]["path2"]
    (h / "test.json").write_text(json.dumps(rows))
    with pytest.raises(DataError, match="row 1: 'path2' must be a non-empty string"):
        load_dataset("hpdv3", "test", h)


def test_verdict_file_that_does_not_match_the_split(tmp_path):
    from prefbench.evaluate import evaluate_file

    bm.write_genai_bench(tmp_path, n=4)
    v = tmp_path / "v.jsonl"
    v.write_text(json.dumps({"prompt_id": "99", "verdict": "[[A>B]]"}) + "\n")
    with pytest.raises(DataError, match="prompt_id '99' is not in genai_bench/test_v1"):
        evaluate_file("genai_bench", None, None, tmp_path, "genai_judge", verdicts_path=v)
    v.write_text(json.dumps({"prompt_id": "0", "verdict": "[[A>B]]"}) + "\n")
    with pytest.raises(DataError, match="3 vote"):
        evaluate_file("genai_bench", None, None, tmp_path, "genai_judge", verdicts_path=v)


def _evalmuse_rows(total, element):
    return [{"prompt_id": "1", "prompt": "a cat", "img_path": f"i{k}.png", "type": "real",
             "total_score": total(k), "element_score": {"cat (animal)": element(k)}} for k in range(3)]


def test_evalmuse_annotator_lists_are_averaged_as_the_authors_converter_does(tmp_path):
    # train_list.json as published: lists for the total score and every element
    (tmp_path / "train_list.json").write_text(json.dumps(
        _evalmuse_rows(lambda k: [1, 2, 2 + k], lambda k: [1, 0] if k == 0 else [1, 1, k % 2])))
    item = load_dataset("evalmuse", "train", tmp_path, with_images=False).items[0]
    assert item.human == pytest.approx([round(5 / 3, 6), 2.0, round(7 / 3, 6)], abs=0)
    assert [e["cat (animal)"] for e in item.elements] == [0.5, 1.0, round(2 / 3, 6)]
    # the converter's train.json: scalars load as they are
    (tmp_path / "train.json").write_text(json.dumps(_evalmuse_rows(lambda k: 1.5 + k, lambda k: k % 2)))
    item = load_dataset("evalmuse", "train", tmp_path, with_images=False).items[0]
    assert item.human == [1.5, 2.5, 3.5] and [e["cat (animal)"] for e in item.elements] == [0, 1, 0]
    # a file mixing the two shapes for one field: a clear error naming both rows
    (tmp_path / "train.json").write_text(json.dumps(
        _evalmuse_rows(lambda k: 3, lambda k: [1, 0] if k == 2 else 1)))
    with pytest.raises(DataError, match=r"row 2: element 'cat \(animal\)' is one of annotator lists, but row 0"):
        load_dataset("evalmuse", "train", tmp_path, with_images=False)
    (tmp_path / "train.json").write_text(json.dumps(_evalmuse_rows(lambda k: [3, 4] if k else 3, lambda k: 1)))
    with pytest.raises(DataError, match="row 1: total_score is one of annotator lists"):
        load_dataset("evalmuse", "train", tmp_path, with_images=False)
