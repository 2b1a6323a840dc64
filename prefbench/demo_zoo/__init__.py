"""The demo world's model zoo: tiny scorers trained here, by prefbench's own pipeline.

``recipe.py`` rebuilds every bundled checkpoint from a seed (see ``python -m
prefbench.demo_zoo.recipe --help``); ``pretrain.py`` makes the tiny "base" VLM that stands in for
a pretrained instruct model. The trained checkpoints are shipped under ``assets/`` and are what
``prefbench run`` uses when no model is given on the demo dataset.
"""

from __future__ import annotations

from pathlib import Path

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


def _alias():
    from prefbench.models import ModelAlias

    return ModelAlias(BUNDLED_PREFIX.rstrip("/"), ASSETS, "the demo world's checkpoints, trained by prefbench",
                      defaults=BUNDLED, default_datasets=("demo", None))


def __getattr__(name: str):
    # ALIAS is what the model-alias registry (prefbench.models) loads; built lazily so that this
    # package imports nothing else
    if name == "ALIAS":
        return _alias()
    raise AttributeError(name)


def bundled_model(scorer: str) -> Path | None:
    """The shipped checkpoint for ``scorer`` or None when there is none (or it is not built)."""
    name = BUNDLED.get(scorer)
    if name is None:
        return None
    path = ASSETS / name
    return path if (path / "config.json").is_file() else None


def resolve_bundled(model_id: str) -> Path:
    """``prefbench-demo/<name>`` -> the bundled checkpoint folder (a clear error if absent)."""
    from prefbench.errors import UsageError

    name = model_id[len(BUNDLED_PREFIX):]
    path = ASSETS / name
    if not (path / "config.json").is_file():
        known = sorted(p.name for p in ASSETS.iterdir() if (p / "config.json").is_file()) if ASSETS.is_dir() else []
        raise UsageError(f"no bundled checkpoint {model_id!r}; bundled: {', '.join(BUNDLED_PREFIX + k for k in known) or 'none'}")
    return path
