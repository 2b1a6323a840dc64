"""Which library loads and wraps the policy model: Unsloth's ``FastVisionModel`` on a CUDA GPU
when ``unsloth`` is installed, plain transformers + PEFT otherwise. Both hand the model to the
same TRL ``GRPOTrainer``.

The choice is a pure function of (requested backend, device, what is importable) so that it is
tested on CPU; the Unsloth calls themselves live in :mod:`prefbench.training.unsloth_backend`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

#: LoRA on the language model's attention and MLP projections only (the vision tower stays
#: frozen), matching Unsloth's ``finetune_vision_layers=False, finetune_language_layers=True``;
#: each family's module paths come from its model profile (:mod:`prefbench.engines.profiles`)
from prefbench.engines.profiles import LANGUAGE_LORA_TARGETS, model_type_of, profile_for  # noqa: E402,F401  (LANGUAGE_LORA_TARGETS re-exported)
from prefbench.errors import UsageError


@dataclass(frozen=True)
class BackendChoice:
    name: str  # "transformers" | "unsloth"
    device: str  # "cpu" | "cuda"
    reason: str

    def to_json(self) -> dict:
        return {"name": self.name, "device": self.device, "reason": self.reason}


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def unsloth_installed() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def select_backend(requested: str = "auto", device: str = "auto", *, has_cuda: bool | None = None,
                   has_unsloth: bool | None = None, method: str = "grpo") -> BackendChoice:
    """Pick the backend and device; ``has_cuda``/``has_unsloth`` default to probing this machine.
    ``method="sft"`` never picks Unsloth (the SFT path is transformers').

    >>> select_backend("auto", "auto", has_cuda=True, has_unsloth=True).name
    'unsloth'
    >>> select_backend("auto", "auto", has_cuda=True, has_unsloth=False).reason
    'unsloth is not installed (pip install "prefbench[unsloth]")'
    >>> select_backend("auto", "auto", has_cuda=False, has_unsloth=True)
    BackendChoice(name='transformers', device='cpu', reason='no CUDA GPU (Unsloth needs one for vision models)')
    >>> select_backend("auto", "auto", has_cuda=True, has_unsloth=True, method="sft").reason
    'the SFT path runs on transformers'
    """
    has_cuda = cuda_available() if has_cuda is None else has_cuda
    has_unsloth = unsloth_installed() if has_unsloth is None else has_unsloth
    if device == "cuda" and not has_cuda:
        raise UsageError("--device cuda was asked for, but torch sees no CUDA GPU")
    dev = "cuda" if (device == "cuda" or (device == "auto" and has_cuda)) else "cpu"
    if requested == "transformers":
        return BackendChoice("transformers", dev, "asked for (--backend transformers)")
    if requested == "unsloth":
        if dev != "cuda":
            raise UsageError("--backend unsloth needs a CUDA GPU: Unsloth does not run vision models on the CPU")
        if not has_unsloth:
            raise UsageError('--backend unsloth needs unsloth: pip install "prefbench[unsloth]"')
        return BackendChoice("unsloth", dev, "asked for (--backend unsloth)")
    if requested != "auto":
        raise UsageError(f"unknown backend {requested!r}; use auto, transformers or unsloth")
    if dev != "cuda":
        return BackendChoice("transformers", dev, "no CUDA GPU (Unsloth needs one for vision models)")
    if not has_unsloth:
        return BackendChoice("transformers", dev, 'unsloth is not installed (pip install "prefbench[unsloth]")')
    if method == "sft":
        return BackendChoice("transformers", dev, "the SFT path runs on transformers")
    return BackendChoice("unsloth", dev, "CUDA GPU and unsloth available")


def load_transformers(model_path: str, *, device: str, lora: bool, lora_r: int, lora_alpha: int,
                      lora_dropout: float, max_pixels: int | None = None):
    """(model, processor, peft_config) with plain transformers; PEFT wraps the model inside
    ``GRPOTrainer`` when ``peft_config`` is not None."""
    import torch
    from transformers import AutoModelForImageTextToText

    from prefbench.weights import from_pretrained

    profile = profile_for(model_type_of(model_path))
    profile.check_trainable()
    processor = load_processor(model_path, max_pixels)
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    model = from_pretrained(AutoModelForImageTextToText.from_pretrained, model_path, "model to train",
                            hint="expected an image-text-to-text model such as Qwen2.5-VL", dtype=dtype)
    peft_config = None
    if lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, bias="none",
                                 target_modules=profile.lora_targets, task_type="CAUSAL_LM")
    return model, processor, peft_config


def load_processor(model_path: str, max_pixels: int | None = None):
    """The model's multimodal processor; a clear error when the folder has only a tokenizer.
    ``max_pixels`` caps image resolution (saved with the trained model's processor)."""
    from transformers import AutoProcessor, ProcessorMixin

    from prefbench.weights import WeightsError, from_pretrained

    needs = ("GRPO on images needs the model's processor files (processor_config.json or "
             "preprocessor_config.json, with the tokenizer) next to the weights")
    profile = profile_for(model_type_of(model_path))
    profile.processor_kwargs(max_pixels)  # a family without a pixel budget refuses --max-pixels before loading
    processor = from_pretrained(AutoProcessor.from_pretrained, model_path, "model to train",
                                hint=f"no multimodal processor: {needs}")
    if not isinstance(processor, ProcessorMixin) or getattr(processor, "image_processor", None) is None:
        raise WeightsError(f"model to train: {model_path} has no multimodal processor (found "
                           f"{type(processor).__name__}); {needs}")
    profile.cap_images(processor, max_pixels)  # saved with the trained model's processor
    return processor
