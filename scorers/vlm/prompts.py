"""Prompt templates and the answer format of the VLM scorers (and of the GRPO trainer).

The model reasons, then answers: ``<think>...</think><answer>...</answer>``. A rating answer
is one integer of the :class:`RatingScale`; a pairwise answer is ``1`` when Image 2 (the
second image shown) is better than Image 1 and ``0`` when Image 1 is better. With the anchor
shown first (the default order), ``1`` means "the candidate beats the anchor".

Templates are text files in ``templates/`` named ``<kind>_v<N>.txt``: a new wording is a new
file, never an edit of an old one (``tests/scorers/test_vlm_prompts.py`` snapshots every shipped file).
``<image>`` marks where an image goes; ``{prompt}``, ``{low}``, ``{high}`` and ``{example}`` are
filled in. :func:`template_hash` goes into ``run.json`` and the run's cache key.

The tags themselves (``<think>``, ``<answer>``, ...) are the engine layer's answer protocol
(:mod:`prefbench.engines.base`), re-exported here: engines read the answer position without
importing a scorer. This module imports nothing heavy; the trainer and the demo world's
pre-training use it too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

# the answer protocol lives in the engine layer (engines/ never imports scorers/)
from prefbench.engines.base import ANSWER_CLOSE, ANSWER_OPEN, ANSWER_PREFIX, THINK_CLOSE, THINK_OPEN  # noqa: F401

IMAGE_MARKER = "<image>"

#: pairwise answer tokens: index 0 = Image 1 better, index 1 = Image 2 better
PAIRWISE_TOKENS = ("0", "1")

#: the template each scorer kind renders unless told otherwise
DEFAULT_TEMPLATES = {
    "rating": "rating_v1",
    "pairwise": "pairwise_v1",
    "zero_shot_rating": "zero_shot_rating_v1",
    "zero_shot_pairwise": "zero_shot_pairwise_v1",
}

_FORMAT_RE = re.compile(r"^\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>[^<]*)</answer>\s*$", re.DOTALL)
_ANSWER_RE = re.compile(r"<answer>(?P<answer>.*?)</answer>", re.DOTALL)
_INT_RE = re.compile(r"\s*([+-]?\d+)\s*")


@dataclass(frozen=True)
class RatingScale:
    """Integer ratings ``low..high`` (inclusive). Default 1-5; ImageReward's ratings are 1-7."""

    low: int = 1
    high: int = 5

    def __post_init__(self):
        if not (0 <= self.low < self.high <= 9):
            # Each rating must be one token for the soft read-out; single digits are one token
            # in Qwen's vocabulary (its pre-tokenizer splits digits), "10" is two.
            raise ValueError(f"rating scale must be single digits with low < high, got {self.low}-{self.high}")

    @classmethod
    def parse(cls, text: str | Sequence[int] | RatingScale) -> RatingScale:
        """``"1-7"``, ``[1, 7]`` or a RatingScale."""
        if isinstance(text, RatingScale):
            return text
        if isinstance(text, str):
            m = re.fullmatch(r"\s*(\d+)\s*[-:.,]+\s*(\d+)\s*", text)
            if not m:
                raise ValueError(f"rating scale must look like '1-5', got {text!r}")
            return cls(int(m.group(1)), int(m.group(2)))
        low, high = text
        return cls(int(low), int(high))

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.high + 1))

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(str(v) for v in self.values)

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


def _template_dir():
    return files("prefbench.scorers.vlm") / "templates"


@cache
def template_texts() -> dict[str, str]:
    """Every shipped template, by name (file stem)."""
    out = {}
    for entry in _template_dir().iterdir():
        if entry.name.endswith(".txt"):
            out[entry.name[:-4]] = entry.read_text(encoding="utf-8")
    return dict(sorted(out.items()))


def load_template(name_or_path: str) -> str:
    """A shipped template by name (``rating_v1``) or a user's template file by path."""
    shipped = template_texts()
    if name_or_path in shipped:
        return shipped[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".txt" and path.is_file():
        return path.read_text(encoding="utf-8")
    raise ValueError(f"unknown prompt template {name_or_path!r}; shipped: {', '.join(shipped)} "
                     "(or pass a path to a .txt file)")


def n_images(template: str) -> int:
    """How many images a template shows (1 for rating, 2 for pairwise)."""
    return load_template(template).count(IMAGE_MARKER)


def template_hash(templates: Sequence[str], **settings) -> str:
    """sha256 over the named templates' text plus settings that change the rendered prompt or
    its read-out (rating scale, answer tokens, system prompt)."""
    h = hashlib.sha256()
    for name in templates:
        h.update(name.encode() + b"\0" + load_template(name).encode() + b"\0")
    for key in sorted(settings):
        h.update(f"{key}={settings[key]!r}\0".encode())
    return h.hexdigest()


def render_messages(template: str, prompt: str, scale: RatingScale | None = None,
                    system: str | None = None) -> list[dict]:
    """Chat messages for ``processor.apply_chat_template``: one user turn whose content
    interleaves ``{"type": "image"}`` placeholders and text, in template order. Images are passed
    to the processor separately, in the same order."""
    scale = scale or RatingScale()
    values = {"prompt": prompt, "low": scale.low, "high": scale.high,
              "example": (scale.low + scale.high + 1) // 2}
    content: list[dict] = []
    parts = load_template(template).rstrip("\n").split(IMAGE_MARKER)
    for i, part in enumerate(parts):
        if i:
            content.append({"type": "image"})
        # format the template piece, never the user's prompt: braces in prompts stay literal
        text = part.format(**values)
        if text.strip():
            content.append({"type": "text", "text": text})
    messages = [{"role": "user", "content": content}]
    if system:
        messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
    return messages


def rating_messages(prompt: str, scale: RatingScale | None = None, template: str = DEFAULT_TEMPLATES["rating"],
                    system: str | None = None) -> list[dict]:
    """Messages asking for a rating of one image (one image placeholder)."""
    return render_messages(template, prompt, scale, system)


def pairwise_messages(prompt: str, template: str = DEFAULT_TEMPLATES["pairwise"],
                      system: str | None = None) -> list[dict]:
    """Messages comparing Image 1 and Image 2 (two placeholders); answer 1 = Image 2 better."""
    return render_messages(template, prompt, None, system)


@dataclass(frozen=True)
class ParsedAnswer:
    """What a completion said. ``value`` is None when no valid answer was found;
    ``format_ok`` is True only for exactly ``<think>...</think><answer>...</answer>``."""

    value: int | None
    answer_text: str | None
    format_ok: bool
    think: str | None = None


def parse_answer(text: str, allowed: Sequence[int]) -> ParsedAnswer:
    """Parse a completion; the answer is the content of the last ``<answer>`` tag and must be
    one of ``allowed`` (integers).

    >>> parse_answer("<think>sharp, on prompt</think><answer>4</answer>", range(1, 6))
    ParsedAnswer(value=4, answer_text='4', format_ok=True, think='sharp, on prompt')
    >>> parse_answer("<answer> 1 </answer>", (0, 1)).value
    1
    >>> parse_answer("<think>x</think><answer>9</answer>", range(1, 6)).value is None
    True
    >>> parse_answer("I think 3", range(1, 6))
    ParsedAnswer(value=None, answer_text=None, format_ok=False, think=None)
    """
    full = _FORMAT_RE.match(text)
    answers = _ANSWER_RE.findall(text)
    think = full.group("think").strip() if full else None
    if not answers:
        return ParsedAnswer(None, None, False, think)
    answer = answers[-1]
    m = _INT_RE.fullmatch(answer)
    value = int(m.group(1)) if m else None
    if value is not None and value not in set(allowed):
        value = None
    return ParsedAnswer(value, answer.strip(), bool(full) and value is not None, think)


def parse_rating(text: str, scale: RatingScale | None = None) -> ParsedAnswer:
    """Parse a rating completion against ``scale`` (default 1-5)."""
    return parse_answer(text, (scale or RatingScale()).values)


def parse_pairwise(text: str) -> ParsedAnswer:
    """Parse a pairwise completion: 1 = Image 2 better, 0 = Image 1 better."""
    return parse_answer(text, (0, 1))
