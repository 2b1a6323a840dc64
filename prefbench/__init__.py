"""prefbench: how well do reward models predict human preferences between generated images?

The public API is small and imports nothing heavy:

>>> from prefbench.data import load_dataset
>>> from prefbench.metrics import accuracy_for
>>> from prefbench import load_scorer          # scorers as rewards: score, rank, best-of-N
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # load_scorer lives in prefbench.api, imported on first use (it imports no torch either)
    if name in ("load_scorer", "RewardScorer", "ScoredItem", "ScoringError"):
        from prefbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'prefbench' has no attribute {name!r}")
