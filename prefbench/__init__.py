"""prefbench: how well do reward models predict human preferences between generated images?

The public API is small and imports nothing heavy:

>>> from prefbench.data import load_dataset
>>> from prefbench.metrics import accuracy_for
"""

__version__ = "0.1.0"
