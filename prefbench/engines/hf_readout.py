"""One-pass soft read-out: capture the answer-token logits while the model generates.

The soft score needs the next-token distribution at the position right after the rollout's
text ends with the answer prefix ``<answer>``. A :class:`AnswerReadout` rides along inside
``model.generate`` as a logits processor: after every step it appends the new token's text to a
per-row tail, and when a row's text ends with the prefix it copies that step's logits at the
answer-token ids (rating digits, or "0"/"1"). The logits are the ones generate is about to
sample from, so no second forward pass over the finished sequence is needed.

Detecting the prefix on decoded text (not on token ids) keeps it robust to how a tokenizer
splits ``<answer>`` (``<answer`` + ``>``, ``><`` + ``answer`` + ``>``, ...). If a token swallows
the prefix together with more text, the answer position was skipped: the row is marked
``missed`` and the scorer reports it ``unparsed``.

A row that has not reached the prefix when its reasoning budget runs out is *forced*: the
processor emits ``</think>\\n<answer>`` (or only ``<answer>`` after a closed ``</think>``) token
by token, then reads the next-token distribution as usual; the row is flagged ``forced``. While
a row is still reasoning, end-of-sequence tokens are masked so that every row reaches an answer
(either by itself or forced).

The prefix, the forced texts and the tail's stop come from the spec's
:class:`~prefbench.engines.base.AnswerFormat`; with no prefix (free generation) every row is a tail
from its first token: nothing is captured, forced or masked, and a row ends at an end token or the
budget.

The processor must see raw logits: the transformers engine replaces the model's ``generation_config`` with a
neutral one so that no repetition penalty or other processor runs before it. Sampling
(temperature, top-p) also happens here, per row, from counter-based noise keyed by the row's
seed (:func:`sample_rows`); generate then only takes the argmax of what is left, so a rollout
does not depend on its batch. ``tests/scorers/test_vlm_readout.py`` proves equality with a separate
forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor, StoppingCriteria

from prefbench.engines.base import ANSWER_CLOSE, ANSWER_PREFIX, THINK_CLOSE, Rollout
from prefbench.stopping import check_stop

THINKING, FORCING, TAIL, DONE = 0, 1, 2, 3
_TAIL_CHARS = 64


class AnswerReadout(LogitsProcessor):
    """Logits processor + state machine for a batch of rows that share one prompt width.

    ``token_texts[i]`` is the decoded text of token id ``i``; ``candidate_ids`` are the answer
    tokens whose logits are captured; ``force_open``/``force_closed`` are the token ids forced
    when the budget runs out with ``</think>`` still open or already closed; ``tail_tokens`` > 0
    lets a row keep generating after the answer position (hard read-out needs the answer text)
    until ``</answer>`` or an end token.
    """

    def __init__(self, token_texts: Sequence[str], prompt_len: int, n_rows: int, candidate_ids: Sequence[int],
                 budget: int, force_open: Sequence[int], force_closed: Sequence[int], end_ids: Sequence[int],
                 tail_tokens: int = 0, prefix: str | None = ANSWER_PREFIX, temperature: float = 0.0,
                 top_p: float = 1.0, row_seeds: Sequence[int] | None = None, stop: str | None = ANSWER_CLOSE,
                 think_close: str = THINK_CLOSE):
        self.token_texts = token_texts
        self.temperature, self.top_p = float(temperature), float(top_p)
        if self.temperature > 0 and (row_seeds is None or len(row_seeds) != n_rows):
            raise ValueError("sampling needs one seed per row")
        self.row_seeds = list(row_seeds) if row_seeds is not None else None
        self.prompt_len = prompt_len
        self.n_rows = n_rows
        self.candidate_ids = list(candidate_ids)
        self.budget = budget
        self.force_open, self.force_closed = list(force_open), list(force_closed)
        self.end_ids = list(end_ids)
        self.end_set = set(self.end_ids)
        self.tail_tokens = tail_tokens
        self.prefix = prefix
        self.stop, self.think_close = stop, think_close
        # no prefix: free generation, every row a tail from its first token to an end token or the budget
        self.free = prefix is None
        if self.free:
            self.tail_tokens = tail_tokens = budget
        self.phase = [TAIL if self.free else THINKING] * n_rows
        self.tails = [""] * n_rows
        self.closed_think = [False] * n_rows
        self.queue: list[list[int]] = [[] for _ in range(n_rows)]
        self.forced = [False] * n_rows
        self.missed = [False] * n_rows
        self.answer_step: list[int | None] = [0 if self.free else None] * n_rows
        self.end_step = [0] * n_rows  # generated tokens to keep (exclusive)
        self.answer_logits: list[list[float] | None] = [None] * n_rows
        self.answer_mass: list[float | None] = [None] * n_rows
        self.max_new_tokens = budget if self.free else (
            budget + max(len(self.force_open), len(self.force_closed)) + 1 + tail_tokens)

    # called by generate after each forward, before sampling
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        t = input_ids.shape[1] - self.prompt_len
        last = input_ids[:, -1].tolist() if t > 0 else None
        capture, force_rows, force_tokens, think_rows, tail_rows = [], [], [], [], []
        for r in range(self.n_rows):
            phase = self.phase[r]
            if phase == DONE:
                continue
            if self.free and last is None:
                tail_rows.append(r)
                continue
            if last is not None:
                tok = last[r]
                self.tails[r] = (self.tails[r] + self.token_texts[tok])[-_TAIL_CHARS:]
                if phase == TAIL:
                    if (tok in self.end_set or (self.stop and self.tails[r].endswith(self.stop))
                            or t - self.answer_step[r] >= self.tail_tokens + (not self.free)):
                        self._finish(r, t)
                        continue
                    tail_rows.append(r)
                if self.think_close in self.tails[r]:
                    self.closed_think[r] = True
            if phase in (THINKING, FORCING):
                if self.tails[r].endswith(self.prefix):
                    capture.append(r)
                    continue
                if self.prefix in self.tails[r]:  # swallowed inside a token: answer position skipped
                    self.missed[r] = True
                    self._finish(r, t)
                    continue
                if phase == THINKING and t >= self.budget:
                    self.phase[r] = phase = FORCING
                    self.forced[r] = True
                    self.queue[r] = list(self.force_closed if self.closed_think[r] else self.force_open)
                if phase == FORCING:
                    if self.queue[r]:
                        force_rows.append(r)
                        force_tokens.append(self.queue[r].pop(0))
                    else:  # forced text decoded without the prefix: cannot happen with a sane tokenizer
                        self.missed[r] = True
                        self._finish(r, t)
                    continue
                think_rows.append(r)
        if capture:
            rows = torch.tensor(capture, device=scores.device)
            sel = scores[rows]
            cand = sel[:, self.candidate_ids]
            mass = torch.exp(torch.logsumexp(cand, dim=-1) - torch.logsumexp(sel, dim=-1))
            for r, logits, m in zip(capture, cand.tolist(), mass.tolist()):
                self.answer_logits[r] = logits
                self.answer_mass[r] = m
                self.answer_step[r] = t
                if self.tail_tokens > 0:
                    self.phase[r] = TAIL
                else:
                    self._finish(r, t + 1)  # keep the sampled answer token
        if think_rows and self.end_ids:
            rows = torch.tensor(think_rows, device=scores.device)
            scores[rows.unsqueeze(1), torch.tensor(self.end_ids, device=scores.device).unsqueeze(0)] = float("-inf")
        free = think_rows + capture + tail_rows
        if free and self.temperature > 0:
            rows = torch.tensor(free, device=scores.device)
            seeds = torch.tensor([self.row_seeds[r] for r in free], dtype=torch.int64, device=scores.device)
            force_rows += free
            force_tokens += sample_rows(scores[rows], seeds, t, self.temperature, self.top_p).tolist()
        if force_rows:
            rows = torch.tensor(force_rows, device=scores.device)
            toks = torch.tensor(force_tokens, device=scores.device)
            scores[rows] = float("-inf")
            scores[rows, toks] = 0.0
        return scores

    def _finish(self, r: int, end: int) -> None:
        self.phase[r] = DONE
        self.end_step[r] = end

    def stopping_criteria(self) -> StoppingCriteria:
        return _RowsDone(self)

    def results(self, sequences: torch.LongTensor, decode) -> list[Rollout]:
        """Per-row results from generate's output ``sequences`` (prompt included)."""
        out = []
        gen = sequences[:, self.prompt_len:].tolist()
        for r in range(self.n_rows):
            end = self.end_step[r] if self.phase[r] == DONE else len(gen[r])
            ids = gen[r][:end]
            out.append(Rollout(text=decode(ids), answer_logits=self.answer_logits[r],
                               answer_mass=self.answer_mass[r], generated_tokens=len(ids), generated_ids=ids,
                               answer_step=self.answer_step[r], forced=self.forced[r], missed=self.missed[r]))
        return out


_MASK53 = (1 << 53) - 1


def _mix64(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser on int64 tensors (wrapping arithmetic; logical shifts emulated)."""
    z = (z ^ ((z >> 30) & ((1 << 34) - 1))) * -4658895280553007687  # 0xBF58476D1CE4E5B9
    z = (z ^ ((z >> 27) & ((1 << 37) - 1))) * -7723592293110705685  # 0x94D049BB133111EB
    return z ^ ((z >> 31) & ((1 << 33) - 1))


def sample_rows(logits: torch.Tensor, seeds: torch.Tensor, step: int, temperature: float,
                top_p: float = 1.0) -> torch.Tensor:
    """One token per row from softmax(logits / temperature) restricted to the top-p nucleus.

    The randomness is a counter-based hash of (row seed, step, token id) fed to the Gumbel-max
    trick, so a rollout's tokens depend on its own seed only: not on which rows share its batch,
    on padding, or on the global RNG. A resumed or re-batched run samples the same rollouts.
    """
    x = logits.float() / temperature
    if top_p < 1.0:
        probs = torch.softmax(x, dim=-1)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        outside = (sorted_p.cumsum(-1) - sorted_p) > top_p  # keep the smallest set reaching top_p
        x = x.scatter(-1, order, torch.where(outside, float("-inf"), x.gather(-1, order)))
    vocab = torch.arange(x.shape[-1], device=x.device, dtype=torch.int64)
    z = _mix64(seeds.unsqueeze(1) * -7046029254386353131 + (step * x.shape[-1] + vocab).unsqueeze(0))
    u = (((z >> 11) & _MASK53).double() + 0.5) / float(1 << 53)  # uniform in (0, 1)
    gumbel = -torch.log(-torch.log(u))
    return torch.argmax(x.double() + gumbel, dim=-1)


class _RowsDone(StoppingCriteria):
    def __init__(self, readout: AnswerReadout):
        self.readout = readout

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        check_stop("while generating")  # a caller's deadline stops a long reasoning at its next token
        return torch.tensor([p == DONE for p in self.readout.phase], device=input_ids.device)
