"""HPSv3 (Qwen2-VL with a reward head read at a special token): :mod:`.scorer`, :mod:`.model`, :mod:`.prompt`."""
