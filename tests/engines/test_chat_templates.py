"""The tiny checkpoints' chat templates are prefbench's own, and lay prompts out as the real ones do."""

from __future__ import annotations

from pathlib import Path

from prefbench.scorers.vlm import prompts
from prefbench.testing import chat_templates
from tests.fixtures.extras import skip_without_extra

ASSETS = Path(__file__).resolve().parents[2] / "prefbench" / "demo_zoo" / "assets"


def _conversations():
    rating = prompts.rating_messages("a red cat on a mat")
    pairwise = prompts.pairwise_messages("a red cat on a mat")
    answered = [*pairwise, {"role": "assistant", "content": [{"type": "text", "text": "<answer>1</answer>"}]}]
    system = [{"role": "system", "content": [{"type": "text", "text": "Judge carefully."}]}, *rating]
    return [rating, pairwise, answered, system, [{"role": "user", "content": "plain text"}]]


def test_the_bundled_checkpoints_carry_the_one_project_template():
    found = sorted(ASSETS.glob("*/chat_template.jinja"))
    assert len(found) == 5
    for path in found:
        assert path.read_text() == chat_templates.QWEN2_VL, path


def test_qwen_template_renders_as_the_qwen2_5_vl_template_trl_ships():
    skip_without_extra("train")
    from importlib.resources import files

    from transformers.utils.chat_template_utils import _compile_jinja_template

    shipped = _compile_jinja_template((files("trl") / "chat_templates" / "qwen2_5_vl.jinja").read_text())
    ours = _compile_jinja_template(chat_templates.QWEN2_VL)
    for messages in _conversations():
        for generation in (True, False):
            for vision_id in (True, False):
                kw = {"messages": messages, "add_generation_prompt": generation, "add_vision_id": vision_id}
                assert ours.render(**kw) == shipped.render(**kw)


def test_the_mistral_stand_in_dates_its_default_system_prompt_in_its_own_words():
    from transformers.utils.chat_template_utils import _compile_jinja_template

    template = _compile_jinja_template(chat_templates.MISTRAL3)
    user = prompts.rating_messages("a cat")
    text = template.render(messages=user, bos_token="<s>", eos_token="</s>")
    assert text.startswith("<s>[SYSTEM_PROMPT]A test assistant. Today is 20")  # the date the profile must neutralise
    assert text.count("[IMG]") == 1 and text.endswith("[/INST]")
    assert "Mistral" not in chat_templates.MISTRAL3
    explicit = template.render(messages=[{"role": "system", "content": [{"type": "text", "text": ""}]}, *user],
                               bos_token="<s>", eos_token="</s>")
    assert explicit.startswith("<s>[SYSTEM_PROMPT][/SYSTEM_PROMPT][INST]")
