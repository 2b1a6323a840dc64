"""GRPO training of a reasoning VLM scorer: TRL's ``GRPOTrainer``, configured, not rewritten.

``train(TrainConfig(...))`` builds the task's examples, loads the policy (Unsloth on a CUDA GPU
when installed, else transformers + PEFT), trains with the paper's rewards and writes OUT.
``method="sft"`` trains the supervised baseline instead, with TRL's ``SFTTrainer`` on the same
examples, prompts and answer format (:func:`sft_completion`), transformers backend only. OUT holds:

* the merged model + processor (what ``prefbench run --model OUT`` loads), and for LoRA runs
  the adapter alone under ``OUT/adapter/`` (its ``adapter_config.json`` names the base model);
* ``OUT/prefbench_train.json``: config, dataset hash, base model, backend, per-reward and KL
  curves (SFT: loss and token accuracy), steps, wall time, and ``scorer_defaults`` (the
  template and rating scale the model was trained with: score it with the same, e.g.
  ``-S scale=1-7``);
* ``OUT/checkpoints/checkpoint-N/``: periodic TRL checkpoints; ``resume=True`` continues from
  the newest complete one.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prefbench.errors import UsageError
from prefbench.provenance import git_commit, portable_values
from prefbench.record import GitInfo
from prefbench.store import write_text_atomic
from prefbench.training.config import PROGRESS_KEY, TrainConfig
from prefbench.training.progress import readout_callback, reward_curves
from prefbench.training.tasks import TaskData, build_task

SCHEMA_VERSION = 1
RECORD_NAME = "prefbench_train.json"
CONFIG_NAME = "prefbench_train_config.json"  # written at start; --resume checks it
CHECKPOINTS = "checkpoints"

#: config fields that may change on --resume (everything else must match the first run)
RESUMABLE_CHANGES = {"resume", "max_steps", "epochs", "save_steps", "save_total_limit", "logging_steps", "progress"}


# -- data -----------------------------------------------------------------------------------
def rating_scale(cfg: TrainConfig):
    from prefbench.scorers.vlm.prompts import RatingScale

    try:
        return RatingScale(cfg.rating_min, cfg.resolved_rating_max())
    except ValueError as exc:
        raise UsageError(f"rating scale {cfg.rating_min}-{cfg.resolved_rating_max()}: {exc}") from None


def example_messages(task: str, prompt: str, scale) -> list[dict]:
    """The chat messages of one example: exactly what the scorers render at scoring time."""
    from prefbench.scorers.vlm.prompts import pairwise_messages, rating_messages

    return rating_messages(prompt, scale) if task == "rating" else pairwise_messages(prompt)


def sft_completion(target: int) -> list[dict]:
    """SFT's assistant turn for an example whose correct answer is ``target``: an empty reasoning
    block, then the answer — the text the scorers themselves force when the reasoning budget is 0
    (``PREFILL_ANSWER``), so the soft read-out finds the answer where it expects it.

    >>> sft_completion(4)[0]["content"]
    '<think>\\n</think>\\n<answer>4</answer>'
    """
    from prefbench.scorers.vlm.prompts import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

    return [{"role": "assistant", "content": f"{THINK_OPEN}\n{THINK_CLOSE}\n{ANSWER_OPEN}{int(target)}{ANSWER_CLOSE}"}]


def to_hf_dataset(data: TaskData, scale=None, sft: bool = False):
    """A ``datasets.Dataset`` with TRL's columns: ``prompt`` (chat messages with image
    placeholders), ``images`` (decoded lazily, RGB), plus ``target``/``choices`` for the rewards;
    with ``sft``, also ``completion`` (:func:`sft_completion`), SFTTrainer's target turn."""
    import datasets

    from prefbench.data.images import resolve_inside

    def image_cell(ref):
        if ref.path is not None:  # the checked real path (inside the data dir unless allowed)
            return {"path": resolve_inside(ref.path, ref.root), "bytes": None}
        return {"path": None, "bytes": ref.read_bytes()}

    rows = {
        "example_id": [ex.example_id for ex in data.examples],
        "prompt": [example_messages(data.task, ex.prompt, scale) for ex in data.examples],
        "images": [[image_cell(r) for r in ex.images] for ex in data.examples],
        "target": [int(ex.target) for ex in data.examples],
        "choices": [list(ex.choices) for ex in data.examples],
    }
    if sft:
        rows["completion"] = [sft_completion(ex.target) for ex in data.examples]
    ds = datasets.Dataset.from_dict({k: v for k, v in rows.items() if k != "images"})
    images = datasets.Dataset.from_dict({"images": rows["images"]},
                                        features=datasets.Features({"images": datasets.List(datasets.Image(mode="RGB"))}))
    return datasets.concatenate_datasets([ds, images], axis=1)


def check_answer_tokens(tokenizer, answers: Sequence[str], what: str) -> None:
    """Each answer must be one token, or the soft read-out (and this training target) is not
    expressible; e.g. a 1-10 scale fails because "10" is two tokens."""
    bad = {a: tokenizer.encode(a, add_special_tokens=False) for a in answers}
    bad = {a: ids for a, ids in bad.items() if len(ids) != 1}
    if bad:
        detail = ", ".join(f"{a!r} -> {len(ids)} tokens" for a, ids in bad.items())
        raise UsageError(f"{what} cannot be expressed as single tokens by this model's tokenizer ({detail}); "
                         "choose a scale whose values are single tokens (single digits for Qwen)")


# -- output folder --------------------------------------------------------------------------
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


def _check_output(cfg: TrainConfig) -> Path | None:
    """Refuse to overwrite a run; on resume, check the config matches and return the
    checkpoint to resume from. Writes nothing (see :func:`_claim_output`)."""
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


def _claim_output(cfg: TrainConfig) -> None:
    """Create OUT and record the config, once everything before training has succeeded."""
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    if not cfg.resume:
        (out / CONFIG_NAME).write_text(json.dumps(cfg.to_json(), indent=2) + "\n")


# -- TRL configuration ----------------------------------------------------------------------
def _trainer_kwargs(cfg: TrainConfig, device: str, output_dir: Path) -> dict[str, Any]:
    """The settings GRPO and SFT share (optimiser, schedule, checkpoints, device)."""
    import torch

    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    return dict(
        output_dir=str(output_dir), seed=cfg.seed, learning_rate=cfg.resolved_learning_rate(),
        per_device_train_batch_size=cfg.resolved_batch_size(),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_steps=cfg.max_steps, num_train_epochs=cfg.epochs, logging_steps=cfg.logging_steps,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        report_to="none", use_cpu=device == "cpu", bf16=bf16, fp16=False,
        disable_tqdm=not cfg.progress, dataloader_num_workers=0,
    )


def _with_overrides(config_cls, kwargs: dict[str, Any], cfg: TrainConfig, device: str, backend: str):
    """``config_cls(**kwargs)`` with ``cfg.trl`` applied on top; unknown names fail."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_cls)}
    # recomputing activations only pays off for large models on a GPU (renamed in transformers 5.x);
    # Unsloth has already set up its own checkpointing in from_pretrained
    kwargs["activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"] = (
        device == "cuda" and backend != "unsloth")
    unknown = sorted(set(cfg.trl) - names)
    if unknown:
        raise UsageError(f"unknown TRL {config_cls.__name__} option(s) {', '.join(unknown)} (-T key=value)")
    kwargs.update(cfg.trl)
    try:
        return config_cls(**kwargs)
    except ValueError as exc:
        raise UsageError(f"invalid {cfg.method.upper()} settings: {exc}") from None


def grpo_args(cfg: TrainConfig, device: str, output_dir: Path, reward_weights: list[float],
              backend: str = "transformers"):
    """The ``trl.GRPOConfig`` for ``cfg``; ``cfg.trl`` entries override, unknown ones fail."""
    from trl import GRPOConfig

    kwargs = _trainer_kwargs(cfg, device, output_dir)
    kwargs.update(num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
                  temperature=cfg.temperature, beta=cfg.beta, reward_weights=reward_weights)
    return _with_overrides(GRPOConfig, kwargs, cfg, device, backend)


def sft_args(cfg: TrainConfig, device: str, output_dir: Path):
    """The ``trl.SFTConfig`` for ``cfg``: loss on the answer turn only, no truncation (cutting a
    prompt would cut its image tokens); ``cfg.trl`` entries override, unknown ones fail."""
    from trl import SFTConfig

    kwargs = _trainer_kwargs(cfg, device, output_dir)
    kwargs.update(completion_only_loss=True, max_length=None)
    return _with_overrides(SFTConfig, kwargs, cfg, device, "transformers")


# -- the run --------------------------------------------------------------------------------
def train(cfg: TrainConfig, *, extra_reward_funcs: Sequence[Callable] = (),
          callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Run GRPO (or SFT, ``cfg.method``) for ``cfg``; returns (and writes) the
    ``prefbench_train.json`` record.

    ``extra_reward_funcs`` are added to the paper's rewards with weight 1 (e.g. a shaping
    reward of your own; GRPO only); ``callbacks`` are TRL/transformers ``TrainerCallback`` objects.
    """
    from prefbench.registry import require_extra

    require_extra("train", "prefbench train")  # torch, transformers, trl, datasets: before any work
    if not cfg.progress:
        from prefbench.weights import quiet_progress_bars

        quiet_progress_bars()
    from prefbench.training.backends import load_transformers, select_backend
    from prefbench.training.rewards import reward_functions
    from prefbench.weights import check_model_folder

    sft = cfg.method == "sft"
    if sft and extra_reward_funcs:
        raise UsageError("reward functions apply to GRPO only; SFT learns from the answers themselves")
    check_model_folder(cfg.model, "model to train")  # before the dataset is read
    t_start = time.perf_counter()
    scale = rating_scale(cfg) if cfg.task == "rating" else None
    resume_from = _check_output(cfg)
    if cfg.resume and resume_from is None:
        print(f"prefbench train: --resume: no complete checkpoint in {Path(cfg.output) / CHECKPOINTS}; "
              "starting from step 0", file=sys.stderr)
    choice = select_backend(cfg.backend, cfg.device, method=cfg.method)
    from prefbench.engines.profiles import model_type_of, profile_for

    profile_for(model_type_of(cfg.model)).check_trainable()  # a family that cannot train: say so before the data
    data = build_task(cfg.task, cfg.dataset, cfg.split, cfg.data_dir, rating_min=cfg.rating_min,
                      rating_max=cfg.resolved_rating_max(), fraction=cfg.fraction, seed=cfg.seed, limit=cfg.limit,
                      allow_outside_data_dir=cfg.allow_outside_data_dir)
    print(f"prefbench train: {cfg.method.upper()} with backend {choice.name} on {choice.device} ({choice.reason}); "
          f"{len(data.examples)} {cfg.task} examples from {cfg.dataset}/{cfg.split}", file=sys.stderr)

    if choice.name == "unsloth":
        from prefbench.training import unsloth_backend
        from prefbench.training.backends import load_processor

        unsloth_backend.import_first()  # before transformers and TRL, so that Unsloth's patches apply
        # the plain AutoProcessor, as the scorers load it: checked before the model loads
        processor = load_processor(cfg.model, cfg.max_pixels)
        model = unsloth_backend.load(
            cfg.model, lora=cfg.lora, lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
            seed=cfg.seed, max_seq_length=4096 + cfg.max_completion_length)
        peft_config = None
    else:
        model, processor, peft_config = load_transformers(
            cfg.model, device=choice.device, lora=cfg.lora, lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout, max_pixels=cfg.max_pixels)
    tokenizer = getattr(processor, "tokenizer", processor)
    if cfg.task == "rating":
        check_answer_tokens(tokenizer, scale.tokens, f"rating scale {scale}")
    else:
        from prefbench.scorers.vlm.prompts import PAIRWISE_TOKENS

        check_answer_tokens(tokenizer, PAIRWISE_TOKENS, "the pairwise answers")
    dataset = to_hf_dataset(data, scale, sft=sft)

    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    if sft:
        from trl import SFTTrainer

        funcs, weights = [], []
        args = sft_args(cfg, choice.device, Path(cfg.output) / CHECKPOINTS)
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor,
                             peft_config=peft_config, callbacks=list(callbacks))
    else:
        from trl import GRPOTrainer

        funcs, weights = reward_functions(cfg.resolved_reward_weights())
        funcs, weights = funcs + list(extra_reward_funcs), weights + [1.0] * len(extra_reward_funcs)
        args = grpo_args(cfg, choice.device, Path(cfg.output) / CHECKPOINTS, weights, choice.name)
        trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset,
                              processing_class=processor, peft_config=peft_config, callbacks=list(callbacks))
    # under `accelerate launch` every process runs this; only the main one writes OUT's files
    is_main = trainer.accelerator.is_main_process
    if is_main:
        _claim_output(cfg)
    for noisy in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(noisy)
    trainer.add_callback(readout_callback(cfg.progress, key=PROGRESS_KEY[cfg.method]))
    t_train = time.perf_counter()
    start_step = 0
    if resume_from is not None:
        start_step = json.loads((resume_from / "trainer_state.json").read_text()).get("global_step", 0)
        print(f"prefbench train: resuming from {resume_from} (step {start_step})", file=sys.stderr)
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.perf_counter() - t_train

    out = Path(cfg.output)
    trainer.accelerator.wait_for_everyone()
    save_format = _save(trainer, processor, choice.name, out, cfg.lora) if is_main else None
    steps_run = trainer.state.global_step - start_step
    samples = steps_run * args.per_device_train_batch_size * args.gradient_accumulation_steps
    record = {
        "schema_version": SCHEMA_VERSION,
        "task": cfg.task,
        "method": cfg.method,
        "config": cfg.to_json(),
        "trl_args": {k: getattr(args, k) for k in ("learning_rate", "num_generations", "max_completion_length",
                                                   "temperature", "beta", "per_device_train_batch_size",
                                                   "gradient_accumulation_steps", "reward_weights", "max_steps",
                                                   "lr_scheduler_type", "seed", "bf16", "completion_only_loss")
                     if hasattr(args, k)},
        "base_model": _model_identity(cfg.model),
        "dataset": data.summary(),
        "backend": choice.to_json(),
        "rewards": [getattr(f, "__name__", type(f).__name__) for f in funcs],
        "reward_weights": weights,
        "scorer_defaults": _scorer_defaults(cfg, scale),
        "output": {"format": save_format, "adapter": "adapter" if save_format == "merged+adapter" else None},
        "steps": trainer.state.global_step,
        "resumed_from_step": start_step if resume_from is not None else None,
        "steps_this_run": steps_run,
        "train_seconds_this_run": round(train_seconds, 3),
        "wall_seconds_this_run": round(time.perf_counter() - t_start, 3),
        "steps_per_second": round(steps_run / train_seconds, 4) if train_seconds > 0 else None,
        "samples_per_second": round(samples / train_seconds, 4) if train_seconds > 0 else None,
        "train_loss": result.training_loss,
        "curves": reward_curves(trainer.state.log_history, key=PROGRESS_KEY[cfg.method]),
        "versions": _versions(),
        "git_commit": GitInfo(**git_commit()).commit,  # the run record's provenance type (runs keep the dirty flag too)
    }
    record = portable_values(record)  # the bundled id, paths relative to the current directory: no machine paths
    if is_main:
        # the store's atomic writer: a killed process leaves the old record or the new one, never half of one
        write_text_atomic(out / RECORD_NAME, json.dumps(record, indent=2, default=str) + "\n")
    return record


def _save(trainer, processor, backend: str, out: Path, lora: bool) -> str:
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


def _scorer_defaults(cfg: TrainConfig, scale) -> dict[str, Any]:
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


def _model_identity(model: str) -> dict[str, Any]:
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


def _versions() -> dict[str, str | None]:
    from prefbench.provenance import package_versions

    return package_versions(("torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth"))
