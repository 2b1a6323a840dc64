"""The openai engine's requests and replies, as plain functions of data.

What goes to the server: images as PNG data URLs, a job's chat messages with those URLs in
place of its image placeholders, the payloads of the reasoning, answer, free and inline requests
(see :mod:`prefbench.engines.openai` for the scheme), and vLLM's ``/tokenize`` call. What comes
back: the answer token's log-probabilities (:func:`answer_readout`), the inline answer position,
and the ``usage`` counts. The engine class keeps the pool, the statistics and the rollouts.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from prefbench.engines.base import AnswerFormat, Job

LOGIT_BIAS_MASK = -100
#: end-of-turn tokens masked while reasoning (looked up with the server's /tokenize; absent ones are skipped)
END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<eos>", "</s>", "<|eot_id|>", "<end_of_utterance>")


def image_data_url(image, max_pixels: int | None = None) -> str:
    """A PNG data URL of ``image`` (PIL), downscaled (aspect kept) to at most ``max_pixels``."""
    img = image.convert("RGB") if image.mode not in ("RGB", "L") else image
    w, h = img.size
    if max_pixels and w * h > max_pixels:
        scale = (max_pixels / (w * h)) ** 0.5
        img = img.resize((max(1, int(w * scale)), max(1, int(h * scale))), resample=3)  # bicubic
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def chat_messages(job: Job, urls: dict[str, str], max_pixels: int | None, image_stats: dict[str, int]) -> list[dict]:
    """The job's chat messages with each image placeholder replaced by its data URL.

    ``urls`` is shared by the jobs of one call, keyed by image key, so an image in several jobs
    is encoded once; ``image_stats`` counts the encodings (``encoded``) and the reuses (``shared``).
    """
    keys = job.image_keys or [f"id:{id(img)}" for img in job.images]
    images = iter(zip(keys, job.images))
    out = []
    for msg in job.messages:
        content = msg["content"]
        if isinstance(content, list):
            parts = []
            for part in content:
                if part.get("type") == "image":
                    key, img = next(images)
                    if key not in urls:
                        urls[key] = image_data_url(img, max_pixels)
                        image_stats["encoded"] += 1
                    else:
                        image_stats["shared"] += 1
                    parts.append({"type": "image_url", "image_url": {"url": urls[key]}})
                else:
                    parts.append(part)
            content = parts
        out.append({"role": msg["role"], "content": content})
    return out


def tokenize(base_url: str, model: str | None, key: str, text: str, timeout: float) -> int | None:
    """vLLM's ``/tokenize`` (at the server root of ``base_url``); None when unavailable or not one token."""
    root = base_url.rstrip("/")
    root = root[:-3] if root.endswith("/v1") else root
    body = json.dumps({"model": model, "prompt": text, "add_special_tokens": False}).encode()
    req = urllib.request.Request(root + "/tokenize", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (user's server URL)
            tokens = json.loads(resp.read()).get("tokens") or []
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return int(tokens[0]) if len(tokens) == 1 else None


def reasoning_payload(model: str | None, messages: list[dict], budget: int, fmt: AnswerFormat,
                      sampling: dict[str, Any], end_ids: Sequence[int]) -> dict[str, Any]:
    """Step 1: sample up to ``budget`` tokens, stopping at (and keeping) the answer prefix, with
    the end-of-turn tokens masked."""
    payload = {"model": model, "messages": messages, "max_tokens": budget, "stop": [fmt.prefix],
               **sampling, "extra_body": {"include_stop_str_in_output": True, "return_token_ids": True}}
    if end_ids:
        payload["logit_bias"] = {str(t): LOGIT_BIAS_MASK for t in end_ids}
    return payload


def answer_payload(model: str | None, messages: list[dict], prefix: str, tail_tokens: int, fmt: AnswerFormat,
                   sampling: dict[str, Any], restricted: list[int] | None, top_logprobs: int) -> dict[str, Any]:
    """Step 2: continue the assistant text ``prefix`` by the answer token (plus ``tail_tokens``)
    with its log-probabilities: exactly the ``restricted`` token ids when given, else the top N."""
    extra_body: dict[str, Any] = {"continue_final_message": True, "add_generation_prompt": False,
                                  "include_stop_str_in_output": True, "return_token_ids": True}
    turn = [{"role": "assistant", "content": prefix}] if prefix else []
    if not prefix:  # nothing to continue: the answer is the assistant turn's first token
        extra_body.update(continue_final_message=False, add_generation_prompt=True)
    payload = {"model": model, "messages": [*messages, *turn],
               "max_tokens": 1 + tail_tokens, **sampling, "logprobs": True, "extra_body": extra_body}
    if tail_tokens and fmt.stop:
        payload["stop"] = [fmt.stop]
    if restricted:
        extra_body["logprob_token_ids"] = restricted
    else:
        payload["top_logprobs"] = top_logprobs
    return payload


def answer_readout(top: Sequence[dict], candidates: Sequence[str], restricted: bool) -> tuple[list[float] | None, float | None, dict]:
    """Log-probabilities of the answer tokens at the answer position.

    ``top`` is the ``top_logprobs`` list of that position; ``restricted`` is True when the
    server returned exactly the requested token ids (vLLM ``logprob_token_ids``) rather than
    its top-N. Returns (one log-probability per candidate, -inf where absent or None when none
    is present; the candidates' total probability; detail for the sample record).

    >>> lp, mass, info = answer_readout([{"token": "3", "logprob": -0.5}, {"token": "x", "logprob": -1.5},
    ...                                  {"token": "4", "logprob": -2.0}], ["1", "2", "3", "4", "5"], False)
    >>> lp[:2], info["missing_answer_tokens"], round(mass, 4)
    ([-inf, -inf], ['1', '2', '5'], 0.7419)
    """
    import math

    got: dict[str, float] = {}
    for entry in top:
        tok, lp = entry.get("token"), entry.get("logprob")
        if tok is None or lp is None:
            continue
        got[tok] = max(lp, got.get(tok, -math.inf))
    logprobs = [got.get(c, -math.inf) for c in candidates]
    found = [lp for lp in logprobs if lp > -math.inf]
    info: dict[str, Any] = {"answer_logprobs": {c: got[c] for c in candidates if c in got}}
    missing = [c for c in candidates if c not in got]
    if missing:
        info["missing_answer_tokens"] = missing
        if not restricted and got:
            total = sum(math.exp(v) for v in got.values())
            info["top_logprobs_n"] = len(got)
            info["top_logprobs_mass"] = round(total, 6)
            info["mass_outside_top_logprobs"] = round(max(0.0, 1.0 - total), 6)
            # a token outside the top-N is at most as likely as the N-th
            info["missing_logprob_upper_bound"] = min(got.values())
    if not found:
        return None, None, info
    return logprobs, sum(math.exp(v) for v in found), info


def inline_answer_position(tokens: Sequence[dict], prefix: str) -> tuple[int | None, bool]:
    """(index of the token after the text ending in ``prefix``, None when there is none; whether a
    token swallowed the prefix together with more text) over an inline reply's ``logprobs`` tokens.

    >>> inline_answer_position([{"token": "ok <answer>"}, {"token": "3"}], "<answer>")
    (1, False)
    >>> inline_answer_position([{"token": "<answer>3"}], "<answer>")
    (None, True)
    """
    seen = ""
    for i, tok in enumerate(tokens):
        if seen.endswith(prefix):
            return i, False
        seen += tok.get("token") or ""
        if prefix in seen and not seen.endswith(prefix):
            return None, True
    return None, False


def completion_tokens(data: dict) -> int:
    """The reply's ``usage.completion_tokens`` (0 when the server sends none)."""
    return int((data.get("usage") or {}).get("completion_tokens") or 0)


def usage_count(data: dict, key: str) -> int | None:
    """A count from a reply's ``usage`` block (None when the server sends none)."""
    value = (data.get("usage") or {}).get(key)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
