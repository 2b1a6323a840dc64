"""The paper's GRPO rewards (sec. 4) as plain TRL reward callables.

Each takes ``(prompts, completions, **columns)`` and returns one float per completion. The
dataset columns they read are ``target`` (the correct answer: a rating such as ``5``, or ``1``
/ ``0`` for pairwise) and ``choices`` (the integer answers the prompt allows). Completions are what
TRL passes: plain strings, or, for chat prompts, ``[{"role": "assistant", "content": ...}]``.

The answer format is the scorers' (``prefbench.scorers.vlm.prompts``): reasoning inside
``<think>...</think>``, then ``<answer>X</answer>``; the same parser
(:func:`~prefbench.scorers.vlm.prompts.parse_answer`) reads it here and at scoring time. A completion without a parseable answer earns 0 from every reward (a reward is
a training signal, not a benchmark score, so 0 is the honest value here; scorers count such
answers as ``unparsed`` instead).

TRL logs each callable under its ``__name__`` (``rewards/format_reward/mean``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: reward name (as in ``TrainConfig.reward_weights``) -> callable, per task
REWARD_NAMES = {"format": "format_reward", "exact": "exact_match_reward", "approx": "approx_match_reward"}

#: the paper's approximate-match table: |prediction - target| -> reward
APPROX_TABLE = {0: 1.0, 1: 0.75, 2: 0.5}


def completion_text(completion: Any) -> str:
    """The generated text of one completion (TRL passes a string or a list of messages).

    >>> completion_text("<answer>3</answer>")
    '<answer>3</answer>'
    >>> completion_text([{"role": "assistant", "content": "<answer>3</answer>"}])
    '<answer>3</answer>'
    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}])
    'hi'
    """
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content") if isinstance(message, dict) else message
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "".join(parts)


def _parse(text: str, choices: Sequence[int] | None) -> tuple[bool, int | None]:
    """(whole completion well formed with an allowed answer, the answer or None), read by the
    scorers' parser. Without ``choices`` any single digit is allowed."""
    from prefbench.scorers.vlm.prompts import parse_answer

    parsed = parse_answer(text, tuple(int(c) for c in choices) if choices is not None else range(10))
    return parsed.format_ok, parsed.value


def _column(values: Sequence[Any] | None, n: int) -> list[Any]:
    return list(values) if values is not None else [None] * n


def format_reward(completions: Sequence[Any], choices: Sequence[Sequence[int]] | None = None,
                  **_: Any) -> list[float]:
    """1.0 when the completion is ``<think>...</think>`` then ``<answer>X</answer>`` with X one
    of the allowed ``choices`` (DeepSeek-R1's format reward, with a parseable answer), else 0.0.

    >>> format_reward(["<think>sharp, on prompt</think><answer>6</answer>",
    ...                "<answer>6</answer>",
    ...                "<think>hmm</think><answer>nine</answer>",
    ...                "<think>ok</think> <answer>9</answer>",
    ...                [{"role": "assistant", "content": "<think>ok</think> <answer> 2 </answer>"}]],
    ...               choices=[range(1, 8)] * 5)
    [1.0, 0.0, 0.0, 0.0, 1.0]
    """
    choices = _column(choices, len(completions))
    return [1.0 if _parse(completion_text(c), ch)[0] else 0.0 for c, ch in zip(completions, choices, strict=True)]


def exact_match_reward(completions: Sequence[Any], target: Sequence[int],
                       choices: Sequence[Sequence[int]] | None = None, **_: Any) -> list[float]:
    """1.0 when the parsed answer equals ``target``, else 0.0 (ratings and pairwise).

    >>> exact_match_reward(["<think>a</think><answer>1</answer>", "<think>b</think><answer>0</answer>",
    ...                     "no answer at all"], target=[1, 1, 1], choices=[(0, 1)] * 3)
    [1.0, 0.0, 0.0]
    """
    choices = _column(choices, len(completions))
    out = []
    for c, t, ch in zip(completions, target, choices, strict=True):
        answer = _parse(completion_text(c), ch)[1]
        out.append(1.0 if answer is not None and answer == int(t) else 0.0)
    return out


def approx_match_score(prediction: int, target: int) -> float:
    """The paper's approximate match: distance 0 -> 1.0, 1 -> 0.75, 2 -> 0.5, otherwise 0.

    >>> [approx_match_score(p, 4) for p in (4, 5, 3, 6, 2, 7, 1)]
    [1.0, 0.75, 0.75, 0.5, 0.5, 0.0, 0.0]
    """
    return APPROX_TABLE.get(abs(int(prediction) - int(target)), 0.0)


def approx_match_reward(completions: Sequence[Any], target: Sequence[int],
                        choices: Sequence[Sequence[int]] | None = None, **_: Any) -> list[float]:
    """:func:`approx_match_score` of the parsed rating against ``target``; 0.0 if unparsed.

    >>> approx_match_reward(["<think>x</think><answer>5</answer>", "<think>x</think><answer>3</answer>",
    ...                      "<think>x</think><answer>2</answer>", "<think>x</think>"],
    ...                     target=[5, 4, 5, 5], choices=[range(1, 8)] * 4)
    [1.0, 0.75, 0.0, 0.0]
    """
    choices = _column(choices, len(completions))
    out = []
    for c, t, ch in zip(completions, target, choices, strict=True):
        answer = _parse(completion_text(c), ch)[1]
        out.append(approx_match_score(answer, int(t)) if answer is not None else 0.0)
    return out


_CALLABLES = {"format": format_reward, "exact": exact_match_reward, "approx": approx_match_reward}


def reward_functions(weights: dict[str, float]) -> tuple[list, list[float]]:
    """The callables and their weights, in a fixed order, for ``GRPOTrainer``/``GRPOConfig``.

    Rewards with weight 0 are still computed and logged (a readout), they just do not train.

    >>> funcs, w = reward_functions({"format": 1.0, "exact": 2.0})
    >>> [f.__name__ for f in funcs], w
    (['format_reward', 'exact_match_reward'], [1.0, 2.0])
    """
    names = [n for n in _CALLABLES if n in weights]
    return [_CALLABLES[n] for n in names], [float(weights[n]) for n in names]
