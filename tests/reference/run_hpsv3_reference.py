"""Score images with the official HPSv3 package, for tests/scorers/test_hpsv3_parity.py.

Runs in the hpsv3 reference virtualenv (scripts/setup_reference_envs.sh: hpsv3 1.0.0 on
transformers 4.45.2), never in the main one. Usage::

    python run_hpsv3_reference.py SPEC.json  ->  '@@RESULT@@' + JSON on stdout

SPEC: ``{"model": DIR, "config": YAML_OUT, "batches": [[{"image": path, "prompt": str}, ...], ...]}``.
DIR is a tiny HPSv3 folder (prefbench.testing.tiny_hpsv3): the base model and HPSv3.safetensors.
With ``"timing": {"batch": B}`` it also times ``reward`` over all the cases one image per call and
in calls of B images (after one warm-up call), for benchmarks/hpsv3_speed.py.
Output: ``{"outputs": [[[mu, log_sigma] per case] per batch], "versions": {...}, "prompt_source": the
installed data_collator_qwen.py}``.

The package's own config (``hpsv3/config/HPSv3_7B.yaml``) is written to YAML_OUT with only what a
CPU run needs changed: ``model_name_or_path`` = DIR, float32 instead of bfloat16, no flash
attention, no TensorBoard. Then ``HPSv3RewardInferencer(config_path, checkpoint_path, device='cpu')``
and its ``reward(image_paths, prompts)``, one call per batch, as a user calls them.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml


def main(spec_path: str) -> None:
    import hpsv3
    import transformers
    from hpsv3 import HPSv3RewardInferencer

    spec = json.loads(Path(spec_path).read_text())
    default = Path(hpsv3.__file__).parent / "config" / "HPSv3_7B.yaml"
    config = yaml.safe_load(default.read_text())
    config.update(model_name_or_path=spec["model"], bf16=False, torch_dtype="float32", disable_flash_attn2=True,
                  gradient_checkpointing=False, report_to="none", dataloader_num_workers=0,
                  output_dir=tempfile.mkdtemp(prefix="hpsv3-ref-"))
    Path(spec["config"]).write_text(yaml.safe_dump(config))
    inferencer = HPSv3RewardInferencer(config_path=spec["config"],
                                       checkpoint_path=str(Path(spec["model"]) / "HPSv3.safetensors"), device="cpu")
    outputs = []
    with torch.no_grad():
        for batch in spec["batches"]:
            rewards = inferencer.reward([c["image"] for c in batch], [c["prompt"] for c in batch])
            outputs.append(rewards.float().tolist())
    timing = None
    if spec.get("timing"):  # benchmarks/hpsv3_speed.py: one image per call, then batches of B
        cases = [c for batch in spec["batches"] for c in batch]
        step = int(spec["timing"]["batch"])
        with torch.no_grad():
            inferencer.reward([cases[0]["image"]], [cases[0]["prompt"]])  # warm-up
            start = time.perf_counter()
            for c in cases:
                inferencer.reward([c["image"]], [c["prompt"]])
            single = time.perf_counter() - start
            start = time.perf_counter()
            for k in range(0, len(cases), step):
                chunk = cases[k:k + step]
                inferencer.reward([c["image"] for c in chunk], [c["prompt"] for c in chunk])
            batched = time.perf_counter() - start
        timing = {"images": len(cases), "batch": step, "one_at_a_time_s": single, "batched_s": batched}
    collator = Path(hpsv3.__file__).parent / "dataset" / "data_collator_qwen.py"
    versions = {"transformers": transformers.__version__, "torch": torch.__version__,
                "dtype": str(next(inferencer.model.parameters()).dtype)}
    print("@@RESULT@@" + json.dumps({"outputs": outputs, "versions": versions, "prompt_source": str(collator),
                                     "timing": timing}))


if __name__ == "__main__":
    main(sys.argv[1])
