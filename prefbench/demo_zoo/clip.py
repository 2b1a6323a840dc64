"""Train the demo world's tiny CLIP contrastively: the ``clip`` baseline row of the demo leaderboard.

Image-caption pairs come from the demo *train* split only: every image with the caption of what
it actually shows (the prompt grammar, without quality words), so the model learns alignment
(colour, shape, count, relation) and nothing about image quality — like CLIP, which was never
trained on preferences. The tokenizer is ``prefbench.testing.tiny_encoders``' CLIP-format BPE;
the folder loads with ``prefbench run --scorer clip --model OUT``.

    python -m prefbench.demo_zoo.clip OUT_DIR [--steps 1500] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

IMAGE_SIZE = 112
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77)
VISION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=2,
              image_size=IMAGE_SIZE, patch_size=14)


def train_clip(out_dir: str | Path, steps: int = 1500, batch_size: int = 64, lr: float = 1e-3, seed: int = 0) -> dict:
    import numpy as np
    import torch
    from tqdm import tqdm
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    from prefbench.data import load_dataset
    from prefbench.testing.tiny_encoders import write_clip_tokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab_size = write_clip_tokenizer(out)
    tok = CLIPTokenizer(str(out / "vocab.json"), str(out / "merges.txt"))
    image_processor = CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                         crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    bos, eos = tok.convert_tokens_to_ids("<|startoftext|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    config = CLIPConfig(text_config=dict(TEXT, vocab_size=vocab_size, bos_token_id=bos, eos_token_id=eos,
                                         pad_token_id=eos),
                        vision_config=dict(VISION), projection_dim=32)
    torch.manual_seed(seed)
    model = CLIPModel(config)

    data = load_dataset("demo", "train")
    refs = [it.images[k] for it in data.items for k in range(it.n_images)]
    captions = [it.meta["captions"][k].split(",")[0] for it in data.items for k in range(it.n_images)]
    pixels = torch.cat([image_processor(images=[r.open() for r in refs[i:i + 256]], return_tensors="pt")["pixel_values"]
                        for i in range(0, len(refs), 256)])
    enc = tok(captions, padding=True, return_tensors="pt")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    rng = np.random.default_rng(seed)
    losses, start = [], time.perf_counter()
    model.train()
    for _ in tqdm(range(steps), desc="train demo CLIP", unit="step"):
        idx = torch.as_tensor(rng.choice(len(refs), batch_size, replace=False))
        loss = model(input_ids=enc["input_ids"][idx], attention_mask=enc["attention_mask"][idx],
                     pixel_values=pixels[idx], return_loss=True).loss
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    image_processor.save_pretrained(out)
    record = {"builder": "prefbench.demo_zoo.clip", "seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr,
              "n_pairs": len(refs), "wall_s": round(time.perf_counter() - start, 1),
              "loss_first_50": float(np.mean(losses[:50])), "loss_last_50": float(np.mean(losses[-50:]))}
    (out / "prefbench_pretrain.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m prefbench.demo_zoo.clip", description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    print(json.dumps(train_clip(a.out_dir, a.steps, a.batch_size, a.lr, a.seed), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
