"""What a judge protocol is: the record every generative judge is described by.

A *judge* is a VLM that is given a prompt template and one or two images, writes reasoning and
a verdict in its own format, and leaves the harness to parse it. A :class:`JudgeProtocol` names
everything prefbench needs to score such a judge, and nothing about the model that runs it:

- ``kind``: ``pairwise`` (two images, a verdict or per-side scores) or ``pointwise`` (one image,
  a score);
- ``template``: where the official prompt lives (:class:`TemplateSource`: a repository, a commit,
  a path and the file's sha256; the prompt is fetched and checked, never copied into prefbench);
- ``answer``: where the answer sits in the text and which tokens are its candidates
  (:class:`AnswerPosition`), for the soft read-out of the seed paper; None where the verdict is not
  one token;
- ``parse``: text -> :class:`Parsed` (what was read, and whether everything needed was read);
- ``official_policy`` and ``fallback``: what the project's own code does with a text it cannot
  parse (:data:`POLICIES`), with ``policy_source`` naming the file that does it.

A parse failure is never silent: whatever policy is applied, it is counted (see
:mod:`prefbench.judges.outputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

#: what a policy can do with a judgement whose text did not parse
#: - ``wrong``: it counts against the judge (pairwise: its images' scores are missing; a 4-way
#:   verdict is unparsed; an MMRB2 judgement is counted and is not the chosen response);
#: - ``exclude``: it is dropped (an item left without a judgement for every image is dropped);
#: - ``neutral``: it becomes a tie (pairwise) or the protocol's neutral score (pointwise);
#: - ``fallback``: the protocol's own repair (RationalRewards' 2.5 per aspect, flow_grpo's 0.0).
POLICIES = ("wrong", "exclude", "neutral", "fallback")
#: what ``on_parse_failure`` accepts: a policy, or ``official`` (the protocol's own)
CHOICES = ("wrong", "exclude", "neutral", "official")
KINDS = ("pairwise", "pointwise")
#: pairwise verdicts, in the terms of the order shown (``first`` = the image shown first, "Image 1",
#: "A"); ``both_good`` / ``both_bad`` are GenAI-Bench's two kinds of tie
WINNERS = ("first", "second", "tie", "both_good", "both_bad")


@dataclass(frozen=True)
class TemplateSource:
    """Where a protocol's official prompt is read from.

    ``repo``: ``github:owner/name`` or a hub model repository ``owner/name``; ``commit``: the pinned
    commit; ``path``: the file in it; ``sha256``: of the whole file at that commit (None where it
    was not verified); ``literal``: for a prompt that sits in a Python source file, the start of the
    string literal that holds it (the literal is read with :mod:`ast`, never executed; an f-string's
    fields become ``{name}``); None = the whole file is the template. ``fields``: the placeholders
    the template has for the prompt and images, as written in it."""

    repo: str
    commit: str | None
    path: str
    sha256: str | None
    literal: str | None = None
    fields: tuple[str, ...] = ()
    note: str = ""

    @property
    def verified(self) -> bool:
        return bool(self.commit and self.sha256)

    @property
    def on_github(self) -> bool:
        return self.repo.startswith("github:")

    def describe(self) -> str:
        commit = self.commit[:12] if self.commit else "unpinned"
        where = f"{self.repo.removeprefix('github:')}@{commit}:{self.path}"
        return where + (f" (literal starting {self.literal[:40]!r})" if self.literal else "")


@dataclass(frozen=True)
class AnswerPosition:
    """Where the answer token sits, for a soft read-out: right after ``prefix`` in the generated
    text ("" = the first generated token), one of ``candidates``, each standing for ``values[k]``
    (pairwise: P(the image shown first wins) when that candidate is the answer; pointwise: the
    score). ``score`` says how the candidate probabilities become a score: ``expected`` (sum of
    value x renormalised probability, the seed paper's rule) or ``first`` (the probability of the
    first candidate over the full vocabulary: VQAScore's P("Yes"))."""

    prefix: str
    candidates: tuple[str, ...]
    values: tuple[float, ...]
    score: str = "expected"
    note: str = ""

    def read(self, probs: dict[str, float]) -> float | None:
        """The soft value from the probabilities of tokens at the answer position (``{token: p}``, e.g.
        an OpenAI-compatible server's ``top_logprobs`` exponentiated); tokens are matched stripped
        and case-folded, the likeliest spelling of a candidate counting. ``expected``: the values
        weighted by the candidates' probabilities renormalised over those present; ``first``: the
        first candidate's probability, else 1 - the second's (t2v_metrics' API rule). None: no
        candidate among the tokens."""
        got: dict[str, float] = {}
        for token, p in probs.items():
            key = next((c for c in self.candidates if c.strip().casefold() == str(token).strip().casefold()), None)
            if key is not None:
                got[key] = max(got.get(key, 0.0), float(p))
        if self.score == "first":
            if self.candidates[0] in got:
                return got[self.candidates[0]]
            if len(self.candidates) > 1 and self.candidates[1] in got:
                return 1.0 - got[self.candidates[1]]
            return None
        total = sum(got.values())
        if not got or total <= 0:
            return None
        return sum(self.values[self.candidates.index(c)] * p for c, p in got.items()) / total


@dataclass(frozen=True)
class PromptLayout:
    """How the ``judge`` scorer fills a protocol's template. ``prompt``: the placeholder, as written
    in the template, that the text prompt replaces (a plain string replacement: braces elsewhere stay
    literal); ``images``: the markers where the images go, as written (one marker repeated once per
    image, or one marker per image in the order shown); empty = the images come before the text
    (as UnifiedReward-Think and t2v_metrics send them); ``suffix``: text prefbench appends after the
    template (same placeholders), where a project's harness adds the prompt itself."""

    prompt: str = "{prompt}"
    images: tuple[str, ...] = ()
    suffix: str = ""


@dataclass(frozen=True)
class Parsed:
    """One judge text as a protocol read it.

    ``ok``: everything the verdict needs was read (False = a parse failure, counted); ``winner``
    (pairwise, one of :data:`WINNERS`, in the terms of the order shown) or ``score`` (pointwise,
    or a pairwise protocol's per-side totals in ``sides``); ``aspects``: the per-aspect values read
    (``None`` = unreadable, ``"N/A"`` = the judge said not applicable); ``reason``: why not ok."""

    ok: bool
    winner: str | None = None
    score: float | None = None
    sides: tuple[float, float] | None = None
    aspects: dict = field(default_factory=dict)
    reason: str = ""
    filled: int = 0  # aspects (or the whole answer) that a fallback filled in

    def to_json(self) -> dict:
        out: dict = {"ok": self.ok}
        for key in ("winner", "score", "sides", "reason"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = list(value) if isinstance(value, tuple) else value
        if self.aspects:
            out["aspects"] = dict(self.aspects)
        if self.filled:
            out["filled"] = self.filled
        return out


def failed(reason: str, **kw) -> Parsed:
    return Parsed(False, reason=reason, **kw)


@dataclass(frozen=True)
class JudgeProtocol:
    """One generative judge's protocol (see the module docstring)."""

    name: str
    kind: str
    description: str
    parse: Callable[[str], Parsed]
    official_policy: str
    policy_source: str
    template: TemplateSource | None = None
    answer: AnswerPosition | None = None
    #: the official repair (``official_policy == "fallback"``): a failed Parsed -> a usable one
    fallback: Callable[[Parsed], Parsed] | None = None
    #: pointwise: the score ``neutral`` gives a failed text (the middle of the scale)
    neutral_score: float | None = None
    #: the official parsing code this protocol follows (repository file @ commit)
    parser_source: str = ""
    #: how the ``judge`` scorer renders the template (prompt placeholder, image markers)
    layout: PromptLayout = PromptLayout()
    #: the read-out the project itself reports (``hard``: the parsed text; ``soft``: VQAScore's P("Yes"))
    readout: str = "hard"
    #: where prefbench's reading differs from, or goes beyond, the official code
    notes: tuple[str, ...] = ()
    source: str = "builtin"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"judge protocol {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.official_policy not in POLICIES:
            raise ValueError(f"judge protocol {self.name!r}: official_policy must be one of {POLICIES}")
        if self.official_policy == "fallback" and self.fallback is None:
            raise ValueError(f"judge protocol {self.name!r}: a 'fallback' policy needs a fallback function")
        if self.readout not in ("hard", "soft") or (self.readout == "soft" and self.answer is None):
            raise ValueError(f"judge protocol {self.name!r}: readout must be 'hard', or 'soft' with an answer position")
        if self.kind == "pointwise" and self.neutral_score is None:
            raise ValueError(f"judge protocol {self.name!r}: a pointwise protocol needs neutral_score")

    def policy(self, on_parse_failure: str = "official") -> str:
        """The policy ``on_parse_failure`` resolves to (``official`` -> the protocol's own)."""
        if on_parse_failure not in CHOICES:
            from prefbench.errors import UsageError

            raise UsageError(f"on_parse_failure must be one of {', '.join(CHOICES)}, got {on_parse_failure!r}")
        return self.official_policy if on_parse_failure == "official" else on_parse_failure

    def with_source(self, source: str) -> JudgeProtocol:
        return replace(self, source=source)

    def describe_policy(self, policy: str | None = None) -> str:
        policy = policy or self.official_policy
        official = " (official: " + self.policy_source + ")" if policy == self.official_policy else ""
        return f"{policy}{official}"
