"""``prefbench run`` with no ``--scorer``: every bundled scorer on the demo test split.

Each row is an ordinary run (stored under ``results/``, resumable, cached when finished); the
command then prints a small leaderboard. Rows whose install extra is missing or whose bundled
checkpoint is absent are listed as skipped, with the reason.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any

from prefbench.demo_zoo import SUITE_OPTIONS, bundled_model

#: (label, scorer, options) — the demo leaderboard's rows. max_new_tokens is also the budget the
#: scorers are trained with (recipe.py reads it from here). Measured on the base's pre-training
#: targets (demo tokenizer): one image's reasoning with the prompt's deviations marked takes a
#: median 38 tokens (95th percentile 49, max 55), two images' a median 68 (p95 86, max 95).
ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("random floor", "random", {}),
    ("ceiling (noise-free utility)", "demo_oracle", {}),
    ("zero-shot base VLM", "zero_shot", SUITE_OPTIONS["zero_shot"]),
    ("GRPO expected_rating", "expected_rating", SUITE_OPTIONS["expected_rating"]),
    ("GRPO naive_sampling", "naive_sampling", SUITE_OPTIONS["naive_sampling"]),
    ("GRPO anchor_pairwise", "anchor_pairwise", SUITE_OPTIONS["anchor_pairwise"]),
    ("CLIP (contrastive, demo)", "clip", SUITE_OPTIONS["clip"]),
]


#: why a row can land below the random floor, printed under the leaderboard when it does
BELOW_FLOOR = {
    "naive_sampling": "its score is the sampled integer rating, so most images of a prompt tie, and the "
                      "imagereward convention counts a model tie as wrong (the paper's \"without soft reward\" "
                      "rows; docs/demo-world.md#what-the-miniature-shows)",
}


def _fmt(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def run_suite(base_cfg, log=lambda m: print(m, file=sys.stderr)) -> list[dict]:
    """Run every available row; returns one summary dict per row (skipped rows say why)."""
    from prefbench.errors import MissingExtraError
    from prefbench.registry import lookup
    from prefbench.runner import flat_summary, run

    out = []
    for label, scorer, params in ROWS:
        entry = lookup(scorer)
        if not entry.installed:
            out.append({"label": label, "scorer": scorer, "skipped": f"needs pip install 'prefbench[{entry.extra}]'"})
            continue
        needs_model = scorer not in ("random", "demo_oracle")
        if needs_model and bundled_model(scorer) is None:
            out.append({"label": label, "scorer": scorer, "skipped": "no bundled checkpoint"})
            continue
        cfg = dataclasses.replace(base_cfg, scorer=scorer, dataset="demo", split=base_cfg.split or "test",
                                  params={**params, **base_cfg.params}, model=None)
        log(f"[{label}] {scorer}")
        try:
            rec = run(cfg, log=log)
        except MissingExtraError as exc:
            out.append({"label": label, "scorer": scorer, "skipped": str(exc)})
            continue
        out.append({"label": label, **flat_summary(rec), "limit": rec.dataset.limit})
    return out


def leaderboard_text(rows: list[dict]) -> str:
    done = [r for r in rows if "skipped" not in r]
    split = next((r["split"] for r in done), "test")
    limits = sorted({r["limit"] for r in done if r.get("limit")})
    only = (f" — only the first {', '.join(map(str, limits))} items (--limit), not the whole split"
            if limits else "")
    lines = [f"demo world, {split} split{only} — imagereward convention, 95% cluster-bootstrap CIs", "",
             f"{'row':<30} {'scorer':<16} {'accuracy':>8}  {'95% CI':<15} {'ok/unparsed/error':<18}"]
    done = sorted((r for r in rows if "skipped" not in r), key=lambda r: -(r["accuracy"] or 0))
    for r in done:
        c = r["counts"]
        lines.append(f"{r['label']:<30} {r['scorer']:<16} {_fmt(r['accuracy']):>8}  "
                     f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] {c['ok']}/{c['unparsed']}/{c['error']}")
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['label']:<30} {r['scorer']:<16} skipped: {r['skipped']}")
    floor = next((r["accuracy"] for r in done if r["scorer"] == "random"), None)
    # a row whose whole CI lies below the random floor looks like a bug: say why
    below = [r for r in done if floor is not None and r["ci_high"] is not None and r["ci_high"] < floor]
    if below:
        lines.append("")
    for r in below:
        why = BELOW_FLOOR.get(r["scorer"], "see its run's unparsed/error counts and docs/demo-world.md")
        lines.append(f"note: {r['label']} is below the random floor: {why}")
    return "\n".join(lines)
