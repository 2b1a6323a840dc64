"""Loaders on real layouts built on disk; clear errors for missing or malformed files."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from prefbench.data import load_dataset
from prefbench.errors import DataError, MissingDataError, UsageError


def _png(color=(1, 2, 3)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return buf.getvalue()


def test_imagereward_real_annotation(ir_data_dir):
    split = load_dataset("imagereward", "test", ir_data_dir)
    assert len(split) == 466 and split.n_images == 2720
    first = split.items[0]
    assert first.item_id == "005658-0040" and list(first.ranks) == [1, 2, 5, 3]
    assert first.images[0].path == ir_data_dir / "test_images" / "part-005658/images/0040/45b0de4d-5a57-4ae3-8810-ffbd328204fd.webp"
    assert first.images[0].open().size == (8, 8)
    assert split.content_hash() == load_dataset("imagereward", "test", ir_data_dir).content_hash()


def test_imagereward_missing_files_say_what_to_put_where(tmp_path):
    with pytest.raises(MissingDataError, match="test.json"):
        load_dataset("imagereward", "test", tmp_path)
    (tmp_path / "test.json").write_text("[]")
    with pytest.raises(MissingDataError, match="test_images"):
        load_dataset("imagereward", "test", tmp_path)


def test_malformed_json_names_file_and_line(tmp_path):
    (tmp_path / "test.json").write_text('[\n {"id": "a",\n  "prompt": }\n]')
    (tmp_path / "test_images").mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("imagereward", "test", tmp_path)
    assert "test.json, line 3" in str(err.value)
    assert err.value.exit_code == 2


def test_imagereward_wrong_rank_count(tmp_path):
    (tmp_path / "test.json").write_text(json.dumps([{"id": "a", "prompt": "p", "generations": ["x.png", "y.png"],
                                                     "ranking": [1]}]))
    (tmp_path / "test_images").mkdir()
    with pytest.raises(DataError, match="expected 2 ranks"):
        load_dataset("imagereward", "test", tmp_path)


def test_hpdv2_test_and_train(tmp_path):
    (tmp_path / "test").mkdir()
    (tmp_path / "train").mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / "test" / name).write_bytes(_png())
        (tmp_path / "train" / name).write_bytes(_png())
    (tmp_path / "test.json").write_text(json.dumps([
        {"prompt": "cat", "image_path": ["a.jpg", "b.jpg", "c.jpg"], "rank": [2, 1, 3], "raw_annotations": [[2, 1, 3]]},
    ]))
    (tmp_path / "train.json").write_text(json.dumps([
        {"prompt": "dog", "file_path": ["a.jpg", "b.jpg"], "human_preference": [0, 1]},
    ]))
    test = load_dataset("hpdv2", "test", tmp_path)
    assert test.convention == "hpdv2" and test.items[0].item_id == "0"
    assert list(test.items[0].ranks) == [2, 1, 3] and test.items[0].meta["raw_annotations"] == [[2, 1, 3]]
    train = load_dataset("hpdv2", "train", tmp_path)
    assert list(train.items[0].ranks) == [2, 1]
    assert train.items[0].images[1].open().size == (4, 4)


def _pickapic_table(n, offset=0):
    labels = [1.0, 0.0, 0.5]
    return pa.table({
        "caption": [f"caption {offset + i}" for i in range(n)],
        "jpg_0": [_png((i, 0, 0)) for i in range(n)],
        "jpg_1": [_png((0, i, 0)) for i in range(n)],
        "label_0": [labels[(offset + i) % 3] for i in range(n)],
        "label_1": [1 - labels[(offset + i) % 3] for i in range(n)],
    })


def test_pickapic_single_file_and_shards(tmp_path):
    pq.write_table(_pickapic_table(3), tmp_path / "test_unique.parquet")
    split = load_dataset("pickapic", "test_unique", tmp_path)
    assert [it.label_0 for it in split.items] == [1.0, 0.0, 0.5]
    assert [list(it.ranks) for it in split.items] == [[1, 2], [2, 1], [1, 1]]
    assert split.items[1].images[0].open().getpixel((0, 0)) == (1, 0, 0)
    (tmp_path / "data").mkdir()
    pq.write_table(_pickapic_table(2), tmp_path / "data" / "test-00000-of-00002.parquet")
    pq.write_table(_pickapic_table(2, offset=2), tmp_path / "data" / "test-00001-of-00002.parquet")
    split = load_dataset("pickapic", "test", tmp_path)
    assert [it.item_id for it in split.items] == ["0", "1", "2", "3"]
    assert split.items[3].prompt == "caption 3"
    lite = load_dataset("pickapic", "test", tmp_path, with_images=False)
    assert lite.content_hash() == split.content_hash()
    with pytest.raises(MissingDataError, match="validation_unique"):
        load_dataset("pickapic", "validation_unique", tmp_path)


def test_pickapic_bad_label(tmp_path):
    t = _pickapic_table(1).set_column(3, "label_0", pa.array([0.3]))
    pq.write_table(t, tmp_path / "test.parquet")
    with pytest.raises(DataError, match="label_0 must be 0, 0.5 or 1"):
        load_dataset("pickapic", "test", tmp_path)


def test_jsonl_format(tmp_path):
    (tmp_path / "img").mkdir()
    for k in range(3):
        (tmp_path / "img" / f"{k}.png").write_bytes(_png())
    f = tmp_path / "mine.jsonl"
    f.write_text(json.dumps({"prompt_id": "p1", "prompt": "x", "images": ["img/0.png", "img/1.png"], "ranks": [1, 2]})
                 + "\n\n" + json.dumps({"prompt_id": "p2", "prompt": "y", "images": ["img/1.png", "img/2.png"],
                                        "ranks": [1, 1]}) + "\n")
    split = load_dataset("jsonl", "test", f)
    assert [it.item_id for it in split.items] == ["p1", "p2"]
    assert split.items[0].images[1].path == tmp_path / "img" / "1.png"
    f.write_text(f.read_text() + '{"prompt_id": "p1", "prompt": "z", "images": ["a", "b"], "ranks": [1, 2]}\n')
    with pytest.raises(DataError, match=r"line 4.*duplicate prompt_id"):
        load_dataset("jsonl", "test", f)


def test_demo_is_deterministic(tmp_path):
    from prefbench.data import demo

    a = load_dataset("demo", "test")
    (tmp_path / "test").mkdir()  # the test split generated again, on its own (each split has its own stream)
    records = demo._generate("test", demo.SEED, tmp_path)
    assert [r["images"] for r in records] == [[ref.key for ref in it.images] for it in a.items]
    assert [r["ranks"] for r in records] == [list(it.ranks) for it in a.items]
    assert [r["prompt"] for r in records] == [it.prompt for it in a.items]
    for k in (0, 1, -1):
        assert (tmp_path / records[k]["images"][0]).read_bytes() == a.items[k].images[0].read_bytes()
    assert len(a) == 300 and all(4 <= it.n_images <= 6 for it in a.items)
    assert all(len(it.meta["utility"]) == it.n_images for it in a.items)
    assert any(len(set(it.ranks)) < it.n_images for it in a.items), "the demo split should contain human ties"


def test_unknown_dataset_and_split():
    with pytest.raises(UsageError, match="Did you mean: imagereward"):
        load_dataset("imagerewrd")
    with pytest.raises(UsageError, match="no split 'dev'"):
        load_dataset("demo", "dev")
    with pytest.raises(UsageError, match="needs --data-dir"):
        load_dataset("hpdv2", "test")


def test_demo_world_structure():
    from prefbench.data.demo import OOD_PAIRS, ceiling

    test, ood = load_dataset("demo", "test"), load_dataset("demo", "ood")
    assert any(" left of " in it.prompt or " above " in it.prompt for it in test.items)
    # ood prompts use held-out (colour, shape) pairs; test prompts never do
    held_out = [f"{c} {s}" for c, s in OOD_PAIRS]
    assert all(any(h in it.prompt for h in held_out) for it in ood.items)
    assert not any(f" {c} {s}" in it.prompt for it in test.items for c, s in OOD_PAIRS)
    assert test.items[0].images[0].open().size == (112, 112)
    m = ceiling("test")
    assert 0.8 < m["accuracy"] < 0.95, "the noise-free utility should be good but well short of 100%"
