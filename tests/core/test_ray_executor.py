"""``prefbench run --executor ray`` on a real local Ray cluster (tests/fixtures/ray_cluster.py).

The cluster runs in a network namespace of its own (``unshare -n``), whose only interface is the
loopback: Ray binds to 127.0.0.1 there and no traffic can leave the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from prefbench.runner import RunConfig
from tests.fixtures.extras import skip_without_extra

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict:
    skip_without_extra("ray", "vlm")
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed: the Ray tests run in a network namespace of their own")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode:
        pytest.skip(f"cannot make a network namespace here (unshare -n: {probe.stderr.decode().strip()})")
    out = tmp_path_factory.mktemp("ray")
    proc = subprocess.run(["unshare", "-n", sys.executable, str(ROOT / "tests" / "fixtures" / "ray_cluster.py"),
                           str(out)], capture_output=True, text=True, timeout=1500, cwd=str(out))
    assert (out / "outcomes.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((out / "outcomes.json").read_text())
    assert "error" not in data, data.get("error")
    return data


def _scores(rows: list[dict]) -> dict:
    return {(r["item_id"], r["image_index"]): r["score"] for r in rows}


def _one_row_per_image(case: dict) -> None:
    keys = Counter((r["item_id"], r["image_index"]) for r in case["samples"])
    assert keys and max(keys.values()) == 1, [k for k, n in keys.items() if n > 1][:3]
    assert len(keys) == case["run"]["dataset"]["n_images"]
    assert case["run"]["status"] == "complete" and case["run"]["counts"]["ok"] == len(keys)


def test_a_ray_run_equals_the_single_process_run(outcomes):
    for name in ("same_random", "same_vlm"):
        case = outcomes[name]
        assert case["rc"] == [0, 0], case["stderr"]
        ray, local = case["ray"], case["local"]
        assert ray["run"]["config_hash"] == local["run"]["config_hash"]  # the executor is not identity
        assert ray["run"]["executor"]["name"] == "ray" and ray["run"]["executor"]["workers"] == 2
        assert "executor" not in local["run"]
        a, b = _scores(ray["samples"]), _scores(local["samples"])
        assert a.keys() == b.keys()
        if name == "same_random":
            assert a == b and ray["run"]["metrics"]["accuracy"] == local["run"]["metrics"]["accuracy"]
        else:  # float32 reductions run on one thread per Ray worker, two here: ~1e-7 apart
            assert a == pytest.approx(b, abs=1e-5)
            assert ray["run"]["metrics"]["accuracy"] == pytest.approx(local["run"]["metrics"]["accuracy"], abs=1e-9)
        _one_row_per_image(ray)


def test_bench_generators_on_ray_equals_one_process(outcomes):
    case = outcomes["generators"]
    assert case["rc"] == [0, 0], case["stderr"]
    ray, local = case["ray"], case["local"]
    assert ray["run"]["config_hash"] == local["run"]["config_hash"]
    assert ray["run"]["executor"]["name"] == "ray" and "executor" not in local["run"]
    a = {(r["item_id"], r["image_index"]): r for r in ray["samples"]}
    b = {(r["item_id"], r["image_index"]): r for r in local["samples"]}
    assert a.keys() == b.keys() and len(a) == 24
    assert {k: r["score"] for k, r in a.items()} == pytest.approx({k: r["score"] for k, r in b.items()}, abs=1e-5)
    assert {k: r.get("anchor_image") for k, r in a.items()} == {k: r.get("anchor_image") for k, r in b.items()}
    means = lambda rec: {g["name"]: g["mean"] for g in rec["run"]["generators"]}  # noqa: E731
    assert means(ray) == pytest.approx(means(local), abs=1e-5)


def test_a_killed_worker_loses_nothing_and_duplicates_nothing(outcomes):
    case = outcomes["worker_killed"]
    assert case["rc"] == 0, case["stderr"]
    assert case["killed"], "no Ray worker process was found to kill"
    _one_row_per_image(case)
    executor = case["run"]["executor"]
    assert executor["lost_workers"] >= 1 and executor["retried_batches"] >= 1, (executor, case["stderr"])
    assert "retrying it on another worker" in case["stderr"]


def test_a_killed_driver_resumes(outcomes):
    case = outcomes["driver_killed"]
    assert case["rc"] == 0, case["stderr"]
    assert 0 < case["rows_before"] < case["run"]["dataset"]["n_images"]
    assert f"{case['rows_before']} images already scored" in case["stderr"]
    _one_row_per_image(case)


def test_ray_is_not_part_of_the_identity_and_is_refused_cleanly_without_the_extra(tmp_path, monkeypatch):
    from prefbench.errors import MissingExtraError
    from prefbench.ray_executor import _import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'prefbench\[ray\]'"):
        _import_ray()
    assert {"executor", "ray_address", "workers"} <= set(RunConfig.__dataclass_fields__)
