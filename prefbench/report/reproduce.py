"""The report's "Published vs measured" section: the tables ``prefbench reproduce`` stored."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from prefbench.reproduce.command import HEAD, row_cells
from prefbench.reproduce.run import OUT_FOLDER, counts

INTRO = ("Published tables run as acceptance tests (`prefbench reproduce`): a row is reproduced when the published "
         "value lies in the measured 95% CI (or within the row's stated tolerance, for sampled judges); a row not run "
         "says what is missing.")


def find_tables(results: str | Path) -> list[dict]:
    """The stored verdicts under ``<results>/reproduce/``, by table name; unreadable files are skipped."""
    folder = Path(results) / OUT_FOLDER
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(rec, dict) and rec.get("kind") == "reproduce" and isinstance(rec.get("rows"), list):
            out.append(rec)
    return out


def _summary(rec: dict) -> str:
    return ", ".join(f"{n} {v}" for v, n in counts(rec["rows"]).items())


def _head(rec: dict) -> str:
    return (f"{rec['dataset']}/{rec['split']}, {rec['convention']} convention"
            + (", in percent" if float(rec.get("scale") or 1) == 100 else "")
            + f". Source: {rec['source']} (read {rec['read']}).")


def markdown_section(tables: list[dict]) -> list[str]:
    from prefbench.report.text import _table, md_escape

    if not tables:
        return []
    lines = ["## Published vs measured", "", INTRO, ""]
    for rec in tables:
        scale = float(rec.get("scale") or 1)
        lines += [f"### {md_escape(rec['table'])}: {md_escape(rec['title'])}", "", md_escape(_head(rec)), ""]
        lines += [f"> {md_escape(n)}" for n in rec.get("notes", [])]
        if rec.get("notes"):
            lines.append("")
        lines += _table(HEAD, [[md_escape(c) for c in row_cells(o, scale)] for o in rec["rows"]])
        lines += ["", md_escape(_summary(rec)), ""]
    return lines


def html_section(tables: list[dict]) -> str:
    if not tables:
        return ""
    parts = ['<section id="published-vs-measured"><h2>Published vs measured</h2>', f"<p>{escape(INTRO)}</p>"]
    for rec in tables:
        scale = float(rec.get("scale") or 1)
        parts.append(f'<section class="reproduce" id="reproduce-{escape(rec["table"])}">'
                     f"<h3>{escape(rec['table'])}: {escape(rec['title'])}</h3><p>{escape(_head(rec))}</p>")
        parts += [f'<p class="note">{escape(n)}</p>' for n in rec.get("notes", [])]
        head = "".join(f"<th>{escape(h)}</th>" for h in HEAD)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row_cells(o, scale)) + "</tr>"
                       for o in rec["rows"])
        parts.append(f'<table class="reproduce"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
                     f"<p>{escape(_summary(rec))}</p></section>")
    parts.append("</section>")
    return "".join(parts)
