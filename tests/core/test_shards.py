"""Runs in shards that merge: the same run as one process, gaps and overlaps refused, resume per shard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefbench.errors import UsageError
from prefbench.merge import merge
from prefbench.runner import RunConfig, run
from prefbench.shards import parse_shard, shard_of
from prefbench.store import read_samples
from tests.fixtures.cli import run_cli
from tests.fixtures.extras import skip_without_extra


def _cfg(tmp_path: Path, **kw) -> RunConfig:
    return RunConfig(**{"scorer": "random", "dataset": "demo", "results_root": str(tmp_path / "results"),
                        "progress": False, **kw})


def _shards(tmp_path: Path, n: int = 3, **kw) -> list[Path]:
    return [Path(run(_cfg(tmp_path, shard=(i, n), **kw), log=lambda m: None)["run_dir"]) for i in range(n)]


def test_three_shards_merge_into_the_same_run_as_one_process(tmp_path):
    shards = _shards(tmp_path)
    recs = [json.loads((d / "run.json").read_text()) for d in shards]
    assert {r["kind"] for r in recs} == {"shard"} and len({r["config_hash"] for r in recs}) == 1
    assert sum(r["shard"]["n_items"] for r in recs) == 300 and all(r["shard"]["n_items"] > 50 for r in recs)
    merged = merge(shards, results_root=str(tmp_path / "results"), log=lambda m: None)
    single = run(_cfg(tmp_path, results_root=str(tmp_path / "single")), log=lambda m: None)
    assert merged["config_hash"] == single["config_hash"] == recs[0]["config_hash"]
    assert merged.get("kind", "scoring") == "scoring" and merged["status"] == "complete"
    for key in ("accuracy", "ci_low", "ci_high", "n_prompts", "n_pairs", "kendall_tau_b"):
        assert merged["metrics"][key] == single["metrics"][key], key
    assert merged["counts"] == single["counts"]
    a = read_samples(Path(merged["run_dir"]) / "samples.jsonl")
    b = read_samples(Path(single["run_dir"]) / "samples.jsonl")
    assert a == b
    # the merged folder is where a single-process run of the configuration goes: that run is now cached
    again = run(_cfg(tmp_path), log=lambda m: None)
    assert again["cached"] and again["metrics"]["accuracy"] == single["metrics"]["accuracy"]


def test_the_partition_is_deterministic_and_covers_every_item():
    ids = [f"test-{k:04d}" for k in range(300)]
    parts = [[i for i in ids if shard_of(i, 3) == s] for s in range(3)]
    assert sorted(sum(parts, [])) == ids and [shard_of(i, 3) for i in ids] == [shard_of(i, 3) for i in ids]
    assert parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "a/b", "1", "-1/2", "0/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)


def test_a_missing_or_overlapping_shard_is_refused(tmp_path):
    shards = _shards(tmp_path)
    with pytest.raises(UsageError, match=r"shard\(s\) 1/3 missing \(gap\)"):
        merge([shards[0], shards[2]], results_root=str(tmp_path / "results"))
    with pytest.raises(UsageError, match=r"shard 0/3 is given twice.*\(overlap\)"):
        merge([shards[0], shards[0], shards[1], shards[2]], results_root=str(tmp_path / "results"))
    # a shard of another configuration (another seed)
    other = Path(run(_cfg(tmp_path, shard=(1, 3), seed=5), log=lambda m: None)["run_dir"])
    with pytest.raises(UsageError, match="different configurations"):
        merge([shards[0], other, shards[2]], results_root=str(tmp_path / "results"))
    # another partition
    half = Path(run(_cfg(tmp_path, shard=(0, 2)), log=lambda m: None)["run_dir"])
    with pytest.raises(UsageError, match="split the items different ways"):
        merge([half, shards[1], shards[2]], results_root=str(tmp_path / "results"))
    # an item moved into the wrong shard's samples: an overlap the records alone would not show
    rows = (shards[1] / "samples.jsonl").read_text().splitlines()
    with open(shards[0] / "samples.jsonl", "a") as fh:
        fh.write(rows[0] + "\n")
    rec = json.loads((shards[0] / "run.json").read_text())
    rec.pop("samples_sha256", None)
    (shards[0] / "run.json").write_text(json.dumps(rec))
    with pytest.raises(UsageError, match=r"is in two shards.*\(overlap\)"):
        merge(shards, results_root=str(tmp_path / "results"))
    assert not (tmp_path / "results" / "demo-test" / shards[0].name.split("-shard")[0]).exists()  # nothing written


def test_an_unfinished_shard_is_refused_and_a_shard_resumes(tmp_path):
    shards = _shards(tmp_path)
    rec = json.loads((shards[1] / "run.json").read_text())
    rec["status"] = "running"
    (shards[1] / "run.json").write_text(json.dumps(rec))
    with pytest.raises(UsageError, match="shard 1/3 .* is running: rerun its command"):
        merge(shards, results_root=str(tmp_path / "results"))
    # rerunning the shard's command finishes it (nothing is scored twice: every row is there)
    again = run(_cfg(tmp_path, shard=(1, 3)), log=lambda m: None)
    assert again["status"] == "complete" and Path(again["run_dir"]) == shards[1]
    assert len(read_samples(shards[1] / "samples.jsonl")) == rec["counts"]["ok"]
    assert merge(shards, results_root=str(tmp_path / "results"), log=lambda m: None)["status"] == "complete"


def test_the_cli_runs_shards_and_merges(tmp_path):
    res = tmp_path / "r"
    for i in range(2):
        proc = run_cli(["run", "--scorer", "random", "--shard", f"{i}/2", "--results", res, "--no-progress"])
        assert proc.returncode == 0, proc.stderr
        assert f"shard{i}of2" in proc.stdout
    shards = sorted((res / "demo-test").glob("*-shard*"))
    proc = run_cli(["merge", *shards, "--into", tmp_path / "merged", "--json"])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["n_prompts"] == 300 and out["status"] == "complete"
    proc = run_cli(["run", "--scorer", "random,clip", "--shard", "0/2", "--results", res])
    assert proc.returncode == 2 and "--shard splits one run" in proc.stderr
    proc = run_cli(["merge", shards[0], "--into", tmp_path / "m2"])
    assert proc.returncode == 2 and "shard(s) 1/2 missing (gap)" in proc.stderr
    # the report skips shard folders: they are not runs of the whole split
    proc = run_cli(["report", "--results", res])
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_vlm_shards_merge_into_the_same_sampled_scores(tmp_path):
    # sampled reasoning: the rollout seeds are keyed by the item, so a shard scores each item as one
    # process does
    skip_without_extra("vlm")
    kw = {"scorer": "expected_rating", "limit": 8, "params": {"max_new_tokens": 16}}
    shards = _shards(tmp_path, 2, **kw)
    merged = merge(shards, results_root=str(tmp_path / "results"), log=lambda m: None)
    single = run(_cfg(tmp_path, results_root=str(tmp_path / "single"), **kw), log=lambda m: None)
    assert merged["config_hash"] == single["config_hash"]
    a = read_samples(Path(merged["run_dir"]) / "samples.jsonl")
    b = read_samples(Path(single["run_dir"]) / "samples.jsonl")
    assert {k: r["score"] for k, r in a.items()} == pytest.approx({k: r["score"] for k, r in b.items()}, abs=1e-6)
    assert merged["metrics"]["accuracy"] == pytest.approx(single["metrics"]["accuracy"], abs=1e-6)
