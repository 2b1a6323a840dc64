"""Tiny random-weight checkpoints for the encoder baselines, for tests and offline smoke tests.

``python -m prefbench.testing.tiny_encoders OUT [--only clip,aesthetic,hpsv2,imagereward]``
writes one folder per baseline under OUT, each in the layout the scorer loads for real weights:

* ``OUT/clip``: a transformers ``CLIPModel`` folder (config.json, model.safetensors, a small
  byte-level BPE tokenizer in CLIP's format, a CLIP image processor). It also serves
  ``pickscore``, which is a CLIP model.
* ``OUT/aesthetic``: the same CLIP folder plus ``sac+logos+ava1-l14-linearMSE.pth``, an MLP
  with the LAION predictor's layer layout sized to the tiny projection.
* ``OUT/hpsv2``: ``open_clip_config.json`` (a ViT-H-14-shaped open_clip config, scaled down) and
  ``HPS_v2.1_compressed.pt`` (``{"state_dict": ...}``, as HPSv2 ships it).
* ``OUT/imagereward``: ``ImageReward.pt`` with the official checkpoint's key names,
  ``med_config.json``, ``vision_config.json`` (the ViT size; the official model is ViT-L) and a
  BERT ``vocab.txt``.

All weights come from fixed seeds; the same command writes the same tensors.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

SEED = 4321
AESTHETIC_HEAD = "sac+logos+ava1-l14-linearMSE.pth"
HPS_FILES = {"v2.0": "HPS_v2_compressed.pt", "v2.1": "HPS_v2.1_compressed.pt"}

_WORDS = """a an the of and on in with one two three red green blue yellow purple orange white black grey
beige circle circles square squares triangle triangles background left right above below photo painting
of cat dog house tree sky sea mountain city street portrait art style detailed high quality"""

# width 64 with one head and a 4x MLP: the shape OpenAI's ``clip.model.build_model`` infers from a
# state dict (heads = width // 64), so the parity test can run the same weights through the
# ``clip`` package
CLIP_TEXT = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=1,
                 max_position_embeddings=77)
CLIP_VISION = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=1,
                   image_size=56, patch_size=14)
#: real-sized shapes with random weights, for speed benchmarks (benchmarks/encoders_speed.py):
#: (text config, vision config, projection dim, activation)
CLIP_SHAPES = {
    "tiny": (CLIP_TEXT, CLIP_VISION, 16, "quick_gelu"),
    # openai/clip-vit-large-patch14 (the clip and aesthetic baselines)
    "vit-l14": (dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                     max_position_embeddings=77),
                dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                     image_size=224, patch_size=14), 768, "quick_gelu"),
    # laion/CLIP-ViT-H-14-laion2B-s32B-b79K (PickScore v1)
    "vit-h14": (dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                     max_position_embeddings=77),
                dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                     image_size=224, patch_size=14), 1024, "gelu"),
}
OPEN_CLIP_CFG = {"embed_dim": 16,
                 "vision_cfg": {"image_size": 56, "layers": 2, "width": 32, "head_width": 16, "patch_size": 14},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _learn_merges(words: list[str], n_merges: int) -> list[tuple[str, str]]:
    """A few BPE merges in CLIP's convention (the last symbol of a word carries ``</w>``)."""
    corpus = Counter(tuple(w[:-1]) + (w[-1] + "</w>",) for w in words)
    merges = []
    for _ in range(n_merges):
        pairs: Counter = Counter()
        for word, freq in corpus.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += freq
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        new = Counter()
        for word, freq in corpus.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new[tuple(out)] += freq
        corpus = new
    return merges


def write_clip_tokenizer(out: Path) -> int:
    """vocab.json + merges.txt in CLIP's format; returns the vocabulary size."""
    chars = list(_bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars]
    merges = _learn_merges(_WORDS.split(), 120)
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    vocab = list(dict.fromkeys(vocab))
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return len(vocab)


def build_clip(out: Path | str, shape: str = "tiny") -> Path:
    """A random ``CLIPModel`` folder loadable offline by transformers 4.4x-5.x (``shape``: a
    :data:`CLIP_SHAPES` key; only ``tiny`` gets its weights spread for visible score gaps)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vocab_size = write_clip_tokenizer(out)
    tok = CLIPTokenizer(str(out / "vocab.json"), str(out / "merges.txt"), model_max_length=77)
    bos, eos = tok.convert_tokens_to_ids("<|startoftext|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    text, vision, projection, act = CLIP_SHAPES[shape]
    config = CLIPConfig(
        text_config=dict(text, vocab_size=vocab_size if shape == "tiny" else 49408, bos_token_id=bos,
                         eos_token_id=eos, pad_token_id=eos, hidden_act=act),
        vision_config=dict(vision, hidden_act=act), projection_dim=projection,
    )
    torch.manual_seed(SEED)
    model = CLIPModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2 and shape == "tiny":  # spread the weights so scores differ visibly
                p.normal_(0.0, 0.2)
            # float16-representable values, like OpenAI's released CLIP weights: the `clip`
            # package rounds every checkpoint through float16 on load (build_model), so only
            # such weights mean the same thing to both implementations
            p.copy_(p.half().float())
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    size = vision["image_size"]
    CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(out)
    return out


def build_aesthetic(out: Path | str, shape: str = "tiny") -> Path:
    """The tiny CLIP plus an MLP head with the LAION predictor's layout (``layers.0/2/4/6/7``)."""
    import torch
    from torch import nn

    out = build_clip(out, shape)
    width = json.loads((out / "config.json").read_text())["projection_dim"]
    torch.manual_seed(SEED + 1)
    mlp = nn.Sequential(nn.Linear(width, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                        nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))
    with torch.no_grad():  # unit gain per layer, so the scores of different images differ visibly
        for layer in mlp:
            if isinstance(layer, nn.Linear):
                layer.weight.normal_(0.0, layer.in_features ** -0.5)
                layer.bias.normal_(0.0, 0.1)
    sd = {f"layers.{k}": v for k, v in mlp.state_dict().items()}
    torch.save(sd, out / AESTHETIC_HEAD)
    return out


def build_hpsv2(out: Path | str, version: str = "v2.1", shape: str = "tiny") -> Path:
    """A tiny open_clip ViT (ViT-H-14's shape, scaled down; ``shape="full"``: ViT-H-14 itself)
    saved as HPSv2 ships its checkpoints."""
    import open_clip
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = OPEN_CLIP_CFG if shape == "tiny" else open_clip.get_model_config("ViT-H-14")
    torch.manual_seed(SEED + 2)
    model = open_clip.CLIP(**cfg, output_dict=True)
    (out / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": cfg,
         "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}},
        indent=2))
    torch.save({"state_dict": model.state_dict()}, out / HPS_FILES[version])
    return out


def build_imagereward(out: Path | str, shape: str = "tiny") -> Path:
    """A tiny ImageReward checkpoint with the official key names (see scorers/encoders/imagereward.py);
    ``shape="full"``: ViT-L/16 + BERT-base, the official sizes."""
    from prefbench.scorers.encoders.imagereward import build_tiny_checkpoint

    return build_tiny_checkpoint(Path(out), seed=SEED + 3, full=shape == "full")


BUILDERS = {"clip": build_clip, "aesthetic": build_aesthetic, "hpsv2": build_hpsv2, "imagereward": build_imagereward}


def build(name: str, out: Path, shape: str = "tiny") -> Path:
    """One baseline's folder; ``shape="full"`` gives the real model sizes with random weights."""
    if name == "hpsv2":
        return build_hpsv2(out, shape=shape)
    if name == "imagereward":
        return build_imagereward(out, shape)
    return BUILDERS[name](out, "tiny" if shape == "tiny" else "vit-l14")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefbench.testing.tiny_encoders", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="output folder (one sub-folder per baseline)")
    parser.add_argument("--only", default=",".join(BUILDERS), help=f"comma-separated subset of {','.join(BUILDERS)}")
    parser.add_argument("--shape", choices=["tiny", "full"], default="tiny",
                        help="full: the real model sizes, random weights (GBs; for speed benchmarks)")
    args = parser.parse_args(argv)
    for name in args.only.split(","):
        name = name.strip()
        if name not in BUILDERS:
            parser.error(f"unknown baseline {name!r}; choose from {', '.join(BUILDERS)}")
        print(build(name, Path(args.out) / name, args.shape))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
