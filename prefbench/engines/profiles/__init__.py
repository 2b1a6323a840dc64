"""Model profiles: what prefbench needs to know about one VLM family, in one place.

A :class:`ModelProfile` per ``config.model_type`` says:

* ``end_tokens``: the chat template's end-of-turn tokens (masked while a rollout reasons, and
  where generation stops);
* ``image_kwargs(max_pixels)``: the processor keyword arguments that cap an image's size, in the
  family's own terms (Qwen's pixel budget, Idefics3's longest edge, ...); None when the family's
  processor has a fixed size (``max_pixels`` is then refused with that reason, never ignored);
* ``batching``: ``concat`` when single-prompt encodings can be concatenated along dim 0
  (Qwen-VL: patches plus ``image_grid_thw``), ``processor`` when the processor must batch the
  prompts itself (it pads images of different sizes);
* ``share_images``: an optional hook that makes the vision tower encode each distinct image of
  a batch once (an item's anchor appears in all its comparisons); a family without one still
  works, and the run summary says sharing is off;
* ``lora_targets``: the language model's projections, for ``prefbench train``;
* ``refuse``: a reason the family cannot run in this transformers version (checked at load);
* ``fix_messages``: chat-template quirks (Mistral 3's dated default system prompt);
* ``requires``: Python modules its processor imports (a missing one is named, not a traceback).

The transformers engine and the trainer read profiles; adding a family is one profile (in
:mod:`prefbench.engines.profiles.families`, or a package's ``prefbench.model_profiles`` entry
point), one line of :data:`MANIFEST` per model type, and one tiny-checkpoint builder in
:mod:`prefbench.testing.tiny_families`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefbench.errors import UsageError

#: LoRA on the language model's attention and MLP projections only (the vision tower stays
#: frozen), matching Unsloth's ``finetune_vision_layers=False, finetune_language_layers=True``.
LANGUAGE_PROJECTIONS = r"(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
LANGUAGE_LORA_TARGETS = rf".*language_model.*\.{LANGUAGE_PROJECTIONS}"


@dataclass(frozen=True)
class ModelProfile:
    family: str
    model_types: tuple[str, ...]
    end_tokens: tuple[str, ...] = ()
    #: max_pixels -> processor kwargs; None = the processor's image size is fixed
    image_kwargs: Callable[[int], dict[str, Any]] | None = None
    batching: str = "processor"
    #: install(engine, base_model) -> True when sharing is on
    share_images: Callable[[Any, Any], bool] | None = None
    lora_targets: str = LANGUAGE_LORA_TARGETS
    refuse: str | None = None
    requires: tuple[str, ...] = ()
    #: a reason ``prefbench train`` cannot train the family (scoring still works)
    train_refuse: str | None = None
    #: chat-template quirks: messages -> the messages to render (e.g. a fixed system turn)
    fix_messages: Callable[[list[dict]], list[dict]] | None = None
    #: what the summary and the docs say about the family (e.g. why sharing is off)
    notes: str = ""

    def processor_kwargs(self, max_pixels: int | None) -> dict[str, Any]:
        if not max_pixels:
            return {}
        if self.image_kwargs is None:
            raise UsageError(f"max_pixels: the {self.family} processor resizes every image to a fixed size; "
                             "it has no pixel budget to set (drop -S max_pixels)")
        return self.image_kwargs(int(max_pixels))

    def cap_images(self, processor: Any, max_pixels: int | None) -> None:
        """Set the image-size cap on a loaded processor's image processor. Not through
        ``from_pretrained(**kwargs)``: transformers 5 hands those to the tokenizer as well, which
        saves them (a trained model's tokenizer_config.json) and passes them back on every call
        (Qwen2-VL's "Passing `min_pixels` and `max_pixels` to a processor call is deprecated")."""
        kwargs = self.processor_kwargs(max_pixels)
        images = getattr(processor, "image_processor", None)
        if not kwargs or images is None:
            return
        for key, value in kwargs.items():
            if key == "max_pixels":  # Qwen-VL: the pixel budget is size.longest_edge
                key, value = "size", {"longest_edge": value}
            if key == "size":
                now = getattr(images, "size", None) or {}
                value = {**{k: v for k, v in dict(now).items() if v is not None}, **value}
            setattr(images, key, value)

    def messages(self, messages: list[dict]) -> list[dict]:
        return self.fix_messages(messages) if self.fix_messages else messages

    def check(self) -> None:
        """Refuse a family that cannot run here, or whose processor's imports are missing."""
        if self.refuse:
            raise UsageError(f"{self.family} models cannot be scored by prefbench with this transformers "
                             f"version: {self.refuse}")
        self._check_requires()

    def check_trainable(self) -> None:
        self.check()
        if self.train_refuse:
            raise UsageError(f"prefbench train cannot train {self.family} models: {self.train_refuse}")

    def _check_requires(self) -> None:
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            raise UsageError(f"the {self.family} processor needs {', '.join(missing)}, which is not installed: "
                             f"pip install {' '.join(missing)}")


GENERIC = ModelProfile("generic", (), notes="no profile for this model type: generic defaults, no image sharing")

#: the built-in profiles: model type -> the module attribute holding its profile (a family with
#: several model types is one profile named on several lines)
MANIFEST: dict[str, str] = {
    "qwen2_vl": "prefbench.engines.profiles.families:QWEN2_VL",
    "qwen2_5_vl": "prefbench.engines.profiles.families:QWEN2_VL",
    "qwen3_vl": "prefbench.engines.profiles.families:QWEN3_VL",
    "qwen3_vl_moe": "prefbench.engines.profiles.families:QWEN3_VL",
    "gemma3": "prefbench.engines.profiles.families:GEMMA3",
    "idefics3": "prefbench.engines.profiles.families:IDEFICS3",
    "smolvlm": "prefbench.engines.profiles.families:SMOLVLM",
    "llava_onevision": "prefbench.engines.profiles.families:LLAVA_ONEVISION",
    "llava_next": "prefbench.engines.profiles.families:LLAVA_NEXT",
    "internvl": "prefbench.engines.profiles.families:INTERNVL",
    "mistral3": "prefbench.engines.profiles.families:MISTRAL3",
    "llama4": "prefbench.engines.profiles.families:LLAMA4",
}
ENTRY_POINT_GROUP = "prefbench.model_profiles"
_REGISTRY = None


def registry():
    """The profile registry (:class:`prefbench.registry.Registry` of ModelProfile, keyed by
    ``config.model_type``); a package adds a family under the ``prefbench.model_profiles`` group."""
    from prefbench.registry import Registry

    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry("model profile", ENTRY_POINT_GROUP, MANIFEST, expect=ModelProfile)
    return _REGISTRY


def profiles() -> dict[str, ModelProfile]:
    """Every known profile by model type."""
    return registry().all()


def profile_for(model_type: str | None) -> ModelProfile:
    """The profile of ``config.model_type`` (:data:`GENERIC` when none is known)."""
    reg = registry()
    return reg.get(model_type) if model_type and model_type in reg else GENERIC


def profile_of(config) -> ModelProfile:
    return profile_for(getattr(config, "model_type", None))


def render_prompt(processor, profile: ModelProfile, messages: list[dict], assistant_text: str = "") -> str:
    """The chat template's text for ``messages`` with the assistant turn opened (and
    ``assistant_text`` written into it). A template that writes the BOS token itself (Gemma 3,
    Idefics3, Mistral 3) would get a second one from a tokenizer that adds BOS: the template's is
    dropped here, so every engine sees one."""
    text = processor.apply_chat_template(profile.messages(messages), add_generation_prompt=True, tokenize=False)
    tok = getattr(processor, "tokenizer", processor)
    bos = getattr(tok, "bos_token", None)
    if bos and text.startswith(bos) and _adds_bos(tok):
        text = text[len(bos):]
    return text + assistant_text


def _adds_bos(tok) -> bool:
    cached = getattr(tok, "_prefbench_adds_bos", None)
    if cached is None:
        ids = tok("x").input_ids
        cached = bool(ids) and ids[0] == tok.bos_token_id
        try:
            tok._prefbench_adds_bos = cached
        except AttributeError:
            pass
    return cached


def answer_token_id(tokenizer, text: str, context: str | None = None) -> int:
    """The id of answer token ``text`` as the model would write it right after ``context`` (the
    answer prefix; default ``<answer>``).

    Alone, a SentencePiece tokenizer (Llama-2, Mistral v0.x) encodes "1" as a word-start marker
    plus "1"; after ``<answer>`` it is one token. So the answer token is the one token that
    ``context`` + text adds to ``context``; a text that is more than one token there cannot be
    read softly."""
    from prefbench.engines.base import ANSWER_OPEN

    context = ANSWER_OPEN if context is None else context
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) == 1:
        return ids[0]
    if context:
        ctx = tokenizer.encode(context, add_special_tokens=False)
        both = tokenizer.encode(context + text, add_special_tokens=False)
        if len(both) == len(ctx) + 1 and both[:len(ctx)] == ctx:
            return both[-1]
    raise ValueError(f"answer token {text!r} is {len(ids)} tokens in this tokenizer"
                     + (f" (also after {context!r})" if context else "")
                     + "; the soft read-out needs single-token answers")


def end_token_ids(tokenizer, profile: ModelProfile, eos=None) -> list[int]:
    """End-of-turn ids: ``eos`` (the generation config's, else the tokenizer's) plus the
    profile's end tokens that the tokenizer knows."""
    eos = tokenizer.eos_token_id if eos is None else eos
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    for name in profile.end_tokens:
        tid = tokenizer.convert_tokens_to_ids(name)
        if isinstance(tid, int) and tid != getattr(tokenizer, "unk_token_id", None) and tid not in ids:
            ids.append(tid)
    return [int(i) for i in ids]


def model_type_of(path: str) -> str | None:
    """``model_type`` from a checkpoint folder's config.json, without importing transformers."""
    import json
    from pathlib import Path

    cfg = Path(path) / "config.json"
    try:
        return json.loads(cfg.read_text()).get("model_type") if cfg.is_file() else None
    except (OSError, ValueError):
        return None
