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

The examples are :mod:`prefbench.training.examples`, the output folder and what it keeps
:mod:`prefbench.training.output`; this module configures TRL and runs it.
"""

from __future__ import annotations

import json
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
from prefbench.training.examples import (  # noqa: F401  (check_answer_tokens, sft_completion re-exported)
    check_answer_tokens,
    check_task_answers,
    example_messages,
    rating_scale,
    sft_completion,
    to_hf_dataset,
)
from prefbench.training.output import (  # noqa: F401  (CONFIG_NAME, RESUMABLE_CHANGES, last_checkpoint re-exported)
    CHECKPOINTS,
    CONFIG_NAME,
    RECORD_NAME,
    RESUMABLE_CHANGES,
    check_output,
    claim_output,
    last_checkpoint,
    model_identity,
    save_model,
    scorer_defaults,
    versions,
)
from prefbench.training.progress import readout_callback, reward_curves
from prefbench.training.tasks import build_task

SCHEMA_VERSION = 1


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
    from prefbench.training.backends import select_backend
    from prefbench.weights import check_model_folder

    sft = cfg.method == "sft"
    if sft and extra_reward_funcs:
        raise UsageError("reward functions apply to GRPO only; SFT learns from the answers themselves")
    check_model_folder(cfg.model, "model to train")  # before the dataset is read
    t_start = time.perf_counter()
    scale = rating_scale(cfg) if cfg.task == "rating" else None
    resume_from = check_output(cfg)
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

    model, processor, peft_config = _load_policy(cfg, choice)
    check_task_answers(getattr(processor, "tokenizer", processor), cfg.task, scale)
    dataset = to_hf_dataset(data, scale, sft=sft)

    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer, args, funcs, weights = _make_trainer(cfg, choice, model, processor, peft_config, dataset, sft,
                                                  extra_reward_funcs, callbacks)
    # under `accelerate launch` every process runs this; only the main one writes OUT's files
    is_main = trainer.accelerator.is_main_process
    if is_main:
        claim_output(cfg)
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
    save_format = save_model(trainer, processor, choice.name, out, cfg.lora) if is_main else None
    record = _record(cfg, trainer, args, result, data, choice, funcs, weights, scale, save_format, resume_from,
                     start_step, train_seconds, t_start)
    record = portable_values(record)  # the bundled id, paths relative to the current directory: no machine paths
    if is_main:
        # the store's atomic writer: a killed process leaves the old record or the new one, never half of one
        write_text_atomic(out / RECORD_NAME, json.dumps(record, indent=2, default=str) + "\n")
    return record


def _load_policy(cfg: TrainConfig, choice):
    """(model, processor, peft_config) of the policy on ``choice``'s backend: Unsloth's LoRA model
    (its own PEFT set-up), or transformers + PEFT."""
    from prefbench.training.backends import load_transformers

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
    return model, processor, peft_config


def _make_trainer(cfg: TrainConfig, choice, model, processor, peft_config, dataset, sft: bool,
                  extra_reward_funcs: Sequence[Callable], callbacks: Sequence[Any]):
    """TRL's ``SFTTrainer`` or ``GRPOTrainer`` for ``cfg``, with its args, reward functions and
    their weights (none for SFT)."""
    from prefbench.training.rewards import reward_functions

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
    return trainer, args, funcs, weights


#: the TRL settings a training record keeps
TRL_SETTINGS = ("learning_rate", "num_generations", "max_completion_length", "temperature", "beta",
                "per_device_train_batch_size", "gradient_accumulation_steps", "reward_weights", "max_steps",
                "lr_scheduler_type", "seed", "bf16", "completion_only_loss")


def trl_settings(args) -> dict[str, Any]:
    """The :data:`TRL_SETTINGS` that ``args`` (a ``GRPOConfig`` or ``SFTConfig``) has: SFT has no
    ``num_generations``, GRPO no ``completion_only_loss``.

    >>> from types import SimpleNamespace
    >>> trl_settings(SimpleNamespace(learning_rate=1e-05, seed=0, output_dir="out"))
    {'learning_rate': 1e-05, 'seed': 0}
    """
    return {k: getattr(args, k) for k in TRL_SETTINGS if hasattr(args, k)}


def _record(cfg: TrainConfig, trainer, args, result, data, choice, funcs, weights, scale, save_format: str | None,
            resume_from: Path | None, start_step: int, train_seconds: float, t_start: float) -> dict[str, Any]:
    """The ``prefbench_train.json`` record of a finished run (before :func:`portable_values`)."""
    steps_run = trainer.state.global_step - start_step
    samples = steps_run * args.per_device_train_batch_size * args.gradient_accumulation_steps
    return {
        "schema_version": SCHEMA_VERSION,
        "task": cfg.task,
        "method": cfg.method,
        "config": cfg.to_json(),
        "trl_args": trl_settings(args),
        "base_model": model_identity(cfg.model),
        "dataset": data.summary(),
        "backend": choice.to_json(),
        "rewards": [getattr(f, "__name__", type(f).__name__) for f in funcs],
        "reward_weights": weights,
        "scorer_defaults": scorer_defaults(cfg, scale),
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
        "versions": versions(),
        "git_commit": GitInfo(**git_commit()).commit,  # the run record's provenance type (runs keep the dirty flag too)
    }
