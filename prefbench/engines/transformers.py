"""The ``transformers`` engine: any ``AutoModelForImageTextToText`` + ``AutoProcessor`` VLM,
in-process, with the one-pass answer read-out of :mod:`prefbench.engines.hf_readout`.

Prompts are encoded with the processor's chat template; jobs are batched by encoded length
(longest first, so padding is small) under a token budget: a batch holds as many rows (jobs x
rollouts) as fit ``max_batch_tokens`` (padded width plus the generation budget, per row). On
CUDA the default budget comes from free memory and the model's KV-cache size per token; on CPU
it is fixed.

What differs between families (end tokens, the processor's size keyword, how a batch of
encodings is put together, image-feature sharing) comes from the model's
:class:`~prefbench.engines.profiles.ModelProfile`. With ``batching="concat"`` (Qwen-VL) each
prompt is encoded once and a batch is collated: tensors laid out like ``input_ids`` are
left-padded, the rest (patches, ``image_grid_thw``) concatenated along dim 0. Otherwise the
processor encodes each batch itself, which pads images of different sizes the family's way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from prefbench.engines.base import (
    ANSWER_OPEN,
    DEFAULT_ANSWER,
    FORCE_CLOSED,
    FORCE_OPEN,
    AnswerFormat,
    Engine,
    GenerationSpec,
    Job,
    Rollout,
    model_fingerprint,
    seed_for,
)
from prefbench.stopping import check_stop

CPU_BATCH_TOKENS = 16384
DTYPES = ("auto", "float32", "bfloat16", "float16")


class TransformersEngine(Engine):
    """In-process transformers. Options: ``dtype`` (auto = bfloat16 on CUDA, float32 on CPU),
    ``device`` (auto = CUDA when available), ``attn_implementation`` (e.g. ``sdpa``,
    ``flash_attention_2``), ``max_pixels`` (cap on an image's pixels, passed to the processor in
    the family's own terms), ``max_batch_tokens`` (rows x (padded width + generation budget) per
    batch; default from free GPU memory, 16384 on CPU), ``cache_implementation`` (e.g. ``static``,
    which lets generate compile on CUDA), ``share_images`` (encode each distinct image of a
    batch once, where the family allows it; scores are the same either way)."""

    name: ClassVar[str] = "transformers"
    extra: ClassVar[str] = "vlm"
    transport_params: ClassVar[tuple[str, ...]] = ("share_images",)

    def __init__(self, *, model: str | None = None, dtype: str = "auto", device: str = "auto",
                 attn_implementation: str | None = None, max_pixels: int | None = None,
                 max_batch_tokens: int | None = None, cache_implementation: str | None = None,
                 share_images: bool = True):
        super().__init__(model=model)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if max_pixels is not None and max_pixels < 1:
            raise ValueError("max_pixels must be >= 1")
        if max_batch_tokens is not None and max_batch_tokens < 1:
            raise ValueError("max_batch_tokens must be >= 1")
        self.dtype = dtype
        self.device = device
        self.attn_implementation = attn_implementation
        self.max_pixels = max_pixels
        self.max_batch_tokens = max_batch_tokens
        self.cache_implementation = cache_implementation
        self.share_images = bool(share_images)
        self.max_batch_rows = 256
        self.hf_model = self.processor = self.tokenizer = None
        self.profile = None
        self.sharing = False
        self.image_slot_keys: list[str] | None = None
        self.image_stats = {"encoded": 0, "shared": 0}
        self.batch_stats: dict[str, int] = {}

    # -- loading --------------------------------------------------------------------------
    def load(self, candidates: Sequence[str] = (), answer: AnswerFormat = DEFAULT_ANSWER) -> None:
        from prefbench.engines.profiles import model_type_of, profile_for
        from prefbench.weights import check_model_folder, from_pretrained

        check_model_folder(self.model, "VLM model")  # before seconds of torch/transformers imports
        profile = profile_for(model_type_of(self.model))
        profile.check()
        profile.processor_kwargs(self.max_pixels)  # a family without a pixel budget refuses max_pixels here

        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self.dtype
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        processor = from_pretrained(AutoProcessor.from_pretrained, self.model, "VLM processor")
        profile.cap_images(processor, self.max_pixels)
        model = from_pretrained(AutoModelForImageTextToText.from_pretrained, self.model, "VLM model", **kwargs)
        self.attach(model.to(device), processor)
        if not answer.free:
            for token in candidates:
                self.single_token_id(token, answer.prefix)
            self.forced_ids(answer)

    def attach(self, model, processor) -> None:
        """Use an already-built model and processor (benchmarks build random-weight models in
        memory); sets up the profile, end tokens, the neutral generation config and token texts."""
        from transformers import GenerationConfig

        from prefbench.engines.profiles import profile_of

        self.profile = profile_of(model.config)
        self.profile.check()
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.tokenizer.padding_side = "left"
        self.hf_model = model.eval()
        param = next(model.parameters())
        self.torch_device, self.torch_dtype = param.device, param.dtype
        from prefbench.engines.profiles import end_token_ids

        gen = model.generation_config
        eos = self.end_ids = end_token_ids(self.tokenizer, self.profile, gen.eos_token_id)
        self.pad_id = gen.pad_token_id if gen.pad_token_id is not None else (self.tokenizer.pad_token_id or eos[0])
        # A neutral generation config: the checkpoint's own (Qwen2.5-VL ships repetition_penalty,
        # top_k=1, ...) would otherwise fill unset fields and run processors before the read-out.
        model.generation_config = GenerationConfig(bos_token_id=gen.bos_token_id, eos_token_id=eos,
                                                   pad_token_id=self.pad_id)
        vocab = model.get_output_embeddings().weight.shape[0]
        n_tok = len(self.tokenizer)
        texts = self.tokenizer.batch_decode([[i] for i in range(min(vocab, n_tok))], skip_special_tokens=False,
                                            clean_up_tokenization_spaces=False)
        self.token_texts = texts + [""] * max(0, vocab - n_tok)
        self._forced: dict[tuple[str, str], list[int]] = {}
        self.force_open = self._forced_ids(FORCE_OPEN)
        self.force_closed = self._forced_ids(FORCE_CLOSED)
        hook = self.profile.share_images
        self.sharing = bool(self.share_images and hook is not None and hook(self, model))

    def _forced_ids(self, text: str, prefix: str = ANSWER_OPEN) -> list[int]:
        if (text, prefix) in self._forced:
            return self._forced[(text, prefix)]
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        decoded = "".join(self.token_texts[i] for i in ids)
        if not decoded.endswith(prefix):
            raise RuntimeError(f"tokenizer cannot force {text!r}: its tokens decode to {decoded!r}")
        self._forced[(text, prefix)] = ids
        return ids

    def forced_ids(self, answer: AnswerFormat) -> tuple[list[int], list[int]]:
        """The token ids forced when the budget runs out (think still open, think closed)."""
        return self._forced_ids(answer.force_open, answer.prefix), self._forced_ids(answer.force_closed, answer.prefix)

    def single_token_id(self, text: str, context: str | None = None) -> int:
        """The id of answer token ``text`` after ``context`` (default ``<answer>``; see
        :func:`prefbench.engines.profiles.answer_token_id`)."""
        from prefbench.engines.profiles import answer_token_id

        return answer_token_id(self.tokenizer, text, context)

    def model_info(self) -> dict:
        info = {"id": self.model, "revision": model_fingerprint(self.model)}
        if self.hf_model is not None:
            import transformers

            info.update({"class": type(self.hf_model).__name__,
                         "dtype": str(self.torch_dtype).replace("torch.", ""),
                         "device": str(self.torch_device), "transformers": transformers.__version__})
        return info

    def summary(self) -> dict:
        out: dict[str, Any] = {"name": self.name}
        if self.profile is not None:
            out["profile"] = self.profile.family
            out["image_sharing"] = self.sharing
            if not self.sharing:
                out["image_sharing_off"] = ("share_images=false" if not self.share_images else
                                            f"the {self.profile.family} profile has no image-sharing hook")
        out.update({"images_encoded": self.image_stats["encoded"],
                    "image_encodings_shared": self.image_stats["shared"],
                    # the anchor's vision encoding is shared; its KV prefix is not
                    "prefix_sharing": False})
        if self.hf_model is not None:  # for utilisation: about 2 FLOP per parameter per token
            out["n_parameters"] = sum(p.numel() for p in self.hf_model.parameters())
        if self.batch_stats.get("rows"):
            out["batches"] = self.batch_stats["batches"]
            out["padding_fraction"] = round(
                1 - self.batch_stats["prompt_tokens"] / self.batch_stats["padded_prompt_tokens"], 4)
        return out

    def close(self) -> None:
        self.hf_model = self.processor = None

    # -- encoding and batching -------------------------------------------------------------
    def prompt_text(self, job: Job, assistant_prefix: str = "") -> str:
        from prefbench.engines.profiles import render_prompt

        return render_prompt(self.processor, self.profile, job.messages, assistant_prefix)

    def encode(self, job: Job, assistant_prefix: str = "") -> dict:
        return dict(self.processor(text=[self.prompt_text(job, assistant_prefix)], images=job.images or None,
                                   return_tensors="pt"))

    def encode_batch(self, jobs: Sequence[Job], assistant_prefix: str, encs: Sequence[dict]) -> dict:
        """One batch's model inputs: collated single encodings (``concat`` families) or the
        processor run on the whole batch (it pads images of different sizes its own way)."""
        if self.profile.batching == "concat":
            return self.collate(encs)
        texts = [self.prompt_text(j, assistant_prefix) for j in jobs]
        images = [list(j.images) for j in jobs]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if any(images):
            kwargs["images"] = images
        return dict(self.processor(**kwargs))

    def collate(self, encs: Sequence[dict]) -> dict:
        import torch

        width = max(e["input_ids"].shape[1] for e in encs)
        out: dict[str, Any] = {}
        for key in encs[0]:
            values = [e[key] for e in encs]
            if all(v.dim() == 2 and v.shape == e["input_ids"].shape for v, e in zip(values, encs)):
                fill = self.pad_id if key == "input_ids" else 0
                out[key] = torch.stack([
                    torch.cat([torch.full((width - v.shape[1],), fill, dtype=v.dtype), v[0]]) for v in values])
            else:
                out[key] = torch.cat(values, dim=0)
        return out

    def auto_batch_tokens(self) -> int:
        if self.max_batch_tokens:
            return int(self.max_batch_tokens)
        import torch

        if self.torch_device.type != "cuda":
            return CPU_BATCH_TOKENS
        cfg = getattr(self.hf_model.config, "text_config", self.hf_model.config)
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        per_token = 2 * cfg.num_hidden_layers * kv_heads * head_dim * torch.finfo(self.torch_dtype).bits // 8
        # activations and the float32 logits of a step need room too: use half of what is free
        free, _ = torch.cuda.mem_get_info(self.torch_device)
        return max(4096, int(0.5 * free / per_token))

    def plan(self, lengths: Sequence[int], rows_per_job: int, new_tokens: int) -> list[list[int]]:
        """Job indices grouped into batches, longest first, each within the token budget."""
        budget = self.auto_batch_tokens()
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches, cur = [], []
        for i in order:
            width = lengths[cur[0]] if cur else lengths[i]
            rows = (len(cur) + 1) * rows_per_job
            if cur and (rows * (width + new_tokens) > budget or rows > self.max_batch_rows):
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
        return batches

    def _to_device(self, batch: dict) -> dict:
        out = {}
        for k, v in batch.items():
            if not hasattr(v, "to"):
                out[k] = v
                continue
            v = v.to(self.torch_device)
            if v.is_floating_point():
                v = v.to(self.torch_dtype)
            out[k] = v
        return out

    # -- generation ------------------------------------------------------------------------
    def generate(self, jobs: Sequence[Job], spec: GenerationSpec, stats: dict | None = None) -> list[list[Rollout]]:
        """``spec.rows_per_job`` rollouts per job, with the answer logits read in the same pass.

        Budget 0 scores prefill-only: the assistant turn is pre-filled with an empty reasoning
        block and the answer prefix, and one forward pass reads the answer logits.
        """
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        from prefbench.engines.hf_readout import AnswerReadout

        stats = self.batch_stats if stats is None else stats
        fmt = spec.answer
        if fmt.free and spec.prefill:
            raise ValueError("free generation (an answer format without a prefix) needs a budget > 0")
        cand_ids = [] if fmt.free else [self.single_token_id(c, fmt.prefix) for c in spec.candidates]
        force_open, force_closed = ([], []) if fmt.free else self.forced_ids(fmt)
        prefill = spec.prefill
        prefix = fmt.prefill if prefill else ""
        encs = [self.encode(j, prefix) for j in jobs]
        lengths = [e["input_ids"].shape[1] for e in encs]
        vision = self._vision_tokens(encs)
        k = spec.rows_per_job
        budget, tail_tokens = spec.budget, spec.tail_tokens
        new_tokens = 1 if prefill else (budget if fmt.free else budget + len(force_open) + 1 + tail_tokens)
        results: list[list[Rollout]] = [[] for _ in jobs]
        for chunk in self.plan(lengths, k, new_tokens):
            check_stop("between an engine's sub-batches")  # a caller's deadline stops a long batch here
            # rollouts are rows of their own (job-major); the image-sharing hook encodes each
            # job's images once for all k of them
            expanded = [i for i in chunk for _ in range(k)]
            batch = self._to_device(self.encode_batch([jobs[i] for i in expanded], prefix,
                                                      [encs[i] for i in expanded]))
            width = batch["input_ids"].shape[1]
            stats["batches"] = stats.get("batches", 0) + 1
            stats["rows"] = stats.get("rows", 0) + len(chunk) * k
            stats["prompt_tokens"] = stats.get("prompt_tokens", 0) + sum(lengths[i] for i in chunk) * k
            stats["padded_prompt_tokens"] = stats.get("padded_prompt_tokens", 0) + width * len(chunk) * k
            self.image_slot_keys = ([key for i in expanded for key in jobs[i].keys()]
                                    if self.sharing and self.share_images else None)
            try:
                if prefill:
                    with torch.inference_mode():
                        logits = self.hf_model(**batch, logits_to_keep=1).logits[:, -1].float()
                    cand = logits[:, cand_ids]
                    mass = torch.exp(torch.logsumexp(cand, -1) - torch.logsumexp(logits, -1))
                    rows = [Rollout(answer_logits=cand[n].tolist(), answer_mass=float(mass[n]), answer_step=0)
                            for n in range(len(chunk))]
                else:
                    # sampling happens inside the read-out (per-row counter-based noise, see
                    # hf_readout.sample_rows); generate itself only takes the argmax it is left with
                    row_seeds = [seed_for(spec.seed, [jobs[i].key, str(r)]) for i in chunk for r in range(k)]
                    readout = AnswerReadout(self.token_texts, width, len(chunk) * k, cand_ids, budget,
                                            force_open, force_closed, self.end_ids,
                                            tail_tokens=tail_tokens, prefix=fmt.prefix, temperature=spec.temperature,
                                            top_p=spec.top_p, row_seeds=row_seeds, stop=fmt.stop,
                                            think_close=fmt.think_close)
                    gen_cfg = GenerationConfig(
                        max_new_tokens=readout.max_new_tokens, do_sample=False,
                        pad_token_id=self.pad_id, eos_token_id=self.end_ids, repetition_penalty=1.0,
                        cache_implementation=self.cache_implementation,
                    )
                    with torch.inference_mode():
                        sequences = self.hf_model.generate(
                            **batch, generation_config=gen_cfg, logits_processor=LogitsProcessorList([readout]),
                            stopping_criteria=StoppingCriteriaList([readout.stopping_criteria()]))
                    rows = readout.results(sequences, self._decode)
            finally:
                self.image_slot_keys = None
            for n, i in enumerate(chunk):
                results[i] = rows[n * k:(n + 1) * k]
                for row in results[i]:
                    row.prompt_tokens, row.vision_tokens = lengths[i], vision[i]
        return results

    def _vision_tokens(self, encs: Sequence[dict]) -> list[int | None]:
        """Image placeholder tokens per prompt (what the vision encoder's features fill), where the
        processor names its image token."""
        token = getattr(self.processor, "image_token_id", None)
        if token is None and getattr(self.processor, "image_token", None):
            token = self.tokenizer.convert_tokens_to_ids(self.processor.image_token)
        if not isinstance(token, int):
            return [None] * len(encs)
        return [int((e["input_ids"] == token).sum()) for e in encs]

    def _decode(self, ids: Sequence[int]) -> str:
        # ids past the tokenizer (a padded output layer) decode to nothing, as in token_texts
        n = len(self.tokenizer)
        return self.tokenizer.decode([i for i in ids if i < n], skip_special_tokens=False, clean_up_tokenization_spaces=False)
