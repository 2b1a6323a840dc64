"""Score images with the *reference* implementations, for tests/scorers/test_encoders_parity.py.

Runs in the reference virtualenv (scripts/setup_reference_envs.sh: transformers 4.55,
``image-reward``, ``clip-anytorch`` (OpenAI's ``clip`` package), ``hpsv2``), never in the main
one. Usage::

    python run_reference.py SPEC.json  ->  JSON on stdout

SPEC: ``{"baseline": ..., "model": DIR, "cases": [{"prompt": str, "images": [path, ...]}]}``.
Output: ``{"scores": [[float per image] per case], ...extra facts the test checks}``.

Each baseline calls the reference code's own scoring entry point. What is patched, and only
because no hub is reachable: where a reference hard-codes a download (``clip.load("ViT-L/14")``,
HPSv2's pretrained ViT-H-14, BLIP's ``bert-base-uncased`` tokenizer and ViT-L), it is pointed at
the tiny checkpoint's files instead; the computation itself is untouched.
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
from pathlib import Path

import torch

TMP = Path(tempfile.mkdtemp(prefix="prefbench-ref-"))


# -- PickScore: the README's calc_probs, verbatim in substance ---------------------------------
def pickscore(spec):
    from PIL import Image
    from transformers import AutoModel, AutoProcessor

    device = spec.get("device", "cpu")
    processor = AutoProcessor.from_pretrained(spec.get("processor", spec["model"]))
    model = AutoModel.from_pretrained(spec["model"]).eval().to(device)

    def calc_probs(prompt, images):
        image_inputs = processor(images=images, padding=True, truncation=True, max_length=77,
                                 return_tensors="pt").to(device)
        text_inputs = processor(text=prompt, padding=True, truncation=True, max_length=77,
                                return_tensors="pt").to(device)
        with torch.no_grad():
            image_embs = model.get_image_features(**image_inputs)
            image_embs = image_embs / torch.norm(image_embs, dim=-1, keepdim=True)
            text_embs = model.get_text_features(**text_inputs)
            text_embs = text_embs / torch.norm(text_embs, dim=-1, keepdim=True)
            scores = model.logit_scale.exp() * (text_embs @ image_embs.T)[0]
            probs = torch.softmax(scores, dim=-1)
        return scores.cpu().tolist(), probs.cpu().tolist()

    def score_case(case):
        return calc_probs(case["prompt"], [Image.open(path) for path in case["images"]])[0]

    return score_case, {"image_processor": type(processor.image_processor).__name__}


# -- OpenAI CLIP (the `clip` package) with the tiny transformers CLIP's weights -----------------
def hf_clip_to_openai(model_dir: str) -> Path:
    """The tiny transformers CLIP's tensors under OpenAI CLIP's state-dict names."""
    from safetensors.torch import load_file

    hf = load_file(str(Path(model_dir) / "model.safetensors"))
    sd = {}

    def block(src: str, dst: str):
        n = len({k.split(".")[3] for k in hf if k.startswith(f"{src}.encoder.layers.")})
        for i in range(n):
            p, q = f"{src}.encoder.layers.{i}", f"{dst}.resblocks.{i}"
            sd[f"{q}.attn.in_proj_weight"] = torch.cat([hf[f"{p}.self_attn.{x}_proj.weight"] for x in "qkv"])
            sd[f"{q}.attn.in_proj_bias"] = torch.cat([hf[f"{p}.self_attn.{x}_proj.bias"] for x in "qkv"])
            for a, b in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                         ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                sd[f"{q}.{a}.weight"] = hf[f"{p}.{b}.weight"]
                sd[f"{q}.{a}.bias"] = hf[f"{p}.{b}.bias"]

    v = "vision_model"
    sd["visual.conv1.weight"] = hf[f"{v}.embeddings.patch_embedding.weight"]
    sd["visual.class_embedding"] = hf[f"{v}.embeddings.class_embedding"]
    sd["visual.positional_embedding"] = hf[f"{v}.embeddings.position_embedding.weight"]
    for a, b in (("visual.ln_pre", f"{v}.pre_layrnorm"), ("visual.ln_post", f"{v}.post_layernorm"),
                 ("ln_final", "text_model.final_layer_norm")):
        sd[f"{a}.weight"], sd[f"{a}.bias"] = hf[f"{b}.weight"], hf[f"{b}.bias"]
    sd["visual.proj"] = hf["visual_projection.weight"].T.contiguous()
    block(v, "visual.transformer")
    sd["token_embedding.weight"] = hf["text_model.embeddings.token_embedding.weight"]
    sd["positional_embedding"] = hf["text_model.embeddings.position_embedding.weight"]
    block("text_model", "transformer")
    sd["text_projection"] = hf["text_projection.weight"].T.contiguous()
    sd["logit_scale"] = hf["logit_scale"]
    path = TMP / "openai_clip.pt"
    torch.save(sd, path)
    return path


def patch_clip_package(model_dir: str):
    """Point ``clip.load("ViT-L/14")`` at the converted tiny weights and ``clip.tokenize`` at the
    tiny BPE (OpenAI's SimpleTokenizer, reading the tiny merges in OpenAI's gz format)."""
    import clip
    import clip.clip as clip_module
    from clip.simple_tokenizer import SimpleTokenizer

    weights = hf_clip_to_openai(model_dir)
    real_load = clip.load

    def load(name, device="cpu", jit=False, download_root=None):
        return real_load(str(weights), device=device, jit=False)

    clip.load = clip_module.load = load
    merges = (Path(model_dir) / "merges.txt").read_text(encoding="utf-8").rstrip("\n")
    bpe = TMP / "bpe_tiny.txt.gz"
    with gzip.open(bpe, "wt", encoding="utf-8") as fh:
        fh.write(merges)
    clip_module._tokenizer = SimpleTokenizer(str(bpe))


def clipscore(spec):
    """ImageReward's CLIP baseline: ``ImageReward.models.CLIPScore.score`` (cosine)."""
    patch_clip_package(spec["model"])
    from ImageReward.models.CLIPScore import CLIPScore

    model = CLIPScore(download_root=str(TMP), device=spec.get("device", "cpu")).to(spec.get("device", "cpu")).eval()

    def score_case(case):
        with torch.no_grad():
            return [model.score(case["prompt"], p) for p in case["images"]]

    return score_case, {}


def aesthetic(spec):
    """ImageReward's aesthetic baseline (the LAION predictor): ``AestheticScore.score``, loaded
    as ``ImageReward.load_score("Aesthetic")`` loads it."""
    patch_clip_package(spec["model"])
    from ImageReward.models.AestheticScore import MLP, AestheticScore

    device = spec.get("device", "cpu")
    model = AestheticScore(download_root=str(TMP), device=device)
    state_dict = torch.load(Path(spec["model"]) / "sac+logos+ava1-l14-linearMSE.pth", map_location="cpu")
    model.mlp = MLP(state_dict["layers.0.weight"].shape[1])  # the class hard-codes ViT-L/14's 768
    missing, unexpected = model.mlp.load_state_dict(state_dict, strict=False)
    model.to(device).eval()

    def score_case(case):
        with torch.no_grad():
            return [model.score(case["prompt"], p) for p in case["images"]]

    return score_case, {"missing": list(missing), "unexpected": list(unexpected)}


# -- HPSv2: hpsv2.img_score.score with the tiny open_clip model -------------------------------
def hpsv2(spec):
    from hpsv2 import img_score
    from hpsv2.src.open_clip import add_model_config, create_model_and_transforms

    if spec.get("antialias") is False:
        # torchvision<0.17 resized tensors without antialiasing when the caller did not say
        # (HPSv2 does not): emulate that default to check the scorer's antialias=False
        import torchvision.transforms.functional as F

        resize = F.resize
        F.resize = lambda img, size, interpolation, *a, **k: resize(img, size, interpolation, antialias=False)

    cfg = json.loads((Path(spec["model"]) / "open_clip_config.json").read_text())["model_cfg"]
    (TMP / "tiny-hps.json").write_text(json.dumps(cfg))
    add_model_config(str(TMP / "tiny-hps.json"))
    # initialize_model() with HPSv2's own arguments, minus the pretrained download
    model, _, preprocess_val = create_model_and_transforms(
        "tiny-hps", None, precision="amp", device=img_score.device, jit=False, force_quick_gelu=False,
        force_custom_text=False, force_patch_dropout=False, force_image_size=None, pretrained_image=False,
        image_mean=None, image_std=None, light_augmentation=True, aug_cfg={}, output_dict=True,
        with_score_predictor=False, with_region_predictor=False)
    img_score.model_dict["model"] = model
    img_score.model_dict["preprocess_val"] = preprocess_val
    ckpt = str(Path(spec["model"]) / "HPS_v2.1_compressed.pt")

    def score_case(case):
        # as HPSv2's evaluation calls it: the checkpoint is (re)loaded inside every score() call
        return [float(s) for s in img_score.score(case["images"], case["prompt"], cp=ckpt, hps_version="v2.1")]

    return score_case, {}


# -- ImageReward: the package's ImageReward.load + score --------------------------------------
def imagereward(spec):
    import ImageReward as RM
    from ImageReward.models.BLIP import blip_pretrain
    from ImageReward.models.BLIP.vit import VisionTransformer
    from transformers import BertTokenizer

    folder = Path(spec["model"])
    vis = json.loads((folder / "vision_config.json").read_text())

    def create_vit(vit, image_size, use_grad_checkpointing=False, ckpt_layer=0, drop_path_rate=0):
        # the package hard-codes ViT-L; same class, tiny size
        encoder = VisionTransformer(img_size=image_size, patch_size=vis["patch_size"], embed_dim=vis["hidden_size"],
                                    depth=vis["num_hidden_layers"], num_heads=vis["num_attention_heads"],
                                    mlp_ratio=vis["mlp_ratio"], use_grad_checkpointing=use_grad_checkpointing,
                                    ckpt_layer=ckpt_layer, drop_path_rate=0.1)
        return encoder, vis["hidden_size"]

    def init_tokenizer():
        # BLIP's init_tokenizer with the tiny vocab instead of bert-base-uncased from the hub
        tokenizer = BertTokenizer.from_pretrained(str(folder))
        tokenizer.add_special_tokens({"bos_token": "[DEC]"})
        tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
        tokenizer.enc_token_id = tokenizer.additional_special_tokens_ids[0]
        return tokenizer

    blip_pretrain.create_vit = create_vit
    blip_pretrain.init_tokenizer = init_tokenizer
    ckpt = folder / "ImageReward.pt"
    model = RM.load(str(ckpt), device=spec.get("device", "cpu"), med_config=str(folder / "med_config.json"))
    loaded = set(torch.load(ckpt, map_location="cpu"))
    not_loaded = sorted(set(model.state_dict()) - loaded)

    def score_case(case):
        with torch.no_grad():
            return [model.score(case["prompt"], p) for p in case["images"]]

    extra = {"not_loaded": not_loaded}
    if not spec.get("time"):
        with torch.no_grad():
            extra["inference_rank"] = [model.inference_rank(c["prompt"], c["images"])[1] for c in spec["cases"]]
    return score_case, extra


BASELINES = {"pickscore": pickscore, "clip": clipscore, "aesthetic": aesthetic, "hpsv2": hpsv2,
             "imagereward": imagereward}

def main(spec: dict) -> dict:
    """Scores of every case; with ``"time": true`` also the wall time of the scoring loop after
    one warm-up case (what benchmarks/encoders_speed.py compares against)."""
    import time

    score_case, result = BASELINES[spec["baseline"]](spec)
    if spec.get("time"):
        score_case(spec["cases"][0])
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    start = time.perf_counter()
    result["scores"] = [[float(x) for x in score_case(case)] for case in spec["cases"]]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    result["seconds"] = time.perf_counter() - start
    result["n_images"] = sum(len(c["images"]) for c in spec["cases"])
    return result


if __name__ == "__main__":
    result = main(json.loads(Path(sys.argv[1]).read_text()))
    result["versions"] = {"torch": torch.__version__, "transformers": __import__("transformers").__version__}
    sys.stdout.write("\n@@RESULT@@" + json.dumps(result) + "\n")
