"""The ``vllm`` engine: in-process ``vllm.LLM`` (``prefbench run --engine vllm``).

No HTTP: prompts go straight to vLLM's scheduler, which batches them continuously, and its
automatic prefix caching lets an item's anchor comparisons reuse their shared prefix (template,
prompt and anchor image come before the candidate image). vLLM reuses only blocks computed in an
earlier scheduler step, so with caching on one comparison per item is submitted first and the
rest after it (:meth:`VLLMEngine._waves`); the rollouts of one prompt are primed the same way.

Prompts are rendered with the checkpoint's own processor chat template (the same text the
transformers engine encodes) and passed as text plus images. Per rollout, two requests:

1. **reasoning** (budget > 0): sampled with the scorer's temperature / top-p and a per-rollout
   seed, up to ``budget`` tokens, stopping at ``<answer>`` (kept in the text). The profile's
   end tokens get a logit bias of -100 while reasoning, as the transformers engine masks them,
   so every rollout reaches the answer prefix by itself or is *forced*: the prompt of step 2 gets
   ``</think><answer>`` appended exactly as the transformers engine forces it.
2. **answer**: the prompt plus the rollout's text, one token (plus ``tail_tokens`` for the hard
   read-out) with log-probabilities at its first position. This is the server-side form of the
   one-pass read-out: the next-token distribution right after ``<answer>``.

Candidates and the top-k: when this vLLM's ``SamplingParams`` has ``logprob_token_ids`` (the
field vLLM's OpenAI server uses for it), the answer request asks for exactly the candidate ids,
so every candidate's log-probability is returned. Otherwise it asks for the ``top_logprobs``
likeliest tokens (vLLM also returns the sampled one); a candidate outside them gets -inf and the
rollout's trace names it (``missing_answer_tokens``, the mass outside the top-k and the upper
bound on a missing token's log-probability), as the openai engine does; the soft score is then
over the candidates that were returned, and a rollout with none has no score
(``no_answer_reason``). Nothing is invented.

The answer prefix, forced texts and prefill come from the spec's
:class:`~prefbench.engines.base.AnswerFormat` (default ``<answer>``, as above); a format without a
prefix is free generation: one request per rollout, end-of-sequence allowed, only the text read.

Step 2 re-encodes the rollout's text, where the transformers engine continues from the sampled
ids; when a token swallowed ``<answer>`` together with more text, vLLM's stop string cuts the
text right after ``<answer>``, so step 2 still reads the answer position (never ``missed``).
Prefill-only scoring (budget 0) runs step 2 only, on exactly the prompt the transformers engine
scores, which is where the two engines are compared (``tests/engines/test_vllm_engine.py``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

from prefbench.engines.base import (
    DEFAULT_ANSWER,
    AnswerFormat,
    Engine,
    GenerationSpec,
    Job,
    Rollout,
    model_fingerprint,
    seed_for,
)

LOGIT_BIAS_MASK = -100.0
CPU_BATCHED_TOKENS = 65536
CPU_WAVE = 32
DTYPES = ("auto", "float32", "bfloat16", "float16")


class VLLMEngine(Engine):
    """In-process vLLM. Options: ``dtype`` (auto = bfloat16 on CUDA, float32 on CPU, as the
    transformers engine), ``max_pixels`` (cap on an image's pixels, passed to the
    processor in the family's own terms, as the transformers engine does), ``prefix_caching``
    (automatic prefix caching, on by default), ``tensor_parallel_size`` / ``data_parallel_size``,
    ``gpu_memory_utilization``, ``max_model_len``, ``max_num_seqs`` (requests in one step),
    ``max_num_batched_tokens``, ``enforce_eager`` (no CUDA graphs / compilation: faster start),
    ``kv_cache_gib`` (CPU only: KV cache size, ``VLLM_CPU_KVCACHE_SPACE``), ``top_logprobs`` (k
    when this vLLM cannot return exactly the candidates' log-probabilities)."""

    name: ClassVar[str] = "vllm"
    extra: ClassVar[str] = "vllm"
    transport_params: ClassVar[tuple[str, ...]] = (
        "tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization", "max_num_seqs",
        "max_num_batched_tokens", "enforce_eager", "kv_cache_gib", "prefix_caching")
    batch_size: ClassVar[int] = 64

    def __init__(self, *, model: str | None = None, dtype: str = "auto", max_pixels: int | None = None,
                 prefix_caching: bool = True, tensor_parallel_size: int = 1, data_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 max_num_seqs: int | None = None, max_num_batched_tokens: int | None = None,
                 enforce_eager: bool = False, kv_cache_gib: int = 4, top_logprobs: int = 20):
        super().__init__(model=model)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if tensor_parallel_size < 1 or data_parallel_size < 1:
            raise ValueError("tensor_parallel_size and data_parallel_size must be >= 1")
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError("gpu_memory_utilization must be in (0, 1]")
        if not 1 <= top_logprobs <= 100:
            raise ValueError("top_logprobs must be 1..100")
        self.dtype, self.max_pixels, self.prefix_caching = dtype, max_pixels, bool(prefix_caching)
        self.tensor_parallel_size, self.data_parallel_size = int(tensor_parallel_size), int(data_parallel_size)
        self.gpu_memory_utilization, self.max_model_len = float(gpu_memory_utilization), max_model_len
        self.max_num_seqs, self.max_num_batched_tokens = max_num_seqs, max_num_batched_tokens
        self.enforce_eager, self.kv_cache_gib, self.top_logprobs = bool(enforce_eager), int(kv_cache_gib), int(top_logprobs)
        self.llm = self.processor = self.tokenizer = None
        self.profile = None
        self.stats = {"requests": 0, "rollouts": 0, "forced": 0, "missing_answer_tokens": 0, "no_answer_token": 0,
                      "prompt_tokens": 0, "cached_prompt_tokens": 0}
        self._summary: dict | None = None

    # -- loading --------------------------------------------------------------------------
    def load(self, candidates: Sequence[str], answer: AnswerFormat = DEFAULT_ANSWER) -> None:
        import os

        from prefbench.engines.profiles import model_type_of, profile_for
        from prefbench.weights import check_model_folder, from_pretrained

        check_model_folder(self.model, "VLM model")
        self.profile = profile_for(model_type_of(self.model))
        self.profile.check()
        proc_kwargs = self.profile.processor_kwargs(self.max_pixels)

        import torch
        from transformers import AutoProcessor

        on_gpu = torch.cuda.is_available()
        if not on_gpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.kv_cache_gib))
            # one process: the CPU engine core beside the scorer would fight it for the cores
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        # vLLM logs a line per thread and per step at INFO/WARNING; prefbench prints its own progress
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
        import vllm

        self.processor = from_pretrained(AutoProcessor.from_pretrained, self.model, "VLM processor")
        self.profile.cap_images(self.processor, self.max_pixels)
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        # auto: the transformers engine's rule (bfloat16 on CUDA, float32 on CPU), so that the two
        # engines agree by default; vLLM's own auto picks bfloat16 on CPU, which moved the demo
        # rating model's scores by up to 0.037 (docs/engines.md)
        dtype = self.dtype if self.dtype != "auto" else ("bfloat16" if on_gpu else "float32")
        kwargs: dict[str, Any] = {
            "model": self.model, "dtype": dtype, "enable_prefix_caching": self.prefix_caching,
            "tensor_parallel_size": self.tensor_parallel_size, "enforce_eager": self.enforce_eager,
            "limit_mm_per_prompt": {"image": 2}, "seed": 0, "max_logprobs": max(self.top_logprobs, 20),
        }
        if self.data_parallel_size > 1:
            kwargs["data_parallel_size"] = self.data_parallel_size
        if on_gpu:
            kwargs["gpu_memory_utilization"] = self.gpu_memory_utilization
        else:
            # vLLM-CPU 0.32 fails ("CPU Generator does not use offset") on a seeded request whose
            # prefill is split over steps; a large step budget plus waves of at most CPU_WAVE
            # seeded requests (see generate) keeps every prefill in one step
            kwargs.setdefault("max_num_batched_tokens", CPU_BATCHED_TOKENS)
        self.on_gpu = on_gpu
        for key in ("max_model_len", "max_num_seqs", "max_num_batched_tokens"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        if proc_kwargs:
            kwargs["mm_processor_kwargs"] = proc_kwargs
        self.llm = vllm.LLM(**kwargs)
        self.vllm_version = vllm.__version__
        fields = {f.name for f in dataclasses.fields(vllm.SamplingParams)} if dataclasses.is_dataclass(
            vllm.SamplingParams) else set(getattr(vllm.SamplingParams, "__struct_fields__", ()))
        self.exact_candidates = "logprob_token_ids" in fields
        from prefbench.engines.profiles import end_token_ids

        self.end_ids = end_token_ids(self.tokenizer, self.profile)
        self.candidate_ids = {} if answer.free else {(c, answer.prefix): self.single_token_id(c, answer.prefix)
                                                     for c in candidates}

    def single_token_id(self, text: str, context: str | None = None) -> int:
        from prefbench.engines.profiles import answer_token_id

        return answer_token_id(self.tokenizer, text, context)

    def model_info(self) -> dict:
        info: dict[str, Any] = {"id": self.model, "revision": model_fingerprint(self.model), "engine": "vllm"}
        if self.llm is not None:
            info["vllm"] = self.vllm_version
        return info

    def summary(self) -> dict:
        if self._summary is not None:
            return self._summary
        out: dict[str, Any] = {"name": self.name, **self.stats, "prefix_sharing": self.prefix_caching}
        if self.llm is not None:
            out["exact_answer_logprobs"] = self.exact_candidates
            out["profile"] = self.profile.family
        return out

    def close(self) -> None:
        if self.llm is not None:
            self._summary = self.summary()
            self.llm = None
            import gc

            gc.collect()

    # -- generation -------------------------------------------------------------------------
    def _prompt(self, job: Job, assistant_text: str) -> dict:
        from prefbench.engines.profiles import render_prompt

        prompt: dict[str, Any] = {"prompt": render_prompt(self.processor, self.profile, job.messages, assistant_text)}
        if job.images:
            prompt["multi_modal_data"] = {"image": list(job.images) if len(job.images) > 1 else job.images[0]}
        return prompt

    def _params(self, **kw):
        import vllm

        return vllm.SamplingParams(**kw)

    def generate(self, jobs: Sequence[Job], spec: GenerationSpec, stats: dict | None = None) -> list[list[Rollout]]:
        fmt = spec.answer
        if fmt.free and spec.prefill:
            raise ValueError("free generation (an answer format without a prefix) needs a budget > 0")
        k = spec.rows_per_job
        plan = [(i, r) for i in range(len(jobs)) for r in range(k)]
        groups = [self._prefix_group(jobs[i]) for i, _ in plan]
        seeds = [seed_for(spec.seed, [jobs[i].key, f"rollout{r}"]) for i, r in plan]
        sampling: dict[str, Any] = {"temperature": spec.temperature, "top_p": spec.top_p}
        if fmt.free:
            return self._free(jobs, spec, plan, groups, seeds, sampling)
        texts = [fmt.prefill if spec.prefill else ""] * len(plan)
        forced = [False] * len(plan)
        reasoning_tokens = [0] * len(plan)
        if not spec.prefill and fmt.prefix:  # prefix "": the answer is the first token, nothing before it
            params = [self._params(**sampling, seed=seed if spec.temperature > 0 else None, max_tokens=spec.budget,
                                   stop=[fmt.prefix], include_stop_str_in_output=True,
                                   logit_bias={t: LOGIT_BIAS_MASK for t in self.end_ids} or None)
                      for seed in seeds]
            outs = self._run([self._prompt(jobs[i], "") for i, _ in plan], params, seeded=spec.temperature > 0,
                             groups=groups)
            for n, out in enumerate(outs):
                comp = out.outputs[0]
                text = comp.text
                reasoning_tokens[n] = len(comp.token_ids)
                if not text.endswith(fmt.prefix):  # the budget ran out (or the turn ended): force
                    forced[n] = True
                    text += fmt.force_closed if fmt.think_close in text else fmt.force_open
                texts[n] = text
        cand = [self._candidate_id(c, fmt.prefix) for c in spec.candidates]
        answer_kw: dict[str, Any] = {"max_tokens": 1 + spec.tail_tokens}
        if self.exact_candidates:
            answer_kw["logprobs"] = len(cand)
            answer_kw["logprob_token_ids"] = cand
        else:
            answer_kw["logprobs"] = self.top_logprobs
        if spec.tail_tokens and fmt.stop:
            answer_kw["stop"] = [fmt.stop]
            answer_kw["include_stop_str_in_output"] = True
        if spec.tail_tokens:  # the hard read-out reads the sampled answer text: sampled as the rollout
            params = [self._params(**sampling, seed=seed if spec.temperature > 0 else None, **answer_kw)
                      for seed in seeds]
        else:  # only the distribution at the answer position is read (raw log-probabilities): no sampling
            params = [self._params(temperature=0.0, **answer_kw)] * len(plan)
        outs = self._run([self._prompt(jobs[i], texts[n]) for n, (i, _) in enumerate(plan)], params,
                         seeded=bool(spec.tail_tokens) and spec.temperature > 0, groups=groups)
        results: list[list[Rollout]] = [[] for _ in jobs]
        for n, ((i, _), out) in enumerate(zip(plan, outs)):
            results[i].append(self._rollout(out, spec, cand, texts[n], forced[n], reasoning_tokens[n]))
        return results

    def _candidate_id(self, text: str, prefix: str) -> int:
        if (text, prefix) not in self.candidate_ids:
            self.candidate_ids[(text, prefix)] = self.single_token_id(text, prefix)
        return self.candidate_ids[(text, prefix)]

    def _free(self, jobs, spec: GenerationSpec, plan, groups, seeds, sampling) -> list[list[Rollout]]:
        """Free generation (no answer prefix): one request per rollout, up to ``budget`` tokens,
        end-of-sequence allowed; only the text is read."""
        params = [self._params(**sampling, seed=seed if spec.temperature > 0 else None, max_tokens=spec.budget)
                  for seed in seeds]
        outs = self._run([self._prompt(jobs[i], "") for i, _ in plan], params, seeded=spec.temperature > 0,
                         groups=groups)
        results: list[list[Rollout]] = [[] for _ in jobs]
        for (i, _), out in zip(plan, outs):
            comp = out.outputs[0]
            self.stats["rollouts"] += 1
            n = len(comp.token_ids)
            results[i].append(Rollout(text=comp.text, generated_tokens=n, generated_ids=list(comp.token_ids),
                                      trace={"finish_reason": getattr(comp, "finish_reason", None)},
                                      prompt_tokens=len(out.prompt_token_ids) if out.prompt_token_ids else None))
        return results

    @staticmethod
    def _prefix_group(job: Job) -> str:
        """Jobs with the same key share a prompt prefix: an item's anchor comparisons (same
        messages, anchor image first), the rollouts of one job (the whole prompt)."""
        import json

        return json.dumps([job.messages, job.keys()[:1]], sort_keys=True, default=str)

    def _waves(self, groups: Sequence[str] | None, n: int) -> list[list[int]]:
        """Request indices in the order they are submitted. vLLM finds a cached prefix only in
        blocks computed in an earlier scheduler step; requests prefilled in the same step share
        nothing. With prefix caching on, one request of each group that has several goes first,
        in a call of its own, and the rest of the group then reads its prefix from the cache."""
        if not (self.prefix_caching and groups):
            return [list(range(n))]
        from collections import Counter

        sizes = Counter(groups)
        seen: set[str] = set()
        first, rest = [], []
        for i, g in enumerate(groups):
            if sizes[g] > 1 and g not in seen:
                seen.add(g)
                first.append(i)
            else:
                rest.append(i)
        return [w for w in (first, rest) if w]

    def _run(self, prompts: list[dict], params: list, seeded: bool = False,
             groups: Sequence[str] | None = None) -> list:
        outs: list = [None] * len(prompts)
        for wave in self._waves(groups, len(prompts)):
            step = CPU_WAVE if seeded and not self.on_gpu else len(wave)
            for start in range(0, len(wave), step):
                idx = wave[start:start + step]
                got = self.llm.generate([prompts[i] for i in idx], [params[i] for i in idx], use_tqdm=False)
                for i, out in zip(idx, got):
                    outs[i] = out
        self.stats["requests"] += len(prompts)
        for out in outs:
            self.stats["prompt_tokens"] += len(out.prompt_token_ids or ())
            self.stats["cached_prompt_tokens"] += int(getattr(out, "num_cached_tokens", 0) or 0)
        return outs

    def _rollout(self, out, spec: GenerationSpec, cand: list[int], prefix: str, forced: bool,
                 reasoning_tokens: int) -> Rollout:
        comp = out.outputs[0]
        first = (comp.logprobs or [None])[0] or {}
        got = {tid: float(lp.logprob) for tid, lp in first.items() if lp is not None and math.isfinite(lp.logprob)}
        logits = [got.get(t, -math.inf) for t in cand]
        trace: dict[str, Any] = {"answer_token_source": "logprob_token_ids" if self.exact_candidates
                                 else f"top_logprobs={self.top_logprobs}"}
        missing = [c for c, t in zip(spec.candidates, cand) if t not in got]
        reason = None
        st = self.stats
        st["rollouts"] += 1
        st["forced"] += forced
        if missing:
            st["missing_answer_tokens"] += 1
            trace["missing_answer_tokens"] = missing
            if not self.exact_candidates and got:
                total = sum(math.exp(v) for v in got.values())
                trace["top_logprobs_mass"] = round(total, 6)
                trace["mass_outside_top_logprobs"] = round(max(0.0, 1.0 - total), 6)
                trace["missing_logprob_upper_bound"] = min(got.values())
        found = [v for v in logits if v > -math.inf]
        if not found:
            st["no_answer_token"] += 1
            reason = (f"no answer token among vLLM's top {self.top_logprobs} log-probabilities "
                      "(see missing_answer_tokens)")
            logits_out, mass = None, None
        else:
            logits_out, mass = logits, sum(math.exp(v) for v in found)
        text = (prefix if not spec.prefill else prefix.removeprefix(spec.answer.prefill)) + comp.text
        # prefill-only: nothing generated (the transformers engine counts it so too)
        n_tokens = reasoning_tokens + (0 if spec.prefill else len(comp.token_ids))
        # the answer request's prompt holds the reasoning the first request generated: the prompt
        # proper is what precedes it
        prompt = len(out.prompt_token_ids or ()) - reasoning_tokens if out.prompt_token_ids else None
        return Rollout(text=text, answer_logits=logits_out, answer_mass=mass, generated_tokens=n_tokens,
                       generated_ids=[-1] * reasoning_tokens + list(comp.token_ids), answer_step=reasoning_tokens,
                       forced=forced, no_answer_reason=reason, trace=trace,
                       prompt_tokens=prompt if prompt is None or prompt > 0 else None)
