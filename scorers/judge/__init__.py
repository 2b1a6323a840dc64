"""The ``judge`` scorer: generative judge protocols (:mod:`prefbench.judges`) run on an engine."""
