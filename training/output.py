"""A training run's output folder: refusing to overwrite a run, resuming one (the config must
match, the newest complete checkpoint is found), and what the finished run leaves there (the
model, merged so that transformers alone loads it, and the record's provenance blocks).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prefbench.errors import UsageError
from prefbench.training.config import TrainConfig

RECORD_NAME = "prefbench_train.json"
CONFIG_NAME = "prefbench_train_config.json"  # written at start; --resume checks it
CHECKPOINTS = "checkpoints"

#: config fields that may change on --resume (everything else must match the first run)
RESUMABLE_CHANGES = {"resume", "max_steps", "epochs", "save_steps", "save_total_limit", "logging_steps", "progress"}


def last_checkpoint(out: Path) -> Path | None:
    """The newest ``checkpoint-N`` with a readable ``trainer_state.json`` (the trainer writes it
    last, so a checkpoint cut short by a kill, even mid-way through that file, is skipped)."""
    root = out / CHECKPOINTS
    found = []
    for p in root.glob("checkpoint-*") if root.is_dir() else []:
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and _readable_state(p / "trainer_state.json"):
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def _readable_state(path: Path) -> bool:
    try:
        return "global_step" in json.loads(path.read_text())
    except (OSError, ValueError):
        return False


def check_output(cfg: TrainConfig) -> Path | None:
    """Refuse to overwrite a run; on resume, check the config matches and return the
    checkpoint to resume from. Writes nothing (see :func:`claim_output`)."""
    out = Path(cfg.output)
    saved = out / CONFIG_NAME
    if not cfg.resume:
        if saved.is_file() or (out / CHECKPOINTS).exists():
            raise UsageError(f"{out} already holds a training run; pass --resume to continue it, "
                             "or choose another --output")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise UsageError(f"--output {out} exists and is not an empty folder; choose a new one")
        return None
    if not saved.is_file():
        raise UsageError(f"--resume: {out} holds no training run ({CONFIG_NAME} missing)")
    before = json.loads(saved.read_text())
    now = cfg.to_json()
    changed = sorted(k for k in set(before) | set(now)
                     if k not in RESUMABLE_CHANGES and k != "resolved" and before.get(k) != now.get(k))
    if changed:
        detail = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise UsageError(f"--resume with a different configuration ({detail}); resume with the same options")
    return last_checkpoint(out)


def claim_output(cfg: TrainConfig) -> None:
    """Create OUT and record the config, once everything before training has succeeded."""
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    if not cfg.resume:
        (out / CONFIG_NAME).write_text(json.dumps(cfg.to_json(), indent=2) + "\n")


def save_model(trainer, processor, backend: str, out: Path, lora: bool) -> str:
    """The final model in OUT, loadable by transformers alone (so by every VLM scorer)."""
    if backend == "unsloth":
        from prefbench.training import unsloth_backend

        unsloth_backend.save_merged(trainer.model, processor, str(out))
        return "merged"
    model = trainer.accelerator.unwrap_model(trainer.model)
    if lora and hasattr(model, "merge_and_unload"):
        model.save_pretrained(out / "adapter")  # adapter_config.json records base_model_name_or_path
        model = model.merge_and_unload()
        fmt = "merged+adapter"
    else:
        fmt = "full"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return fmt


def scorer_defaults(cfg: TrainConfig, scale) -> dict[str, Any]:
    """How to score this model with the prompts it was trained on. ``prompt_template_hash`` is
    the scorer's own, so it equals ``run.json``'s ``prompt_template_hash`` of a run that scores
    with the same prompts (default options, plus ``-S scale=...`` for a non-default scale)."""
    from prefbench.registry import lookup
    from prefbench.scorers.vlm.prompts import DEFAULT_TEMPLATES

    scorer = "expected_rating" if cfg.task == "rating" else "anchor_pairwise"
    options = {"scale": str(scale)} if scale is not None else {}
    out: dict[str, Any] = {"task": cfg.task, "scorer": scorer, "template": DEFAULT_TEMPLATES[cfg.task], **options}
    if scale is not None:
        out["rating_scale"] = str(scale)
    try:  # builds the scorer object only (no weights): its hash covers template, scale and answer tokens
        out["prompt_template_hash"] = lookup(scorer).load()(model=cfg.output, **options).prompt_template_hash()
    except Exception as exc:  # a scorer-side problem must not lose a finished training run
        out["prompt_template_hash"] = None
        out["prompt_template_hash_error"] = repr(exc)
    return out


def model_identity(model: str) -> dict[str, Any]:
    """The base model as run.json records a scored one: id and revision (the same fingerprint)."""
    from prefbench.provenance import model_fingerprint

    path = Path(model)
    out: dict[str, Any] = {"id": model, "revision": model_fingerprint(model),
                           "local_path": str(path.resolve()) if path.exists() else None}
    cfg_file = path / "config.json"
    if cfg_file.is_file():
        import hashlib

        out["config_sha256"] = hashlib.sha256(cfg_file.read_bytes()).hexdigest()
    return out


def versions() -> dict[str, str | None]:
    """The versions of the training stack's packages (None for one not installed)."""
    from prefbench.provenance import package_versions

    return package_versions(("torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth"))
