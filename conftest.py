"""Test tiers, markers and the shared fixtures (which live in tests/fixtures/).

Every test belongs to the tier named by its folder under tests/ (core, scorers, engines,
training, report, demo): ``pytest -m core`` runs one tier. Two heavy tiers are opt-in:
``--run-slow`` (real training runs, a fresh clone of the repository, ...) and ``--run-vllm`` (a
real vLLM server). The README's test command passes both: it is the full suite.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No telemetry pings from the libraries under test (TRL's trainer sends one from a thread, which
# resolves huggingface.co; on a machine without the hub that thread once crashed a test worker
# with a segfault inside getaddrinfo). Set before any test imports huggingface_hub, and inherited
# by the CLI subprocesses the tests start.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

pytest_plugins = ["tests.fixtures.data", "tests.fixtures.plugins", "tests.fixtures.vlm", "tests.fixtures.encoders",
                  "tests.fixtures.hpsv3"]

TESTS = Path(__file__).resolve().parent / "tests"
TIERS = {
    "core": "data, metrics, runner, run store, CLI, registry (no torch needed)",
    "scorers": "VLM and encoder scorers",
    "engines": "the OpenAI-compatible backend (fake and real servers)",
    "training": "GRPO/SFT training and its task builders",
    "report": "leaderboard, item browser, check, the committed results",
    "demo": "the demo world's zoo, recipe and probes",
    "serve": "scorers as rewards: the Python API, rank, the reward server and its client",
}
HEAVY = {"slow": "--run-slow", "vllm": "--run-vllm"}


def pytest_addoption(parser):
    group = parser.getgroup("prefbench", "prefbench test tiers")
    group.addoption("--run-slow", action="store_true",
                    help="also run tests marked slow (real training runs, a fresh clone, long CLI runs)")
    group.addoption("--run-vllm", action="store_true",
                    help="also run the tests against a real vLLM server (needs scripts/setup_vllm_env.sh)")


def pytest_configure(config):
    for tier, what in TIERS.items():
        config.addinivalue_line("markers", f"{tier}: tier: {what} (from the test's folder)")
    config.addinivalue_line("markers", "slow: long-running; skipped unless --run-slow")
    config.addinivalue_line("markers", "vllm: needs a real vLLM server; skipped unless --run-vllm")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU")


def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            tier = Path(item.path).resolve().relative_to(TESTS).parts[0]
        except ValueError:  # benchmarks/ and other paths outside tests/
            tier = None
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
        for mark, option in HEAVY.items():
            if mark in item.keywords and not config.getoption(option):
                item.add_marker(pytest.mark.skip(reason=f"{mark} tier: run with {option}"))
