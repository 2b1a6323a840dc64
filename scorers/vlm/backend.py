"""The transformers backend: load any ``AutoModelForImageTextToText`` + ``AutoProcessor`` VLM,
encode chat prompts with images, batch them by length under a token budget, and generate with
the one-pass answer read-out of :mod:`prefbench.scorers.vlm.readout`.

Batches are formed from jobs sorted by encoded length (longest first), so padding is small;
a batch holds as many rows (jobs x rollouts) as fit ``max_batch_tokens`` (padded width plus the
generation budget, per row). On CUDA the default budget comes from free memory and the model's
KV-cache size per token; on CPU it is fixed.

Collation is generic for the Qwen-VL family: tensors laid out like ``input_ids`` (batch x
sequence) are left-padded; everything else (``pixel_values`` patches, ``image_grid_thw``) is
concatenated along dim 0, which is how their processors batch them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefbench.scorers.vlm.prompts import ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

#: text forced when the reasoning budget runs out, with </think> still open / already closed
FORCE_OPEN = f"\n{THINK_CLOSE}\n{ANSWER_OPEN}"
FORCE_CLOSED = f"\n{ANSWER_OPEN}"
#: assistant text for prefill-only scoring (no reasoning)
PREFILL_ANSWER = f"{THINK_OPEN}\n{THINK_CLOSE}\n{ANSWER_OPEN}"
CPU_BATCH_TOKENS = 16384


@dataclass
class Job:
    """One prompt to answer: chat messages, their images in order, and a stable key (seeding)."""

    messages: list[dict]
    images: list[Any]
    key: str
    #: identities of the images (equal keys = the same image, encoded once per batch)
    image_keys: list[str] | None = None


def model_fingerprint(path: str | None) -> str | None:
    """A cheap identity for a local checkpoint: sha256 of its small config, tokenizer and chat
    template files plus the names and sizes of its weight files (hashing gigabytes of weights
    per run would be too slow)."""
    if not path:
        return None
    p = Path(path)
    if not (p / "config.json").is_file():
        return None
    h = hashlib.sha256()
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "chat_template.jinja", "chat_template.json", "preprocessor_config.json", "processor_config.json"):
        if (p / name).is_file():
            h.update(name.encode() + b"\0" + (p / name).read_bytes())
    for w in sorted(list(p.glob("*.safetensors")) + list(p.glob("*.bin"))):
        h.update(f"{w.name}:{w.stat().st_size}".encode())
    return "sha256:" + h.hexdigest()[:16]


def seed_for(seed: int, keys: Sequence[str]) -> int:
    digest = hashlib.sha256(json.dumps([seed, list(keys)]).encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


class HFBackend:
    """Holds the model and processor; turns jobs into per-rollout :class:`RowReadout` lists."""

    def __init__(self, model: str, *, dtype: str = "auto", device: str = "auto",
                 attn_implementation: str | None = None, max_pixels: int | None = None,
                 max_batch_tokens: int | None = None, max_batch_rows: int = 256,
                 cache_implementation: str | None = None):
        self.model_path = model
        self.dtype_name = dtype
        self.device_name = device
        self.attn_implementation = attn_implementation
        self.max_pixels = max_pixels
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_rows = max_batch_rows
        self.cache_implementation = cache_implementation  # e.g. "static" (lets generate compile on CUDA)
        self.model = self.processor = self.tokenizer = None
        self.share_images = True
        self._image_keys: list[str] | None = None
        self.image_stats = {"encoded": 0, "shared": 0}

    # -- loading --------------------------------------------------------------------------
    def load(self) -> None:
        from prefbench.weights import check_model_folder, from_pretrained

        check_model_folder(self.model_path, "VLM model")  # before seconds of torch/transformers imports

        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = self.device_name
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self.dtype_name
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        proc_kwargs = {"max_pixels": self.max_pixels} if self.max_pixels else {}
        processor = from_pretrained(AutoProcessor.from_pretrained, self.model_path, "VLM processor",
                                    **proc_kwargs)
        model = from_pretrained(AutoModelForImageTextToText.from_pretrained, self.model_path, "VLM model",
                                **kwargs)
        self.attach(model.to(device), processor)

    def attach(self, model, processor) -> None:
        """Use an already-built model and processor (benchmarks build random-weight models in
        memory); sets up end tokens, the neutral generation config and the token texts."""
        from transformers import GenerationConfig

        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.tokenizer.padding_side = "left"
        self.model = model.eval()
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        gen = model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else self.tokenizer.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        for name in ("<|im_end|>", "<|endoftext|>"):
            tid = self.tokenizer.convert_tokens_to_ids(name)
            if isinstance(tid, int) and tid != getattr(self.tokenizer, "unk_token_id", None) and tid not in eos:
                eos.append(tid)
        self.end_ids = eos
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
        self.force_open = self._forced_ids(FORCE_OPEN)
        self.force_closed = self._forced_ids(FORCE_CLOSED)
        self._install_image_sharing()

    def _install_image_sharing(self) -> None:
        """Encode each distinct image once per batch. An item's anchor appears in all its N-1
        comparisons; generate() calls ``base_model.get_image_features`` once before prefill,
        so wrapping it there (Qwen-VL family: patches concatenated, split by ``image_grid_thw``)
        runs the vision tower on distinct images only and copies the features to every slot."""
        import functools

        import torch

        base = getattr(self.model, "model", None)
        orig = getattr(base, "get_image_features", None)
        if orig is None or getattr(orig, "_prefbench_shared", False):
            return
        backend = self

        @functools.wraps(orig)
        def get_image_features(pixel_values, image_grid_thw=None, **kwargs):
            keys = backend._image_keys
            if keys is None or image_grid_thw is None or len(keys) != image_grid_thw.shape[0]:
                return orig(pixel_values, image_grid_thw, **kwargs)
            first: dict[str, int] = {}
            for slot, key in enumerate(keys):
                first.setdefault(key, slot)
            if len(first) == len(keys):
                backend.image_stats["encoded"] += len(keys)
                return orig(pixel_values, image_grid_thw, **kwargs)
            sizes = image_grid_thw.prod(-1).tolist()
            starts = [0]
            for n in sizes:
                starts.append(starts[-1] + n)
            uniq = list(first.values())
            patches = torch.cat([pixel_values[starts[i]:starts[i + 1]] for i in uniq])
            out = orig(patches, image_grid_thw[uniq], **kwargs)
            feats = dict(zip(uniq, out.pooler_output))
            out.pooler_output = tuple(feats[first[key]] for key in keys)
            backend.image_stats["encoded"] += len(uniq)
            backend.image_stats["shared"] += len(keys) - len(uniq)
            return out

        get_image_features._prefbench_shared = True
        base.get_image_features = get_image_features

    def _forced_ids(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        decoded = "".join(self.token_texts[i] for i in ids)
        if not decoded.endswith(ANSWER_OPEN):
            raise RuntimeError(f"tokenizer cannot force {text!r}: its tokens decode to {decoded!r}")
        return ids

    def single_token_id(self, text: str) -> int:
        """The id of ``text`` as one token (answer tokens must be single tokens)."""
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"answer token {text!r} is {len(ids)} tokens in this tokenizer; the soft read-out "
                             "needs single-token answers")
        return ids[0]

    def model_info(self) -> dict:
        import transformers

        info = {"id": self.model_path, "revision": model_fingerprint(self.model_path)}
        if self.model is not None:
            info.update({"class": type(self.model).__name__, "dtype": str(self.dtype).replace("torch.", ""),
                         "device": str(self.device), "transformers": transformers.__version__})
        return info

    # -- encoding and batching -------------------------------------------------------------
    def encode(self, job: Job, assistant_prefix: str = "") -> dict:
        text = self.processor.apply_chat_template(job.messages, add_generation_prompt=True, tokenize=False)
        return dict(self.processor(text=[text + assistant_prefix], images=job.images or None, return_tensors="pt"))

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

        if self.device.type != "cuda":
            return CPU_BATCH_TOKENS
        cfg = getattr(self.model.config, "text_config", self.model.config)
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        per_token = 2 * cfg.num_hidden_layers * kv_heads * head_dim * torch.finfo(self.dtype).bits // 8
        # activations and the float32 logits of a step need room too: use half of what is free
        free, _ = torch.cuda.mem_get_info(self.device)
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
            v = v.to(self.device)
            if v.is_floating_point():
                v = v.to(self.dtype)
            out[k] = v
        return out

    # -- generation ------------------------------------------------------------------------
    def generate(self, jobs: Sequence[Job], *, candidates: Sequence[str], budget: int, rollouts: int = 1,
                 temperature: float = 1.0, top_p: float = 1.0, tail_tokens: int = 0, seed: int = 0,
                 stats: dict | None = None) -> list[list]:
        """Generate ``rollouts`` rollouts per job and read the answer logits in the same pass.

        Returns, per job, a list of :class:`~prefbench.scorers.vlm.readout.RowReadout`.
        ``budget`` = 0 scores prefill-only: the assistant turn is pre-filled with an empty
        reasoning block and the answer prefix, and one forward pass reads the answer logits.
        """
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        from prefbench.scorers.vlm.readout import AnswerReadout, RowReadout

        cand_ids = [self.single_token_id(c) for c in candidates]
        prefill = budget == 0
        encs = [self.encode(j, PREFILL_ANSWER if prefill else "") for j in jobs]
        lengths = [e["input_ids"].shape[1] for e in encs]
        k = 1 if prefill else rollouts
        new_tokens = 1 if prefill else budget + len(self.force_open) + 1 + tail_tokens
        results: list[list] = [[] for _ in jobs]
        for chunk in self.plan(lengths, k, new_tokens):
            # rollouts are rows of their own (job-major); the image-sharing wrapper encodes each
            # job's images once for all k of them
            expanded = [i for i in chunk for _ in range(k)]
            batch = self._to_device(self.collate([encs[i] for i in expanded]))
            width = batch["input_ids"].shape[1]
            if stats is not None:
                stats["batches"] = stats.get("batches", 0) + 1
                stats["rows"] = stats.get("rows", 0) + len(chunk) * k
                stats["prompt_tokens"] = stats.get("prompt_tokens", 0) + sum(lengths[i] for i in chunk) * k
                stats["padded_prompt_tokens"] = stats.get("padded_prompt_tokens", 0) + width * len(chunk) * k
            self._image_keys = self._slot_keys([jobs[i] for i in expanded]) if self.share_images else None
            try:
                if prefill:
                    with torch.inference_mode():
                        logits = self.model(**batch, logits_to_keep=1).logits[:, -1].float()
                    cand = logits[:, cand_ids]
                    mass = torch.exp(torch.logsumexp(cand, -1) - torch.logsumexp(logits, -1))
                    rows = [RowReadout([], cand[n].tolist(), float(mass[n]), 0) for n in range(len(chunk))]
                else:
                    # sampling happens inside the read-out (per-row counter-based noise, see
                    # readout.sample_rows); generate itself only takes the argmax it is left with
                    row_seeds = [seed_for(seed, [jobs[i].key, str(r)]) for i in chunk for r in range(k)]
                    readout = AnswerReadout(self.token_texts, width, len(chunk) * k, cand_ids, budget,
                                            self.force_open, self.force_closed, self.end_ids, tail_tokens=tail_tokens,
                                            temperature=temperature, top_p=top_p, row_seeds=row_seeds)
                    gen_cfg = GenerationConfig(
                        max_new_tokens=readout.max_new_tokens, do_sample=False,
                        pad_token_id=self.pad_id, eos_token_id=self.end_ids, repetition_penalty=1.0,
                        cache_implementation=self.cache_implementation,
                    )
                    with torch.inference_mode():
                        sequences = self.model.generate(
                            **batch, generation_config=gen_cfg, logits_processor=LogitsProcessorList([readout]),
                            stopping_criteria=StoppingCriteriaList([readout.stopping_criteria()]))
                    rows = readout.results(sequences, self._decode)
            finally:
                self._image_keys = None
            for n, i in enumerate(chunk):
                results[i] = rows[n * k:(n + 1) * k]
        return results

    @staticmethod
    def _slot_keys(jobs: Sequence[Job]) -> list[str]:
        """One key per image slot of a batch, in the order the processor concatenated them."""
        keys = []
        for job in jobs:
            ids = job.image_keys or [f"id:{id(img)}" for img in job.images]
            keys.extend(ids)
        return keys

    def _decode(self, ids: Sequence[int]) -> str:
        # ids past the tokenizer (a padded output layer) decode to nothing, as in token_texts
        n = len(self.tokenizer)
        return self.tokenizer.decode([i for i in ids if i < n], skip_special_tokens=False, clean_up_tokenization_spaces=False)
