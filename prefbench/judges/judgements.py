"""Reading a file of raw judge outputs: one :class:`Judgement` per row, parsed by the protocol (hard:
its text; soft: the candidate-token probabilities at its answer position), with the parse-failure
policy applied. The row format and the policies are described in :mod:`prefbench.judges.outputs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from prefbench.data import Split
from prefbench.errors import DataError, UsageError
from prefbench.judges.base import WINNERS, JudgeProtocol, Parsed

#: a pairwise winner (in the order shown) -> P(the image shown first wins)
OUTCOME = {"first": 1.0, "second": 0.0, "tie": 0.5, "both_good": 0.5, "both_bad": 0.5}


@dataclass
class Judgement:
    """One row of the file, parsed and with the policy applied."""

    line: int
    item_id: str
    images: tuple[int, ...]  # pairwise: (shown first, shown second); pointwise: (index,)
    parsed: Parsed
    failed: bool = False
    action: str | None = None  # the policy applied to a failure
    winner: str | None = None  # pairwise, after the policy, in the order shown
    score: float | None = None  # pointwise, after the policy
    soft: float | None = None  # pairwise soft read-out: P(the image shown first wins)

    @property
    def usable(self) -> bool:
        return self.action not in ("wrong", "exclude")

    @property
    def decided(self) -> str | None:
        """The winner in the order shown (a soft judgement: the likelier side; exactly 1/2 a tie)."""
        if self.soft is not None:
            return "first" if self.soft > 0.5 else ("second" if self.soft < 0.5 else "tie")
        return self.winner

    def outcome_of(self, image: int) -> float:
        """P(``image`` wins) in this judgement (pairwise): the soft value, or 1 / 0.5 / 0 from the verdict."""
        p = self.soft if self.soft is not None else OUTCOME[self.winner]
        return p if image == self.images[0] else 1.0 - p


def _index(row: dict, key: str, n: int, pid: str, path: Path, line: int) -> int:
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{key} must be an integer, got {value!r}"[:200], path, line)
    if not 0 <= value < n:
        raise DataError(f"{key} {value} out of range for prompt_id {pid!r} ({n} images)", path, line)
    return value


def _answer_probs(row: dict, path: Path, line: int) -> dict[str, float]:
    """A row's ``answer_probs`` ({token: p}) or ``answer_logprobs`` ({token: log p}) as probabilities."""
    key = "answer_probs" if "answer_probs" in row else ("answer_logprobs" if "answer_logprobs" in row else None)
    if key is None:
        raise DataError("a soft read-out needs answer_probs {token: p} or answer_logprobs {token: log p} on every row",
                        path, line)
    value = row[key]
    ok = isinstance(value, dict) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value.values())
    if ok:
        probs = {str(t): (math.exp(v) if key == "answer_logprobs" else float(v)) for t, v in value.items()}
        ok = all(0.0 <= p <= 1.0 for p in probs.values())
    if not ok:
        raise DataError(f"{key} must be an object of {'log ' if key == 'answer_logprobs' else ''}probabilities "
                        "{token: number}", path, line)
    return probs


def listed_judgements(row: dict) -> list[dict] | None:
    """The judgement records a ``judge`` run's sample row lists (None: not such a row)."""
    detail = row.get("detail")
    judged = detail.get("judgements") if isinstance(detail, dict) else None
    if "item_id" not in row or not isinstance(judged, list):
        return None
    return [j for j in judged if isinstance(j, dict)]


def run_judgements(rows):
    """``(line, item_id, record)`` for each judgement that a ``judge`` run's sample rows (``(line,
    row)`` pairs) list, each once: a comparison's judgements (one per rollout) sit in the row of
    every image it compared (both images' rows in round robin), and are taken from the first row
    that lists that comparison. A row that is not a judge run's is yielded as ``(line, None, row)``."""
    owner: dict[tuple[str, tuple], int] = {}
    for n, (line, row) in enumerate(rows):
        judged = listed_judgements(row)
        if judged is None:
            yield line, None, row
            continue
        for j in judged:
            key = (row["item_id"], tuple(j.get("shown") or ()))
            if owner.setdefault(key, n) == n:
                yield line, row["item_id"], j


def run_rows(rows, pairwise: bool):
    """The rows of a judge-outputs file; a ``judge`` run's ``samples.jsonl`` row stands for the
    judgements it lists (each once, :func:`run_judgements`), so a run's texts can be scored again
    under another policy or convention without re-inference."""
    for line, item_id, j in run_judgements(rows):
        if item_id is None:
            yield line, j
            continue
        shown = list(j.get("shown") or ())
        out = {"prompt_id": item_id, "text": j.get("text")}
        if "answer_probs" in j:
            out["answer_probs"] = j["answer_probs"]
        if pairwise and len(shown) == 2:
            a, b = sorted(shown)
            out.update(image_a=a, image_b=b, order="forward" if shown[0] == a else "reverse")
        elif len(shown) == 1:
            out["image_index"] = shown[0]
        yield line, out


def judgement_record(j: Judgement, kind: str) -> dict:
    """What a judgement came to, as a run's sample row and ``--parsed-out`` list it: ``status``, what
    was ``parsed``, the ``policy`` applied to a failure, and what it was ``counted_as`` (the winner
    and P(shown first wins), the score, or ``wrong`` / ``exclude``)."""
    out: dict = {"status": "parse_failure" if j.failed else "ok", "parsed": j.parsed.to_json()}
    if j.failed:
        out["policy"] = j.action
    if j.action in ("wrong", "exclude"):
        out["counted_as"] = j.action
    elif kind == "pairwise":
        out["counted_as"] = {"winner": j.decided, "p_first": j.outcome_of(j.images[0])}
    else:
        out["counted_as"] = {"score": j.score}
    return out


def read_soft(protocol: JudgeProtocol, probs: dict[str, float]) -> Parsed:
    """A soft judgement: the value at the protocol's answer position (pairwise: P(shown first wins))."""
    value = protocol.answer.read(probs)
    if value is None:
        return Parsed(False, reason=f"none of {', '.join(protocol.answer.candidates)} among the answer tokens")
    return Parsed(True, score=value)


def read_judgements(path: Path, split: Split, protocol: JudgeProtocol, policy: str,
                    read_out: str = "hard", beyond: frozenset[str] = frozenset()) -> list[Judgement]:
    """Every row of ``path``, parsed by ``protocol`` (``hard``: its text; ``soft``: the probabilities of
    the candidate tokens at its answer position) with ``policy`` applied to its parse failures; rows
    of the ``beyond`` items (left out by ``--limit``) are read past."""
    if read_out not in ("hard", "soft"):
        raise UsageError(f"read_out must be 'hard' or 'soft', got {read_out!r}")
    if read_out == "soft" and protocol.answer is None:
        raise UsageError(f"judge protocol {protocol.name!r} has no soft read-out (its verdict is not one answer "
                         "token); use the hard read-out")
    from prefbench.data._io import read_jsonl

    path = Path(path)
    if not path.is_file():
        raise DataError("judge outputs file not found", path)
    n_images = {item.item_id: item.n_images for item in split.items}
    pairwise = protocol.kind == "pairwise"
    keys = ("prompt_id", "image_a", "image_b", "order", "text") if pairwise else ("prompt_id", "image_index", "text")
    seen: dict[tuple, int] = {}
    out = []
    for line, row in run_rows(read_jsonl(path), pairwise):
        missing = [k for k in keys if k not in row]
        if missing:
            raise DataError(f"missing key(s) {', '.join(missing)}: a {protocol.kind} protocol ({protocol.name}) reads "
                            f"rows of {', '.join(keys)}", path, line)
        pid = row["prompt_id"]
        if isinstance(pid, bool) or not isinstance(pid, (str, int)):
            raise DataError(f"prompt_id must be a string or an integer, got {pid!r}"[:200], path, line)
        pid = str(pid)
        if pid in beyond:
            continue
        if pid not in n_images:
            raise DataError(f"prompt_id {pid!r} is not in {split.dataset}/{split.split}", path, line)
        text = row["text"]
        if text is not None and not isinstance(text, str):
            raise DataError(f"text must be a string (or null), got {type(text).__name__}", path, line)
        if pairwise:
            a = _index(row, "image_a", n_images[pid], pid, path, line)
            b = _index(row, "image_b", n_images[pid], pid, path, line)
            if a == b:
                raise DataError(f"image_a and image_b are both {a}", path, line)
            if row["order"] not in ("forward", "reverse"):
                raise DataError(f"order must be 'forward' or 'reverse', got {row['order']!r}"[:200], path, line)
            images = (a, b) if row["order"] == "forward" else (b, a)
        else:
            images = (_index(row, "image_index", n_images[pid], pid, path, line),)
        key = (pid, *images)
        if key in seen:
            shown = "image " + str(images[0]) if not pairwise else f"images {images[0]} then {images[1]}"
            raise DataError(f"duplicate judgement of prompt_id {pid!r}, {shown} (first on line {seen[key]})", path, line)
        seen[key] = line
        if read_out == "soft":
            parsed = read_soft(protocol, _answer_probs(row, path, line))
            j = apply_policy(Judgement(line, pid, images, parsed), protocol, policy)
            if pairwise and not j.failed:
                j.soft, j.score = parsed.score, None
        else:
            try:
                parsed = protocol.parse(text or "")
            except Exception as exc:  # a plugin's parser: name the row it failed on
                raise DataError(f"judge protocol {protocol.name!r}'s parser failed on this text: {exc!r}"[:300],
                                path, line) from None
            j = apply_policy(Judgement(line, pid, images, parsed), protocol, policy)
        _check(j, protocol, path)
        out.append(j)
    return out


def _check(j: Judgement, protocol: JudgeProtocol, path: Path) -> None:
    """A judgement that counts must carry what its kind needs (a parser bug is an error, never a number)."""
    if not j.usable:
        return
    if protocol.kind == "pairwise":
        good = j.soft is not None or j.winner in WINNERS
        what = f"a winner (one of {', '.join(WINNERS)}), got {j.winner!r}"
    else:
        good = isinstance(j.score, (int, float)) and not isinstance(j.score, bool) and math.isfinite(j.score)
        what = f"a finite score, got {j.score!r}"
    if not good:
        raise DataError(f"judge protocol {protocol.name!r} read this text without {what}"[:300], path, j.line)


def apply_policy(j: Judgement, protocol: JudgeProtocol, policy: str) -> Judgement:
    p = j.parsed
    if not p.ok:
        j.failed = True
        j.action = policy
        if policy == "fallback":
            p = protocol.fallback(p)
        elif policy == "neutral":
            p = replace(p, winner="tie", score=protocol.neutral_score)
        else:
            return j
    j.winner, j.score = p.winner, p.score
    return j


#: parse failures listed in the run summary (the count is complete; the examples are the first few)
EXAMPLES = 10


@dataclass
class JudgeTally:
    """The run-level figures of a judge run, from its judgements' sample-row records (each judgement
    once): how many there were, how many did not parse (and the first few, with their reasons), and
    position bias over the usable pairwise ones: how often the image shown first wins (the verdict
    follows the position), the mean P(shown first wins) of soft judgements, and, for pairs judged in
    both orders, how often the two orders agree on the winner.

    The ``judge`` scorer fills one as it judges (``summary()``), the runner recounts one from every
    row of the run when it finishes, and ``evaluate --judge-outputs`` fills one from its file, so that a resumed run, a merged one and one scored on Ray workers report
    all of their judgements, not only this process's."""

    judgements: int = 0
    parse_failures: int = 0
    filled_by_fallback: int = 0
    examples: list[dict] = field(default_factory=list)
    decided: int = 0
    first_wins: int = 0
    soft: list[float] = field(default_factory=list)
    #: (item, the pair sorted) -> {image shown first: [P(the lower index wins), ...]}
    by_pair: dict[tuple[str, tuple[int, ...]], dict[int, list[float]]] = field(default_factory=dict)

    def add(self, item_id: str, record: dict, soft: bool | None = None) -> None:
        """One judgement's record (:func:`judgement_record`); ``soft``: a soft read-out's judgement
        (by default: the record carries ``answer_probs``, as a run's does)."""
        self.judgements += 1
        shown = tuple(record.get("shown") or ())
        if record.get("status") != "ok":
            self.parse_failures += 1
            self.filled_by_fallback += record.get("policy") == "fallback"
            if len(self.examples) < EXAMPLES:
                parsed = record.get("parsed")
                self.examples.append({"prompt_id": item_id, "shown": list(shown),
                                      "reason": parsed.get("reason") if isinstance(parsed, dict) else None})
            return
        counted = record.get("counted_as")
        if len(shown) != 2 or not isinstance(counted, dict) or "winner" not in counted:
            return  # a pointwise judgement: no position
        p_first = float(counted["p_first"])
        if soft if soft is not None else "answer_probs" in record:
            self.soft.append(p_first)
        if counted["winner"] in ("first", "second"):
            self.decided += 1
            self.first_wins += counted["winner"] == "first"
        low = min(shown)
        self.by_pair.setdefault((item_id, tuple(sorted(shown))), {}).setdefault(shown[0], []).append(
            p_first if shown[0] == low else 1.0 - p_first)

    def counts(self) -> dict:
        return {"n_judgements": self.judgements, "n_parse_failures": self.parse_failures,
                "n_filled_by_fallback": self.filled_by_fallback, "parse_failure_examples": list(self.examples)}

    def position_bias(self) -> dict:
        out: dict = {"n_decided": self.decided}
        if self.decided:
            out["first_shown_win_rate"] = self.first_wins / self.decided
        if self.soft:
            out["mean_p_first_shown"] = float(np.mean(self.soft))
        both = [orders for orders in self.by_pair.values() if len(orders) == 2]
        agree = 0
        for orders in both:
            a, b = (float(np.mean(v)) - 0.5 for v in orders.values())
            agree += (a > 0 and b > 0) or (a < 0 and b < 0) or (a == 0 and b == 0)
        out["n_pairs_both_orders"] = len(both)
        if both:
            out["order_agreement"] = agree / len(both)
        return out
