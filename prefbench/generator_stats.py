"""Statistics of a generator benchmark: per-generator means, cluster-bootstrap CIs, paired
comparisons and the ranking's stability, all from one set of prompt resamples.

Input: a matrix ``M`` of per-prompt mean scores, one row per generator and one column per
prompt, NaN where a generator has no scored image for a prompt (no image, or every image
failed). A generator's score is the mean over its prompts of each prompt's mean, as
ImageReward's ``test-benchmark.py`` computes it.

The bootstrap resamples prompts (columns) with replacement; every generator and every pair is
evaluated on the *same* resampled indices (``numpy.random.default_rng(seed)``), so the paired
differences and the ranks of one resample belong together. A resample is a vector of prompt
counts ``w``; a generator's statistic on it is ``sum(w * m) / sum(w)`` over the prompts it has,
and a pair's is the same over the prompts both have. The work is a matrix product per chunk of
resamples: fast and bounded in memory however many prompts there are.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from prefbench.metrics.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, _percentile

if TYPE_CHECKING:
    from prefbench.generator_inputs import Prompts, Scan
    from prefbench.record import RunRecord

CONFIDENCE = 0.95
#: items (files, prompt ids) named per kind of problem in records and output; all are counted
NAMED = 5
KIND = "generators"
#: prompt-count cells per resample chunk (chunk rows x prompts); bounds memory, not the result
_CHUNK_CELLS = 2_000_000


def _f(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def observed_order(names: list[str], means: list[float | None]) -> list[int]:
    """Indices of ``names`` best first: higher mean first, no mean last, ties by name."""
    return sorted(range(len(names)), key=lambda i: (means[i] is None, -(means[i] or 0.0), names[i]))


def resample_counts(rng: np.random.Generator, n_rows: int, n: int) -> np.ndarray:
    """``n_rows`` cluster-bootstrap resamples of ``n`` prompts as counts, shape (n_rows, n):
    row b counts how often each prompt was drawn in resample b (drawing n with replacement)."""
    idx = rng.integers(0, n, size=(n_rows, n))
    flat = (idx + n * np.arange(n_rows)[:, None]).ravel()
    return np.bincount(flat, minlength=n_rows * n).reshape(n_rows, n).astype(float)


def bootstrap_distributions(M: np.ndarray, pairs: list[tuple[int, int]], n_resamples: int,
                            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each generator's mean and each pair's mean difference (a - b, on the prompts both
    have) on ``n_resamples`` shared prompt resamples: arrays (n_resamples, G) and
    (n_resamples, len(pairs)); NaN where a resample holds none of the prompts needed."""
    G, n = M.shape
    finite = np.isfinite(M)
    vals, cnt = np.where(finite, M, 0.0).T, finite.T.astype(float)  # (n, G)
    if pairs:
        a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        both = finite[a] & finite[b]
        diffs = np.where(both, np.where(finite[a], M[a], 0.0) - np.where(finite[b], M[b], 0.0), 0.0).T
        shared = both.T.astype(float)  # (n, P)
    else:
        diffs = shared = np.zeros((n, 0))
    rng = np.random.default_rng(seed)
    means = np.empty((n_resamples, G))
    deltas = np.empty((n_resamples, len(pairs)))
    chunk = max(1, min(n_resamples, _CHUNK_CELLS // max(n, 1)))
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        w = resample_counts(rng, rows, n)
        means[start:start + rows] = _ratio(w @ vals, w @ cnt)
        if pairs:
            deltas[start:start + rows] = _ratio(w @ diffs, w @ shared)
    return means, deltas


def ranks_of(means: np.ndarray, order: list[int]) -> np.ndarray:
    """Ordinal ranks (1 = best) of each resample's means, shape like ``means``. A NaN mean
    ranks last; exact ties keep the observed order, so each resample has exactly one rank 1."""
    key = np.where(np.isfinite(means), means, -np.inf)[:, order]  # columns in observed order
    sorted_idx = np.argsort(-key, axis=1, kind="stable")
    ranks_in_order = np.argsort(sorted_idx, axis=1, kind="stable") + 1
    ranks = np.empty_like(ranks_in_order)
    ranks[:, order] = ranks_in_order
    return ranks


def kendall_w(ranks: np.ndarray) -> float | None:
    """Kendall's coefficient of concordance of the resamples' rankings (1 = every resample
    ranks the generators the same; 0 = no agreement). None for fewer than two generators."""
    m, g = ranks.shape
    if g < 2 or m < 1:
        return None
    totals = ranks.sum(axis=0, dtype=float)
    s = float(((totals - m * (g + 1) / 2) ** 2).sum())
    return 12 * s / (m * m * (g ** 3 - g))


def _rank_interval(r: np.ndarray, confidence: float) -> tuple[int, int]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(r, [alpha, 1 - alpha], method="inverted_cdf")
    return int(low), int(high)


def generator_statistics(names: list[str], prompt_ids: list[str], M: np.ndarray,
                         n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                         confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The benchmark's statistics from the per-prompt mean matrix ``M`` (generators x prompts).

    Returns ``generators`` (one dict per generator, best first: ``name, rank, mean, ci_low,
    ci_high, n_prompts, p_first, mean_rank, median_rank, rank_low, rank_high``), ``pairs`` (every
    pair, the observed better one as ``a``: ``a, b, difference, ci_low, ci_high, p_value,
    p_a_better, p_b_better, n_common``) and ``stability`` (``n_resamples, p_observed_ranking,
    kendall_w``). Bootstrap fields are None with fewer than two prompts."""
    M = np.asarray(M, dtype=float).reshape(len(names), len(prompt_ids))
    finite = np.isfinite(M)
    n_per = finite.sum(axis=1)
    observed = [float(M[g][finite[g]].mean()) if n_per[g] else None for g in range(len(names))]
    order = observed_order(names, observed)
    pairs = [(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))]
    n = len(prompt_ids)
    boot = n >= 2 and n_resamples >= 1
    if boot:
        means, deltas = bootstrap_distributions(M, pairs, n_resamples, seed)
        ranks = ranks_of(means, order)
    gens = []
    for pos, g in enumerate(order):
        row: dict[str, Any] = {"name": names[g], "rank": pos + 1, "mean": observed[g], "ci_low": None,
                               "ci_high": None, "n_prompts": int(n_per[g]), "p_first": None, "mean_rank": None,
                               "median_rank": None, "rank_low": None, "rank_high": None}
        if boot and observed[g] is not None:
            row["ci_low"], row["ci_high"] = (_f(x) for x in _percentile(means[:, g], confidence))
        if boot:
            r = ranks[:, g]
            low, high = _rank_interval(r, confidence)
            row.update(p_first=float(np.mean(r == 1)), mean_rank=float(r.mean()), median_rank=float(np.median(r)),
                       rank_low=low, rank_high=high)
        gens.append(row)
    out_pairs = []
    for p, (a, b) in enumerate(pairs):
        common = finite[a] & finite[b]
        n_common = int(common.sum())
        diff = float((M[a][common] - M[b][common]).mean()) if n_common else None
        row = {"a": names[a], "b": names[b], "difference": diff, "ci_low": None, "ci_high": None,
               "p_value": None, "p_a_better": None, "p_b_better": None, "n_common": n_common}
        if boot and n_common >= 2:
            dist = deltas[:, p]
            row["ci_low"], row["ci_high"] = (_f(x) for x in _percentile(dist, confidence))
            dist = dist[np.isfinite(dist)]
            if len(dist):
                pa, pb = float(np.mean(dist <= 0)), float(np.mean(dist >= 0))
                row.update(p_a_better=pa, p_b_better=pb, p_value=min(1.0, 2 * min(pa, pb)))
        out_pairs.append(row)
    stability: dict[str, Any] = {"n_resamples": n_resamples if boot else 0, "seed": seed, "confidence": confidence,
                                 "p_observed_ranking": None, "kendall_w": None}
    if boot:
        observed_ranks = np.empty(len(names), dtype=int)
        observed_ranks[order] = np.arange(1, len(names) + 1)
        stability["p_observed_ranking"] = float(np.mean((ranks == observed_ranks).all(axis=1)))
        stability["kendall_w"] = kendall_w(ranks)
    return {"generators": gens, "pairs": out_pairs, "stability": stability}


# -- the record's summary and the text the command prints ---------------------------------------------
def summarize(prompts: Prompts, scan: Scan, rows: dict, n_resamples: int, seed: int) -> dict[str, Any]:
    """``generators``, ``pairs``, ``stability``, ``counts`` and ``per_prompt`` from the sample rows
    of the scanned images (rows of other images are ignored; ok rows only enter the means)."""
    counts = {"ok": 0, "unparsed": 0, "error": 0, "missing": 0}
    per_gen: dict[str, dict[str, int]] = {g: {"n_images": 0, "ok": 0, "failed": 0, "missing": 0}
                                          for g in scan.generators}
    scores: dict[tuple[str, str], list[float]] = {}
    have: dict[str, set[str]] = {g: set() for g in scan.generators}
    for im in scan.images:
        have[im.generator].add(im.prompt_id)
        per_gen[im.generator]["n_images"] += 1
        row = rows.get((im.item_id, im.k))
        if row is None:
            counts["missing"] += 1
            per_gen[im.generator]["missing"] += 1
            continue
        counts[row["status"]] = counts.get(row["status"], 0) + 1
        if row["status"] == "ok":
            per_gen[im.generator]["ok"] += 1
            scores.setdefault((im.generator, im.prompt_id), []).append(float(row["score"]))
        else:
            per_gen[im.generator]["failed"] += 1
    used = [p for p in prompts.ids if any((g, p) in scores for g in scan.generators)]
    M = np.full((len(scan.generators), len(used)), np.nan)
    for gi, g in enumerate(scan.generators):
        for pi, p in enumerate(used):
            if (g, p) in scores:
                M[gi, pi] = float(np.mean(scores[(g, p)]))
    stats = generator_statistics(scan.generators, used, M, n_resamples, seed)
    for row in stats["generators"]:
        g = row["name"]
        lacking = [p for p in prompts.ids if p not in have[g]]
        all_failed = [p for p in prompts.ids if p in have[g] and (g, p) not in scores]
        row.update(per_gen[g], missing_prompts=len(lacking), missing_prompt_ids=lacking[:NAMED],
                   failed_prompts=len(all_failed))
    gi = {g: n for n, g in enumerate(scan.generators)}
    per_prompt = {"prompt_ids": used,
                  "means": {g: [None if not np.isfinite(v) else float(v) for v in M[gi[g]]] for g in scan.generators}}
    return {**stats, "counts": counts, "n_prompts_scored": len(used),
            "prompts_without_images": sum(1 for p in prompts.ids if not any(p in have[g] for g in scan.generators)),
            "per_prompt": per_prompt}


def flat_summary(record: RunRecord) -> dict:
    """The JSON object ``prefbench bench-generators --json`` prints."""
    keys = ("status", "counts", "generators", "pairs", "stability", "n_prompts_scored", "prompts_without_images")
    return {"kind": KIND, "scorer": record.scorer.name, "model": record.model_id,
            "prompts": record.prompts["file"], "images": record.images["dir"],
            "problems": record.images["problems"], **{k: record.get(k) for k in keys},
            "images_per_s": record.throughput.images_per_s if record.throughput else None,
            "cached": bool(record.cached), "run_dir": record.run_dir}


def _num(x: Any, digits: int = 4, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def format_text(record: RunRecord) -> str:
    """The table and notes ``prefbench bench-generators`` prints."""
    model = record.model_id
    st = record.stability or {}
    lines = [f"{record.scorer.name}" + (f" ({model})" if model else "") + f" on {record.prompts['name']}: "
             f"{len(record.generators)} generators, {record.n_prompts_scored} prompts"
             + (" [cached]" if record.cached else ""),
             "  mean = mean over prompts of each prompt's mean score; 95% CI: cluster bootstrap over prompts "
             f"({st.get('n_resamples', 0)} resamples, seed {st.get('seed')}); failed images (error/unparsed) are left "
             "out of the means, never counted as 0", ""]
    head = ["rank", "generator", "mean", "95% CI", "prompts", "images", "failed", "P(rank 1)"]
    body = [[str(g["rank"]), g["name"], _num(g["mean"]),
             f"[{_num(g['ci_low'])}, {_num(g['ci_high'])}]" if g["ci_low"] is not None else "n/a",
             str(g["n_prompts"]), str(g["n_images"]), str(g["failed"]), _num(g["p_first"], 3)]
            for g in record.generators]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    lines += ["  " + "  ".join(c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
              for r in [head] + body]
    if st.get("p_observed_ranking") is not None:
        lines.append(f"  ranking stability: the whole ranking recurs in {st['p_observed_ranking']:.1%} of resamples; "
                     f"Kendall's W {_num(st['kendall_w'], 3)}")
    names = [g["name"] for g in record.generators]
    adjacent = [p for p in record.pairs or [] if (p["a"], p["b"]) in set(zip(names, names[1:]))]
    if adjacent:
        lines.append("  neighbours (a - b on shared prompts, 95% CI, two-sided p):")
        for p in adjacent:
            if not p["n_common"]:
                lines.append(f"    {p['a']} - {p['b']}: n/a (no prompt scored for both)")
                continue
            ci = f"[{_num(p['ci_low'], signed=True)}, {_num(p['ci_high'], signed=True)}]"
            pv = "p=n/a" if p["p_value"] is None else ("p<0.001" if p["p_value"] < 0.001 else f"p={p['p_value']:.3f}")
            lines.append(f"    {p['a']} - {p['b']}: {_num(p['difference'], signed=True)} {ci} {pv} "
                         f"({p['n_common']} prompts)")
    for g in record.generators:
        if g.get("missing_prompts"):
            named = ", ".join(g["missing_prompt_ids"]) + (", ..." if g["missing_prompts"] > NAMED else "")
            lines.append(f"  warning: {g['name']} has no image for {g['missing_prompts']} prompt(s) ({named}); its "
                         "mean uses the prompts it has, comparisons the prompts both generators have")
    if record.prompts_without_images:
        lines.append(f"  note: {record.prompts_without_images} prompt(s) of the prompts file have no image at all")
    for info in (record.images.get("problems") or {}).values():
        named = ", ".join(info["first"]) + (", ..." if info["count"] > len(info["first"]) else "")
        lines.append(f"  skipped {info['count']} file(s): {info['what']} ({named})")
    c = record.counts
    lines.append(f"  images: {c.ok} ok, {c.unparsed} unparsed, {c.error} error"
                 + (f", {c.missing} missing" if c.missing else ""))
    lines.append(f"  run: {record.run_dir}")
    return "\n".join(lines)
