"""Built-in scorers (installed as ``prefbench.scorers``). Look them up through
:mod:`prefbench.registry`, which imports a scorer's module only when it is used."""

from prefbench.scorers.base import ImageResult, Scorer

__all__ = ["ImageResult", "Scorer"]
