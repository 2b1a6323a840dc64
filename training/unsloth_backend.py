"""The Unsloth fast path: ``FastVisionModel`` loads and LoRA-wraps the policy, TRL trains it.

Thin on purpose. Unsloth refuses vision models on the CPU, so this module only runs on a CUDA
GPU with ``pip install "prefbench[unsloth]"`` (which pins transformers/TRL to versions Unsloth
supports). It has not been run in this project's CI, which has no GPU: see docs/training.md, 'Backends'.
``unsloth`` must be imported before transformers and TRL so that its patches apply, which is
why :func:`prefbench.training.trainer.train` calls :func:`import_first` before anything else
imports them. The processor is the plain ``AutoProcessor`` (what the scorers load), not
Unsloth's.
"""

from __future__ import annotations


def import_first() -> None:
    """Import unsloth (it patches transformers and TRL on import)."""
    import unsloth  # noqa: F401


def load(model_path: str, *, lora: bool, lora_r: int, lora_alpha: int, lora_dropout: float, seed: int,
         max_seq_length: int):
    """The policy model: 16-bit weights; LoRA on the language layers' attention and MLP,
    vision tower frozen; or full fine-tuning when ``lora`` is False."""
    from unsloth import FastVisionModel  # noqa: I001  (must come before transformers/trl)

    model, _ = FastVisionModel.from_pretrained(
        model_path, load_in_4bit=False, max_seq_length=max_seq_length, full_finetuning=not lora,
        use_gradient_checkpointing="unsloth",
    )
    if lora:
        model = FastVisionModel.get_peft_model(
            model, finetune_vision_layers=False, finetune_language_layers=True, finetune_attention_modules=True,
            finetune_mlp_modules=True, r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, bias="none",
            random_state=seed,
        )
    FastVisionModel.for_training(model)
    return model


def save_merged(model, processor, out_dir: str) -> None:
    """Merged 16-bit weights + processor, loadable by plain transformers (and so by the scorers)."""
    if hasattr(model, "save_pretrained_merged"):
        model.save_pretrained_merged(out_dir, processor, save_method="merged_16bit")
    else:  # full fine-tuning: nothing to merge
        model.save_pretrained(out_dir)
        processor.save_pretrained(out_dir)
