"""The engine contract: what a VLM scorer asks of a model, and what it gets back.

A scorer builds :class:`Job` values (chat messages, their images, a stable key) and one
:class:`GenerationSpec` (answer candidates, reasoning budget, rollouts, sampling, seed); an
:class:`Engine` turns them into one :class:`Rollout` per rollout of each job. An engine knows
nothing of ratings, anchors or read-outs; a scorer knows nothing of which engine runs it.

The contract every engine keeps (the tests of each engine check it):

* a rollout reasons inside ``<think>`` up to ``budget`` generated tokens; end-of-sequence is
  not allowed before the answer prefix ``<answer>``; when the budget runs out the engine appends
  :data:`FORCE_OPEN` (or :data:`FORCE_CLOSED` after a closed ``</think>``) and sets ``forced``;
* ``answer_logits`` holds one value per candidate at the position right after ``<answer>``:
  logits or log-probabilities (softmax over either gives the same distribution), ``-inf`` for a
  candidate the engine could not see, or None when there is no answer position (``missed``:
  a token swallowed the prefix with more text; ``no_answer_reason``: the engine says why);
* ``budget`` 0 is prefill-only: the assistant turn is :data:`PREFILL_ANSWER` and only the
  answer distribution is read (one rollout);
* all of the above reads ``spec.answer`` (:class:`AnswerFormat`): its prefix, forced texts, prefill
  and tail stop replace ``<answer>``, :data:`FORCE_OPEN`, :data:`FORCE_CLOSED`,
  :data:`PREFILL_ANSWER` and ``</answer>``; a format without a prefix is free generation (no
  answer position, nothing forced or masked: only the text);
* sampled rollouts are seeded from ``(spec.seed, job.key, rollout index)`` through
  :func:`seed_for`, so a resumed or re-batched run asks for the same rollouts;
* a rollout the engine could not produce at all (a request that failed) has ``error`` set and
  ``retryable`` when a later run may succeed; nothing is raised for one bad rollout.

Options are the keyword-only parameters of the engine's ``__init__`` (typed: the registry
checks ``-S key=value`` values against the annotations). ``transport_params`` names options that
change how results are fetched, not what they are (left out of a run's identity).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from prefbench.provenance import model_fingerprint  # noqa: F401  (re-exported: the model-identity helper)

#: the answer protocol every engine honours: reasoning inside the think tags, then the answer
#: tags; the token right after :data:`ANSWER_PREFIX` is the answer token (scorers import these
#: from here, never the other way round)
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
#: the text a rollout must end with for the next token to be the answer token
ANSWER_PREFIX = ANSWER_OPEN

#: text forced when the reasoning budget runs out, with </think> still open / already closed
FORCE_OPEN = f"\n{THINK_CLOSE}\n{ANSWER_OPEN}"
FORCE_CLOSED = f"\n{ANSWER_OPEN}"
#: assistant text for prefill-only scoring (no reasoning)
PREFILL_ANSWER = f"{THINK_OPEN}\n{THINK_CLOSE}\n{ANSWER_OPEN}"


@dataclass(frozen=True)
class AnswerFormat:
    """Where a rollout's answer token sits and how an engine gets a rollout there.

    The default is the seed paper's ``<think>...</think><answer>`` protocol; a generative judge
    answers elsewhere (UnifiedReward-Think: after ``<answer>Image ``; VQAScore: the first token), so
    a :class:`GenerationSpec` carries one of these.

    ``prefix``: the text a rollout ends with right before the answer token ("" = the first generated
    token); ``None`` = **free generation**: no answer position, nothing forced, end-of-sequence
    allowed, the rollout runs to its end or ``budget`` tokens and only its text is read (a judge's
    hard read-out). ``force_open`` / ``force_closed``: appended when the budget runs out before the
    prefix, with ``think_close`` not yet written / already written; ``prefill``: the assistant text
    of prefill-only scoring (budget 0). All three end with ``prefix``. ``stop``: the text after the
    answer token ends at this (``tail_tokens``), or runs its full length when None.
    """

    prefix: str | None = ANSWER_PREFIX
    force_open: str = FORCE_OPEN
    force_closed: str = FORCE_CLOSED
    prefill: str = PREFILL_ANSWER
    think_close: str = THINK_CLOSE
    stop: str | None = ANSWER_CLOSE

    def __post_init__(self):
        if self.prefix is not None:
            for name in ("force_open", "force_closed", "prefill"):
                if not getattr(self, name).endswith(self.prefix):
                    raise ValueError(f"AnswerFormat.{name} {getattr(self, name)!r} must end with the prefix {self.prefix!r}")

    @property
    def free(self) -> bool:
        return self.prefix is None

    @classmethod
    def after(cls, prefix: str | None) -> AnswerFormat:
        """The format whose answer token follows ``prefix``: one that starts with ``<answer>`` keeps
        the think protocol (forced as ``</think>\\n<answer>`` plus the rest of the prefix); any other
        is forced after a new line, and prefilled as itself. None: free generation."""
        if prefix is None:
            return cls(prefix=None, stop=None)
        if prefix == ANSWER_PREFIX:
            return cls()
        if prefix.startswith(ANSWER_OPEN):
            rest = prefix[len(ANSWER_OPEN):]
            return cls(prefix, FORCE_OPEN + rest, FORCE_CLOSED + rest, PREFILL_ANSWER + rest)
        forced = "\n" + prefix if prefix else ""
        return cls(prefix, forced, forced, prefix, stop=None)


#: the paper's answer format (what every scorer used before judges)
DEFAULT_ANSWER = AnswerFormat()


@dataclass
class Job:
    """One prompt to answer: chat messages, their images in order, and a stable key (seeding)."""

    messages: list[dict]
    images: list[Any]
    key: str
    #: identities of the images (equal keys = the same image; an engine may encode it once)
    image_keys: list[str] | None = None

    def keys(self) -> list[str]:
        return list(self.image_keys) if self.image_keys else [f"id:{id(img)}" for img in self.images]


@dataclass(frozen=True)
class GenerationSpec:
    """What every job of one call asks for."""

    candidates: tuple[str, ...]
    budget: int
    rollouts: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    #: tokens the engine may generate after the answer token (the hard read-out reads them)
    tail_tokens: int = 0
    seed: int = 0
    #: where the answer token sits (default: right after ``<answer>``; see :class:`AnswerFormat`)
    answer: AnswerFormat = DEFAULT_ANSWER

    @property
    def prefill(self) -> bool:
        return self.budget == 0

    @property
    def rows_per_job(self) -> int:
        return 1 if self.prefill else self.rollouts


@dataclass
class Rollout:
    """What one rollout produced."""

    text: str = ""
    #: one value per candidate at the answer position (logits or log-probabilities), or None
    answer_logits: list[float] | None = None
    #: the candidates' total probability in the full distribution (None when unknown)
    answer_mass: float | None = None
    generated_tokens: int = 0
    #: the prompt's length in tokens (text and vision) and how many of them are image tokens,
    #: where the engine knows them (None: not reported, e.g. a server without usage)
    prompt_tokens: int | None = None
    vision_tokens: int | None = None
    #: generated token ids where the engine knows them (-1 for tokens it did not report)
    generated_ids: list[int] = field(default_factory=list)
    #: index (in generated tokens) of the answer token
    answer_step: int | None = None
    forced: bool = False
    #: the prefix ended inside a token: no answer position
    missed: bool = False
    #: why there is no answer distribution, where the engine knows more than forced/missed
    no_answer_reason: str | None = None
    #: the rollout could not be produced (e.g. a failed request); ``retryable`` if a rerun may work
    error: str | None = None
    retryable: bool = False
    #: engine-specific facts for the sample record (e.g. which answer tokens a server returned)
    trace: dict[str, Any] = field(default_factory=dict)


def seed_for(seed: int, keys: Sequence[str]) -> int:
    """A 63-bit seed from the run seed and a rollout's identity."""
    digest = hashlib.sha256(json.dumps([seed, list(keys)]).encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


class Engine:
    """Base class of the engines. Subclasses set ``name`` and implement :meth:`load` and
    :meth:`generate`; their keyword-only ``__init__`` parameters are their options."""

    name: ClassVar[str] = ""
    #: the install extra that provides what the engine imports
    extra: ClassVar[str | None] = None
    #: True when the engine loads the weights itself (so a bundled demo checkpoint can be used)
    in_process: ClassVar[bool] = True
    #: options that change how results are fetched, not what they are (not part of a run's identity)
    transport_params: ClassVar[tuple[str, ...]] = ()
    #: items per scorer batch that suit this engine (None: the scorer's own)
    batch_size: ClassVar[int | None] = None

    def __init__(self, *, model: str | None = None):
        self.model = model

    @classmethod
    def option_names(cls) -> list[str]:
        return [n for n, p in inspect.signature(cls.__init__).parameters.items()
                if p.kind is p.KEYWORD_ONLY and n != "model"]

    def params(self) -> dict[str, Any]:
        """Every option with its resolved value (recorded in run.json)."""
        return {name: getattr(self, name, None) for name in self.option_names()}

    def model_info(self) -> dict[str, Any]:
        """Model id and revision (before and after :meth:`load`)."""
        return {"id": self.model, "revision": model_fingerprint(self.model)}

    def check_spec(self, budget: int) -> None:
        """Refuse, at construction, a reasoning budget this engine cannot serve (default: any is fine)."""

    def load(self, candidates: Sequence[str], answer: AnswerFormat = DEFAULT_ANSWER) -> None:
        """Load the model (or connect) and check that every candidate can be read right after
        ``answer.prefix``."""
        raise NotImplementedError

    def generate(self, jobs: Sequence[Job], spec: GenerationSpec, stats: dict | None = None) -> list[list[Rollout]]:
        """``spec.rows_per_job`` rollouts per job, in job order."""
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """Run-level facts for run.json (``scorer_summary.engine``); callable after :meth:`close`."""
        return {"name": self.name}

    def close(self) -> None:
        """Free the model / connections."""
