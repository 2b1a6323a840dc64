"""Nothing outside the data dir is read: `..`, absolute paths and symlinks that resolve outside
give that image status error (the run completes); every image outside is an error up front;
--allow-outside-data-dir opts in and is recorded; the report and the trainer's task builders
follow the same rule. Also the neighbours: a symlink loop, a FIFO and a device file."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from PIL import Image

from prefbench.data import load_dataset
from prefbench.errors import DataError
from prefbench.runner import RunConfig, run
from tests.fixtures.cli import run_cli


def _png(path: Path, colour=(200, 10, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 12), colour).save(path)


@pytest.fixture
def hostile(tmp_path) -> Path:
    """A JSONL data dir whose first item reaches outside it three ways; the second is clean."""
    outside = tmp_path / "secret"
    _png(outside / "private.png", (1, 2, 3))
    data = tmp_path / "data"
    for name in ("a.png", "b.png", "c.png", "d.png"):
        _png(data / "img" / name)
    (data / "img" / "link.png").symlink_to(outside / "private.png")
    rows = [
        {"prompt_id": "p0", "prompt": "a red cube",
         "images": ["img/a.png", "../secret/private.png", str(outside / "private.png"), "img/link.png"],
         "ranks": [1, 2, 3, 4]},
        {"prompt_id": "p1", "prompt": "a blue cube", "images": ["img/b.png", "img/c.png", "img/d.png"],
         "ranks": [1, 2, 2]},
    ]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def _rows(run_dir: Path) -> dict:
    return {(r["item_id"], r["image_index"]): r
            for r in map(json.loads, (Path(run_dir) / "samples.jsonl").read_text().splitlines())}


def test_outside_images_get_status_error_and_the_run_completes(hostile, tmp_path):
    rec = run(RunConfig(scorer="random", dataset="jsonl", data_dir=str(hostile), out=str(tmp_path / "run"),
                        progress=False))
    assert rec["status"] == "complete"
    assert rec["counts"]["ok"] == 4 and rec["counts"]["error"] == 3
    rows = _rows(tmp_path / "run")
    for k in (1, 2, 3):  # .., absolute, symlink
        assert rows[("p0", k)]["status"] == "error"
        assert "outside the data dir" in rows[("p0", k)]["error"]
        assert "--allow-outside-data-dir" in rows[("p0", k)]["error"]
    assert rows[("p0", 0)]["status"] == "ok"
    assert "allow_outside_data_dir" not in rec["dataset"]


def test_allow_outside_data_dir_reads_them_and_is_recorded(hostile, tmp_path):
    base = run(RunConfig(scorer="random", dataset="jsonl", data_dir=str(hostile), out=str(tmp_path / "a"),
                         progress=False))
    rec = run(RunConfig(scorer="random", dataset="jsonl", data_dir=str(hostile), out=str(tmp_path / "b"),
                        progress=False, allow_outside_data_dir=True))
    assert rec["counts"]["ok"] == 7 and rec["counts"]["error"] == 0
    assert rec["dataset"]["allow_outside_data_dir"] is True
    assert rec["config_hash"] != base["config_hash"]  # a different run, never a cache hit of the other
    proc = run_cli(["run", "--scorer", "random", "--dataset", "jsonl", "--data-dir", hostile, "--out",
                    tmp_path / "c", "--allow-outside-data-dir", "--json", "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"]["ok"] == 7


def test_every_image_outside_is_one_error_up_front(tmp_path):
    outside = tmp_path / "elsewhere"
    _png(outside / "x.png")
    _png(outside / "y.png")
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.jsonl").write_text(json.dumps(
        {"prompt_id": "p", "prompt": "t", "images": [str(outside / "x.png"), "../elsewhere/y.png"],
         "ranks": [1, 2]}) + "\n")
    with pytest.raises(DataError, match="all 2 image paths resolve outside the data dir"):
        load_dataset("jsonl", "test", data)
    proc = run_cli(["run", "--scorer", "random", "--dataset", "jsonl", "--data-dir", data, "--out", tmp_path / "r"])
    assert proc.returncode == 2
    assert "outside the data dir" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()
    assert load_dataset("jsonl", "test", data, allow_outside_data_dir=True).n_images == 2


def test_symlink_loop_fifo_and_device_are_per_image_errors(tmp_path):
    data = tmp_path / "data"
    _png(data / "ok.png")
    (data / "loop1.png").symlink_to(data / "loop2.png")
    (data / "loop2.png").symlink_to(data / "loop1.png")
    os.mkfifo(data / "fifo.png")
    rows = [{"prompt_id": "p", "prompt": "t", "images": ["ok.png", "loop1.png", "fifo.png"], "ranks": [1, 2, 3]},
            {"prompt_id": "q", "prompt": "t", "images": ["ok.png", "/dev/zero"], "ranks": [1, 2]}]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = {}

    def go():  # a FIFO would block open() for ever: run in a thread and give it a deadline
        done["rec"] = run(RunConfig(scorer="random", dataset="jsonl", data_dir=str(data), out=str(tmp_path / "r"),
                                    progress=False, allow_outside_data_dir=True))

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the run hung on a FIFO or a symlink loop"
    rows = _rows(tmp_path / "r")
    assert "symlink loop" in rows[("p", 1)]["error"]
    assert "not a regular file" in rows[("p", 2)]["error"]
    assert "not a regular file" in rows[("q", 1)]["error"]  # /dev/zero is never read into memory
    assert done["rec"]["counts"]["ok"] == 2


def test_a_path_swapped_for_a_symlink_after_loading_is_still_refused(tmp_path):
    data = tmp_path / "data"
    _png(data / "a.png")
    _png(data / "b.png")
    _png(tmp_path / "private.png")
    (data / "test.jsonl").write_text(json.dumps(
        {"prompt_id": "p", "prompt": "t", "images": ["a.png", "b.png"], "ranks": [1, 2]}) + "\n")
    split = load_dataset("jsonl", "test", data)
    (data / "b.png").unlink()
    (data / "b.png").symlink_to(tmp_path / "private.png")  # after the up-front check
    from prefbench.errors import ImageError

    with pytest.raises(ImageError, match="outside the data dir"):
        split.items[0].images[1].read_bytes()
    split.items[0].images[0].open()


def test_report_browser_never_embeds_a_file_from_outside(hostile, tmp_path):
    from prefbench.report import write_report

    results = tmp_path / "results"
    run(RunConfig(scorer="random", dataset="jsonl", data_dir=str(hostile), results_root=str(results),
                  progress=False, allow_outside_data_dir=True))
    write_report(results, results, n_items=5)
    html = (results / "leaderboard.html").read_text()
    # item p0 has 4 images: only img/a.png is inside; p1's 3 are inside
    assert html.count('<img src="data:image/jpeg;base64,') == 4
    assert html.count("image unavailable") == 3


def test_training_task_builders_refuse_outside_images(hostile, tmp_path):
    from prefbench.training.tasks import build_task

    with pytest.raises(DataError, match="3 of 7 training images cannot be used.*outside the data dir"):
        build_task("pairwise", "jsonl", "test", hostile)
    data = build_task("pairwise", "jsonl", "test", hostile, allow_outside_data_dir=True)
    assert len(data.examples) == 8
    rating = tmp_path / "rating.jsonl"
    rating.write_text(json.dumps({"prompt": "t", "image": "../secret/private.png", "rating": 3}) + "\n"
                      + json.dumps({"prompt": "t", "image": "data/img/a.png", "rating": 2}) + "\n")
    with pytest.raises(DataError, match="1 of 2 training images cannot be used"):
        build_task("rating", "jsonl", "train", rating, rating_min=1, rating_max=5)
