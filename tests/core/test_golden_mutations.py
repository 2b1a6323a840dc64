"""The golden tests can fail: each deliberate mutation of a rule makes them fail.

Each case copies the ``prefbench`` package and the golden tests into a temporary folder, changes
one rule in the copy (a one-line edit of the real source, found exactly once), and runs
``tests/core/test_golden.py`` against the copy in a subprocess; the run must fail. The unmutated
copy must pass, so a failure is the mutation's doing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: (name, file under prefbench/, the line as it stands, the mutated line)
MUTATIONS = [
    ("hpdv2: model ties never inversions (the old rule)", "metrics/conventions.py",
     "inversions += tied & (dr > 0)", "inversions += 0 * tied"),
    ("evalmuse: element labels binarised with > 0.5", "metrics/pointwise.py",
     "correct = ((labels >= 0.5) == (preds >= 0.5))", "correct = ((labels > 0.5) == (preds > 0.5))"),
    ("genai_rank: human score as the median", "data/genai_rank.py",
     "human.append(float(np.mean(r)))", "human.append(float(np.median(r)))"),
    ("evalmuse: the first annotator instead of the mean", "data/evalmuse.py",
     "return round(float(np.mean(value)), 6)", "return float(value[0])"),
    ("pickapic: tuned on a 0.01 grid", "metrics/conventions.py",
     "grid = PICKSCORE_GRID if grid is None else grid", "grid = FINE_GRID if grid is None else grid"),
    ("pickapic: a gap equal to the threshold is not a tie", "metrics/conventions.py",
     "if abs(p[0] - p[1]) <= tie_threshold:", "if abs(p[0] - p[1]) < tie_threshold:"),
    ("imagereward: model ties counted correct", "metrics/conventions.py",
     "correct = scores[better] > scores[worse]", "correct = scores[better] >= scores[worse]"),
    ("diff: human ties kept and counted wrong", "metrics/pairs.py",
     "def _diff(d: ItemData):\n    h = human_label(d.ranks)\n    if h == 0:\n        return 0.0, 0.0, 0",
     "def _diff(d: ItemData):\n    h = human_label(d.ranks)\n    if h == 0:\n        return 0.0, 1.0, 1"),
    ("tau: human ties never credited", "metrics/pairs.py",
     "thm = np.cumsum(h[order] == 0)", "thm = 0 * np.cumsum(h[order] == 0)"),
    ("mmrb2: the reverse judgement not flipped", "metrics/pairs.py",
     "return [fwd, flip.get(rev, rev) if rev is not None else None]", "return [fwd, rev]"),
    ("genai_judge: the shortest [[...]] span", "metrics/pairs.py",
     '_VERDICT = re.compile(r"\\[\\[.*\\]\\]")', '_VERDICT = re.compile(r"\\[\\[.*?\\]\\]")'),
]


def _copy(dest: Path) -> None:
    # the demo checkpoints (22 MB) play no part in the rules
    shutil.copytree(ROOT / "prefbench", dest / "prefbench", ignore=shutil.ignore_patterns("__pycache__", "assets"))
    (dest / "tests" / "core").mkdir(parents=True)
    shutil.copytree(ROOT / "tests" / "fixtures" / "golden", dest / "tests" / "fixtures" / "golden")
    for rel in ("tests/__init__.py", "tests/fixtures/__init__.py", "tests/fixtures/golden_inputs.py",
                "tests/core/test_golden.py"):
        shutil.copy(ROOT / rel, dest / rel)


def _golden_run(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFBENCH_GOLDEN_EXPECT": str(root / "prefbench"), "PYTHONPATH": str(root)}
    # cwd = the copy: it comes first on sys.path, ahead of the installed (editable) prefbench
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-p", "no:randomly", "tests/core/test_golden.py"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("golden-copy")
    _copy(root)
    proc = _golden_run(root)
    assert proc.returncode == 0, f"the unmutated copy must pass:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    return root


@pytest.mark.slow
@pytest.mark.parametrize(("name", "rel", "old", "new"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_the_golden_tests_catch_the_mutation(pristine, tmp_path, name, rel, old, new):
    root = tmp_path / "copy"
    shutil.copytree(pristine, root)
    path = root / "prefbench" / rel
    source = path.read_text()
    assert source.count(old) == 1, f"{rel}: the line to mutate is not there exactly once: {old!r}"
    path.write_text(source.replace(old, new))
    proc = _golden_run(root)
    assert proc.returncode == 1, f"{name}: the golden tests passed with the mutation\n{proc.stdout[-2000:]}"
    assert "failed" in proc.stdout
