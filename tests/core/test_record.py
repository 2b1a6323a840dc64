"""The typed run record: committed run.json files round-trip byte for byte, older records
upgrade on read without gaining keys, and a malformed block is an error naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefbench.errors import DataError
from prefbench.record import RUN_SCHEMA_VERSION, Block, RunRecord, SampleRow
from prefbench.store import read_record, write_record

REPO = Path(__file__).resolve().parents[2]
COMMITTED = sorted((REPO / "results").rglob("run.json"))


def test_there_are_committed_runs():
    assert len(COMMITTED) >= 10, "the committed demo runs are what the round trip below is checked on"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_run_round_trips_byte_for_byte(path, tmp_path):
    rec = read_record(path)
    assert isinstance(rec, RunRecord)
    # typed reads agree with the JSON
    raw = json.loads(path.read_text())
    assert rec.metrics.accuracy == raw["metrics"]["accuracy"]
    assert rec.dataset.content_hash == raw["dataset"]["content_hash"]
    assert rec.scorer.resolved == raw["scorer"]["resolved"]
    assert rec.kind == "scoring" and not rec.has("kind")
    out = tmp_path / "run.json"
    write_record(out, rec)
    assert out.read_bytes() == path.read_bytes()


def _older_record() -> dict:
    """A record as the first prefbench wrote it: no kind, no samples_sha256, no dataset.data_dir,
    no scorer.engine, no prompt or vision token totals; plus a key this prefbench does not know."""
    return {
        "schema_version": 1, "status": "complete", "run_dir": "results/demo-ood/random-x", "config_hash": "ab" * 32,
        "created": "2026-11-26T04:14:50+00:00",
        "scorer": {"name": "random", "target": "prefbench.scorers.random:RandomScorer", "source": "builtin",
                   "passed": {}, "resolved": {"seed": 0}},
        "model": {"id": None, "revision": None}, "prompt_template_hash": None,
        "dataset": {"name": "demo", "split": "ood", "content_hash": "cd" * 32, "n_items": 2, "n_images": 4,
                    "source": "demo-v1", "note": None, "limit": None},
        "seeds": {"seed": 0, "bootstrap_seed": 0},
        "metric_options": {"convention": "imagereward", "tie_threshold": 0.0, "bootstrap_resamples": 100,
                           "bootstrap_seed": 0},
        "versions": {"python": "3.11.7"}, "git": {"commit": None, "dirty": None}, "command": ["prefbench", "run"],
        "finished": "2026-11-26T04:14:51+00:00",
        "metrics": {"convention": "imagereward", "accuracy": 0.5, "ci_low": 0.25, "ci_high": 0.75, "n_prompts": 2,
                    "n_pairs": 4, "old_metric_name": 1},
        "counts": {"ok": 4, "unparsed": 0, "error": 0, "forced": 0, "missing": 0},
        "throughput": {"images_scored_this_session": 4, "wall_s": 0.1, "images_per_s": 40.0},
        "scorer_summary": {}, "samples_bytes": 123,
        "per_prompt": {"item_ids": ["a", "b"], "num": [1.0, 1.0], "den": [2.0, 2.0]},
        "a_key_from_elsewhere": {"kept": True},
    }


def test_older_record_upgrades_on_read_and_writes_back_unchanged(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_older_record(), indent=2) + "\n")
    rec = read_record(tmp_path)  # a run folder works as well as the file
    # absent keys read as their defaults
    assert rec.kind == "scoring"
    assert rec.samples_sha256 is None and not rec.has("samples_sha256")
    assert rec.dataset.data_dir is None and rec.scorer.engine is None
    assert rec.throughput.prompt_tokens is None
    # known fields typed, unknown keys kept where they were
    assert rec.metrics.n_pairs == 4 and rec.metrics.extra == {"old_metric_name": 1}
    assert rec.extra == {"a_key_from_elsewhere": {"kept": True}}
    assert list(rec.to_json()) == list(_older_record())
    out = tmp_path / "again.json"
    write_record(out, rec)
    assert json.loads(out.read_text()) == _older_record()
    assert out.read_bytes() == path.read_bytes()


def test_newer_schema_and_malformed_blocks(tmp_path):
    newer = dict(_older_record(), schema_version=RUN_SCHEMA_VERSION + 1)
    assert RunRecord.read(newer).newer_than_this
    assert not RunRecord.read(_older_record()).newer_than_this
    bad = dict(_older_record(), scorer="random")
    (tmp_path / "run.json").write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"run\.json: field 'scorer' must be an object"):
        read_record(tmp_path / "run.json")
    (tmp_path / "run.json").write_text(json.dumps(dict(_older_record(), metrics={"counts": 1, "accuracy": 2},
                                                       counts=[1])))
    with pytest.raises(DataError, match="field 'counts' must be an object"):
        read_record(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"status": "complete"}))
    with pytest.raises(DataError, match="no schema_version"):
        read_record(tmp_path)


def test_a_new_record_keeps_the_order_its_keys_were_set_in():
    rec = RunRecord(schema_version=1, status="running", run_dir="x")
    rec.update({"metrics": {"accuracy": 0.5, "n_pairs": 2}, "custom": [1]})
    rec.status = "complete"  # an existing key keeps its place
    rec["executor"] = {"workers": 2}
    assert list(rec.to_json()) == ["schema_version", "status", "run_dir", "metrics", "custom", "executor"]
    assert rec.metrics.accuracy == 0.5 and rec["metrics"] == {"accuracy": 0.5, "n_pairs": 2}
    assert rec.to_json()["status"] == "complete"
    assert "finished" not in rec and rec.get("finished", "none") == "none"
    with pytest.raises(AttributeError, match="no field 'acuracy'"):
        rec.metrics.acuracy = 1.0
    del rec.metrics
    assert rec.metrics is None and "metrics" not in rec.to_json()


def test_every_field_is_documented():
    for cls in (RunRecord, SampleRow, *Block.__subclasses__()):
        for name, text in cls.docs().items():
            assert len(text) > 10, f"{cls.__name__}.{name} needs a docstring"


def test_an_older_sample_row_lifts_typed_fields_out_of_detail():
    old = {"item_id": "a", "image_index": 0, "score": 0.7, "status": "ok",
           "detail": {"prob": 0.7, "anchor_index": 1, "forced": True, "trace": "..."}}
    row = SampleRow.read(json.loads(json.dumps(old)))
    assert (row.prob, row.anchor_index, row.forced, row.generated_tokens) == (0.7, 1, True, None)
    assert row.detail == old["detail"]
    assert list(row.to_json())[:4] == ["item_id", "image_index", "score", "status"]
