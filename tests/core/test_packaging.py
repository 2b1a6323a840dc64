"""The wheel installs prefbench.scorers and prefbench.training, never top-level scorers/training."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_layout(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("prefbench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops <= {"prefbench", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, tops
    assert "prefbench/scorers/random.py" in names and "prefbench/training/__init__.py" in names
    # every package folder with Python files in the source tree made it into the wheel
    for src, dest in (("prefbench", "prefbench"), ("scorers", "prefbench/scorers"), ("training", "prefbench/training")):
        for py in (REPO / src).rglob("*.py"):
            rel = py.relative_to(REPO / src).as_posix()
            assert f"{dest}/{rel}" in names, f"{src}/{rel} is missing from the wheel: add its package to pyproject.toml"
