"""The CLI contract: --help/list stay light, evaluate scores a file through the official conventions, bad input exits 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from prefbench.metrics import per_prompt
from tests.fixtures.cli import run_cli
from tests.fixtures.extras import requires_extra

HEAVY = ("torch", "transformers", "openai", "trl", "scipy")


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["list", "--json"], ["run", "--help"]])
def test_help_and_list_import_nothing_heavy(argv):
    code = (
        "import sys, contextlib, io\n"
        "from prefbench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_list_shows_scorers_and_datasets():
    proc = run_cli(["list", "--json"])
    data = json.loads(proc.stdout)
    random = next(s for s in data["scorers"] if s["name"] == "random")
    assert random["installed"] and random["extra"] is None
    assert {d["name"] for d in data["datasets"]} >= {"imagereward", "hpdv2", "pickapic", "jsonl", "demo"}
    assert "Scorers:" in run_cli(["list"]).stdout


def _write_scores(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_evaluate_on_the_real_imagereward_annotation(tmp_path, ir_annotation):
    (tmp_path / "test.json").write_bytes(ir_annotation.read_bytes())  # annotation only: no images needed
    items = json.loads(ir_annotation.read_text())
    rng = np.random.default_rng(11)
    # integer scores make model ties frequent: they must count as wrong
    scores = [list(map(int, rng.integers(0, 4, len(it["ranking"])))) for it in items]
    _write_scores(tmp_path / "s.jsonl", [
        {"prompt_id": it["id"], "image_index": k, "score": s} for it, sc in zip(items, scores) for k, s in enumerate(sc)
    ])
    proc = run_cli(["evaluate", "--dataset", "imagereward", "--data-dir", tmp_path, "--scores", tmp_path / "s.jsonl",
                    "--json"])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # the rule itself is golden-tested against ImageReward's test.py (tests/core/test_golden.py):
    # here the CLI's file path gives the convention's number on the real annotation
    direct = per_prompt("imagereward", [it["id"] for it in items], [it["ranking"] for it in items], scores)
    assert out["accuracy"] == direct.accuracy and out["n_pairs"] == direct.n_pairs == 6399 and out["n_prompts"] == 466
    assert out["ci_low"] < direct.accuracy < out["ci_high"]
    proc = run_cli(["evaluate", "--dataset", "imagereward", "--data-dir", tmp_path, "--scores", tmp_path / "s.jsonl",
                    "--convention", "hpdv2", "--json"])
    assert json.loads(proc.stdout)["accuracy"] == pytest.approx(
        per_prompt("hpdv2", [it["id"] for it in items], [it["ranking"] for it in items], scores).accuracy, abs=1e-12)


@pytest.fixture
def tiny_hpdv2(tmp_path):
    (tmp_path / "test.json").write_text(json.dumps([
        {"prompt": "a", "image_path": ["x", "y", "z"], "rank": [1, 2, 3]},
        {"prompt": "b", "image_path": ["x", "y"], "rank": [2, 1]},
    ]))
    return tmp_path


def test_evaluate_hpdv2_positions_as_ids(tiny_hpdv2):
    s = tiny_hpdv2 / "s.jsonl"
    _write_scores(s, [{"prompt_id": "0", "image_index": 0, "score": 3}, {"prompt_id": "0", "image_index": 1, "score": 1},
                      {"prompt_id": "0", "image_index": 2, "score": 2}, {"prompt_id": "1", "image_index": 0, "score": 0},
                      {"prompt_id": "1", "image_index": 1, "score": 1}])
    out = json.loads(run_cli(["evaluate", "--dataset", "hpdv2", "--data-dir", tiny_hpdv2, "--scores", s, "--json"]).stdout)
    assert out["accuracy"] == pytest.approx(((1 - 1 / 3) + 1) / 2)


def test_evaluate_hpdv2_constant_scores_give_about_a_half(tmp_path):
    # HPSv2's evaluate_rank orders tied scores by image index: a constant scorer is not rewarded
    rng = np.random.default_rng(3)
    rows = [{"prompt": f"p{k}", "image_path": [f"{k}_{j}.png" for j in range(9)],
             "rank": [int(x) + 1 for x in rng.permutation(9)]} for k in range(200)]
    (tmp_path / "test.json").write_text(json.dumps(rows))
    _write_scores(tmp_path / "s.jsonl", [{"prompt_id": str(k), "image_index": j, "score": 0.7}
                                         for k in range(200) for j in range(9)])
    out = json.loads(run_cli(["evaluate", "--dataset", "hpdv2", "--data-dir", tmp_path, "--scores",
                              tmp_path / "s.jsonl", "--json"]).stdout)
    assert 0.45 < out["accuracy"] < 0.55
    out = json.loads(run_cli(["evaluate", "--dataset", "hpdv2", "--data-dir", tmp_path, "--scores",
                              tmp_path / "s.jsonl", "--convention", "hpdv2_expected_ties", "--json"]).stdout)
    assert out["accuracy"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt_id": "0", "image_index": 0, "score": 1}\n{"prompt_id": "0", "image_index": 1,\n', "s.jsonl, line 2"),
        ('{"prompt_id": "0", "image_index": 0, "score": "high"}\n', "line 1: score must be a finite number"),
        ('{"prompt_id": "0", "image_index": 7, "score": 1}\n', "image_index 7 out of range"),
        ('{"prompt_id": "0", "image_index": 0, "score": 1}\n' * 2, "line 2: duplicate score"),
        ('{"prompt_id": "9", "image_index": 0, "score": 1}\n{"prompt_id": "q", "image_index": 0, "score": 1}\n',
         "2 row(s) name prompt_ids not in hpdv2/test, e.g. '9' (line 1), 'q' (line 2)"),
        ('{"prompt_id": "0", "image_index": 0, "score": 1}\n', "4 image(s) of hpdv2/test have no score, e.g. 0#1, 0#2"),
    ],
)
def test_evaluate_bad_scores_exit_2(tiny_hpdv2, content, message):
    (tiny_hpdv2 / "s.jsonl").write_text(content)
    proc = run_cli(["evaluate", "--dataset", "hpdv2", "--data-dir", tiny_hpdv2, "--scores", tiny_hpdv2 / "s.jsonl"])
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_evaluate_pickapic_softmax_and_threshold(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"caption": ["a", "b", "c"], "label_0": [1.0, 0.5, 0.0]}), tmp_path / "test.parquet")
    s = tmp_path / "s.jsonl"
    _write_scores(s, [{"prompt_id": "0", "image_index": 0, "score": 21.0}, {"prompt_id": "0", "image_index": 1, "score": 20.0},
                      {"prompt_id": "1", "image_index": 0, "score": 20.1}, {"prompt_id": "1", "image_index": 1, "score": 20.0},
                      {"prompt_id": "2", "image_index": 0, "score": 20.0}, {"prompt_id": "2", "image_index": 1, "score": 20.05}])
    base = ["evaluate", "--dataset", "pickapic", "--data-dir", tmp_path, "--scores", s, "--json"]
    # threshold 0: 1 + 0.5 (label tie, model decided) + 1
    assert json.loads(run_cli(base).stdout)["accuracy"] == pytest.approx(2.5 / 3)
    # threshold 0.1: softmax gaps 0.46, 0.05, 0.025 -> rows 2 and 3 become predicted ties: 1 + 1 + 0.5
    assert json.loads(run_cli(base + ["--tie-threshold", "0.1"]).stdout)["accuracy"] == pytest.approx(2.5 / 3)
    assert json.loads(run_cli(base + ["--tie-threshold", "0.5"]).stdout)["accuracy"] == pytest.approx(2.0 / 3)


def test_missing_data_dir_is_a_clear_error(tmp_path):
    proc = run_cli(["run", "--scorer", "random", "--dataset", "imagereward", "--data-dir", tmp_path / "nope"])
    assert proc.returncode == 2 and "test.json not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli(["run", "--scorer", "nosuch"])
    assert proc.returncode == 2 and "unknown scorer" in proc.stderr


@requires_extra("vlm")
@pytest.mark.parametrize("scorer", ["expected_rating", "anchor_pairwise"])
def test_missing_or_empty_vlm_model_is_a_clear_error(tmp_path, scorer):
    """A mistyped --model path is named in a one-line error (exit 2), never a transformers traceback
    about hub repo ids; so is a folder without a model in it."""
    (tmp_path / "empty").mkdir()
    for model, message in ((tmp_path / "nope", "nope does not exist"), (tmp_path / "empty", "has no config.json")):
        proc = run_cli(["run", "--scorer", scorer, "--model", model, "--dataset", "demo", "--limit", "2",
                        "--results", tmp_path / "r", "--no-progress"])
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
