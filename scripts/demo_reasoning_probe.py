"""How much preference information is in a demo VLM's own reasoning?

For the first N prompts of the demo test split, the model writes its greedy reasoning for every
image under the ``rating_v1`` prompt (the scorers' prompt, scorers' budget). From each
``<think>`` this takes the description ("The image shows ...") and measures

- content: the share of images whose described content (marks removed) equals the true caption's;
- own-reasoning utility: a hand-written utility computed from the description alone (-1 per
  marked deviation "(asked ...)", -0.8 per "(swapped)", minus a penalty per named defect), ranked
  under the ImageReward convention (untied pairs; equal scores count half);
- true-caption utility: the same utility from the reasoning a perfect perceiver would write (the
  true caption with its deviations marked, ``prefbench.demo_zoo.pretrain.annotated``).

A scorer that reads its own reasoning perfectly cannot do much better than the second number.

    python scripts/demo_reasoning_probe.py [MODEL] [--prompts 60]

MODEL defaults to the bundled base (``prefbench-demo/base``). Needs the ``vlm`` extra.
"""

from __future__ import annotations

import argparse
import itertools
import re

DEFECTS = {"blurry": 0.45, "noisy": 0.45, "compressed": 0.5, "overexposed": 0.6, "low contrast": 0.5}


def utility_from_marks(description: str) -> float:
    return (-description.count("(asked ") - 0.8 * description.count("(swapped)")
            - sum(v for k, v in DEFECTS.items() if k in description))


def pair_hits(scores: list[float], ranks: list[int]) -> tuple[float, int]:
    hits, total = 0.0, 0
    for i, j in itertools.combinations(range(len(ranks)), 2):
        if ranks[i] == ranks[j]:
            continue
        total += 1
        diff = scores[i] - scores[j]
        hits += 0.5 if diff == 0 else float((diff > 0) == (ranks[i] < ranks[j]))
    return hits, total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="prefbench-demo/base")
    p.add_argument("--prompts", type=int, default=60)
    p.add_argument("--max-new-tokens", type=int, default=64)
    a = p.parse_args(argv)

    import torch
    from tqdm import tqdm
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from prefbench.data import load_dataset
    from prefbench.demo_zoo.pretrain import annotated, unmarked
    from prefbench.models import resolve_model
    from prefbench.scorers.vlm.prompts import RatingScale, rating_messages

    aliased = resolve_model(a.model)  # prefbench-demo/<name> and other model aliases
    path = aliased.path if aliased else a.model
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    items = load_dataset("demo", "test").items[: a.prompts]
    own = true = 0.0
    pairs = exact = images = 0
    for item in tqdm(items, desc="probe", unit="prompt"):
        described = []
        for ref in item.images:
            text = processor.apply_chat_template(rating_messages(item.prompt, RatingScale(1, 5)), tokenize=False,
                                                 add_generation_prompt=True)
            enc = processor(text=[text], images=[ref.open()], return_tensors="pt")
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=a.max_new_tokens, do_sample=False)
            reply = processor.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            m = re.search(r"The image shows (.*?)\.</think>", reply)
            described.append(m.group(1) if m else "")
        for desc, cap in zip(described, item.meta["captions"]):
            images += 1
            exact += unmarked(desc).split(",")[0] == cap.split(",")[0]
        h, n = pair_hits([utility_from_marks(d) if d else float("-inf") for d in described], item.ranks)
        own, pairs = own + h, pairs + n
        perfect = [annotated(c, item.prompt, f) for c, f in zip(item.meta["captions"], item.meta["flaws"])]
        true += pair_hits([utility_from_marks(d) for d in perfect], item.ranks)[0]
    print(f"{a.model}: {len(items)} test prompts, {images} images, {pairs} untied pairs")
    print(f"  content described exactly      {exact / images:.3f}")
    print(f"  utility from own reasoning     {own / pairs:.3f}")
    print(f"  utility from the true captions {true / pairs:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
