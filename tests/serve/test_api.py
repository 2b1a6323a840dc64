"""The in-process API, ``prefbench.load_scorer``: the bundled demo scorers score, rank and
batch; round_robin; on_error; bad image types; a closed scorer; the bundled-checkpoint note."""

from __future__ import annotations

import math

import pytest

from prefbench.api import ScoringError, load_scorer, rank_scores
from prefbench.errors import UsageError
from tests.fixtures.serve import png

IMAGES = [png(1, size=48), png(2, size=48), png(3, size=48)]


@pytest.fixture(scope="module")
def scorers():
    out = {"random": load_scorer("random")}
    try:
        for name in ("clip", "expected_rating", "anchor_pairwise"):
            out[name] = load_scorer(name)
    except Exception as exc:  # noqa: BLE001 - torch missing: the model rows are skipped
        pytest.skip(f"bundled demo scorers need torch/transformers: {exc}")
    yield out
    for s in out.values():
        s.close()


@pytest.mark.parametrize("name", ["random", "clip", "expected_rating", "anchor_pairwise"])
def test_score_rank_and_batching(scorers, name):
    scorer = scorers[name]
    scores = scorer.score("two red circles", IMAGES)
    assert len(scores) == 3 and all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert scorer.rank("two red circles", IMAGES) == rank_scores(scores)
    items = [("two red circles", IMAGES), {"prompt": "a blue square", "images": IMAGES[:2]}]
    scored = scorer.score_items(items)
    assert [s.ok for s in scored] == [True, True] and scored[0].statuses == ["ok"] * 3
    assert scored[0].scores == pytest.approx(scores, abs=1e-5)  # the batch an item is in changes no score (float noise aside)
    assert scored[1].scores == pytest.approx(scorer.score("a blue square", IMAGES[:2]), abs=1e-5)
    assert len(scored[0].details) == 3


def test_round_robin(scorers):
    scores = scorers["anchor_pairwise"].score("two red circles", IMAGES, mode="round_robin")
    assert all(0 <= s <= 1 for s in scores) and sum(scores) == pytest.approx(1.5)  # win rates: n/2 in all
    with pytest.raises(UsageError, match="pairwise"):
        scorers["clip"].score("x", IMAGES, mode="round_robin")
    with pytest.raises(UsageError, match="at least two"):
        scorers["anchor_pairwise"].score("x", IMAGES[:1], mode="round_robin")


def test_on_error(scorers):
    images = [IMAGES[0], b"not an image"]
    with pytest.raises(ScoringError, match="image 1") as err:
        scorers["clip"].score("x", images)
    assert err.value.items[0].statuses == ["ok", "error"]
    scores = scorers["clip"].score("x", images, on_error="nan")
    assert math.isfinite(scores[0]) and math.isnan(scores[1])
    assert scorers["clip"].rank("x", images, on_error="nan") == [1, 2]


def test_bad_image_types_and_a_closed_scorer():
    scorer = load_scorer("random")
    with pytest.raises(UsageError, match="expected a path, PIL image or bytes"):
        scorer.score("x", [42])
    with pytest.raises(UsageError, match="must be a list"):
        scorer.score("x", IMAGES[0])
    with pytest.raises(UsageError, match="no images"):
        scorer.score("x", [])
    scorer.score("x", IMAGES)
    scorer.close()
    with pytest.raises(UsageError, match="closed"):
        scorer.score("x", IMAGES)


def test_info_notes_the_bundled_checkpoint(scorers):
    info = scorers["clip"].info()
    assert info["model"]["id"] == "prefbench-demo/clip" and "bundled" in info["note"]
    assert "note" not in scorers["random"].info()
    assert {"scorer", "options", "mode", "versions"} <= set(info)


def test_round_robin_decodes_each_image_once(scorers, monkeypatch):
    """Each image is in n-1 comparisons but is decoded once (its pixel and scan budgets count once)."""
    import prefbench.data.model as model

    calls = []
    real = model.decode_image

    def counting(fh, name="<image>", **kw):
        calls.append(name)
        return real(fh, name=name, **kw)

    monkeypatch.setattr(model, "decode_image", counting)
    images = IMAGES + [png(4, size=48)]
    once = scorers["anchor_pairwise"].score("two red circles", images, mode="round_robin")
    assert len(calls) == len(images)  # 6 comparisons, 4 decodes
    calls.clear()
    assert scorers["anchor_pairwise"].score("two red circles", images) and len(calls) == len(images)
    assert len(once) == 4 and all(0.0 <= s <= 1.0 for s in once)
