"""Pre-train the demo world's tiny "base" VLM: the stand-in for a pretrained instruct model.

A real instruct VLM arrives knowing how to look at an image, name what it shows, and answer in
a requested format. This gives a tiny Qwen2.5-VL-architecture model (random init, the
``prefbench.testing.tiny_vlm`` tokenizer) those skills on the demo world's *train* split only,
by supervised next-token training on three tasks that never mention preference:

1. describe an image (the caption of what it actually shows, with its quality defects);
2. count the shapes, reasoning in ``<think>`` and answering a digit in ``<answer>``;
3. compare the shape counts of two images, answering 1 (Image 2 has more) or 0.

Preference itself is left to GRPO (``prefbench train``), as in the paper.

    python -m prefbench.demo_zoo.pretrain OUT_DIR [--steps 1500] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

COUNT_WORDS = {"one": 1, "two": 2, "three": 3}

TEXT_CONFIG = dict(hidden_size=96, intermediate_size=192, num_hidden_layers=4, num_attention_heads=3,
                   num_key_value_heads=1, max_position_embeddings=4096, rms_norm_eps=1e-6,
                   rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0,
                                    "mrope_section": [4, 6, 6]})
VISION_CONFIG = dict(depth=3, hidden_size=96, intermediate_size=192, num_heads=3, out_hidden_size=96,
                     patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                     fullatt_block_indexes=[2])

THINK_HINT = "Reason step by step inside <think> </think>, then answer inside <answer> </answer>."


def build_base(out_dir: Path, seed: int):
    """A randomly initialised base model + processor (tiny_vlm's tokenizer and processor, larger sizes)."""
    from prefbench.testing.tiny_vlm import new_model_and_processor

    return new_model_and_processor(TEXT_CONFIG, VISION_CONFIG, seed)


def shape_count(caption: str) -> int:
    first = caption.split()[0]
    return COUNT_WORDS.get(first, 2)  # relation scenes ("a X left of a Y") show two shapes


def examples(seed: int) -> list[dict]:
    """(images, user text with <image> markers, assistant answer) from the demo train split."""
    from prefbench.data import load_dataset

    rng = random.Random(seed)
    data = load_dataset("demo", "train")
    singles = [(it.images[k], it.meta["captions"][k]) for it in data.items for k in range(it.n_images)]
    out = []
    for ref, cap in singles:
        what = cap.split(",")[0]
        out.append({"images": [ref], "user": "<image>\nDescribe this image.", "answer": cap[0].upper() + cap[1:] + "."})
        out.append({"images": [ref], "user": f"<image>\nHow many shapes are in this image? {THINK_HINT}",
                    "answer": f"<think>The image shows {what}.</think><answer>{shape_count(cap)}</answer>"})
    for _ in range(len(singles)):
        (r1, c1), (r2, c2) = rng.sample(singles, 2)
        n1, n2 = shape_count(c1), shape_count(c2)
        if n1 == n2:
            continue
        out.append({"images": [r1, r2],
                    "user": f"Image 1: <image>\nImage 2: <image>\nDoes Image 2 show more shapes than Image 1? {THINK_HINT} "
                            "Answer 1 if Image 2 shows more, or 0 if Image 1 shows more.",
                    "answer": f"<think>Image 1 shows {c1.split(',')[0]}. Image 2 shows {c2.split(',')[0]}.</think>"
                              f"<answer>{int(n2 > n1)}</answer>"})
    rng.shuffle(out)
    return out


def _messages(ex: dict) -> list[dict]:
    content = []
    for i, part in enumerate(ex["user"].split("<image>")):
        if i:
            content.append({"type": "image"})
        if part.strip():
            content.append({"type": "text", "text": part})
    return [{"role": "user", "content": content},
            {"role": "assistant", "content": [{"type": "text", "text": ex["answer"]}]}]


def encode(processor, ex: dict) -> dict:
    """One example as tensors; the loss covers only the assistant answer (and its end token)."""
    msgs = _messages(ex)
    images = [ref.open() for ref in ex["images"]]
    full = processor(text=[processor.apply_chat_template(msgs, tokenize=False)], images=images, return_tensors="pt")
    prompt = processor.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    n_prompt = len(processor(text=[prompt], images=images, return_tensors="pt")["input_ids"][0])
    ids = full["input_ids"][0]
    labels = ids.clone()
    labels[:n_prompt] = -100
    return {"input_ids": ids, "labels": labels, "pixel_values": full["pixel_values"],
            "image_grid_thw": full["image_grid_thw"]}


def collate(encoded: list[dict], pad_id: int) -> dict:
    """Right-pad pre-encoded examples into a batch."""
    import torch

    n = max(len(e["input_ids"]) for e in encoded)
    ids = torch.full((len(encoded), n), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), n), -100, dtype=torch.long)
    mask = torch.zeros((len(encoded), n), dtype=torch.long)
    for row, e in enumerate(encoded):
        k = len(e["input_ids"])
        ids[row, :k], labels[row, :k], mask[row, :k] = e["input_ids"], e["labels"], 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels,
            "pixel_values": torch.cat([e["pixel_values"] for e in encoded]),
            "image_grid_thw": torch.cat([e["image_grid_thw"] for e in encoded])}


def pretrain(out_dir: str | Path, steps: int = 1500, batch_size: int = 16, lr: float = 2e-3, seed: int = 0,
             log=print) -> dict:
    import torch
    from tqdm import tqdm

    torch.manual_seed(seed)
    out = Path(out_dir)
    model, processor = build_base(out, seed)
    model.train()
    data = examples(seed)
    encoded = [encode(processor, ex) for ex in tqdm(data, desc="encode examples", unit="ex")]
    pad_id = processor.tokenizer.pad_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=max(0.05, 2 / steps))
    losses, start, pos = [], time.perf_counter(), 0
    bar = tqdm(range(steps), desc="pretrain base", unit="step")
    for step in bar:
        if pos + batch_size > len(data):
            pos = 0
        enc = collate(encoded[pos:pos + batch_size], pad_id)
        pos += batch_size
        loss = model(**enc).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    record = {"builder": "prefbench.demo_zoo.pretrain", "seed": seed, "steps": steps, "batch_size": batch_size,
              "lr": lr, "n_examples": len(data), "wall_s": round(time.perf_counter() - start, 1),
              "loss_first_50": sum(losses[:50]) / max(1, len(losses[:50])),
              "loss_last_50": sum(losses[-50:]) / max(1, len(losses[-50:])),
              "loss_curve": [round(sum(losses[i:i + 50]) / len(losses[i:i + 50]), 4) for i in range(0, len(losses), 50)]}
    (out / "prefbench_pretrain.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m prefbench.demo_zoo.pretrain", description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    rec = pretrain(a.out_dir, a.steps, a.batch_size, a.lr, a.seed)
    print(json.dumps({k: v for k, v in rec.items() if k != "loss_curve"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
