"""Real GRPO runs (TRL's GRPOTrainer) on the tiny random Qwen2.5-VL, on CPU, offline.

A random model almost never writes ``<think>..</think><answer>..</answer>``, so the paper's
rewards are 0 for every rollout and their advantage is 0: the runs that must move the weights
add a shaping reward (completion length in characters) that differs within each group. The
paper's rewards are still computed and logged every step, which is what these tests check.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from prefbench.errors import UsageError
from prefbench.training import TrainConfig, train
from prefbench.training.rewards import completion_text
from prefbench.training.trainer import CHECKPOINTS, RECORD_NAME, check_answer_tokens, last_checkpoint

TINY = dict(num_generations=2, max_completion_length=8, max_steps=2, limit=8, learning_rate=1e-3,
            save_steps=50, progress=False)


def length_reward(completions, **_):
    """Differs between rollouts of one prompt, so GRPO's advantage is non-zero."""
    return [len(completion_text(c)) / 50 for c in completions]


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _changed(base, trained, prefix):
    keys = [k for k in base if k.startswith(prefix)]
    assert keys, prefix
    return [k for k in keys if not (base[k].float() - trained[k].float()).abs().max().item() == 0]


def _score(model_dir, scorer, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "prefbench", "run", "--scorer", scorer, "--model", str(model_dir), "--dataset", "demo",
         "--limit", "2", "--json", "--no-progress", "--bootstrap-resamples", "200", "-S", "max_new_tokens=8",
         "--out", str(tmp_path / f"run-{scorer}")],
        capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_rating_lora_trains_logs_every_reward_and_loads_as_scorer(tiny_vlm_dir, tmp_path):
    out = tmp_path / "rating"
    cfg = TrainConfig(task="rating", model=str(tiny_vlm_dir), output=str(out), dataset="demo", lora=True,
                      max_pixels=56 * 56, **TINY)
    rec = train(cfg, extra_reward_funcs=[length_reward])

    assert rec == json.loads((out / RECORD_NAME).read_text())
    assert rec["steps"] == 2 and rec["steps_this_run"] == 2 and rec["resumed_from_step"] is None
    assert rec["backend"] == {"name": "transformers", "device": "cpu",
                              "reason": "no CUDA GPU (Unsloth needs one for vision models)"}
    assert rec["rewards"] == ["format_reward", "exact_match_reward", "approx_match_reward", "length_reward"]
    curves = rec["curves"]
    for name in rec["rewards"]:
        assert [s for s, _ in curves[f"rewards/{name}/mean"]] == [1, 2], name
    assert [s for s, _ in curves["kl"]] == [1, 2] and [s for s, _ in curves["reward"]] == [1, 2]
    assert rec["dataset"]["n_examples"] == 8 and rec["dataset"]["rating_scale"] == [1, 5]
    assert len(rec["dataset"]["content_hash"]) == 64
    assert rec["scorer_defaults"]["rating_scale"] == "1-5" and rec["scorer_defaults"]["template"] == "rating_v1"
    assert len(rec["scorer_defaults"]["prompt_template_hash"]) == 64
    assert rec["output"]["format"] == "merged+adapter" and rec["steps_per_second"] > 0

    # LoRA on the language layers only: those merged weights moved, the vision tower did not
    base, trained = _weights(tiny_vlm_dir), _weights(out)
    assert set(base) == set(trained)
    assert _changed(base, trained, "model.layers.0.self_attn.q_proj")
    assert not _changed(base, trained, "visual.")
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tiny_vlm_dir)
    assert (out / CHECKPOINTS / "checkpoint-2" / "trainer_state.json").is_file()
    from transformers import AutoProcessor  # the resolution cap travels with the model to the scorers

    assert AutoProcessor.from_pretrained(out).image_processor.size["longest_edge"] == 56 * 56

    summary = _score(out, "expected_rating", tmp_path)
    assert summary["n_prompts"] == 2 and summary["counts"]["ok"] > 0 and summary["counts"]["error"] == 0
    # the scorer rendered exactly the prompts the model was trained on
    run = json.loads((tmp_path / "run-expected_rating" / "run.json").read_text())
    assert run["prompt_template_hash"] == rec["scorer_defaults"]["prompt_template_hash"]


@pytest.mark.slow
def test_pairwise_full_finetune_loads_as_anchor_pairwise(tiny_vlm_dir, tmp_path):
    out = tmp_path / "pairwise"
    seen = []

    def recording_length_reward(completions, target, choices, **kw):
        seen.append((list(target), [list(c) for c in choices]))
        return length_reward(completions)

    cfg = TrainConfig(task="pairwise", model=str(tiny_vlm_dir), output=str(out), dataset="demo", lora=False,
                      seed=1, per_device_batch_size=4, **TINY)  # 2 prompts x 2 rollouts per step
    rec = train(cfg, extra_reward_funcs=[recording_length_reward])

    assert rec["rewards"] == ["format_reward", "exact_match_reward", "recording_length_reward"]
    assert set(rec["dataset"]["targets"]) == {"0", "1"}
    # what the rewards saw: both answers among the batches, the pairwise choices, rollouts in groups
    assert len(seen) == 2 and {t for targets, _ in seen for t in targets} == {0, 1}
    assert all(c == [0, 1] for _, choices in seen for c in choices)
    assert all(targets[0] == targets[1] and targets[2] == targets[3] for targets, _ in seen)
    assert rec["output"]["format"] == "full" and not (out / "adapter").exists()
    assert rec["config"]["resolved"]["learning_rate"] == 1e-3
    base, trained = _weights(tiny_vlm_dir), _weights(out)
    assert _changed(base, trained, "model.layers.1.mlp")
    assert _changed(base, trained, "lm_head")

    summary = _score(out, "anchor_pairwise", tmp_path)
    assert summary["counts"]["ok"] > 0 and summary["counts"]["error"] == 0
    run = json.loads((tmp_path / "run-anchor_pairwise" / "run.json").read_text())
    assert run["prompt_template_hash"] == rec["scorer_defaults"]["prompt_template_hash"]


def test_model_without_processor_is_a_clear_error(tiny_vlm_dir, tmp_path):
    bare = tmp_path / "no-processor"
    shutil.copytree(tiny_vlm_dir, bare)
    for name in ("processor_config.json", "preprocessor_config.json"):
        (bare / name).unlink(missing_ok=True)
    cfg = TrainConfig(task="rating", model=str(bare), output=str(tmp_path / "out"), **TINY)
    with pytest.raises(UsageError, match="no multimodal processor.*processor_config.json"):
        train(cfg)
    assert not (tmp_path / "out").exists()  # nothing written for a run that never started
    # and a non-empty folder that is not a run (here: the base model itself) is never trained into
    with pytest.raises(UsageError, match="not an empty folder"):
        train(TrainConfig(task="rating", model=str(bare), output=str(tiny_vlm_dir), **TINY))


def test_answers_must_be_single_tokens(tiny_vlm_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_vlm_dir)
    check_answer_tokens(tok, [str(r) for r in range(10)], "digits")
    with pytest.raises(UsageError, match=r"'10' -> 2 tokens"):
        check_answer_tokens(tok, ["9", "10"], "rating scale 1-10")


@pytest.mark.slow
def test_kill_then_resume_continues_from_the_last_checkpoint(tiny_vlm_dir, tmp_path):
    out = tmp_path / "resumable"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "prefbench", "train", "--task", "rating", "--model", str(tiny_vlm_dir),
            "--dataset", "demo", "--limit", "8", "--num-generations", "2", "--max-completion-length", "8",
            "--save-steps", "2", "--output", str(out)]
    proc = subprocess.Popen([*args, "--max-steps", "200", "--no-progress"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 480
        while last_checkpoint(out) is None:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 480 s"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / RECORD_NAME).exists()
    step = json.loads((last_checkpoint(out) / "trainer_state.json").read_text())["global_step"]
    assert step >= 2

    again = subprocess.run([*args, "--max-steps", "200"], env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 2 and "already holds a training run" in again.stderr
    other = subprocess.run([*args, "--max-steps", "200", "--resume", "--seed", "5"], env=env, capture_output=True,
                           text=True, timeout=180)
    assert other.returncode == 2 and "seed: 0 -> 5" in other.stderr

    resumed = subprocess.run([*args, "--max-steps", str(step + 2), "--resume", "--json"], env=env,
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    printed = json.loads(resumed.stdout)  # --json: the record without its curves
    assert printed["steps"] == step + 2 and "curves" not in printed
    assert f"resuming from {last_checkpoint(out).parent / f'checkpoint-{step}'}" in resumed.stderr
    assert f"step {step + 2}/{step + 2}  reward " in resumed.stderr  # the live readout
    rec = json.loads((out / RECORD_NAME).read_text())
    assert rec["steps"] == step + 2 and rec["resumed_from_step"] == step and rec["steps_this_run"] == 2
    # the curves hold the steps before the kill (from the checkpoint) and after the resume
    assert [s for s, _ in rec["curves"]["reward"]] == list(range(1, step + 3))


def test_unsloth_adapter_wiring_with_a_stand_in_module(tiny_vlm_dir, tmp_path, monkeypatch):
    """Unsloth itself cannot run here (it refuses vision models on the CPU and there is no GPU).
    A stand-in ``unsloth`` module with the documented API, built on transformers + PEFT, checks
    the wiring around it: which calls and options the adapter uses, that TRL trains a model that
    arrives already LoRA-wrapped (no peft_config), and that the merged save loads as a model.
    It says nothing about Unsloth's own behaviour."""
    import types

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from prefbench.training import backends

    calls = {}

    class FastVisionModel:
        @staticmethod
        def from_pretrained(model_name, **kw):
            calls["from_pretrained"] = (model_name, kw)
            return AutoModelForImageTextToText.from_pretrained(model_name), "unsloth's processor (unused)"

        @staticmethod
        def get_peft_model(model, **kw):
            calls["get_peft_model"] = kw
            wrapped = get_peft_model(model, LoraConfig(r=kw["r"], lora_alpha=kw["lora_alpha"],
                                                       target_modules=backends.LANGUAGE_LORA_TARGETS))

            def save_pretrained_merged(out_dir, processor, save_method):
                calls["save_method"] = save_method
                wrapped.merge_and_unload().save_pretrained(out_dir)
                processor.save_pretrained(out_dir)

            wrapped.save_pretrained_merged = save_pretrained_merged
            return wrapped

        @staticmethod
        def for_training(model):
            calls["for_training"] = True

    monkeypatch.setitem(sys.modules, "unsloth", types.SimpleNamespace(FastVisionModel=FastVisionModel))
    monkeypatch.setattr(backends, "select_backend",
                        lambda *a, **k: backends.BackendChoice("unsloth", "cpu", "stand-in for a test"))
    out = tmp_path / "unsloth"
    rec = train(TrainConfig(task="rating", model=str(tiny_vlm_dir), output=str(out), **TINY),
                extra_reward_funcs=[length_reward])

    assert rec["backend"]["name"] == "unsloth" and rec["output"]["format"] == "merged"
    name, kw = calls["from_pretrained"]
    assert name == str(tiny_vlm_dir) and kw["load_in_4bit"] is False and kw["full_finetuning"] is False
    assert calls["get_peft_model"]["finetune_vision_layers"] is False
    assert calls["get_peft_model"]["finetune_language_layers"] is True
    assert calls["save_method"] == "merged_16bit" and calls["for_training"]
    base, trained = _weights(tiny_vlm_dir), _weights(out)
    assert _changed(base, trained, "model.layers.0.self_attn.q_proj") and not _changed(base, trained, "visual.")
