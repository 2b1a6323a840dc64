"""Prompt templates (snapshotted), answer parsing, and the tiny offline Qwen2.5-VL builder."""

from __future__ import annotations

import hashlib

import pytest

from prefbench.scorers.vlm import prompts
from prefbench.scorers.vlm.prompts import RatingScale, parse_pairwise, parse_rating

# A template is never edited in place: a new wording is a new file (rating_v2.txt). If one of
# these hashes changes, a silent prompt change would have altered every recorded run.
TEMPLATE_SHA256 = {
    "pairwise_v1": "76eb61b373fa6280d189751f13185690311f502cbea30894cc031ed2a150b53b",
    "rating_v1": "efba822c52b6f6cb51a9312e2f7b4cf13413b174eec3c6b8283b205a4d380822",
    "zero_shot_pairwise_v1": "54b035c6485f30c21df23204be5bae7a6ef3b3690716780a062ba8f3ee798c30",
    "zero_shot_rating_v1": "d18be43a7dc42f70e97954b3b0be267ef4c31414b7ce7fea9a55dcc9e447d342",
}

RATING_SNAPSHOT = [{"role": "user", "content": [
    {"type": "image"},
    {"type": "text", "text": (
        '\nThis image was generated from the text prompt: "two red {circles}"\n'
        "Rate how much people would like this image, judging how well it follows the prompt and its visual "
        "quality (aesthetics, detail, artifacts), on a scale from 1 (worst) to 7 (best).\n"
        "First think it through inside <think> </think> tags, then give the rating as a single number inside "
        "<answer> </answer> tags, for example <think>...</think><answer>4</answer>.")},
]}]


def test_shipped_templates_are_unchanged():
    texts = prompts.template_texts()
    assert set(texts) == set(TEMPLATE_SHA256)
    for name, text in texts.items():
        assert hashlib.sha256(text.encode()).hexdigest() == TEMPLATE_SHA256[name], name


def test_rating_prompt_snapshot_keeps_user_braces_literal():
    assert prompts.rating_messages("two red {circles}", RatingScale(1, 7)) == RATING_SNAPSHOT


def test_pairwise_prompt_has_two_images_in_order():
    msgs = prompts.pairwise_messages("a cat")
    kinds = [c["type"] for c in msgs[0]["content"]]
    assert kinds == ["text", "image", "text", "image", "text"]
    assert msgs[0]["content"][0]["text"].endswith("Image 1: ")
    assert msgs[0]["content"][2]["text"] == "\nImage 2: "
    assert prompts.n_images("pairwise_v1") == 2 and prompts.n_images("rating_v1") == 1
    with_system = prompts.pairwise_messages("a cat", system="Be brief.")
    assert with_system[0] == {"role": "system", "content": [{"type": "text", "text": "Be brief."}]}


def test_template_hash_tracks_text_and_settings(tmp_path):
    base = prompts.template_hash(["rating_v1"], scale="1-5")
    assert base == prompts.template_hash(["rating_v1"], scale="1-5")
    assert base != prompts.template_hash(["rating_v1"], scale="1-7")
    assert base != prompts.template_hash(["zero_shot_rating_v1"], scale="1-5")
    custom = tmp_path / "mine.txt"
    custom.write_text("<image>\nRate {prompt} from {low} to {high}.")
    h1 = prompts.template_hash([str(custom)])
    custom.write_text("<image>\nRate {prompt} from {low} to {high}!")
    assert prompts.template_hash([str(custom)]) != h1
    with pytest.raises(ValueError, match="unknown prompt template"):
        prompts.load_template("no_such_template")


def test_rating_scale():
    assert RatingScale.parse("1-7").tokens == tuple("1234567")
    assert str(RatingScale()) == "1-5"
    with pytest.raises(ValueError):
        RatingScale(1, 10)  # "10" is two tokens: no soft read-out possible
    with pytest.raises(ValueError):
        RatingScale.parse("five")


@pytest.mark.parametrize("text,value,format_ok", [
    ("<think>on prompt, sharp</think><answer>4</answer>", 4, True),
    ("<think>a</think>\n<answer> 2 </answer>\n", 2, True),
    ("<answer>5</answer>", 5, False),  # answer without reasoning: a value, but not the format
    ("<think>a</think><answer>6</answer>", None, False),  # outside 1-5
    ("<think>a</think><answer>three</answer>", None, False),
    ("<think>a</think><answer>3", None, False),  # never closed
    ("<think>a</think><answer>1</answer><answer>2</answer>", 2, False),  # last answer counts
])
def test_parse_rating(text, value, format_ok):
    parsed = parse_rating(text)
    assert parsed.value == value
    assert parsed.format_ok is format_ok


def test_parse_pairwise():
    assert parse_pairwise("<think>x</think><answer>0</answer>").value == 0
    assert parse_pairwise("<think>x</think><answer>1</answer>").value == 1
    assert parse_pairwise("<think>x</think><answer>2</answer>").value is None


def test_tiny_vlm_loads_with_auto_classes(tiny_vlm_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_vlm_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_dir)
    tok = processor.tokenizer
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(tok).__name__ == "Qwen2Tokenizer"
    # the model's vocabulary is exactly the tokenizer's: a sampled id always decodes
    assert model.config.text_config.vocab_size == len(tok)
    texts = [tok.decode([i]) for i in range(len(tok))]
    assert all(texts) and len(set(texts)) == len(texts)
    for digit in "0123456789":
        assert len(tok.encode(digit, add_special_tokens=False)) == 1
    cfg = model.config.text_config
    assert cfg.hidden_size // cfg.num_attention_heads >= 32  # vLLM CPU attention needs this
    # Qwen's special tokens, in official order, right after the regular vocabulary
    from prefbench.testing.tiny_vlm import QWEN_SPECIAL_TOKENS

    ids = tok.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS))
    assert ids == list(range(ids[0], ids[0] + len(QWEN_SPECIAL_TOKENS)))
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    size = sum(p.stat().st_size for p in tiny_vlm_dir.rglob("*") if p.is_file())
    assert size < 8e6
    # the chat template renders our messages with the vision placeholders
    text = processor.apply_chat_template(prompts.pairwise_messages("a cat"), add_generation_prompt=True,
                                         tokenize=False)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert text.endswith("<|im_start|>assistant\n")
