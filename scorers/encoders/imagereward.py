"""``imagereward``: ImageReward v1.0 (Xu et al. 2023) ported onto transformers' BLIP classes.

Choice: a port, not a second environment. The ``image-reward`` package pins transformers<=4.55
(its BLIP text encoder ``med.py`` imports helpers transformers 5 removed), so instead its
checkpoint is loaded into the maintained ``BlipVisionModel`` (BLIP's ViT) and ``BlipTextModel``
(BLIP's ``med.py`` BertModel with cross-attention) through an explicit key mapping
(:func:`map_official_keys`). ``tests/scorers/test_encoders_parity.py`` checks the port against the
package's own ``ImageReward.score`` in a reference virtualenv.

The computation, as in ``ImageReward.score``:

    text  = BERT tokens of the prompt ([CLS] ... [SEP], padded to 35, truncated)
    image = CLIP-style transform (bicubic resize of the short side to 224 on the PIL image,
            centre crop, OpenAI mean/std) -> ViT-L/16 -> patch embeddings
    h     = text encoder with cross-attention to the image embeddings; h[:, 0] ([CLS])
    score = (MLP(h[:, 0]) - 0.16717362830052426) / 1.0333394966054072

Files: ``ImageReward.pt`` (a plain state dict, read with ``weights_only=True``) and
``med_config.json``, from a folder, a file path (``med_config.json`` beside it) or the hub repo
``THUDM/ImageReward``; the BERT tokenizer (``bert-base-uncased``, plus the ``[DEC]``/``[ENC]``
tokens BLIP adds) from ``vocab.txt`` in the model folder or ``-S tokenizer=``. The official model
is ViT-L (hard-coded there); a folder may carry ``vision_config.json`` for another size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from prefbench.scorers.encoders._common import EncoderScorer, clip_transform
from prefbench.weights import WeightsError, from_pretrained, hub_file, load_state_dict

CHECKPOINT = "ImageReward.pt"
MED_CONFIG = "med_config.json"
VISION_CONFIG = "vision_config.json"
#: ImageReward's reward normalisation (ImageReward.py)
REWARD_MEAN = 0.16717362830052426
REWARD_STD = 1.0333394966054072
MAX_TEXT_LENGTH = 35
#: BLIP's ``create_vit('large', 224)``
VIT_LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 224,
             "patch_size": 16, "mlp_ratio": 4.0}
#: checkpoint entries the scorer does not use (BLIP pre-training projections)
UNUSED_PREFIXES = ("blip.vision_proj.", "blip.text_proj.", "blip.text_encoder.embeddings.position_ids")

_VISION_RULES = [
    (r"^blip\.visual_encoder\.cls_token$", "vision.embeddings.class_embedding"),
    (r"^blip\.visual_encoder\.pos_embed$", "vision.embeddings.position_embedding"),
    (r"^blip\.visual_encoder\.patch_embed\.proj\.", "vision.embeddings.patch_embedding."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.norm1\.", r"vision.encoder.layers.\1.layer_norm1."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.norm2\.", r"vision.encoder.layers.\1.layer_norm2."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.attn\.qkv\.", r"vision.encoder.layers.\1.self_attn.qkv."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.attn\.proj\.", r"vision.encoder.layers.\1.self_attn.projection."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.mlp\.fc([12])\.", r"vision.encoder.layers.\1.mlp.fc\2."),
    (r"^blip\.visual_encoder\.norm\.", "vision.post_layernorm."),
    # BLIP's med.py BertModel and transformers' BlipTextModel share their module names
    (r"^blip\.text_encoder\.", "text."),
    (r"^mlp\.layers\.", "mlp.layers."),
]


def map_official_keys(state_dict: dict) -> tuple[dict, list[str]]:
    """Official ImageReward keys -> this port's keys; returns (mapped, ignored keys)."""
    mapped, ignored = {}, []
    for key, value in state_dict.items():
        if key.startswith(UNUSED_PREFIXES):
            ignored.append(key)
            continue
        for pattern, repl in _VISION_RULES:
            new, n = re.subn(pattern, repl, key)
            if n:
                mapped[new] = value
                break
        else:
            ignored.append(key)
    return mapped, ignored


def official_keys(state_dict: dict) -> dict:
    """The inverse mapping (this port -> official names); used to write tiny test checkpoints."""
    inverse = [
        (r"^vision\.embeddings\.class_embedding$", "blip.visual_encoder.cls_token"),
        (r"^vision\.embeddings\.position_embedding$", "blip.visual_encoder.pos_embed"),
        (r"^vision\.embeddings\.patch_embedding\.", "blip.visual_encoder.patch_embed.proj."),
        (r"^vision\.encoder\.layers\.(\d+)\.layer_norm1\.", r"blip.visual_encoder.blocks.\1.norm1."),
        (r"^vision\.encoder\.layers\.(\d+)\.layer_norm2\.", r"blip.visual_encoder.blocks.\1.norm2."),
        (r"^vision\.encoder\.layers\.(\d+)\.self_attn\.qkv\.", r"blip.visual_encoder.blocks.\1.attn.qkv."),
        (r"^vision\.encoder\.layers\.(\d+)\.self_attn\.projection\.", r"blip.visual_encoder.blocks.\1.attn.proj."),
        (r"^vision\.encoder\.layers\.(\d+)\.mlp\.fc([12])\.", r"blip.visual_encoder.blocks.\1.mlp.fc\2."),
        (r"^vision\.post_layernorm\.", "blip.visual_encoder.norm."),
        (r"^text\.", "blip.text_encoder."),
        (r"^mlp\.layers\.", "mlp.layers."),
    ]
    out = {}
    for key, value in state_dict.items():
        for pattern, repl in inverse:
            new, n = re.subn(pattern, repl, key)
            if n:
                out[new] = value
                break
        else:
            raise KeyError(f"no official name for {key}")
    return out


def build_model(med_config: dict, vision: dict):
    """The port as a torch module with ``vision``, ``text`` and ``mlp`` children."""
    from torch import nn
    from transformers import BlipTextConfig, BlipVisionConfig
    from transformers.models.blip.modeling_blip import BlipVisionModel
    from transformers.models.blip.modeling_blip_text import BlipTextModel

    vision_cfg = BlipVisionConfig(
        hidden_size=vision["hidden_size"], intermediate_size=int(vision["hidden_size"] * vision.get("mlp_ratio", 4.0)),
        num_hidden_layers=vision["num_hidden_layers"], num_attention_heads=vision["num_attention_heads"],
        image_size=vision["image_size"], patch_size=vision["patch_size"], hidden_act="gelu",
        layer_norm_eps=1e-6, attention_dropout=0.0)  # BLIP's ViT: exact GELU, LayerNorm eps 1e-6
    text_cfg = BlipTextConfig(
        vocab_size=med_config["vocab_size"], hidden_size=med_config["hidden_size"],
        encoder_hidden_size=vision["hidden_size"], intermediate_size=med_config["intermediate_size"],
        num_hidden_layers=med_config["num_hidden_layers"], num_attention_heads=med_config["num_attention_heads"],
        max_position_embeddings=med_config["max_position_embeddings"], hidden_act=med_config.get("hidden_act", "gelu"),
        layer_norm_eps=med_config.get("layer_norm_eps", 1e-12), hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, pad_token_id=med_config.get("pad_token_id", 0),
        bos_token_id=None, eos_token_id=None, sep_token_id=None,  # generation ids: unused by the encoder
        is_decoder=True)  # is_decoder builds the cross-attention blocks; forward runs bidirectionally

    class ImageRewardModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.vision = BlipVisionModel(vision_cfg)
            self.text = BlipTextModel(text_cfg, add_pooling_layer=False)
            width = med_config["hidden_size"]
            self.mlp = nn.Module()
            self.mlp.layers = nn.Sequential(
                nn.Linear(width, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

        def forward(self, pixel_values, input_ids, attention_mask):
            import torch

            image_embeds = self.vision(pixel_values=pixel_values).last_hidden_state
            image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
            out = self.text(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=image_embeds,
                            encoder_attention_mask=image_atts, is_decoder=False)
            reward = self.mlp.layers(out.last_hidden_state[:, 0, :].float())
            return ((reward - REWARD_MEAN) / REWARD_STD)[:, 0]

    return ImageRewardModel()


def add_blip_tokens(tokenizer):
    """BLIP's ``init_tokenizer``: ``[DEC]`` as BOS, ``[ENC]`` as an extra special token."""
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


class ImageRewardScorer(EncoderScorer):
    """ImageReward v1.0 (BLIP ViT-L + cross-attention BERT + MLP) on transformers' BLIP classes."""

    name = "imagereward"
    extra = "imagereward"

    def __init__(self, *, model: str | None = None, tokenizer: str | None = None, device: str = "auto",
                 dtype: str = "auto", image_batch: int = 64, workers: int = 4):
        """``model``: ImageReward.pt, a folder holding it and med_config.json, or a hub repo
        (default THUDM/ImageReward); ``tokenizer``: BERT tokenizer folder or hub id (default:
        the model folder if it has vocab.txt, else bert-base-uncased)."""
        super().__init__(model=model or "THUDM/ImageReward", device=device, dtype=dtype, image_batch=image_batch,
                         workers=workers)
        self.tokenizer = tokenizer

    def model_info(self) -> dict:
        return {"id": self.model, "revision": None, "file": CHECKPOINT, "tokenizer": self._tokenizer_source()}

    def _tokenizer_source(self) -> str:
        if self.tokenizer:
            return self.tokenizer
        local = Path(self.model).expanduser()
        folder = local if local.is_dir() else local.parent
        return str(folder) if (folder / "vocab.txt").is_file() else "bert-base-uncased"

    def _load(self) -> None:
        from transformers import BertTokenizer

        checkpoint = hub_file(self.model, CHECKPOINT, "imagereward checkpoint")
        med = hub_file(str(checkpoint.parent) if Path(self.model).expanduser().exists() else self.model,
                       MED_CONFIG, "imagereward med_config")
        med_config = json.loads(med.read_text())
        vision = dict(VIT_LARGE)
        if (checkpoint.parent / VISION_CONFIG).is_file():
            vision.update(json.loads((checkpoint.parent / VISION_CONFIG).read_text()))
        model = build_model(med_config, vision)
        mapped, _ = map_official_keys(load_state_dict(checkpoint, "imagereward checkpoint"))
        missing, unexpected = model.load_state_dict(mapped, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise WeightsError(f"imagereward: {checkpoint} does not fit the model: missing {missing[:6]}, "
                               f"unexpected {unexpected[:6]}")
        self._model = model.to(self._device, self._dtype).eval()
        self._model.mlp.float()  # the reward head runs in float32, as the reference does
        self._tok = add_blip_tokens(from_pretrained(BertTokenizer.from_pretrained, self._tokenizer_source(),
                                                    "imagereward tokenizer"))
        self._image_size = vision["image_size"]

    def _preprocess(self, image):
        return clip_transform(image, self._image_size)

    def _forward(self, pixels, prompts: Sequence[str]) -> list[float]:
        text = self._tok(list(prompts), padding="max_length", truncation=True, max_length=MAX_TEXT_LENGTH,
                         return_tensors="pt").to(self._device)
        scores = self._model(pixels.to(self._device, self._dtype), text.input_ids, text.attention_mask)
        return scores.float().cpu().tolist()


_TINY_WORDS = """a an the of and on in with one two three red green blue yellow purple orange white black grey beige
circle circles square squares triangle triangles background left right above below photo painting cat dog
house tree sky sea mountain city street portrait art style detailed high quality"""
TINY_VISION = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 224,
               "patch_size": 16, "mlp_ratio": 4.0}
#: the text width stays 768: the official ``ImageReward`` class hard-codes ``MLP(768)``
TINY_MED = {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 256,
            "layer_norm_eps": 1e-12, "max_position_embeddings": 64, "model_type": "bert",
            "num_attention_heads": 12, "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2,
            "encoder_width": 64, "add_cross_attention": True}


#: the official sizes: BERT-base with cross-attention (ImageReward's med_config.json)
FULL_MED = dict(TINY_MED, intermediate_size=3072, max_position_embeddings=512, num_hidden_layers=12,
                encoder_width=1024)


def build_tiny_checkpoint(out: Path, seed: int = 0, full: bool = False) -> Path:
    """A tiny random ImageReward folder: ImageReward.pt (official key names), med_config.json,
    vision_config.json and a BERT vocab.txt (with room for BLIP's [DEC] and [ENC]). ``full``:
    the official ViT-L/16 + BERT-base sizes (random weights, for speed benchmarks)."""
    import string

    import torch

    out.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.ascii_lowercase + string.digits)
    vocab += list(string.punctuation) + ["##" + c for c in string.ascii_lowercase + string.digits]
    vocab += list(dict.fromkeys(_TINY_WORDS.split()))
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # vocabulary: + [DEC], [ENC] as init_tokenizer adds them (the official 30524 when full)
    med = dict(FULL_MED, vocab_size=30524) if full else dict(TINY_MED, vocab_size=len(vocab) + 2)
    vision = VIT_LARGE if full else TINY_VISION
    (out / MED_CONFIG).write_text(json.dumps(med, indent=2))
    (out / VISION_CONFIG).write_text(json.dumps(vision, indent=2))
    torch.manual_seed(seed)
    model = build_model(med, vision)
    with torch.no_grad():  # visible spread between images; BLIP-style small normal init elsewhere
        for name, p in model.named_parameters():
            if p.dim() >= 2 or "embedding" in name:
                p.normal_(0.0, 0.1 if name.startswith("mlp") else (0.02 if full else 0.05))
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    torch.save(official_keys(sd), out / CHECKPOINT)
    return out
