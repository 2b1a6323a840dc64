"""`prefbench rank`: best-of-N from the command line, on the bundled demo checkpoints."""

from __future__ import annotations

import json

import pytest

from prefbench.data import load_dataset
from tests.fixtures.cli import run_cli
from tests.fixtures.extras import skip_without_extra


@pytest.fixture(scope="module")
def demo_images(tmp_path_factory):
    """Four demo test images of one prompt, as files, and the prompt."""
    root = tmp_path_factory.mktemp("rank_images")
    item = load_dataset("demo", "test", limit=1).items[0]
    paths = []
    for k, ref in enumerate(item.images[:4]):
        path = root / f"cand{k}.png"
        path.write_bytes(ref.read_bytes())
        paths.append(path)
    return item.prompt, paths


@pytest.mark.parametrize("scorer", ["random", "clip", "expected_rating", "anchor_pairwise"])
def test_rank_json_orders_images_by_score(scorer, demo_images):
    if scorer != "random":
        skip_without_extra("clip" if scorer == "clip" else "vlm")
    prompt, paths = demo_images
    proc = run_cli(["rank", "--scorer", scorer, "--prompt", prompt, *paths, "--json"])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    rows = out["ranking"]
    assert sorted(r["image"] for r in rows) == sorted(map(str, paths))
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert [r["rank"] for r in rows][0] == 1
    if scorer in ("expected_rating", "anchor_pairwise"):
        assert out["model"].startswith("prefbench-demo/")
        assert "bundled checkpoint" in out["note"]
        assert any("<answer>" in t for r in rows for t in r["traces"])  # the reasoning is shown


def test_rank_text_and_a_failed_image(demo_images, tmp_path):
    prompt, paths = demo_images
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    proc = run_cli(["rank", "--scorer", "random", "--prompt", prompt, paths[0], bad, paths[1]])
    assert proc.returncode == 1  # a ranking with an unscored image is not a full answer
    lines = proc.stdout.splitlines()
    assert lines[1].lstrip().startswith("1.") and lines[-1].lstrip().startswith("-  error")
    assert str(bad) in lines[-1]
    assert "1 of 3 images could not be scored" in proc.stderr


def test_rank_refusals(demo_images):
    prompt, paths = demo_images
    proc = run_cli(["rank", "--scorer", "random", "--mode", "round_robin", "--prompt", prompt, *paths])
    assert proc.returncode == 2 and "needs a pairwise scorer" in proc.stderr
    proc = run_cli(["rank", "--scorer", "random", "-S", "nope=1", "--prompt", prompt, *paths])
    assert proc.returncode == 2 and "no option(s) nope" in proc.stderr


def test_rank_round_robin_is_a_win_rate(demo_images):
    skip_without_extra("vlm")
    prompt, paths = demo_images
    proc = run_cli(["rank", "--scorer", "anchor_pairwise", "--mode", "round_robin", "--prompt", prompt, *paths,
                    "--json"])
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["ranking"]
    # win rates over all pairs: P(i beats j) + P(j beats i) = 1, so they average to 1/2
    assert sum(r["score"] for r in rows) / len(rows) == pytest.approx(0.5)
