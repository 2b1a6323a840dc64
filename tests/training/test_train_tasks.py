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

from prefbench.data import DatasetSpec, demo, ratings
from prefbench.errors import DataError, MissingDataError, UsageError
from prefbench.training import backends, config, progress, rewards, tasks, trainer
from prefbench.training.config import TrainConfig
from prefbench.training.rewards import approx_match_reward, exact_match_reward, format_reward
from prefbench.training.tasks import build_pairwise, build_rating
from tests.fixtures import benchmarks as bm
from tests.fixtures.extras import requires_extra


@pytest.mark.parametrize("module", [rewards, tasks, backends, trainer, config, progress, ratings, demo])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if module in (rewards, tasks, backends, progress, trainer, ratings, demo):
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
    with pytest.raises(UsageError, match="per-image ratings") as exc:
        build_rating("hpdv2", "train", "/nonexistent")
    # the datasets that have them, from the registry
    assert "datasets with them: imagereward, genai_rank, evalmuse, jsonl, demo" in str(exc.value)


# -- the rating task from human scores (pointwise sets) -------------------------------------
def test_evalmuse_rating_rounds_total_scores_into_the_scale(tmp_path):
    rows = bm.write_evalmuse(tmp_path, n_prompts=3, per_prompt=3)
    data = build_rating("evalmuse", "train", tmp_path, rating_min=1, rating_max=5)
    means = [sum(r["total_score"]) / len(r["total_score"]) for r in rows]
    assert [e.target for e in data.examples] == [int(m + 0.5) for m in means]  # nearest, a half up (all >= 1)
    assert [e.example_id for e in data.examples] == [f"{p:05d}/{k}" for p in range(3) for k in range(3)]
    assert data.examples[0].images[0].path == tmp_path / rows[0]["img_path"] and data.n_source_items == 3
    assert data.examples[0].choices == [1, 2, 3, 4, 5]
    # a narrower scale clamps: nothing above 3
    narrow = build_rating("evalmuse", "train", tmp_path, rating_min=1, rating_max=3)
    assert [e.target for e in narrow.examples] == [min(3, int(m + 0.5)) for m in means]
    # the same data, the same hash; a quarter keeps whole prompts
    assert build_rating("evalmuse", "train", tmp_path, rating_max=5).content_hash() == data.content_hash()
    assert build_rating("evalmuse", "train", tmp_path, rating_max=5, fraction=0.3).n_items_used == 1


def test_evalmuse_rating_needs_the_scores_the_test_file_withholds(tmp_path):
    rows = bm.write_evalmuse(tmp_path, n_prompts=2, per_prompt=2, split="test")
    (tmp_path / "test.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "total_score"}
                                                    for r in rows]))
    with pytest.raises(DataError, match="evalmuse/test: item 00000 has no human scores.*withheld"):
        build_rating("evalmuse", "test", tmp_path)
    with pytest.raises(UsageError, match="split.*train, test, not 'validation'"):
        build_rating("evalmuse", "validation", tmp_path)
    with pytest.raises(UsageError, match="needs --data-dir"):
        build_rating("evalmuse", "train")


def test_genai_rank_rating_from_mean_human_ratings(tmp_path):
    raw = bm.write_genai_rank(tmp_path, n_prompts=2)
    data = build_rating("genai_rank", "DALLE_3", tmp_path, rating_max=5)
    means = [sum(raw[p]["models"]["DALLE_3"][str(k)]) / 3 for p in ("0", "1") for k in range(1, 10)]
    assert [e.target for e in data.examples] == [int(m + 0.5) for m in means] and len(data.examples) == 18


# -- pairwise from the pair sets, and the refusals ------------------------------------------
def test_hpdv3_pairwise_prefers_path1(tmp_path):
    rows = bm.write_hpdv3(tmp_path, n=8)
    (tmp_path / "train.json").write_text((tmp_path / "test.json").read_text())  # the train file's layout
    data = build_pairwise("hpdv3", "train", tmp_path, seed=1)
    assert len(data.examples) == 8 and set(Counter(e.target for e in data.examples)) == {0, 1}
    for ex in data.examples:
        row = rows[int(ex.example_id.split("/")[0])]
        assert ex.images[1 if ex.target == 1 else 0].key == row["path1"]
    with pytest.raises(UsageError, match="split.*train, test, not 'dev'"):
        build_pairwise("hpdv3", "dev", tmp_path)


def test_genai_bench_pairwise_skips_ties_and_both_bad(tmp_path):
    votes = bm.write_genai_bench(tmp_path, n=12)
    data = build_pairwise("genai_bench", "test_v1", tmp_path)
    decided = [k for k, v in enumerate(votes) if v in ("leftvote", "rightvote")]
    assert [int(e.example_id.split("/")[0]) for e in data.examples] == decided
    for ex in data.examples:
        k = int(ex.example_id.split("/")[0])
        preferred = f"{k}:left_image" if votes[k] == "leftvote" else f"{k}:right_image"
        assert ex.images[1 if ex.target == 1 else 0].key == preferred
        assert ex.images[0].data and ex.images[1].data  # the parquet's image bytes


def test_mmrb2_is_refused_for_training(tmp_path):
    bm.write_mmrb2(tmp_path, n=4)
    for build in (build_pairwise, build_rating):
        with pytest.raises(UsageError, match=r"'mmrb2' is not for training: .*CC BY-NC 4.0, for evaluation only"):
            build("mmrb2", "t2i", tmp_path)
    from prefbench.data import load_dataset, training_datasets

    assert len(load_dataset("mmrb2", "t2i", tmp_path).items) == 4  # evaluation still reads it
    assert "mmrb2" not in training_datasets("pairwise") and "hpdv3" in training_datasets("pairwise")


def test_train_cli_refuses_what_the_registry_refuses(tmp_path):
    bm.write_mmrb2(tmp_path / "mm", n=2)
    proc = _cli("train", "--task", "pairwise", "--model", "unused", "--dataset", "mmrb2", "--split", "t2i",
                "--data-dir", tmp_path / "mm", "--output", tmp_path / "out")
    assert proc.returncode == 2 and "evaluation only" in proc.stderr, proc.stderr
    proc = _cli("train", "--task", "rating", "--model", "unused", "--dataset", "hpdv3", "--data-dir", tmp_path,
                "--output", tmp_path / "out2")
    assert proc.returncode == 2 and "evalmuse" in proc.stderr and "per-image ratings" in proc.stderr, proc.stderr


# -- a dataset plugin's own rating reader ---------------------------------------------------
def _plugin_rating_rows(split, data_dir, rating_min, rating_max):
    """A plugin's reader: ``<data_dir>/<split>.tsv`` of ``prompt<TAB>image<TAB>stars`` (0-10 stars)."""
    from prefbench.data.model import ImageRef
    from prefbench.data.ratings import RatingRow, RatingRows

    rows = []
    for n, line in enumerate((data_dir / f"{split}.tsv").read_text().splitlines()):
        prompt, image, stars = line.split("	")
        rating = rating_min + round(int(stars) / 10 * (rating_max - rating_min))
        rows.append(RatingRow(prompt, f"{split}/{n}", prompt, ImageRef(image, data_dir / image), rating))
    return RatingRows(rows, str(data_dir / f"{split}.tsv"), data_dir)


def _bad_rating_rows(split, data_dir, rating_min, rating_max):
    rows, source, root = _plugin_rating_rows(split, data_dir, rating_min, rating_max)
    return [rows[0]._replace(rating=rating_max + 1)], source, root


#: the specs the ``stars_plugin`` fixture's entry points name
STARS = DatasetSpec("stars", ("train",), "imagereward", "tests.training.test_train_tasks", "a plugin's stars",
                    rating_rows="tests.training.test_train_tasks:_plugin_rating_rows")
BAD_STARS = DatasetSpec("bad_stars", ("train",), "imagereward", "tests.training.test_train_tasks", "wrong ratings",
                        rating_rows=_bad_rating_rows)  # a callable works too


@pytest.fixture
def stars_plugin(monkeypatch, tmp_path):
    """A dataset plugin: a distribution on sys.path whose entry points declare STARS and BAD_STARS."""
    info = tmp_path / "site" / "stars_test-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stars-test\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[prefbench.datasets]\nstars = tests.training.test_train_tasks:STARS\n"
                                           "bad_stars = tests.training.test_train_tasks:BAD_STARS\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))  # a new sys.path: the registry scans again
    _images(tmp_path, ["a.png", "b.png", "c.png"])
    (tmp_path / "train.tsv").write_text("a cat\ta.png\t0\na cat\tb.png\t10\na dog\tc.png\t5\n")
    return tmp_path


def test_a_plugin_dataset_supplies_its_rating_reader(stars_plugin):
    from prefbench.data import training_datasets

    data = build_rating("stars", "train", stars_plugin, rating_min=1, rating_max=5)
    assert [(e.prompt, e.target) for e in data.examples] == [("a cat", 1), ("a cat", 5), ("a dog", 3)]
    assert data.n_source_items == 2 and data.source.endswith("train.tsv")
    assert "stars" in training_datasets("rating")
    with pytest.raises(UsageError, match="datasets with them: .*demo, stars"):
        build_rating("hpdv2", "train", stars_plugin)
    with pytest.raises(DataError, match="bad_stars/train: example train/0: rating 6 is not an integer in 1..5"):
        build_rating("bad_stars", "train", stars_plugin, rating_max=5)


def test_the_example_plugins_datasets_train(with_plugin):
    from prefbench import data

    data._registry()._cache_key = None  # entry points are scanned once per sys.path: scan again here
    points = build_rating("toy_points", "train", rating_min=1, rating_max=5)
    # human scores 5, 4, 3, 2 and 4.5, 3.5, 2.5, 1.5 (halves round up)
    assert [e.target for e in points.examples] == [5, 4, 3, 2, 5, 4, 3, 2] * 2
    assert build_pairwise("toy_points", "train").n_source_items == 4
    pairs = build_pairwise("toy_pairs", "test")
    # the tie and the both-bad votes give no pair
    assert [e.example_id.split("/")[0] for e in pairs.examples] == ["0", "1", "4", "5"]
    with pytest.raises(UsageError, match="per-image ratings.*toy_points"):
        build_rating("toy_pairs", "test")


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


@requires_extra("train")
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
