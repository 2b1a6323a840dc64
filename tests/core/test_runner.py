"""End-to-end runs through the real CLI: resume after a kill, bad images, caching, run.json."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from prefbench.data import load_dataset
from prefbench.runner import RunConfig, run
from tests.fixtures.cli import run_cli

N_DEMO = 1501  # images in the demo test split (checked in test_run_json_and_samples)


def _jsonl_dataset(root: Path, n_items=6, bad=None) -> Path:
    """A small jsonl split; ``bad`` maps (item, image) -> bytes to write instead of a PNG."""
    bad = bad or {}
    (root / "img").mkdir(parents=True)
    lines = []
    for i in range(n_items):
        paths = []
        for k in range(3):
            p = root / "img" / f"{i}_{k}.png"
            if (i, k) in bad:
                if bad[(i, k)] is not None:
                    p.write_bytes(bad[(i, k)])
            else:
                Image.new("RGB", (6, 6), (i * 20, k * 60, 5)).save(p)
            paths.append(f"img/{i}_{k}.png")
        lines.append(json.dumps({"prompt_id": f"p{i}", "prompt": f"prompt {i}", "images": paths,
                                 "ranks": [1, 2, 3] if i % 2 else [2, 1, 2]}))
    f = root / "data.jsonl"
    f.write_text("\n".join(lines) + "\n")
    return f


def test_run_json_and_samples(tmp_path):
    proc = run_cli(["run", "--scorer", "random", "--dataset", "demo", "--json", "--no-progress"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in ("dataset", "split", "convention", "accuracy", "ci_low", "ci_high", "n_prompts", "n_pairs", "run_dir"):
        assert key in out
    assert out["dataset"] == "demo" and out["convention"] == "imagereward"
    assert out["ci_low"] <= out["accuracy"] <= out["ci_high"]
    run_dir = tmp_path / out["run_dir"]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["schema_version"] == 1 and record["status"] == "complete"
    assert record["scorer"]["resolved"] == {"seed": 0, "check_images": True}
    assert len(record["dataset"]["content_hash"]) == 64
    assert record["versions"]["numpy"] and "torch" not in record["versions"]
    n = record["dataset"]["n_images"]
    assert n == sum(it.n_images for it in load_dataset("demo").items) == N_DEMO
    assert record["counts"] == {"ok": n, "unparsed": 0, "error": 0, "forced": 0, "missing": 0}
    assert len(record["per_prompt"]["item_ids"]) == out["n_prompts"]
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == n and len({(r["item_id"], r["image_index"]) for r in rows}) == n
    # seeded: a second seed gives a different run folder and different scores
    proc2 = run_cli(["run", "--scorer", "random", "--seed", "1", "--json", "--no-progress"], cwd=tmp_path)
    assert json.loads(proc2.stdout)["run_dir"] != out["run_dir"]


def test_bad_images_get_error_status_and_the_run_completes(tmp_path):
    f = _jsonl_dataset(tmp_path, bad={(0, 1): b"", (2, 0): b"GIF89a-garbage", (3, 2): None})
    proc = run_cli(["run", "--scorer", "random", "--dataset", "jsonl", "--data-dir", f, "--json", "--no-progress"],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["counts"]["error"] == 3 and out["counts"]["ok"] == 15
    rows = [json.loads(x) for x in (tmp_path / out["run_dir"] / "samples.jsonl").read_text().splitlines()]
    errors = {(r["item_id"], r["image_index"]): r["error"] for r in rows if r["status"] == "error"}
    assert set(errors) == {("p0", 1), ("p2", 0), ("p3", 2)}
    assert "empty file" in errors[("p0", 1)] and "file not found" in errors[("p3", 2)]
    assert all(r["score"] is None for r in rows if r["status"] == "error")


def _kill_and_resume(tmp_path, plugin_env):
    args = ["run", "--scorer", "sleepy", "-S", "delay=0.03", "--dataset", "demo", "--out", "killed", "--json",
            "--no-progress"]
    env = dict(os.environ, **plugin_env)
    proc = subprocess.Popen([sys.executable, "-m", "prefbench", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    samples = tmp_path / "killed" / "samples.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:
        if samples.exists() and 40 <= len(samples.read_bytes().splitlines()) < N_DEMO - 100:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # simulate the kill landing mid-write too: a partial trailing line
    with samples.open("a") as fh:
        fh.write('{"item_id": "test-00')
    n_before = len(samples.read_bytes().splitlines()) - 1
    assert 0 < n_before < N_DEMO
    resumed = run_cli(args, cwd=tmp_path, env_extra=plugin_env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    rows = [json.loads(x) for x in samples.read_text().splitlines()]
    keys = [(r["item_id"], r["image_index"]) for r in rows]
    assert len(keys) == len(set(keys)) == N_DEMO
    return json.loads(resumed.stdout), n_before


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_result(tmp_path, with_plugin):
    plugin_env = {"PYTHONPATH": os.environ["PYTHONPATH"]}
    resumed, n_before = _kill_and_resume(tmp_path, plugin_env)
    fresh = run_cli(["run", "--scorer", "sleepy", "-S", "delay=0", "--dataset", "demo", "--out", "fresh",
                     "--json", "--no-progress"], cwd=tmp_path, env_extra=plugin_env)
    fresh = json.loads(fresh.stdout)
    for key in ("accuracy", "ci_low", "ci_high", "n_pairs", "kendall_tau_b"):
        assert resumed[key] == fresh[key]
    record = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert record["throughput"]["images_scored_this_session"] == N_DEMO - n_before


def test_cached_rerun_skips_scoring(tmp_path):
    cfg = RunConfig(scorer="random", out=str(tmp_path / "r"), progress=False)
    first = run(cfg, log=lambda m: None)
    messages = []
    again = run(cfg, log=messages.append)
    assert again["cached"] and any("cached" in m for m in messages)
    assert again["metrics"] == first["metrics"]
    # touching the samples invalidates the shortcut, but nothing is rescored
    with open(tmp_path / "r" / "samples.jsonl", "a") as fh:
        fh.write("")
    rows = (tmp_path / "r" / "samples.jsonl").read_text()
    (tmp_path / "r" / "samples.jsonl").write_text(rows)
    third = run(cfg, log=lambda m: None)
    assert third["metrics"]["accuracy"] == first["metrics"]["accuracy"]


def test_different_configuration_in_the_same_folder_is_refused(tmp_path):
    assert run_cli(["run", "--scorer", "random", "--out", "x", "--no-progress"], cwd=tmp_path).returncode == 0
    proc = run_cli(["run", "--scorer", "random", "--seed", "9", "--out", "x", "--no-progress"], cwd=tmp_path)
    assert proc.returncode == 2 and "different configuration" in proc.stderr


def test_crashing_batch_is_recorded_and_retried(tmp_path, monkeypatch):
    from prefbench.scorers.random import RandomScorer

    original = RandomScorer.score_batch
    culprit = load_dataset("demo").items[15]

    def flaky(self, tasks):  # fails any batch holding the culprit's image 0 (issue 31: the batch is split)
        if any(item.item_id == culprit.item_id and 0 in ix for item, ix in tasks):
            raise RuntimeError("out of memory (simulated)")
        return original(self, tasks)

    monkeypatch.setattr(RandomScorer, "score_batch", flaky)
    cfg = RunConfig(scorer="random", out=str(tmp_path / "r"), progress=False, batch_size=10)
    rec = run(cfg, log=lambda m: None)
    assert rec["counts"]["error"] == 1  # only the culprit image; its batch's others are scored
    rows = [json.loads(line) for line in (tmp_path / "r" / "samples.jsonl").read_text().splitlines()]
    bad = [r for r in rows if r["status"] == "error"]
    assert [(r["item_id"], r["image_index"]) for r in bad] == [(culprit.item_id, 0)]
    assert bad[0]["retryable"] and "RuntimeError: out of memory (simulated)" in bad[0]["error"]
    assert rec["status"] == "incomplete"
    monkeypatch.setattr(RandomScorer, "score_batch", original)
    rec2 = run(cfg, log=lambda m: None)
    assert rec2["counts"]["error"] == 0 and rec2["counts"]["ok"] == N_DEMO and rec2["status"] == "complete"
    rows = (tmp_path / "r" / "samples.jsonl").read_text().splitlines()
    # the failed batch's rows were retried and appended; the last row per image wins
    assert len(rows) == N_DEMO + rec["counts"]["error"]


def test_compare_two_runs(tmp_path):
    a = json.loads(run_cli(["run", "--scorer", "random", "--limit", "60", "--json", "--no-progress"], cwd=tmp_path).stdout)
    b = json.loads(run_cli(["run", "--scorer", "random", "--seed", "3", "--limit", "60", "--json", "--no-progress"],
                           cwd=tmp_path).stdout)
    proc = run_cli(["compare", a["run_dir"], b["run_dir"], "--json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["difference"] == pytest.approx(a["accuracy"] - b["accuracy"])
    assert res["ci_low"] <= res["difference"] <= res["ci_high"]
    assert 0 <= res["p_a_better"] <= 1 and res["n_common"] == a["n_prompts"]
    text = run_cli(["compare", a["run_dir"], b["run_dir"]], cwd=tmp_path).stdout
    assert "A - B" in text
    # the shares are labelled as shares of resamples (one-sided p-values), not as "p: A better"
    assert (f"share of resamples where A - B <= 0: {res['p_a_better']:.4f}; where A - B >= 0: "
            f"{res['p_b_better']:.4f}") in text
    assert "A better" not in text


def test_imagereward_run_on_placeholder_images(tmp_path, ir_data_dir):
    data = tmp_path / "ir"
    shutil.copytree(ir_data_dir, data)
    # break one image three ways across the split
    items = json.loads((data / "test.json").read_text())
    (data / "test_images" / items[0]["generations"][0]).write_bytes(b"")
    (data / "test_images" / items[1]["generations"][1]).unlink()
    proc = run_cli(["run", "--scorer", "random", "--dataset", "imagereward", "--data-dir", data, "--json",
                    "--no-progress", "--limit", "50"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["counts"]["error"] == 2 and out["n_prompts"] <= 50


def test_demo_oracle_is_the_ceiling(tmp_path):
    from prefbench.data.demo import ceiling

    rec = run(RunConfig(scorer="demo_oracle", out=str(tmp_path / "o"), progress=False), log=lambda m: None)
    assert rec["metrics"]["accuracy"] == ceiling("test")["accuracy"]
    f = _jsonl_dataset(tmp_path / "mine")
    rec = run(RunConfig(scorer="demo_oracle", dataset="jsonl", data_dir=str(f), out=str(tmp_path / "j"),
                        progress=False), log=lambda m: None)
    assert rec["counts"]["error"] == 18 and rec["metrics"]["accuracy"] is None  # nothing scored: no accuracy
