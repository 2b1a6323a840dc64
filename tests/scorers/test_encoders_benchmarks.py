"""Encoder baselines on the 2025-26 sets: each tiny encoder checkpoint scores HPDv3, GenAI-Bench,
GenAI-Bench-Rank, MMRB2 and EvalMuse (synthetic copies in their published layouts) through the
runner, every image ok, the headline of the set's own convention with its CI."""

from __future__ import annotations

import math

import pytest

from prefbench.runner import RunConfig, run
from tests.fixtures import benchmarks as bm
from tests.fixtures.encoders import ALL, FOLDER
from tests.fixtures.extras import skip_without_extra

#: few items each: the point is that every path runs, not the numbers
SETS = {
    "hpdv3": ("test", lambda d: bm.write_hpdv3(d, n=4)),
    "genai_bench": ("test_v1", lambda d: bm.write_genai_bench(d, n=8)),
    "genai_rank": ("DALLE_3", lambda d: bm.write_genai_rank(d, n_prompts=2)),
    "mmrb2": ("t2i", lambda d: bm.write_mmrb2(d, n=4)),
    "evalmuse": ("train", lambda d: bm.write_evalmuse(d, n_prompts=3, per_prompt=3)),
}
#: headlines that are correlations, in [-1, 1]; the others are accuracies or shares, in [0, 1]
CORRELATIONS = {"SRCC", "PLCC"}


@pytest.fixture(scope="module")
def set_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    for name, (_, write) in SETS.items():
        write(root / name)
    return root


@pytest.mark.parametrize("dataset", list(SETS))
@pytest.mark.parametrize("name", ALL)
def test_encoder_baseline_on_each_set(name, dataset, tiny_encoders, set_dirs, tmp_path):
    skip_without_extra(name)
    split = SETS[dataset][0]
    rec = run(RunConfig(scorer=name, model=str(tiny_encoders / FOLDER[name]), dataset=dataset, split=split,
                        data_dir=str(set_dirs / dataset), params={"device": "cpu"}, results_root=str(tmp_path),
                        progress=False, bootstrap_resamples=200))
    from prefbench.data import load_dataset

    n_images = load_dataset(dataset, split, set_dirs / dataset, with_images=False).n_images
    assert rec["status"] == "complete", rec.get("status")
    assert rec["counts"]["ok"] == n_images and rec["counts"]["error"] == 0, rec["counts"]
    m = rec["metrics"]
    assert m["convention"] == load_dataset(dataset, split, set_dirs / dataset, with_images=False).convention
    lo = -1.0 if m.get("measure") in CORRELATIONS else 0.0
    assert lo <= m["accuracy"] <= 1.0, m
    assert math.isfinite(m["ci_low"]) and math.isfinite(m["ci_high"]), m
    assert lo <= m["ci_low"] <= m["ci_high"] <= 1.0, m
