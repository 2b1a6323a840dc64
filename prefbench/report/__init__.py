"""Leaderboard reports (Markdown + self-contained HTML) and the CI regression gate.

``write_report`` reads only run.json files for the tables and plots; the HTML item browser
additionally reloads the dataset and the samples of the items it shows.
"""

from __future__ import annotations

from pathlib import Path

from prefbench.metrics import DEFAULT_RESAMPLES


def write_report(results: str | Path = "results", out: str | Path | None = None, n_items: int = 30,
                 n_resamples: int = DEFAULT_RESAMPLES) -> tuple[Path, Path]:
    """Write ``leaderboard.md`` and ``leaderboard.html`` into ``out`` (default: ``results``)."""
    from prefbench.report.generators import find_generator_runs
    from prefbench.report.html import render_html
    from prefbench.report.leaderboard import build_leaderboard
    from prefbench.report.markdown import render_markdown
    from prefbench.report.runs import find_runs
    from prefbench.store import write_text_atomic

    _, runs = find_runs(results)
    board = build_leaderboard(runs, n_resamples)
    board.generators = find_generator_runs(results)
    from prefbench.report.reproduce import find_tables

    board.tables = find_tables(results)
    out_dir = Path(out) if out is not None else Path(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, html = out_dir / "leaderboard.md", out_dir / "leaderboard.html"
    # atomic replacements: a symlink planted at either name is replaced, its target never written
    write_text_atomic(md, render_markdown(board))
    write_text_atomic(html, render_html(board, n_items))
    return md, html


__all__ = ["write_report"]
