"""What a run shows and keeps of its progress: a compact reward/KL line per logging step, and
the per-metric curves stored in ``prefbench_train.json``."""

from __future__ import annotations

import math
import re
import sys
from typing import Any


def readout_callback(progress: bool, key: str = "reward"):
    """A compact reward/KL line per logging step (stderr), under a progress bar when
    ``progress``, in place of the trainer's raw log dicts; ``key="loss"`` for SFT, whose logs
    carry a loss and a token accuracy instead of rewards."""
    from transformers.trainer_callback import ProgressCallback, TrainerCallback

    def write(line, bar=None):
        if bar is not None:
            bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    class RewardReadoutBar(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs and key in logs:
                write(readout_line(state.global_step, state.max_steps, logs), self.training_bar)

    class RewardReadout(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs and key in logs:
                write(readout_line(state.global_step, state.max_steps, logs))

    return RewardReadoutBar() if progress else RewardReadout()


def readout_line(step: int, max_steps: int, logs: dict[str, float]) -> str:
    """``step 3/10  reward 1.250  format 0.500  exact 0.250  approx 0.500  kl 0.0003  loss 0.0100``

    >>> readout_line(3, 10, {"reward": 1.25, "rewards/format_reward/mean": 0.5, "kl": 0.0003, "loss": 0.01})
    'step 3/10  reward 1.250  format 0.500  kl 0.00030  loss 0.0100'
    >>> readout_line(5, 10, {"loss": 0.5, "mean_token_accuracy": 0.75})  # SFT
    'step 5/10  loss 0.5000  token accuracy 0.750'
    """
    parts = [f"step {step}/{max_steps}"] + ([f"reward {logs['reward']:.3f}"] if "reward" in logs else [])
    for key, value in logs.items():
        m = re.fullmatch(r"rewards/(.+)/mean", key)
        if m:
            short = m.group(1).removesuffix("_reward").removesuffix("_match")
            parts.append(f"{short} {value:.3f}")
    if "kl" in logs:
        parts.append(f"kl {logs['kl']:.5f}")
    if "loss" in logs:
        parts.append(f"loss {logs['loss']:.4f}")
    if "mean_token_accuracy" in logs:
        parts.append(f"token accuracy {logs['mean_token_accuracy']:.3f}")
    return "  ".join(parts)


def reward_curves(log_history: list[dict[str, Any]], key: str = "reward") -> dict[str, list[list[float]]]:
    """Per-metric curves ``{name: [[step, value], ...]}`` from the trainer's log history, from the
    entries that carry ``key``: the total reward, each reward's mean and std, KL, loss, entropy,
    completion length (GRPO); loss and token accuracy (SFT, ``key="loss"``)."""
    keep = re.compile(r"^(reward|reward_std|kl|loss|entropy|learning_rate|step_time|completions/mean_length"
                      r"|mean_token_accuracy|rewards/.+/(mean|std))$")
    curves: dict[str, list[list[float]]] = {}
    for entry in log_history:
        step = entry.get("step")
        if step is None or key not in entry:
            continue
        for name, value in entry.items():
            if keep.match(name) and isinstance(value, (int, float)) and math.isfinite(value):
                curves.setdefault(name, []).append([int(step), float(value)])
    return curves
