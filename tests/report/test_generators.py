"""`prefbench bench-generators`: the prompts and images it reads, the statistics against a hand
computation from samples.jsonl, resume, bad files, the run record, the report section and --json."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from prefbench.cli import main
from prefbench.errors import DataError, UsageError
from prefbench.generator_stats import generator_statistics, resample_counts
from prefbench.generators import GeneratorConfig, bench_generators, read_prompts, scan_images
from prefbench.report import write_report
from prefbench.report.markdown import md_escape
from prefbench.store import read_samples
from tests.fixtures.extras import requires_extra, skip_without_extra
from tests.fixtures.report import bernoulli_prompts, hand_run

COLOURS = {"red": (215, 40, 40), "blue": (45, 80, 215), "green": (40, 160, 60)}
#: generator -> what it draws for "one red circle ...": the right thing, a wrong colour, a wrong shape
GENERATORS = {"good": ("red", "circle"), "wrongcolour": ("blue", "circle"), "wrongshape": ("red", "square")}
N_PROMPTS, K = 6, 2
RESAMPLES = 500


def _draw(path: Path, colour: str, shape: str, jitter: int) -> None:
    im = Image.new("RGB", (112, 112), (245, 245, 245))
    d = ImageDraw.Draw(im)
    box = (28 + jitter, 30, 82 + jitter, 84)
    (d.ellipse if shape == "circle" else d.rectangle)(box, fill=COLOURS[colour])
    im.save(path)


def make_bench(root: Path, n_prompts: int = N_PROMPTS, k: int = K) -> tuple[Path, Path]:
    """prompts.json (ImageReward's format) and DIR/<generator>/<id>_<k>.png: 3 generators x
    ``n_prompts`` x ``k`` images."""
    root.mkdir(parents=True, exist_ok=True)
    prompts = root / "prompts.json"
    prompts.write_text(json.dumps([{"id": f"{i:03d}", "prompt": "one red circle on a white background"}
                                   for i in range(n_prompts)]))
    images = root / "gens"
    for g, (colour, shape) in GENERATORS.items():
        (images / g).mkdir(parents=True)
        for i in range(n_prompts):
            for j in range(k):
                _draw(images / g / f"{i:03d}_{j}.png", colour, shape, 3 * j + i)
    return prompts, images


def bench(prompts: Path, images: Path, results: Path, scorer: str = "random", **kw) -> dict:
    cfg = GeneratorConfig(scorer=scorer, prompts=str(prompts), images=str(images), results_root=str(results),
                          progress=False, bootstrap_resamples=kw.pop("resamples", RESAMPLES), **kw)
    return bench_generators(cfg, log=lambda msg: None)


def hand_means(run_dir: Path) -> dict[str, dict[str, float]]:
    """generator -> prompt -> mean of its ok scores, straight from samples.jsonl."""
    per: dict[str, dict[str, list[float]]] = {}
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["status"] == "ok":
            per.setdefault(row["generator"], {}).setdefault(row["prompt_id"], []).append(row["score"])
    return {g: {p: sum(v) / len(v) for p, v in ps.items()} for g, ps in per.items()}


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    return make_bench(tmp_path_factory.mktemp("gens"))


def test_means_are_means_of_prompt_means_with_a_reproducible_ci(bench_dir, tmp_path):
    prompts, images = bench_dir
    rec = bench(prompts, images, tmp_path / "results")
    run_dir = Path(rec["run_dir"])
    assert run_dir.parent.name == "generators-prompts" and run_dir.name.startswith("random-")
    assert rec["kind"] == "generators" and rec["status"] == "complete"
    assert rec["counts"] == {"ok": 36, "unparsed": 0, "error": 0, "missing": 0}
    rows = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 36 and set(rows[0]) >= {"generator", "prompt_id", "k", "image", "score", "status", "error",
                                                 "detail"}
    assert {r["image"] for r in rows} == {f"{g}/{i:03d}_{j}.png" for g in GENERATORS for i in range(6) for j in (0, 1)}
    hand = hand_means(run_dir)
    by_name = {g["name"]: g for g in rec["generators"]}
    for g, ps in hand.items():
        assert by_name[g]["mean"] == pytest.approx(np.mean(list(ps.values())), abs=1e-12)
        assert by_name[g]["ci_low"] <= by_name[g]["mean"] <= by_name[g]["ci_high"]
        assert (by_name[g]["n_prompts"], by_name[g]["n_images"], by_name[g]["failed"]) == (6, 12, 0)
    # best first; rank 1..3; P(rank 1) sums to 1 over the generators
    means = [g["mean"] for g in rec["generators"]]
    assert means == sorted(means, reverse=True) and [g["rank"] for g in rec["generators"]] == [1, 2, 3]
    assert sum(g["p_first"] for g in rec["generators"]) == pytest.approx(1.0)
    for g in rec["generators"]:
        assert 1 <= g["rank_low"] <= g["median_rank"] <= g["rank_high"] <= 3
    st = rec["stability"]
    assert 0 <= st["p_observed_ranking"] <= 1 and 0 <= st["kendall_w"] <= 1 and st["n_resamples"] == RESAMPLES
    # every pair once, the observed better one as a; the difference is a - b on shared prompts
    assert len(rec["pairs"]) == 3
    for p in rec["pairs"]:
        diff = np.mean([hand[p["a"]][q] - hand[p["b"]][q] for q in hand[p["a"]]])
        assert p["difference"] == pytest.approx(diff, abs=1e-12) and p["difference"] > 0
        assert p["n_common"] == 6 and p["ci_low"] <= p["difference"] <= p["ci_high"]
        assert p["p_value"] == pytest.approx(min(1.0, 2 * min(p["p_a_better"], p["p_b_better"])))
    # the same seed reproduces the CIs exactly (a fresh run folder); another seed moves them
    again = bench(prompts, images, tmp_path / "again")
    assert again["generators"] == rec["generators"] and again["pairs"] == rec["pairs"]
    other = bench(prompts, images, tmp_path / "other", seed=1)
    assert [g["ci_low"] for g in other["generators"]] != [g["ci_low"] for g in rec["generators"]]


def test_bootstrap_matches_a_loop_over_resamples():
    """The vectorised statistic equals the per-resample computation with the same draws, with a
    generator that lacks prompts (its mean uses the prompts it has; pairs use shared ones)."""
    rng = np.random.default_rng(3)
    M = rng.normal(size=(3, 8))
    M[2, [1, 5]] = np.nan
    names, pids = ["a", "b", "c"], [f"p{i}" for i in range(8)]
    out = generator_statistics(names, pids, M, n_resamples=200, seed=11)
    by = {g["name"]: g for g in out["generators"]}
    assert by["c"]["mean"] == pytest.approx(np.nanmean(M[2])) and by["c"]["n_prompts"] == 6
    w = resample_counts(np.random.default_rng(11), 200, 8)
    loop = np.array([[np.nansum(row * M[g]) / row[np.isfinite(M[g])].sum() for g in range(3)] for row in w])
    for g, name in enumerate(names):
        lo, hi = np.percentile(loop[:, g], [2.5, 97.5])
        assert (by[name]["ci_low"], by[name]["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
    pair = next(p for p in out["pairs"] if {p["a"], p["b"]} == {"a", "c"})
    assert pair["n_common"] == 6
    ia, ib = names.index(pair["a"]), names.index(pair["b"])
    shared = np.isfinite(M[ia]) & np.isfinite(M[ib])
    assert pair["difference"] == pytest.approx(np.mean(M[ia][shared] - M[ib][shared]))
    ranks = np.argsort(np.argsort(-loop, axis=1, kind="stable"), axis=1) + 1
    for g, name in enumerate(names):
        assert by[name]["p_first"] == pytest.approx(np.mean(ranks[:, g] == 1))
    assert out["stability"]["p_observed_ranking"] == pytest.approx(
        np.mean((ranks == [by[n]["rank"] for n in names]).all(axis=1)))


def test_resume_scores_only_the_missing_images_and_ends_the_same(bench_dir, tmp_path):
    prompts, images = bench_dir
    first = bench(prompts, images, tmp_path / "results")
    run_dir = Path(first["run_dir"])
    samples = run_dir / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    kept = lines[:len(lines) // 2 - 1]  # cuts one prompt's pair in half: that item is scored again, whole
    samples.write_text("".join(kept))
    rows = read_samples(samples, repair=False)
    missing_items = {f"{g}/{i:03d}" for g in GENERATORS for i in range(6)} - {k[0] for k in rows
                                                                               if (k[0], 1 - k[1]) in rows}
    second = bench(prompts, images, tmp_path / "results")
    assert second["throughput"]["images_scored_this_session"] == 2 * len(missing_items) == 36 - len(kept) + 1
    assert second["status"] == "complete" and second["run_dir"] == first["run_dir"]
    for key in ("generators", "pairs", "stability", "counts", "per_prompt"):
        assert second[key] == first[key], key
    third = bench(prompts, images, tmp_path / "results")
    assert third.get("cached") and third["generators"] == first["generators"]
    # other statistics options re-summarise the stored samples without scoring
    fourth = bench(prompts, images, tmp_path / "results", resamples=300)
    assert not fourth.get("cached") and fourth["throughput"]["images_scored_this_session"] == 0
    assert fourth["stability"]["n_resamples"] == 300


def test_an_interrupted_run_keeps_its_rows_and_resumes(bench_dir, tmp_path, monkeypatch):
    from prefbench.api import RewardScorer

    prompts, images = bench_dir
    real, calls = RewardScorer.score_items, []

    def flaky(self, items, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, items, **kw)

    monkeypatch.setattr(RewardScorer, "score_items", flaky)
    with pytest.raises(KeyboardInterrupt):
        bench(prompts, images, tmp_path / "results", batch_size=3)
    run_dir = next((tmp_path / "results" / "generators-prompts").iterdir())
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert len((run_dir / "samples.jsonl").read_text().splitlines()) == 6  # the first batch: 3 items x 2 images
    monkeypatch.setattr(RewardScorer, "score_items", real)
    resumed = bench(prompts, images, tmp_path / "results", batch_size=3)
    assert resumed["throughput"]["images_scored_this_session"] == 30 and resumed["status"] == "complete"
    fresh = bench(prompts, images, tmp_path / "fresh")
    assert resumed["generators"] == fresh["generators"] and resumed["pairs"] == fresh["pairs"]


def test_bad_files_are_reported_and_never_read(tmp_path):
    prompts, images = make_bench(tmp_path / "b")
    outside = tmp_path / "outside"
    outside.mkdir()
    _draw(outside / "000_9.png", "red", "circle", 0)
    os.symlink(outside / "000_9.png", images / "good" / "000_9.png")  # a symlink resolving outside DIR
    os.symlink(outside, images / "elsewhere")  # a generator folder that is a symlink to outside
    (images / "good" / "notes.txt").write_text("hello")  # not <id>_<k>.<ext>
    (images / "good" / "999_0.png").write_bytes((images / "good" / "000_0.png").read_bytes())  # unknown prompt
    (images / "good" / "001_1.png").write_bytes(b"\x89PNG not really")  # fails to decode: status error
    for i in (4, 5):  # wrongshape lacks two prompts
        for j in range(K):
            (images / "wrongshape" / f"{i:03d}_{j}.png").unlink()
    rec = bench(prompts, images, tmp_path / "results")
    problems = rec["images"]["problems"]
    assert problems["outside"]["count"] == 2 and set(problems["outside"]["first"]) == {"elsewhere", "good/000_9.png"}
    assert problems["unmatched"]["first"] == ["good/notes.txt"]
    assert problems["unknown_prompt"]["first"] == ["good/999_0.png"]
    run_dir = Path(rec["run_dir"])
    rows = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert not any("000_9" in r["image"] or "999" in r["image"] or "elsewhere" in r["image"] for r in rows)
    bad = [r for r in rows if r["status"] != "ok"]
    assert [(r["image"], r["status"], r["score"]) for r in bad] == [("good/001_1.png", "error", None)]
    by = {g["name"]: g for g in rec["generators"]}
    assert (by["good"]["failed"], by["good"]["n_images"], by["good"]["n_prompts"]) == (1, 12, 6)
    hand = hand_means(run_dir)
    assert by["good"]["mean"] == pytest.approx(np.mean(list(hand["good"].values())))  # failed image left out, not 0
    assert hand["good"]["001"] == next(r["score"] for r in rows if r["image"] == "good/001_0.png")
    assert (by["wrongshape"]["missing_prompts"], by["wrongshape"]["n_prompts"]) == (2, 4)
    assert by["wrongshape"]["missing_prompt_ids"] == ["004", "005"]
    pair = next(p for p in rec["pairs"] if "wrongshape" in (p["a"], p["b"]) and "good" in (p["a"], p["b"]))
    assert pair["n_common"] == 4
    assert rec["counts"]["error"] == 1
    # the text output says all of it
    from prefbench.generators import format_text

    text = format_text(rec)
    for needle in ("wrongshape has no image for 2 prompt(s) (004, 005)", "skipped 2 file(s): resolves outside",
                   "never counted as 0", "1 error"):
        assert needle in text, needle


def test_prompts_files_json_jsonl_and_text(tmp_path):
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"7": "a cat", "8": "a dog"}))
    assert read_prompts(a).ids == ["7", "8"]
    strings = tmp_path / "anime.json"  # HPSv2's benchmark: a list of prompts, id = index
    strings.write_text(json.dumps(["a cat", "a dog"]))
    assert read_prompts(strings).text == {"0": "a cat", "1": "a dog"}
    b = tmp_path / "b.jsonl"
    b.write_text('{"prompt_id": 1, "prompt": "x"}\n\n{"prompt_id": "two", "prompt": "y"}\n')
    assert read_prompts(b).text == {"1": "x", "two": "y"}
    c = tmp_path / "c.txt"
    c.write_text("first\n\nthird\n")
    pc = read_prompts(c)
    assert pc.text == {"0": "first", "2": "third"} and pc.format == "text"
    # zero-padded ids in file names match decimal ids (and the other way round)
    gens = tmp_path / "gens" / "g"
    gens.mkdir(parents=True)
    for name in ("00000_0.png", "2_0.png", "0002_1.png", "1_0.png"):
        _draw(gens / name, "red", "circle", 0)
    scan = scan_images(tmp_path / "gens", pc)
    assert [(i.prompt_id, i.k, i.rel) for i in scan.images] == [("0", 0, "g/00000_0.png"), ("2", 0, "g/2_0.png"),
                                                                 ("2", 1, "g/0002_1.png")]
    assert scan.problems["unknown_prompt"] == ["g/1_0.png"]
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps([{"id": 1, "prompt": "x"}, {"id": "1", "prompt": "y"}]))
    with pytest.raises(DataError, match="duplicate"):
        read_prompts(dup)
    with pytest.raises(UsageError, match="no such prompts file"):
        read_prompts(tmp_path / "nope.json")


def test_report_shows_the_section_and_check_ignores_it(bench_dir, tmp_path):
    import shutil

    prompts, images = bench_dir
    images = Path(shutil.copytree(images, tmp_path / "gens"))
    shutil.copytree(images / "good", images / "<b>evil|gen")  # a folder name is text from outside
    results = tmp_path / "results"
    hand_run(results, "demo-test/good", "good", *bernoulli_prompts(0.8, seed=1))
    rec = bench(prompts, images, results)
    md_path, html_path = write_report(results, tmp_path / "out", n_items=0, n_resamples=200)
    md, html = md_path.read_text(), html_path.read_text()
    assert "## demo / test" in md and "## Generator benchmarks" in md
    section = md[md.index("## Generator benchmarks"):]
    assert "### prompts — random" in section
    table = [line for line in section.splitlines() if re.match(r"\| \d+ \| ", line)]
    names = [g["name"] for g in rec["generators"]]
    assert len(table) == 4 and [row.split(" | ")[1] for row in table] == [md_escape(n) for n in names]
    top = rec["generators"][0]
    assert f"| 1 | {top['name']} | {top['mean']:.4f} |" in section
    assert "Ranking stability" in section and "Paired comparisons" in section
    assert 'id="generator-benchmarks"' in html and names[0] in html
    assert "<b>evil" not in md and "&lt;b&gt;evil\\|gen" in md
    assert "<b>evil" not in html and "&lt;b&gt;evil|gen" in html
    # the scoring-run tools see only the scoring run
    assert main(["check", "--results", str(results), "--baseline", str(tmp_path / "b.json"), "--write-baseline"]) == 0
    entries = json.loads((tmp_path / "b.json").read_text())["entries"]
    assert [e["scorer"] for e in entries] == ["good"]
    from prefbench.report.runs import find_runs

    assert [r.scorer for r in find_runs(results)[1]] == ["good"]


def test_cli_table_and_json(bench_dir, tmp_path, capsys):
    prompts, images = bench_dir
    argv = ["bench-generators", "--scorer", "random", "--prompts", str(prompts), "--images", str(images),
            "--results", str(tmp_path / "r"), "--bootstrap-resamples", "300", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "rank  generator" in out and "P(rank 1)" in out and "95% CI" in out
    assert main(argv + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "generators" and data["cached"] and data["scorer"] == "random"
    assert [g["rank"] for g in data["generators"]] == [1, 2, 3] and len(data["pairs"]) == 3
    assert data["counts"]["ok"] == 36 and data["run_dir"].startswith(str(tmp_path / "r"))
    # bad input exits 2 with a message
    bad = argv.copy()
    bad[bad.index("--images") + 1] = str(tmp_path / "empty")
    assert main(bad) == 2
    assert "no such images folder" in capsys.readouterr().err


@requires_extra("clip")
def test_bundled_clip_ranks_the_generator_that_draws_the_prompt_first(bench_dir, tmp_path):
    prompts, images = bench_dir
    rec = bench(prompts, images, tmp_path / "results", scorer="clip")
    assert rec["model"]["id"] == "prefbench-demo/clip" and rec["counts"]["ok"] == 36
    top = rec["generators"][0]
    assert top["name"] == "good" and top["p_first"] > 0.9
    assert all(p["difference"] > 0 for p in rec["pairs"] if p["a"] == "good")


@pytest.mark.parametrize("mode", ["anchor", "round_robin"])
def test_a_pairwise_scorer_compares_all_generators_of_a_prompt_together(bench_dir, tmp_path, mode):
    skip_without_extra("vlm")
    prompts, images = bench_dir
    rec = bench(prompts, images, tmp_path / "results", scorer="anchor_pairwise", mode=mode, resamples=100)
    assert rec["pooled"] is True and rec["mode"] == mode and rec["counts"]["ok"] == 36
    rows = list(read_samples(Path(rec["run_dir"]) / "samples.jsonl").values())
    by_prompt: dict[str, list[dict]] = {}
    for row in rows:
        by_prompt.setdefault(row["prompt_id"], []).append(row)
    for group in by_prompt.values():
        assert len(group) == len(GENERATORS) * K
        if mode == "anchor":  # one shared anchor per prompt, drawn among every generator's images
            anchors = {row["anchor_image"] for row in group}
            assert len(anchors) == 1 and anchors.pop().split("/")[0] in GENERATORS
            assert sum(row["score"] == 0.5 for row in group) >= 1
        else:  # win rates over all pairs of the prompt's 6 images average to 1/2
            assert np.mean([row["score"] for row in group]) == pytest.approx(0.5)
    other = bench(prompts, images, tmp_path / "results", scorer="anchor_pairwise",
                  mode="round_robin" if mode == "anchor" else "anchor", resamples=100)
    assert other["run_dir"] != rec["run_dir"]  # the mode is part of the run's identity
