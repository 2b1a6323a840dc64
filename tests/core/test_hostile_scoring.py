"""Issue 31 items 1 and 6: one bad image fails only itself, and a non-finite score is that image's
error, in ``decode_image``, the API, ``prefbench run`` and ``bench-generators`` (the server:
tests/serve/test_hostile_server.py). The bad images are real files that make Pillow's plugins raise
``NotImplementedError`` (DDS) and ``AttributeError`` (SPIDER); the bad scores come from a real
scorer plugin found through its entry point."""

from __future__ import annotations

import io
import json
import math
import os

import pytest

from prefbench.api import ScoringError, load_scorer
from prefbench.data.images import decode_image
from prefbench.errors import ImageError
from tests.fixtures.cli import run_cli
from tests.fixtures.hostile import (
    INF_RED,
    NAN_RED,
    NEG_INF_RED,
    RAISE_RED,
    bad_output_plugin,
    dds_unsupported,
    solid_png,
    spider_attribute_error,
)

GOOD = [solid_png((200 - 10 * k, 40, 40)) for k in range(6)]


@pytest.mark.parametrize("data, kind", [(dds_unsupported(), "NotImplementedError"),
                                        (spider_attribute_error(), "AttributeError")])
def test_any_pillow_exception_is_an_image_error_with_its_type(data, kind):
    with pytest.raises(ImageError, match=f"bad.img: cannot decode \\({kind}: "):
        decode_image(io.BytesIO(data), "bad.img")


def test_api_bad_images_fail_alone_in_one_batch():
    with load_scorer("random", on_error="nan") as scorer:
        items = scorer.score_items([("a", [GOOD[0], dds_unsupported(), GOOD[1]]),
                                    ("b", [spider_attribute_error(), GOOD[2]]),
                                    ("c", [GOOD[3], GOOD[4]])])
    assert [i.statuses for i in items] == [["ok", "error", "ok"], ["error", "ok"], ["ok", "ok"]]
    assert "NotImplementedError" in items[0].errors[1] and "AttributeError" in items[1].errors[0]
    assert all(isinstance(s, float) and math.isfinite(s) for i in items for s, st in zip(i.scores, i.statuses)
               if st == "ok")


@pytest.fixture
def bad_plugin(tmp_path, monkeypatch):
    root = bad_output_plugin(tmp_path / "plugin")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    return root


def _bad_images():
    return [solid_png((100, 0, 0)), solid_png((NAN_RED, 0, 0)), solid_png((INF_RED, 0, 0)),
            solid_png((NEG_INF_RED, 0, 0)), solid_png((RAISE_RED, 0, 0)), solid_png((50, 0, 0))]


def test_api_non_finite_and_raising_plugin_scores_are_per_image_errors(bad_plugin):
    with load_scorer("bad_output", on_error="nan") as scorer:
        items = scorer.score_items([("p", _bad_images()), ("q", [solid_png((10, 0, 0))])])
        assert items[0].statuses == ["ok", "error", "error", "error", "error", "ok"]
        assert items[1].statuses == ["ok"]  # batched with the raising item, still scored
        assert items[0].scores[0] == pytest.approx(100 / 255) and items[1].scores[0] == pytest.approx(10 / 255)
        assert "non-finite score (nan)" in items[0].errors[1] and "(inf)" in items[0].errors[2]
        assert "(-inf)" in items[0].errors[3] and "RuntimeError: plugin bug on red=4" in items[0].errors[4]
        assert all(s is None for s in items[0].scores[1:5])
        with pytest.raises(ScoringError, match="non-finite score"):
            scorer.score("p", _bad_images()[:2], on_error="raise")


def _jsonl_dataset(root, images_per_item):
    (root / "img").mkdir(parents=True)
    lines = []
    for i, images in enumerate(images_per_item):
        names = []
        for k, data in enumerate(images):
            (root / "img" / f"{i}_{k}.png").write_bytes(data)
            names.append(f"img/{i}_{k}.png")
        lines.append(json.dumps({"prompt_id": f"p{i}", "prompt": f"prompt {i}", "images": names,
                                 "ranks": list(range(1, len(names) + 1))}))
    (root / "test.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _samples(out):
    return {(r["item_id"], r["image_index"]): r for r in map(json.loads, (out / "samples.jsonl").open())}


def test_run_bad_images_fail_alone(tmp_path):
    data = _jsonl_dataset(tmp_path / "d", [[GOOD[0], GOOD[1]], [dds_unsupported(), GOOD[2]],
                                           [GOOD[3], spider_attribute_error()], [GOOD[4], GOOD[5]]])
    proc = run_cli(["run", "--scorer", "random", "--dataset", "jsonl", "--data-dir", data, "--out", tmp_path / "o",
                    "--no-progress", "--batch-size", "16", "--bootstrap-resamples", "10"])
    assert proc.returncode == 0, proc.stderr
    rows = _samples(tmp_path / "o")
    bad = {key: r["error"] for key, r in rows.items() if r["status"] != "ok"}
    assert set(bad) == {("p1", 0), ("p2", 1)}, bad
    assert "NotImplementedError" in bad[("p1", 0)] and "AttributeError" in bad[("p2", 1)]


def test_run_and_bench_generators_survive_non_finite_and_raising_plugins(tmp_path, bad_plugin):
    images = _bad_images()
    data = _jsonl_dataset(tmp_path / "d", [images[:3], images[3:], [solid_png((30, 0, 0)), solid_png((60, 0, 0))]])
    proc = run_cli(["run", "--scorer", "bad_output", "--dataset", "jsonl", "--data-dir", data, "--out",
                    tmp_path / "o", "--no-progress", "--bootstrap-resamples", "10"])
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    assert record["status"] != "running"
    rows = _samples(tmp_path / "o")
    assert {k for k, r in rows.items() if r["status"] != "ok"} == {("p0", 1), ("p0", 2), ("p1", 0), ("p1", 1)}
    assert rows[("p2", 0)]["status"] == rows[("p2", 1)]["status"] == "ok"

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a\nb\n")
    for gen, reds in {"g1": (NAN_RED, 90), "g2": (RAISE_RED, 80)}.items():
        (tmp_path / "gens" / gen).mkdir(parents=True)
        for p, red in enumerate(reds):
            (tmp_path / "gens" / gen / f"{p}_0.png").write_bytes(solid_png((red, 0, 0)))
    proc = run_cli(["bench-generators", "--scorer", "bad_output", "--prompts", prompts, "--images",
                    tmp_path / "gens", "--out", tmp_path / "g", "--no-progress", "--bootstrap-resamples", "10"])
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "g" / "samples.jsonl").open()]
    assert sorted(r["status"] for r in rows) == ["error", "error", "ok", "ok"]


def test_a_jpeg_scan_bomb_is_refused_before_decoding_and_fails_alone(monkeypatch):
    import time

    from tests.fixtures.hostile import jpeg_scan_bomb

    bomb = jpeg_scan_bomb()
    start = time.perf_counter()
    with pytest.raises(ImageError, match=r"bomb.jpg: a JPEG of 2010 scans exceeds the limit of 64"):
        decode_image(io.BytesIO(bomb), "bomb.jpg")
    assert time.perf_counter() - start < 1.0  # counted from the bytes, nothing decoded (it decodes for ~10 s)
    normal = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (640, 480), (1, 2, 3)).save(normal, "JPEG", progressive=True)
    assert decode_image(io.BytesIO(normal.getvalue())).size == (640, 480)
    # the scans x pixels budget: 30 scans are allowed, but not at 2048x2048 under a small budget
    monkeypatch.setenv("PREFBENCH_MAX_JPEG_SCAN_PIXELS", str(20 * 2048 * 2048))
    with pytest.raises(ImageError, match="30 scans x 4194304 pixels exceeds the decoding budget"):
        decode_image(io.BytesIO(jpeg_scan_bomb(repeat=20)), "b.jpg")
    monkeypatch.delenv("PREFBENCH_MAX_JPEG_SCAN_PIXELS")
    with load_scorer("random", on_error="nan") as scorer:
        item = scorer.score_items([("p", [GOOD[0], bomb, GOOD[1]])])[0]
    assert item.statuses == ["ok", "error", "ok"] and "2010 scans" in item.errors[1]
