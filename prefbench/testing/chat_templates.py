"""Chat templates for the tiny checkpoints, written for prefbench.

A tiny model needs a template that lays a conversation out the way its family's real checkpoints
do (the special tokens and where images go); the wording of any default system prompt is ours.
Each template here renders what the family's own template renders for the conversations prefbench
builds (a test compares them where the real file is installed, as TRL ships some); the families
not listed load the installed file at build time (``tiny_families._trl_template``). The strings
hold no whitespace between tags, so no tag trims any.
"""

from __future__ import annotations

#: Qwen2-VL / Qwen2.5-VL (ChatML with vision tokens): a default system turn when the conversation
#: opens without one (Qwen's default line, kept so prompts equal the real checkpoints'), each image
#: as ``<|vision_start|><|image_pad|><|vision_end|>`` (``Picture N: `` first with add_vision_id)
QWEN2_VL = (
    "{% set seen = namespace(images=0, videos=0) %}"
    "{% for turn in messages %}"
    "{% if loop.first and turn.role != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ turn.role }}\n"
    "{% if turn.content is string %}{{ turn.content }}<|im_end|>\n"
    "{% else %}"
    "{% for part in turn.content %}"
    "{% if part.type == 'image' or 'image' in part or 'image_url' in part %}"
    "{% set seen.images = seen.images + 1 %}"
    "{% if add_vision_id %}Picture {{ seen.images }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part.type == 'video' or 'video' in part %}"
    "{% set seen.videos = seen.videos + 1 %}"
    "{% if add_vision_id %}Video {{ seen.videos }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part.text }}"
    "{% endif %}"
    "{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: LLaVA-OneVision (llava-hf conversions): per turn, the turn's images first, then its videos,
#: then its text; an assistant turn's text is marked as generation (for assistant masks)
LLAVA_ONEVISION = (
    "{% for turn in messages %}"
    "<|im_start|>{{ turn.role }}\n"
    "{% for part in turn.content if part.type == 'image' %}<image>\n{% endfor %}"
    "{% for part in turn.content if part.type == 'video' %}<video>\n{% endfor %}"
    "{% for part in turn.content if part.type == 'text' %}"
    "{% if turn.role == 'assistant' %}{% generation %}{{ part.text }}{% endgeneration %}"
    "{% else %}{{ part.text }}{% endif %}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: InternVL3 (-hf conversions): ChatML, ``<IMG_CONTEXT>`` and a newline per image, no default
#: system turn
INTERNVL = (
    "{% for turn in messages %}"
    "<|im_start|>{{ turn.role }}\n"
    "{% if turn.content is string %}{{ turn.content }}"
    "{% else %}{% for part in turn.content %}"
    "{% if part.type == 'image' %}<IMG_CONTEXT>\n"
    "{% elif part.type == 'video' %}<video>\n"
    "{% elif part.type == 'text' %}{{ part.text }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: Mistral 3 (Mistral-Small-3.1 layout): BOS, then a ``[SYSTEM_PROMPT]`` block holding the
#: conversation's system text or, without one, a default that carries today's date (the property
#: prefbench's Mistral profile must neutralise; the wording here is ours); user turns in
#: ``[INST]...[/INST]`` with ``[IMG]`` per image; assistant turns end with EOS
MISTRAL3 = (
    "{% set default_system = 'A test assistant. Today is ' + strftime_now('%Y-%m-%d') + '.' %}"
    "{{ bos_token }}"
    "{% if messages and messages[0].role == 'system' %}"
    "{% set first = messages[0].content %}"
    "{% set system = first if first is string else first[0].text %}"
    "{% set rest = messages[1:] %}"
    "{% else %}{% set system = default_system %}{% set rest = messages %}{% endif %}"
    "[SYSTEM_PROMPT]{{ system }}[/SYSTEM_PROMPT]"
    "{% for turn in rest %}"
    "{% if turn.role == 'user' %}[INST]"
    "{% if turn.content is string %}{{ turn.content }}"
    "{% else %}{% for part in turn.content %}"
    "{% if part.type == 'text' %}{{ part.text }}"
    "{% elif part.type in ('image', 'image_url') %}[IMG]"
    "{% else %}{{ raise_exception('only text and image parts are supported') }}"
    "{% endif %}{% endfor %}{% endif %}[/INST]"
    "{% elif turn.role == 'system' %}[SYSTEM_PROMPT]{{ turn.content }}[/SYSTEM_PROMPT]"
    "{% elif turn.role == 'assistant' %}"
    "{{ turn.content if turn.content is string else turn.content[0].text }}{{ eos_token }}"
    "{% else %}{{ raise_exception('only user, system and assistant turns are supported') }}"
    "{% endif %}"
    "{% endfor %}"
)
