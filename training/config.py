"""``TrainConfig``: everything one training run (GRPO, or the SFT baseline) needs, validated up
front, recorded in ``prefbench_train.json`` so that a run can be repeated from that file alone."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from prefbench.config_fields import OUTSIDE_HELP, option, positive_int
from prefbench.errors import UsageError

TASKS = ("rating", "pairwise")
#: grpo: the paper's method (reason, then answer; rewarded by the answer). sft: the supervised
#: baseline the paper contrasts it with (Chu et al. 2025, "SFT memorizes, RL generalizes"):
#: cross-entropy on the correct answer after an empty reasoning block, no rollouts.
METHODS = ("grpo", "sft")
#: the log entry each method reports per step (progress lines, curves, the CLI's summary)
PROGRESS_KEY = {"grpo": "reward", "sft": "loss"}
#: SFT's per-device batch when --batch-size is not given (GRPO's default is one prompt's group)
SFT_BATCH_SIZE = 8
BACKENDS = ("auto", "transformers", "unsloth")

#: The paper's rewards (sec. 4): ImageReward ratings use format + exact + approximate match;
#: HPSv2 pairwise comparisons use format + exact match.
DEFAULT_REWARD_WEIGHTS: dict[str, dict[str, float]] = {
    "rating": {"format": 1.0, "exact": 1.0, "approx": 1.0},
    "pairwise": {"format": 1.0, "exact": 1.0},
}

#: ImageRewardDB's ``overall_rating`` runs 1-7; other sources default to the scorers' 1-5.
#: the top of the rating scale for a dataset whose registry entry names none
DEFAULT_RATING_MAX = 5


@dataclass
class TrainConfig:
    """One training run (``prefbench train`` builds this from its options).

    ``trl`` holds extra :class:`trl.GRPOConfig` fields (``-T key=value``); they override what
    this config derives, and unknown names are an error (:class:`trl.SFTConfig` fields when
    ``method`` is ``sft``). The GRPO-only fields (generations, temperature, beta, rewards) are
    ignored by SFT.
    """

    task: str = option(help="rating: one image -> a rating; pairwise: anchor vs candidate -> 1/0",
                       choices=TASKS, required=True)
    model: str = option(help="base VLM folder or id (Qwen2.5-VL-style, with its processor)", required=True)
    output: str = option(help="folder for the trained model, checkpoints and prefbench_train.json", required=True)
    dataset: str = option("demo", help="dataset to train on: the rating task reads one with per-image ratings, the "
                          "pairwise task any with ranks; see `prefbench list` and docs/training.md (a wrong pick is "
                          "refused with the datasets that fit)")
    split: str = option("train", help="split to train on")
    method: str = option("grpo", choices=METHODS,
                         help="grpo: the paper's reasoning RL; sft: supervised baseline, cross-entropy on the answer "
                              "after an empty <think></think> (TRL SFTTrainer, transformers backend)")
    data_dir: str | None = option(None, help="folder (or JSONL file) holding the dataset's files")
    fraction: float = option(1.0, type=float, help="seeded random fraction of the items (paper: 0.25 of HPDv2)")
    seed: int = option(0, type=int, help="seed for the subset, pair order and training")
    limit: int | None = option(None, type=positive_int, help="keep only the first N examples")
    allow_outside_data_dir: bool = option(False, help=OUTSIDE_HELP)
    #: the rating scale (``--rating-scale LOW-HIGH`` sets both); None: 7 for imagereward, 5 otherwise
    rating_min: int = option(1, flag=None, help="lowest rating")
    rating_max: int | None = option(None, flag=None, help="highest rating")
    max_pixels: int | None = option(None, type=positive_int,
                                    help="cap on image pixels for the processor; saved with OUT, so scoring uses the same")
    # optimisation
    max_steps: int = option(-1, type=int, show_default=False, help="optimizer steps (default: --epochs over the data)")
    epochs: float = option(1.0, type=float, help="epochs when --max-steps is not given")
    learning_rate: float | None = option(None, type=float, help="default 1e-5 with LoRA, 1e-6 full fine-tuning")
    num_generations: int = option(4, type=positive_int, help="rollouts per prompt, GRPO's group")
    max_completion_length: int = option(256, type=positive_int, help="reasoning + answer tokens")
    temperature: float = option(1.0, type=float, help="sampling temperature of the rollouts")
    #: DeepSeekMath's GRPO value; the paper keeps the KL term
    beta: float = option(0.04, type=float, help="KL coefficient")
    per_device_batch_size: int | None = option(None, flag="--batch-size", type=positive_int,
                                               help="completions per device step (default: --num-generations; SFT: "
                                                    f"examples, default {SFT_BATCH_SIZE})")
    gradient_accumulation_steps: int = option(1, flag="--grad-accum", type=positive_int,
                                              help="gradient accumulation steps")
    #: ``--reward-weight NAME=W`` (repeatable); None: the task's DEFAULT_REWARD_WEIGHTS
    reward_weights: dict[str, float] | None = option(None, flag=None, help="reward weights by name")
    # parameters (``--lora`` / ``--full`` set ``lora``)
    lora: bool = option(True, flag=None, help="LoRA on the language layers (False: full fine-tuning)")
    lora_r: int = option(16, type=positive_int, help="LoRA rank")
    lora_alpha: int = option(32, flag=None, help="LoRA alpha")
    lora_dropout: float = option(0.05, flag=None, help="LoRA dropout")
    # bookkeeping
    save_steps: int = option(50, type=positive_int, help="checkpoint every N steps")
    save_total_limit: int | None = option(2, flag=None, help="checkpoints kept")
    logging_steps: int = option(1, flag=None, help="log every N steps")
    resume: bool = option(False, help="continue OUT's run from its last checkpoint")
    backend: str = option("auto", choices=BACKENDS, show_default=False,
                          help="auto (default): Unsloth on a CUDA GPU when installed, else transformers + PEFT")
    device: str = option("auto", choices=("auto", "cpu", "cuda"), help="where to train")
    progress: bool = option(True, flag="--no-progress",
                            help="no progress bar (the per-step reward/KL lines still go to stderr)")
    #: extra trl.GRPOConfig / trl.SFTConfig fields (``-T key=value``)
    trl: dict[str, Any] = option(flag=None, default_factory=dict, help="extra TRL config fields")

    def __post_init__(self):
        if self.task not in TASKS:
            raise UsageError(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.method not in METHODS:
            raise UsageError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "sft" and self.backend == "unsloth":
            raise UsageError("--method sft runs on the transformers backend; drop --backend unsloth")
        if self.backend not in BACKENDS:
            raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UsageError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if not 0.0 < self.fraction <= 1.0:
            raise UsageError(f"--fraction must be in (0, 1], got {self.fraction}")
        if self.method == "grpo" and self.num_generations < 2:
            raise UsageError("--num-generations must be at least 2: GRPO's advantage compares rollouts of one prompt")
        if self.max_completion_length < 1:
            raise UsageError("--max-completion-length must be positive")
        if self.max_steps == 0 or self.max_steps < -1:
            raise UsageError(f"--max-steps must be positive (or -1 for --epochs), got {self.max_steps}")
        if self.max_pixels is not None and self.max_pixels < 28 * 28:
            raise UsageError(f"--max-pixels must be at least {28 * 28}, got {self.max_pixels}")
        if self.rating_max is not None and self.rating_max <= self.rating_min:
            raise UsageError(f"rating scale {self.rating_min}..{self.rating_max} is empty")
        weights = self.resolved_reward_weights()
        known = DEFAULT_REWARD_WEIGHTS[self.task]
        unknown = set(weights) - set(known)
        if unknown:
            raise UsageError(
                f"unknown reward(s) {', '.join(sorted(unknown))} for task {self.task!r}; known: {', '.join(known)}"
            )
        if not any(w != 0 for w in weights.values()):
            raise UsageError("every reward weight is 0: nothing to learn from")

    # -- resolved values (what a run actually used; recorded in prefbench_train.json) ------
    def resolved_rating_max(self) -> int:
        if self.rating_max is not None:
            return self.rating_max
        from prefbench.data import dataset_info
        from prefbench.errors import UsageError

        try:  # the dataset's own scale where the registry gives one (ImageRewardDB: 1-7)
            scale = dataset_info(self.dataset).rating_scale
        except UsageError:
            scale = None
        return scale[1] if scale else DEFAULT_RATING_MAX

    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 1e-5 if self.lora else 1e-6

    def resolved_reward_weights(self) -> dict[str, float]:
        out = dict(DEFAULT_REWARD_WEIGHTS[self.task])
        if self.reward_weights:
            out.update({k: float(v) for k, v in self.reward_weights.items()})
        return out

    def resolved_batch_size(self) -> int:
        return self.per_device_batch_size or (self.num_generations if self.method == "grpo" else SFT_BATCH_SIZE)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["resolved"] = {
            "rating_scale": [self.rating_min, self.resolved_rating_max()] if self.task == "rating" else None,
            "learning_rate": self.resolved_learning_rate(),
            "reward_weights": self.resolved_reward_weights() if self.method == "grpo" else None,
            "per_device_batch_size": self.resolved_batch_size(),
        }
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in names})
