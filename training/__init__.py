"""GRPO trainer for reasoning VLM scorers (installed as ``prefbench.training``)."""
