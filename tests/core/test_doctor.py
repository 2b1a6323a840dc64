"""`prefbench doctor`: what the machine has, without importing anything heavy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fixtures.cli import run_cli


def test_doctor_reports_extras_envs_and_resources_as_json():
    proc = run_cli(["doctor", "--json"])
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert set(info["extras"]) >= {"vlm", "train", "openai", "clip", "hpsv2"}
    assert info["python"]["version"].count(".") == 2
    assert {"reference", "vllm"} == set(info["envs"])
    for env in info["envs"].values():
        assert env["make_with"].startswith("scripts/setup_")
        assert not env["present"] or Path(env["path"], "bin", "python").is_file()
    assert info["disk_free_gb"] > 0 and info["cpus"] >= 1
    assert info["torch"] == {"imported": False}
    from tests.fixtures.cli import SHARED_IR

    assert info["imagereward_annotation"] == {"present": SHARED_IR.is_file(), "path": str(SHARED_IR),
                                              "get_with": "prefbench download imagereward --data-dir "
                                                          "../shared/data/imagereward"}
    text = run_cli(["doctor"]).stdout
    assert "Install extras" in text and "reference env" in text and "chromium" in text and "IR test.json" in text


def test_doctor_imports_no_torch_transformers_or_openai():
    code = ("import sys; from prefbench.cli import main; main(['doctor']); "
            "bad = [m for m in ('torch', 'transformers', 'openai') if m in sys.modules]; "
            "sys.stderr.write(repr(bad)); raise SystemExit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
