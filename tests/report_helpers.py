"""Builders for report/check tests: a JSONL dataset with real images on disk, hand-made run
folders (run.json written directly, as a user's results folder may hold), and real runs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from prefbench.metrics import PerPrompt, cluster_bootstrap

SCRIPT_PROMPT = '<script>document.title="pwned"</script> a red fox & a "blue" <b>bird</b>'


def write_jsonl_dataset(root: Path, n_items: int = 30, n_images: int = 4, seed: int = 7) -> Path:
    """``root/test.jsonl`` with PNG images; item 0's prompt carries a <script> tag."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    lines = []
    for i in range(n_items):
        images = []
        for k in range(n_images):
            name = f"img/{i:03d}_{k}.png"
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            Image.new("RGB", (48, 48), colour).save(root / name)
            images.append(name)
        ranks = [int(r) for r in rng.permutation(n_images) + 1]
        prompt = SCRIPT_PROMPT if i == 0 else f"prompt number {i}: {n_images} pictures"
        lines.append(json.dumps({"prompt_id": f"p{i:03d}", "prompt": prompt, "images": images, "ranks": ranks}))
    path = root / "test.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def hand_run(results: Path, rel: str, scorer: str, num, den, *, status: str = "complete", model: str | None = None,
             params: dict | None = None, dataset: str = "demo", split: str = "test",
             convention: str = "imagereward", content_hash: str = "hash-a", item_ids=None, extra: dict | None = None,
             resamples: int = 500) -> Path:
    """Write ``results/rel/run.json`` with metrics computed from per-prompt (num, den)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    ids = list(item_ids) if item_ids is not None else [f"p{i:03d}" for i in range(len(num))]
    stats = PerPrompt(convention, ids, num, den, int(den.sum()))
    low, high = cluster_bootstrap(stats, n_resamples=resamples, seed=0)
    rec = {
        "schema_version": 1, "status": status, "run_dir": f"/somewhere/else/{rel}", "config_hash": "c" * 64,
        "created": "2026-01-02T03:04:05+00:00", "finished": "2026-01-02T03:05:00+00:00",
        "scorer": {"name": scorer, "passed": params or {}, "resolved": params or {"seed": 0}},
        "model": {"id": model, "revision": None},
        "dataset": {"name": dataset, "split": split, "content_hash": content_hash, "n_items": len(num),
                    "source": "", "note": "", "limit": None},
        "git": {"commit": "0123456789abcdef", "dirty": False},
        "metrics": {"convention": convention, "accuracy": stats.accuracy, "ci_low": low, "ci_high": high,
                    "n_prompts": len(num), "n_pairs": int(den.sum()), "kendall_tau_b": 0.1, "spearman": 0.1},
        "counts": {"ok": 4 * len(num), "unparsed": 1, "error": 2, "forced": 3, "missing": 0},
        "throughput": {"images_per_s": 12.5},
        "per_prompt": stats.to_json(),
    }
    if status != "complete":
        del rec["metrics"], rec["per_prompt"]
        rec["counts"]["missing"] = 5
    rec.update(extra or {})
    folder = results / rel
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps(rec, indent=2))
    return folder


def bernoulli_prompts(p: float, n: int = 60, pairs: int = 6, seed: int = 0):
    """Per-prompt (num, den) for a scorer that gets each pair right with probability p."""
    rng = np.random.default_rng(seed)
    return rng.binomial(pairs, p, n).astype(float), np.full(n, float(pairs))


def make_real_runs(base: Path, plugin_site: Path) -> dict[str, Path]:
    """Real `prefbench run`s on a JSONL dataset (computed once per test session, under ``base``):

    - ``results``: random (seeds 0 and 1) and the example plugin's anchor-pairwise
      ``coin_pairwise`` with skill 0.9 (a good scorer with calibration data);
    - ``worse``: ``coin_pairwise`` with skill 0.0 on the same data (a deliberately worse run).
    """
    import pytest

    from prefbench.cli import main

    out = {"data": base / "data" / "test.jsonl", "results": base / "results", "worse": base / "worse"}
    if (base / "done").is_file():
        return out
    write_jsonl_dataset(base / "data")
    jobs = [("results", "random", ["--seed", "0"]), ("results", "random", ["--seed", "1"]),
            ("results", "coin_pairwise", ["-S", "skill=0.9"]), ("worse", "coin_pairwise", ["-S", "skill=0.0"])]
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        # the example plugin ships a broken entry and a name clash on purpose (registry tests)
        warnings.filterwarnings("ignore", message=".*plugin scorer '(broken|random)'", category=UserWarning)
        mp.syspath_prepend(str(plugin_site))
        for where, scorer, opts in jobs:
            rc = main(["run", "--scorer", scorer, "--dataset", "jsonl", "--data-dir", str(out["data"]), "--results",
                       str(out[where]), "--no-progress", "--bootstrap-resamples", "1000", *opts])
            assert rc == 0, (scorer, opts)
    (base / "done").write_text("ok\n")
    return out
