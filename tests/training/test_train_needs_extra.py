"""`prefbench train` without the `train` extra says which extra to install before any work: no
examples built, no model loaded, nothing written (issue 30 item 2). The missing package is
simulated in a real CLI process by ``sys.modules[name] = None``, which makes both ``import name``
and ``importlib.util.find_spec(name)`` see it as absent, as on an install without it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from prefbench.demo_zoo import ASSETS

CLI_WITHOUT = "import sys\nfor name in sys.argv[1].split(','):\n    sys.modules[name] = None\n" \
              "from prefbench.cli import main\nsys.exit(main(sys.argv[2:]))\n"


@pytest.mark.parametrize("absent", ["datasets", "trl", "torch", "trl,datasets"])
def test_train_without_the_train_extra_names_it_before_any_work(tmp_path, absent):
    out = tmp_path / "out"
    # the bundled base checkpoint's folder on the demo: everything else a training run needs is there
    args = ["train", "--task", "rating", "--model", str(ASSETS / "base"), "--dataset", "demo", "--output", str(out),
            "--max-steps", "1", "--no-progress"]
    proc = subprocess.run([sys.executable, "-c", CLI_WITHOUT, absent, *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"needs {absent.replace(',', ', ')}, which is not installed" in proc.stderr
    assert "pip install 'prefbench[train]'" in proc.stderr
    assert "examples from demo" not in proc.stderr  # the dataset was never turned into examples
    assert not out.exists()
