"""The training examples as TRL reads them: the chat messages of an example (exactly what the
scorers render), SFT's target turn, the ``datasets.Dataset`` with TRL's columns, and the check
that every answer is one token of the model's tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefbench.errors import UsageError
from prefbench.training.config import TrainConfig
from prefbench.training.tasks import TaskData


def rating_scale(cfg: TrainConfig):
    """The config's rating scale (a :class:`UsageError` for one the prompts cannot express)."""
    from prefbench.scorers.vlm.prompts import RatingScale

    try:
        return RatingScale(cfg.rating_min, cfg.resolved_rating_max())
    except ValueError as exc:
        raise UsageError(f"rating scale {cfg.rating_min}-{cfg.resolved_rating_max()}: {exc}") from None


def example_messages(task: str, prompt: str, scale) -> list[dict]:
    """The chat messages of one example: exactly what the scorers render at scoring time."""
    from prefbench.scorers.vlm.prompts import pairwise_messages, rating_messages

    return rating_messages(prompt, scale) if task == "rating" else pairwise_messages(prompt)


def sft_completion(target: int) -> list[dict]:
    """SFT's assistant turn for an example whose correct answer is ``target``: an empty reasoning
    block, then the answer — the text the scorers themselves force when the reasoning budget is 0
    (``PREFILL_ANSWER``), so the soft read-out finds the answer where it expects it.

    >>> sft_completion(4)[0]["content"]
    '<think>\\n</think>\\n<answer>4</answer>'
    """
    from prefbench.scorers.vlm.prompts import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

    return [{"role": "assistant", "content": f"{THINK_OPEN}\n{THINK_CLOSE}\n{ANSWER_OPEN}{int(target)}{ANSWER_CLOSE}"}]


def to_hf_dataset(data: TaskData, scale=None, sft: bool = False):
    """A ``datasets.Dataset`` with TRL's columns: ``prompt`` (chat messages with image
    placeholders), ``images`` (decoded lazily, RGB), plus ``target``/``choices`` for the rewards;
    with ``sft``, also ``completion`` (:func:`sft_completion`), SFTTrainer's target turn."""
    import datasets

    from prefbench.data.images import resolve_inside

    def image_cell(ref):
        if ref.path is not None:  # the checked real path (inside the data dir unless allowed)
            return {"path": resolve_inside(ref.path, ref.root), "bytes": None}
        return {"path": None, "bytes": ref.read_bytes()}

    rows = {
        "example_id": [ex.example_id for ex in data.examples],
        "prompt": [example_messages(data.task, ex.prompt, scale) for ex in data.examples],
        "images": [[image_cell(r) for r in ex.images] for ex in data.examples],
        "target": [int(ex.target) for ex in data.examples],
        "choices": [list(ex.choices) for ex in data.examples],
    }
    if sft:
        rows["completion"] = [sft_completion(ex.target) for ex in data.examples]
    ds = datasets.Dataset.from_dict({k: v for k, v in rows.items() if k != "images"})
    images = datasets.Dataset.from_dict({"images": rows["images"]},
                                        features=datasets.Features({"images": datasets.List(datasets.Image(mode="RGB"))}))
    return datasets.concatenate_datasets([ds, images], axis=1)


def check_answer_tokens(tokenizer, answers: Sequence[str], what: str) -> None:
    """Each answer must be one token, or the soft read-out (and this training target) is not
    expressible; e.g. a 1-10 scale fails because "10" is two tokens."""
    bad = {a: tokenizer.encode(a, add_special_tokens=False) for a in answers}
    bad = {a: ids for a, ids in bad.items() if len(ids) != 1}
    if bad:
        detail = ", ".join(f"{a!r} -> {len(ids)} tokens" for a, ids in bad.items())
        raise UsageError(f"{what} cannot be expressed as single tokens by this model's tokenizer ({detail}); "
                         "choose a scale whose values are single tokens (single digits for Qwen)")


def check_task_answers(tokenizer, task: str, scale) -> None:
    """:func:`check_answer_tokens` for the task's answers: the rating scale's values, or the
    pairwise answers."""
    if task == "rating":
        check_answer_tokens(tokenizer, scale.tokens, f"rating scale {scale}")
    else:
        from prefbench.scorers.vlm.prompts import PAIRWISE_TOKENS

        check_answer_tokens(tokenizer, PAIRWISE_TOKENS, "the pairwise answers")
