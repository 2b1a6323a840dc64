"""leaderboard.md: one section per dataset/split with the ranked table, the paired comparison
matrix, Mean@k and calibration tables; then the runs that are not ranked.

Output depends only on the run.json files (no clock, no absolute paths), so the same runs give
byte-identical Markdown.
"""

from __future__ import annotations

from prefbench.report.leaderboard import MARK_ALPHA, Group, Leaderboard, mean_at_k_series
from prefbench.report.pairing import Pair, unpaired_reason
from prefbench.report.runs import RunView
from prefbench.report.text import (  # noqa: F401  (re-exported)
    PROMPT_CHARS,
    _table,
    fmt,
    fmt_ci,
    fmt_p,
    fmt_rate,
    md_code,
    md_escape,
    shown_text,
)

MARKS = {"best": "★", "tied": "≈", "": ""}
LEGEND = (f"★ best accuracy on the split; ≈ not significantly below the best (paired cluster bootstrap, "
          f"one-sided p ≥ {MARK_ALPHA}).")


def count(r: RunView, key: str) -> str:
    v = r.counts.get(key, 0)
    return str(v) if isinstance(v, int) else "n/a"


TABLE_HEAD = ["#", "", "scorer", "model", "accuracy", "95% CI", "prompts", "pairs", "unparsed", "forced",
              "error", "images/s", "date", "commit", "run"]


def table_row(g: Group, i: int) -> list[str]:
    r = g.runs[i]
    return [str(i + 1), MARKS[g.mark(i)], md_escape(r.variant), md_escape(r.model) if r.model else "—",
            fmt(r.accuracy), fmt_ci(r.ci_low, r.ci_high), str(r.n_prompts), str(r.n_pairs), count(r, "unparsed"),
            count(r, "forced"), count(r, "error"), fmt_rate(r.images_per_s), r.date or "n/a",
            md_escape(r.commit) or "n/a", md_code(r.path)]


def pair_cell(pair: Pair | None, a: RunView, b: RunView) -> str:
    if pair is None:
        return unpaired_reason(a, b) or "n/a"
    return f"{fmt(pair.difference, 3, True)} {fmt_ci(pair.ci_low, pair.ci_high, 3, True)} {fmt_p(pair.p_row_better)}"


TOKENS_HEAD = ["#", "scorer", "prompt tokens", "of which vision", "generated", "prompt tok/s", "generated tok/s",
               "parameters", "≈ model FLOP/s", "load s", "scoring s"]
TOKENS_NOTE = ("Token totals over the run's images; rates over the last session's scoring time. Model FLOP/s is "
               "2 × parameters × (prompt + generated tokens) per second, an estimate to set against the device's "
               "peak (attention and padding not counted).")


def _si(x: float | None) -> str:
    if x is None:
        return "n/a"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def token_cells(t: dict) -> list[str]:
    def n(key):
        v = t.get(key)
        return "n/a" if v is None else f"{v:,}" if isinstance(v, int) else fmt_rate(v)

    return [n("prompt_tokens"), n("vision_tokens"), n("generated_tokens"), n("prompt_tokens_per_s"),
            n("generated_tokens_per_s"), _si(t.get("n_parameters")), _si(t.get("model_flop_per_s")),
            n("setup_s"), n("wall_s")]


def group_section(g: Group) -> list[str]:
    lines = [f"## {md_escape(g.title)} — {md_escape(g.convention)} convention", ""]
    lines += [f"> {md_escape(n)}" for n in g.notes]
    if g.notes:
        lines.append("")
    lines += _table(TABLE_HEAD, [table_row(g, i) for i in range(len(g.runs))])
    lines.append("")
    if len(g.runs) > 1:
        lines += ["### Paired comparisons (row − column)", "",
                  "Accuracy difference, its 95% CI and p, from a paired cluster bootstrap over the prompts both "
                  "runs scored. p is the share of resamples in which the row is not better than the column: a "
                  "one-sided p-value (small: the row is reliably better), not the probability that it is better.",
                  ""]
        head = [""] + [f"#{j + 1}" for j in range(len(g.runs))]
        rows = []
        for i, r in enumerate(g.runs):
            cells = [f"#{i + 1} {md_escape(r.label)}"]
            cells += ["—" if i == j else pair_cell(g.pairs.get((i, j)), r, g.runs[j]) for j in range(len(g.runs))]
            rows.append(cells)
        lines += _table(head, rows) + [""]
    series = mean_at_k_series(g)
    if series:
        lines += ["### Mean@k (accuracy by number of rollouts)", ""]
        rows = [[md_escape(s.label), str(k), fmt(r.accuracy), fmt_ci(r.ci_low, r.ci_high), md_code(r.path)]
                for s in series for k, r in s.points]
        lines += _table(["series", "k", "accuracy", "95% CI", "run"], rows) + [""]
    counted = [(i, r, r.tokens) for i, r in enumerate(g.runs) if r.tokens]
    if counted:
        lines += ["### Tokens and utilisation", "", TOKENS_NOTE, ""]
        lines += _table(TOKENS_HEAD, [[f"#{i + 1}", md_escape(r.label), *token_cells(t)] for i, r, t in counted]) + [""]
    calibrated = [(i, r) for i, r in enumerate(g.runs) if r.metrics.has("brier") or r.reliability]
    if calibrated:
        lines += ["### Calibration (anchor-pairwise probabilities)", ""]
        rows = [[f"#{i + 1}", md_escape(r.label), fmt(r.metrics.brier), fmt(r.metrics.ece),
                 str(r.metrics.n_calibration_pairs if r.metrics.has("n_calibration_pairs") else "n/a")] for i, r in calibrated]
        lines += _table(["#", "scorer", "Brier", "ECE", "pairs"], rows) + [""]
    return lines


def runs_count(board: Leaderboard) -> str:
    """``N run(s)``, plus the generator benchmarks when there are any (they are not scoring runs)."""
    n = len(board.generators)
    return f"{board.n_runs} run(s)" + (f" and {n} generator benchmark(s)" if n else "")


def render_markdown(board: Leaderboard) -> str:
    lines = ["# prefbench leaderboard", "",
             f"{runs_count(board)}. Accuracy follows each split's official convention; 95% CIs are cluster "
             f"bootstraps over prompts; comparisons are paired bootstraps ({board.n_resamples} resamples, seed 0).",
             LEGEND + " Counts of unparsed, forced and error are images.", ""]
    for g in board.groups:
        lines += group_section(g)
    if board.unranked:
        lines += ["## Runs not ranked", "", "Runs that did not finish (or have no accuracy) are listed, not ranked.",
                  ""]
        rows = [[md_escape(r.variant), md_escape(f"{r.dataset}/{r.split}"), md_escape(r.status),
                 str(r.counts.get("missing", "n/a")) if r.counts else "n/a", md_code(r.path)] for r in board.unranked]
        lines += _table(["scorer", "split", "status", "missing images", "run"], rows) + [""]
    from prefbench.report.generators import markdown_section

    lines += markdown_section(board.generators)
    from prefbench.report.reproduce import markdown_section as reproduce_section

    lines += reproduce_section(board.tables)
    return "\n".join(lines).rstrip("\n") + "\n"
