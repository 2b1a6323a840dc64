"""Encoder baselines: ``clip``, ``pickscore``, ``hpsv2``, ``aesthetic``, ``imagereward``.

Each sits behind its own install extra and is looked up through :mod:`prefbench.registry`;
importing this package imports no framework.
"""
