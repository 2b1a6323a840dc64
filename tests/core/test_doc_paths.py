"""Every test file the repository's comments, scripts and docs name exists: the tests moved into
tier folders (tests/core, tests/scorers, ...) and .ci/run's comments still pointed at the old
places (issue 30 item 10)."""

from __future__ import annotations

import re

from tests.fixtures.cli import REPO

#: where a path to a test file is written down for people to follow
SOURCES = ["README.md", "pyproject.toml", "tox.ini", ".ci/run", "docs/*.md", "benchmarks/*.md", "scripts/*",
           "prefbench/**/*.py", "scorers/**/*.py", "training/**/*.py", "tests/**/*.py"]
TEST_PATH = re.compile(r"\btests/[\w/]+\.py\b")


def test_every_named_test_file_exists():
    named: dict[str, set[str]] = {}
    for pattern in SOURCES:
        for path in sorted(REPO.glob(pattern)):
            if not path.is_file():
                continue
            for found in TEST_PATH.findall(path.read_text(errors="replace")):
                named.setdefault(found, set()).add(str(path.relative_to(REPO)))
    assert named, "no test path found anywhere: the scan is broken"
    gone = {p: sorted(where) for p, where in named.items() if not (REPO / p).is_file()}
    assert not gone, f"test files named but missing: {gone}"
