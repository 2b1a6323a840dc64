"""The demo world's model zoo: tiny scorers trained here, by prefbench's own pipeline.

``recipe.py`` rebuilds every bundled checkpoint from a seed (see ``python -m
prefbench.demo_zoo.recipe --help``); ``pretrain.py`` makes the tiny "base" VLM that stands in for
a pretrained instruct model. The trained checkpoints are shipped under ``assets/`` and are what
``prefbench run`` uses when no model is given on the demo dataset.
"""

from __future__ import annotations

from pathlib import Path

from prefbench.models import ModelAlias

ASSETS = Path(__file__).resolve().parent / "assets"
#: ``--model prefbench-demo/<name>`` names a bundled checkpoint; run.json records that id
BUNDLED_PREFIX = "prefbench-demo/"

#: bundled checkpoint folder per scorer (relative to ASSETS)
BUNDLED = {
    "zero_shot": "base",
    "expected_rating": "rating",
    "naive_sampling": "rating",
    "anchor_pairwise": "pairwise",
    "clip": "clip",
}


#: the ``prefbench-demo`` model alias (:mod:`prefbench.models`): ids, the per-scorer defaults on the
#: demo dataset (and in the API, ``rank`` and ``serve``), portable run records
#: the options each bundled checkpoint is scored with on the demo (the token budget it was trained
#: with; the demo CLIP was trained on transformers' CLIPImageProcessor output): the suite's rows
#: and a lone ``prefbench run --scorer X`` on the demo both use them, so they are the same run
SUITE_OPTIONS: dict[str, dict] = {
    "zero_shot": {"max_new_tokens": 64},
    "expected_rating": {"max_new_tokens": 64},
    "naive_sampling": {"max_new_tokens": 64},
    "anchor_pairwise": {"max_new_tokens": 96},
    "clip": {"preprocess": "processor"},
}

ALIAS = ModelAlias(BUNDLED_PREFIX.rstrip("/"), ASSETS, "the demo world's checkpoints, trained by prefbench",
                   defaults=BUNDLED, default_datasets=("demo", None), default_options=SUITE_OPTIONS)


def bundled_model(scorer: str) -> Path | None:
    """The shipped checkpoint for ``scorer`` or None when there is none (or it is not built)."""
    found = ALIAS.default(scorer, "demo")
    return ALIAS.resolve(found) if found else None
