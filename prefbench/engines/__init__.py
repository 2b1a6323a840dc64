"""Engines: what runs a VLM scorer's model (transformers, an OpenAI-compatible server, vLLM).

The contract is in :mod:`prefbench.engines.base`; the registry (built-ins plus the
``prefbench.engines`` entry-point group) in :mod:`prefbench.registry`; per-family knowledge in
:mod:`prefbench.engines.profiles`. Importing this package is cheap.
"""
