"""Issue 31 item 9: ids that normalise to the same key are refused, naming both places, never
merged: EvalMuse's prompt_id 5 and "5", GenAI-Bench-Rank's "5" and "05" (and "1_0", which int()
reads as 10), and a key twice in one JSON object (JSON keeps the last silently)."""

from __future__ import annotations

import json

import pytest

from prefbench.data import load_dataset
from prefbench.errors import DataError


def _evalmuse(tmp_path, rows):
    (tmp_path / "test.json").write_text(json.dumps(rows))
    return tmp_path


def _row(pid, prompt="a cat", k=0):
    return {"prompt_id": pid, "prompt": prompt, "img_path": f"img/{pid}_{k}.png", "total_score": 3.0 + k,
            "element_score": {"cat": 1}}


def test_evalmuse_number_and_string_ids_are_not_merged(tmp_path):
    data = _evalmuse(tmp_path, [_row(5, "a cat"), _row("5", "a dog", 1)])
    with pytest.raises(DataError, match=r"row 1: prompt_id '5' and row 0's prompt_id 5 are one item id '5', but one "
                                        r"is a number, the other a string"):
        load_dataset("evalmuse", "test", data, with_images=False)
    data = _evalmuse(tmp_path, [_row(5, "a cat"), _row(5, "a dog", 1)])
    with pytest.raises(DataError, match="row 1: .* row 0's .* their prompts differ"):
        load_dataset("evalmuse", "test", data, with_images=False)
    data = _evalmuse(tmp_path, [_row(5), _row(5, k=1), _row("6")])
    split = load_dataset("evalmuse", "test", data, with_images=False)
    assert [(i.item_id, i.n_images) for i in split.items] == [("5", 2), ("6", 1)]


def _genai(tmp_path, text):
    (tmp_path / "human_rating.json").write_text(text)
    return tmp_path


def _prompt(pid):
    return {"id": pid, "prompt": f"prompt {pid}", "models": {"SDXL_Base": {str(k): [k % 3 + 1] for k in range(1, 10)}}}


@pytest.mark.parametrize("keys, message", [
    (["5", "05"], r"prompt '05' and prompt '5' are the same prompt \(images SDXL_Base/00005_\*\.jpeg\)"),
    (["10", "1_0"], r"prompt '1_0': prompt ids are whole numbers written in digits 0-9"),
    (["7", " 7"], r"prompt ' 7': prompt ids are whole numbers"),
])
def test_genai_rank_ids_that_name_the_same_images_are_refused(tmp_path, keys, message):
    data = _genai(tmp_path, json.dumps({k: _prompt(k) for k in keys}))
    with pytest.raises(DataError, match=message):
        load_dataset("genai_rank", "SDXL_Base", data, with_images=False)


def test_a_key_twice_in_one_object_is_refused_with_its_lines(tmp_path):
    text = "{\n" + '"5": ' + json.dumps(_prompt("5")) + ",\n" + '"5": ' + json.dumps(_prompt("5")) + "\n}\n"
    data = _genai(tmp_path, text)
    with pytest.raises(DataError, match=r"key '5' appears twice in one JSON object \(lines 2, 3\)"):
        load_dataset("genai_rank", "SDXL_Base", data, with_images=False)
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "test.jsonl").write_text(
        '{"prompt_id": "a", "prompt": "p", "images": ["x.png"], "ranks": [1], "prompt_id": "b"}\n')
    with pytest.raises(DataError, match=r"test\.jsonl.*line 1.*key 'prompt_id' appears twice|key 'prompt_id' appears "
                                        r"twice.*line 1"):
        load_dataset("jsonl", "test", tmp_path / "j", with_images=False)


def test_a_400_digit_rating_is_a_clear_error_not_a_traceback(tmp_path):
    big = int("9" * 400)
    (tmp_path / "e").mkdir()
    row = _row("a")
    row["total_score"] = big
    with pytest.raises(DataError, match="total_score must be a number"):
        load_dataset("evalmuse", "test", _evalmuse(tmp_path / "e", [row]), with_images=False)
    (tmp_path / "g").mkdir()
    prompt = _prompt("1")
    prompt["models"]["SDXL_Base"]["3"] = [big]
    with pytest.raises(DataError, match="image 3 of SDXL_Base needs a non-empty list of numeric ratings"):
        load_dataset("genai_rank", "SDXL_Base", _genai(tmp_path / "g", json.dumps({"1": prompt})), with_images=False)
