"""The SFT baseline (``prefbench train --method sft``): TRL's SFTTrainer on the tiny random
Qwen2.5-VL, on CPU, offline, on the same examples and prompts as GRPO."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from prefbench.errors import UsageError
from prefbench.training import TrainConfig, train
from prefbench.training.tasks import build_task
from prefbench.training.trainer import RECORD_NAME, sft_completion, to_hf_dataset
from tests.fixtures.extras import requires_extra


def test_sft_completion_is_the_scorers_forced_answer_text():
    from prefbench.engines.base import PREFILL_ANSWER
    from prefbench.scorers.vlm.prompts import parse_answer

    text = sft_completion(3)[0]["content"]
    assert text == PREFILL_ANSWER + "3</answer>"
    parsed = parse_answer(text, range(1, 6))
    assert parsed.value == 3 and parsed.format_ok


@requires_extra("train")
def test_sft_dataset_adds_the_answer_turn_to_the_grpo_columns():
    data = build_task("pairwise", "demo", limit=6)
    ds = to_hf_dataset(data, sft=True)
    assert set(ds.column_names) == {"example_id", "prompt", "images", "target", "choices", "completion"}
    for row, ex in zip(ds, data.examples, strict=True):
        assert row["completion"] == sft_completion(ex.target)
    assert [r["prompt"] for r in ds] == [r["prompt"] for r in to_hf_dataset(data)]


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="dpo"), "--method must be one of grpo, sft"),
    (dict(method="sft", backend="unsloth"), "--method sft runs on the transformers backend"),
])
def test_sft_config_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        TrainConfig(task="rating", model="m", output="o", **kwargs)


def test_sft_ignores_grpo_only_settings_and_records_none_for_rewards():
    cfg = TrainConfig(task="rating", model="m", output="o", method="sft", num_generations=1)
    assert cfg.resolved_batch_size() == 8
    assert cfg.to_json()["resolved"]["reward_weights"] is None
    assert TrainConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.slow
def test_sft_rating_learns_the_answer_format_and_loads_as_scorer(tiny_vlm_dir, tmp_path):
    out = tmp_path / "sft"
    cfg = TrainConfig(task="rating", model=str(tiny_vlm_dir), output=str(out), dataset="demo", method="sft",
                      lora=False, limit=8, per_device_batch_size=4, max_steps=40, learning_rate=3e-3,
                      max_pixels=56 * 56, save_steps=50, progress=False)
    rec = train(cfg)

    assert rec == json.loads((out / RECORD_NAME).read_text())
    assert rec["method"] == "sft" and rec["steps"] == 40 and rec["rewards"] == []
    assert rec["trl_args"]["completion_only_loss"] is True
    loss = [v for _, v in rec["curves"]["loss"]]
    assert [s for s, _ in rec["curves"]["loss"]] == list(range(1, 41))
    assert "mean_token_accuracy" in rec["curves"]
    # the answer turn is a fixed format plus one of five digits: the loss must fall a lot
    assert loss[-1] < 0.5 * loss[0], loss

    # the scorer's own generation now writes the format the soft read-out expects, unforced
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "prefbench", "run", "--scorer", "expected_rating", "--model", str(out), "--dataset",
         "demo", "--split", "train", "--limit", "2", "--json", "--no-progress", "--bootstrap-resamples", "200",
         "-S", "max_new_tokens=16", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["counts"]["error"] == 0 and summary["counts"]["unparsed"] == 0
    assert summary["counts"]["forced"] == 0, summary["counts"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["prompt_template_hash"] == rec["scorer_defaults"]["prompt_template_hash"]


@pytest.mark.slow
def test_cli_train_sft_prints_its_loss(tiny_vlm_dir, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "prefbench", "train", "--task", "pairwise", "--method", "sft", "--model",
         str(tiny_vlm_dir), "--output", str(tmp_path / "o"), "--limit", "4", "--max-steps", "2", "--batch-size", "2",
         "--full", "--max-pixels", str(56 * 56), "--no-progress"],
        capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trained 2 SFT steps" in proc.stdout and "last loss" in proc.stdout
    assert "prefbench train: SFT with backend transformers on cpu" in proc.stderr
    assert "step 2/2  loss" in proc.stderr


@pytest.mark.slow
def test_sft_resume_continues_from_the_last_checkpoint(tiny_vlm_dir, tmp_path):
    out = tmp_path / "sft"
    base = dict(task="pairwise", model=str(tiny_vlm_dir), output=str(out), dataset="demo", method="sft", lora=True,
                limit=6, per_device_batch_size=2, learning_rate=1e-3, max_pixels=56 * 56, save_steps=2, progress=False)
    first = train(TrainConfig(max_steps=2, **base))
    assert first["steps"] == 2 and first["resumed_from_step"] is None
    resumed = train(TrainConfig(max_steps=4, resume=True, **base))
    assert resumed["resumed_from_step"] == 2 and resumed["steps"] == 4 and resumed["steps_this_run"] == 2
    assert [s for s, _ in resumed["curves"]["loss"]] == [1, 2, 3, 4]  # the log history travels with the checkpoint
    assert resumed["output"]["format"] == "merged+adapter"
    with pytest.raises(UsageError, match="already holds a training run"):
        train(TrainConfig(max_steps=4, **base))
