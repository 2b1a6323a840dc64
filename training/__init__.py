"""GRPO trainer for reasoning VLM scorers (installed as ``prefbench.training``).

>>> from prefbench.training import TrainConfig, train            # doctest: +SKIP
>>> train(TrainConfig(task="rating", model="tiny-vlm", dataset="demo", output="trained", max_steps=3))  # doctest: +SKIP

Importing this package is cheap: torch, transformers and TRL load inside :func:`train`.
"""

from prefbench.training.config import TrainConfig
from prefbench.training.trainer import train

__all__ = ["TrainConfig", "train"]
