"""Third-party datasets whose items carry the richer labels (``human``, ``label``, ``elements``):
the example plugin's ``toy_points`` (pointwise, like EvalMuse) and ``toy_pairs`` (votes, like
GenAI-Bench) are listed, scored by `prefbench run` under a convention that needs those fields,
and evaluated by `prefbench evaluate`, with no line of prefbench naming them."""

from __future__ import annotations

import json

from tests.fixtures.cli import run_cli


def _fresh_scan():
    from prefbench import data

    data._registry()._cache_key = None  # entry points are scanned once per sys.path: scan again here


def test_plugin_datasets_with_human_label_elements_are_listed(with_plugin):
    from prefbench.data import dataset_info, load_dataset

    _fresh_scan()
    points, pairs = dataset_info("toy_points"), dataset_info("toy_pairs")
    assert points.source.startswith("plugin: prefbench-example-plugin") and points.kind == "pointwise"
    assert pairs.kind == "pair" and pairs.convention == "tau"
    split = load_dataset("toy_points", "test")
    assert split.items[0].human == [5.0, 4.0, 3.0, 2.0] and len(split.items[0].elements) == 4
    assert [it.label for it in load_dataset("toy_pairs").items][:4] == ["leftvote", "rightvote", "tievote",
                                                                        "bothbad_vote"]
    listed = {d["name"]: d for d in json.loads(run_cli(["list", "--json"]).stdout)["datasets"]}
    assert listed["toy_points"]["kind"] == "pointwise" and listed["toy_points"]["convention"] == "srcc"
    assert listed["toy_pairs"]["kind"] == "pair" and listed["toy_pairs"]["source"].startswith("plugin")
    text = run_cli(["list"]).stdout
    assert "toy_points" in text and "toy_pairs" in text


def test_run_random_on_plugin_datasets_with_their_conventions(with_plugin, tmp_path):
    for name, convention, n_images in (("toy_points", "srcc", 16), ("toy_pairs", "tau", 12)):
        out = tmp_path / name
        proc = run_cli(["run", "--scorer", "random", "--dataset", name, "--convention", convention, "--out", out,
                        "--no-progress", "--json", "--bootstrap-resamples", "200"])
        assert proc.returncode == 0, proc.stderr
        rec = json.loads((out / "run.json").read_text())
        assert rec["dataset"]["name"] == name and rec["counts"]["ok"] == n_images
        assert rec["metrics"]["convention"] == convention
        assert rec["metrics"]["accuracy"] is not None and rec["metrics"]["ci_low"] <= rec["metrics"]["ci_high"]
    # a convention whose fields the items lack is refused before scoring (toy has no human scores)
    proc = run_cli(["run", "--scorer", "random", "--dataset", "toy", "--convention", "srcc", "--out",
                    tmp_path / "bad", "--no-progress"])
    assert proc.returncode == 2 and "human" in proc.stderr, proc.stderr


def test_evaluate_plugin_datasets(with_plugin, tmp_path):
    from prefbench.data import load_dataset

    _fresh_scan()
    points = load_dataset("toy_points", "test", with_images=False)
    scores = tmp_path / "points.jsonl"
    with open(scores, "w") as fh:  # a perfect scorer: the human score itself, elements included
        for item in points.items:
            for k in range(item.n_images):
                fh.write(json.dumps({"prompt_id": item.item_id, "image_index": k, "score": item.human[k],
                                     "elements": item.elements[k]}) + "\n")
    proc = run_cli(["evaluate", "--dataset", "toy_points", "--split", "test", "--scores", scores, "--convention",
                    "evalmuse", "--bootstrap-resamples", "100", "--json"])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["convention"] == "evalmuse" and out["accuracy"] > 0.9
    pairs = load_dataset("toy_pairs", with_images=False)
    verdicts = tmp_path / "verdicts.jsonl"
    verdicts.write_text("".join(json.dumps({"prompt_id": it.item_id, "verdict": "[[A>B]]"}) + "\n"
                                for it in pairs.items))
    proc = run_cli(["evaluate", "--dataset", "toy_pairs", "--verdicts", verdicts, "--convention", "genai_judge",
                    "--bootstrap-resamples", "100", "--json"])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # [[A>B]] is right on the two left votes of six (the judge rule reads the item's label)
    assert out["convention"] == "genai_judge" and out["accuracy"] == 2 / 6
