"""Session fixtures for the VLM tests: the tiny Qwen2.5-VL is built once per session."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from prefbench.testing.tiny_vlm import build_tiny_vlm

    path = tmp_path_factory.getbasetemp() / "tiny-vlm"
    if not (path / "model.safetensors").is_file():
        build_tiny_vlm(path)
    return path


@pytest.fixture(scope="session")
def tiny_qwen2_vl_dir(tmp_path_factory):
    """The same tiny model in the Qwen2-VL architecture (same scorer path, other classes)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from prefbench.testing.tiny_vlm import build_tiny_vlm

    path = tmp_path_factory.getbasetemp() / "tiny-qwen2-vl"
    if not (path / "model.safetensors").is_file():
        build_tiny_vlm(path, arch="qwen2_vl")
    return path
