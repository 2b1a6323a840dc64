"""The trainer's pure parts: rewards, task builders, config, backend choice, CLI errors.
No model is loaded here (the GRPO runs are in test_train_grpo.py)."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from prefbench.errors import DataError, MissingDataError, UsageError
from prefbench.training import backends, config, progress, rewards, tasks, trainer
from prefbench.training.config import TrainConfig
from prefbench.training.rewards import approx_match_reward, exact_match_reward, format_reward
from prefbench.training.tasks import build_pairwise, build_rating
from tests.fixtures.cli import needs_extra


@pytest.mark.parametrize("module", [rewards, tasks, backends, trainer, config, progress])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if module in (rewards, tasks, backends, progress, trainer):
        assert result.attempted > 0


# -- rewards --------------------------------------------------------------------------------
def _c(answer: str, think: str = "looks fine") -> list[dict]:
    """A completion as TRL passes it for chat prompts."""
    return [{"role": "assistant", "content": f"<think>{think}</think><answer>{answer}</answer>"}]


def test_approx_match_reward_is_the_papers_table():
    preds = [1, 2, 3, 4, 5, 6, 7]
    got = approx_match_reward([_c(str(p)) for p in preds], target=[4] * 7, choices=[range(1, 8)] * 7)
    assert got == [0.0, 0.5, 0.75, 1.0, 0.75, 0.5, 0.0]


def test_rewards_score_only_well_formed_allowed_answers():
    completions = [_c("3"), _c("8"), "<answer>3</answer>", [{"role": "assistant", "content": "3"}],
                   _c("3") + [{"role": "assistant", "content": " trailing"}]]
    choices = [range(1, 6)] * 5
    assert format_reward(completions, choices=choices) == [1.0, 0.0, 0.0, 0.0, 0.0]
    # exact match reads the answer tag even when the think part is missing (format is its own reward)
    assert exact_match_reward(completions, target=[3] * 5, choices=choices) == [1.0, 0.0, 1.0, 0.0, 1.0]


def test_pairwise_rewards():
    completions = [_c("1"), _c("0"), _c("2")]
    assert exact_match_reward(completions, target=[1, 1, 0], choices=[(0, 1)] * 3) == [1.0, 0.0, 0.0]
    assert format_reward(completions, choices=[(0, 1)] * 3) == [1.0, 1.0, 0.0]


def test_reward_functions_order_and_weights():
    funcs, weights = rewards.reward_functions(TrainConfig(task="rating", model="m", output="o").resolved_reward_weights())
    assert [f.__name__ for f in funcs] == ["format_reward", "exact_match_reward", "approx_match_reward"]
    assert weights == [1.0, 1.0, 1.0]
    funcs, weights = rewards.reward_functions(
        TrainConfig(task="pairwise", model="m", output="o", reward_weights={"exact": 2}).resolved_reward_weights())
    assert [f.__name__ for f in funcs] == ["format_reward", "exact_match_reward"] and weights == [1.0, 2.0]


# -- rating task ----------------------------------------------------------------------------
def test_demo_rating_task_uses_the_whole_scale_deterministically():
    a = build_rating("demo", "train", rating_min=1, rating_max=5)
    b = build_rating("demo", "train", rating_min=1, rating_max=5)
    assert a.content_hash() == b.content_hash()
    counts = Counter(ex.target for ex in a.examples)
    assert set(counts) == {1, 2, 3, 4, 5}
    assert min(counts.values()) >= 0.1 * len(a.examples)  # quantile bins (uneven only where utilities tie)
    ex = a.examples[0]
    assert len(ex.images) == 1 and ex.choices == [1, 2, 3, 4, 5]
    # higher latent utility never gets a lower rating
    from prefbench.data import load_dataset

    util = [u for it in load_dataset("demo", "train").items for u in it.meta["utility"]]
    pairs = sorted(zip(util, (e.target for e in a.examples), strict=True))
    assert all(r1 <= r2 for (_, r1), (_, r2) in zip(pairs, pairs[1:]))


def test_fraction_keeps_whole_prompts_seeded():
    full = build_rating("demo", "train", rating_max=5)
    quarter = build_rating("demo", "train", rating_max=5, fraction=0.25, seed=7)
    again = build_rating("demo", "train", rating_max=5, fraction=0.25, seed=7)
    other = build_rating("demo", "train", rating_max=5, fraction=0.25, seed=8)
    assert quarter.n_items_used == -(-full.n_source_items // 4)
    assert quarter.content_hash() == again.content_hash() != other.content_hash()
    from prefbench.data import load_dataset

    n_images = {it.item_id: it.n_images for it in load_dataset("demo", "train").items}
    per_prompt = Counter(e.example_id.split("/")[0] for e in quarter.examples)
    assert len(per_prompt) == quarter.n_items_used
    assert all(n == n_images[pid] for pid, n in per_prompt.items())  # every kept prompt brings all its images


def _images(root, names):
    for k, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (40 * k % 256, 90, 150)).save(path)


def _imagereward_rows(n=6):
    return [{"image_path": f"images/train/train_1/{i}.png", "prompt_id": f"p{i // 3}", "prompt": f"prompt {i // 3}",
             "classification": "x", "image_amount_in_total": 3, "rank": i % 3 + 1, "overall_rating": 1 + i,
             "image_text_alignment_rating": 3, "fidelity_rating": 4} for i in range(n)]


def test_imagereward_rating_from_metadata_parquet(tmp_path):
    rows = _imagereward_rows()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "metadata-train.parquet")
    _images(tmp_path, [r["image_path"] for r in rows])
    data = build_rating("imagereward", "train", tmp_path, rating_min=1, rating_max=7)
    assert [e.target for e in data.examples] == [1, 2, 3, 4, 5, 6]
    assert data.examples[0].images[0].path == tmp_path / "images/train/train_1/0.png"
    assert data.examples[0].images[0].open().size == (16, 16)
    assert data.n_source_items == 2  # subsets are drawn over prompt ids
    # the same rows as JSON work too
    (tmp_path / "metadata-train.parquet").unlink()
    (tmp_path / "train.json").write_text(json.dumps(rows))
    assert build_rating("imagereward", "train", tmp_path).content_hash() == data.content_hash()


def test_imagereward_rating_with_embedded_image_bytes(tmp_path):
    import io

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="PNG")
    rows = [{"prompt": "a", "overall_rating": 3, "image": {"bytes": buf.getvalue(), "path": "x.png"}}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    ex = build_rating("imagereward", "train", tmp_path).examples[0]
    assert ex.images[0].open().size == (8, 8) and ex.target == 3


def test_imagereward_rating_errors(tmp_path):
    with pytest.raises(MissingDataError, match="metadata-train.parquet"):
        build_rating("imagereward", "train", tmp_path)
    rows = [{k: v for k, v in r.items() if k != "overall_rating"} for r in _imagereward_rows(2)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "metadata-train.parquet")
    with pytest.raises(DataError, match="missing column.*overall_rating"):
        build_rating("imagereward", "train", tmp_path)
    bad = _imagereward_rows(2)
    bad[1]["overall_rating"] = 9
    pq.write_table(pa.Table.from_pylist(bad), tmp_path / "metadata-train.parquet")
    with pytest.raises(DataError, match="row 1: rating 9 is not an integer in 1..7"):
        build_rating("imagereward", "train", tmp_path)
    (tmp_path / "metadata-train.parquet").unlink()
    (tmp_path / "train.json").write_text("[]")
    with pytest.raises(DataError, match="no rows"):
        build_rating("imagereward", "train", tmp_path)


def test_jsonl_rating_form(tmp_path):
    _images(tmp_path, ["a.png", "b.png"])
    path = tmp_path / "ratings.jsonl"
    path.write_text('{"prompt": "a cat", "image": "a.png", "rating": 2}\n\n'
                    '{"prompt": "a dog", "image": "b.png", "rating": 5, "prompt_id": "d"}\n')
    data = build_rating("jsonl", "train", path, rating_max=5)
    assert [(e.prompt, e.target) for e in data.examples] == [("a cat", 2), ("a dog", 5)]
    path.write_text('{"prompt": "a cat", "image": "a.png"}\n')
    with pytest.raises(DataError, match="line 1: missing key.*rating"):
        build_rating("jsonl", "train", path)
    path.write_text("\n")
    with pytest.raises(DataError, match="no rated images to train on"):
        build_rating("jsonl", "train", path)


def test_rating_task_rejects_datasets_without_ratings():
    with pytest.raises(UsageError, match="per-image ratings"):
        build_rating("hpdv2", "train", "/nonexistent")


def test_empty_selection_is_an_error(tmp_path):
    _images(tmp_path, ["a.png", "b.png"])
    path = tmp_path / "tied.jsonl"
    path.write_text('{"prompt_id": "1", "prompt": "p", "images": ["a.png", "b.png"], "ranks": [1, 1]}\n')
    with pytest.raises(DataError, match="no untied image pairs"):
        build_pairwise("jsonl", "train", path)


# -- pairwise task --------------------------------------------------------------------------
def test_demo_pairwise_has_both_targets_balanced_and_consistent():
    from prefbench.data import load_dataset

    items = {it.item_id: it for it in load_dataset("demo", "train").items}
    data = build_pairwise("demo", "train", seed=3)
    counts = Counter(e.target for e in data.examples)
    assert set(counts) == {0, 1}
    assert abs(counts[1] / len(data.examples) - 0.5) < 0.05
    for ex in data.examples[:200]:
        item = items[ex.example_id.split("/")[0]]
        anchor, candidate = (int(x) for x in ex.example_id.split("/")[1].split("-"))
        assert [r.key for r in ex.images] == [item.images[anchor].key, item.images[candidate].key]
        assert ex.target == int(item.ranks[candidate] < item.ranks[anchor])  # 1 = Image 2 better
    assert build_pairwise("demo", "train", seed=3).content_hash() == data.content_hash()
    assert build_pairwise("demo", "train", seed=4).content_hash() != data.content_hash()


def test_hpdv2_train_quarter_subset(tmp_path):
    entries = [{"prompt": f"p{i}", "file_path": [f"{i}_a.png", f"{i}_b.png"], "human_preference": [i % 2, 1 - i % 2]}
               for i in range(40)]
    (tmp_path / "train.json").write_text(json.dumps(entries))
    _images(tmp_path / "train", [f for e in entries for f in e["file_path"]])
    data = build_pairwise("hpdv2", "train", tmp_path, fraction=0.25, seed=0)
    assert data.n_source_items == 40 and data.n_items_used == 10 and len(data.examples) == 10
    assert set(Counter(e.target for e in data.examples)) == {0, 1}
    for ex in data.examples:
        i = int(ex.example_id.split("/")[0])
        preferred = entries[i]["file_path"][entries[i]["human_preference"].index(1)]
        assert ex.images[1 if ex.target == 1 else 0].key == preferred
    assert build_pairwise("hpdv2", "train", tmp_path, fraction=0.25, seed=0).content_hash() == data.content_hash()


# -- config, backend choice -----------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"task": "ranking"}, "--task"),
    ({"fraction": 0.0}, "--fraction"),
    ({"num_generations": 1}, "at least 2"),
    ({"reward_weights": {"approx": 1}, "task": "pairwise"}, "unknown reward"),
    ({"reward_weights": {"format": 0, "exact": 0, "approx": 0}}, "every reward weight is 0"),
    ({"backend": "vllm"}, "--backend"),
])
def test_config_validation(kwargs, message):
    base = {"task": "rating", "model": "m", "output": "o"}
    with pytest.raises(UsageError, match=message):
        TrainConfig(**{**base, **kwargs})


def test_config_resolved_defaults_and_round_trip():
    cfg = TrainConfig(task="rating", model="m", output="o", dataset="imagereward", lora=False)
    assert cfg.resolved_rating_max() == 7 and cfg.resolved_learning_rate() == 1e-6
    assert TrainConfig(task="rating", model="m", output="o").resolved_rating_max() == 5
    assert TrainConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg


def test_backend_selection():
    sel = backends.select_backend
    assert sel("auto", "auto", has_cuda=True, has_unsloth=True).name == "unsloth"
    assert sel("auto", "cpu", has_cuda=True, has_unsloth=True) == backends.BackendChoice(
        "transformers", "cpu", "no CUDA GPU (Unsloth needs one for vision models)")
    assert sel("auto", "auto", has_cuda=True, has_unsloth=False).name == "transformers"
    assert sel("transformers", "auto", has_cuda=True, has_unsloth=True).device == "cuda"
    with pytest.raises(UsageError, match="CUDA GPU"):
        sel("unsloth", "auto", has_cuda=False, has_unsloth=True)
    with pytest.raises(UsageError, match=r"prefbench\[unsloth\]"):
        sel("unsloth", "auto", has_cuda=True, has_unsloth=False)
    with pytest.raises(UsageError, match="no CUDA GPU"):
        sel("auto", "cuda", has_cuda=False, has_unsloth=False)
    # on this machine (no GPU in CI): the transformers path
    assert sel().name == "transformers"


@needs_extra("train")
def test_unknown_trl_option_is_an_error(tmp_path):
    cfg = TrainConfig(task="rating", model="m", output=str(tmp_path), trl={"not_a_field": 1})
    with pytest.raises(UsageError, match="not_a_field"):
        trainer.grpo_args(cfg, "cpu", tmp_path, [1.0, 1.0, 1.0])
    cfg = TrainConfig(task="rating", model="m", output=str(tmp_path), trl={"top_p": 0.5})
    assert trainer.grpo_args(cfg, "cpu", tmp_path, [1.0, 1.0, 1.0]).top_p == 0.5


def test_reward_curves_from_log_history():
    history = [{"step": 1, "reward": 0.5, "rewards/format_reward/mean": 0.25, "kl": 0.0, "loss": 0.1},
               {"step": 2, "reward": float("nan"), "rewards/format_reward/mean": 0.5},
               {"step": 2, "train_runtime": 3.0}]
    curves = progress.reward_curves(history)
    assert curves["reward"] == [[1, 0.5]]
    assert curves["rewards/format_reward/mean"] == [[1, 0.25], [2, 0.5]]
    assert curves["kl"] == [[1, 0.0]] and "train_runtime" not in curves
    # SFT logs carry a loss and a token accuracy, no reward
    sft = [{"step": 1, "loss": 2.0, "mean_token_accuracy": 0.5}, {"step": 2, "loss": 1.0, "mean_token_accuracy": 0.75},
           {"step": 2, "train_loss": 1.5}]
    assert progress.reward_curves(sft) == {}
    assert progress.reward_curves(sft, key="loss") == {"loss": [[1, 2.0], [2, 1.0]],
                                                       "mean_token_accuracy": [[1, 0.5], [2, 0.75]]}


# -- CLI ------------------------------------------------------------------------------------
def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "prefbench", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_train_help_imports_nothing_heavy():
    code = ("import sys; from prefbench.cli import main\n"
            "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets', 'peft') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "--task {rating,pairwise}" in out and "HEAVY []" in out


def test_cli_errors_exit_2_with_a_clear_message(tmp_path):
    pq.write_table(pa.Table.from_pylist([{"prompt": "a", "image_path": "x.png"}]), tmp_path / "metadata-train.parquet")
    proc = _cli("train", "--task", "rating", "--model", "unused", "--dataset", "imagereward", "--data-dir", tmp_path,
                "--output", tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    assert "missing column(s) overall_rating" in proc.stderr
    proc = _cli("train", "--task", "rating", "--model", "unused", "--output", tmp_path / "out2",
                "--rating-scale", "1-10")
    assert proc.returncode == 2 and "rating scale 1-10" in proc.stderr
    proc = _cli("train", "--task", "rating", "--model", "unused", "--output", tmp_path / "out3", "--resume")
    assert proc.returncode == 2 and "holds no training run" in proc.stderr


def test_last_checkpoint_skips_checkpoints_cut_short(tmp_path):
    for step, state in ((2, '{"global_step": 2}'), (4, '{"global_st'), (6, None), (10, '{"global_step": 10}')):
        ckpt = tmp_path / "checkpoints" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        if state:
            (ckpt / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoints" / "checkpoint-x").mkdir()
    assert trainer.last_checkpoint(tmp_path) == tmp_path / "checkpoints" / "checkpoint-10"
    (tmp_path / "checkpoints" / "checkpoint-10" / "trainer_state.json").write_text("")  # killed mid-write
    assert trainer.last_checkpoint(tmp_path) == tmp_path / "checkpoints" / "checkpoint-2"
    assert trainer.last_checkpoint(tmp_path / "nothing") is None
