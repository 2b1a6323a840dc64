"""leaderboard.html: one self-contained page (inline CSS, inline SVG, images as data: URIs, no
script at all) with the leaderboard tables, plots and the item browser.

A Content-Security-Policy meta tag forbids every network fetch and every script, so the page
works offline and stays inert even if some text escaped the escaping (which it must not: every
string from datasets, models, traces and run folders goes through :func:`html.escape`).
"""

from __future__ import annotations

from html import escape

from prefbench.report.items import load_browser, render_browser
from prefbench.report.leaderboard import Group, Leaderboard, mean_at_k_series
from prefbench.report.markdown import LEGEND, MARKS, count, fmt, fmt_ci, fmt_p, fmt_rate, runs_count
from prefbench.report.pairing import unpaired_reason
from prefbench.report.plots import ci_plot, line_plot, reliability_plot

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1400px; padding: 0 1rem; color: #222; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6rem 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #fff6d6; } tr.tied td { background: #fbfbef; }
td.sig-better { background: #e3f4e3; } td.sig-worse { background: #f8e1e1; }
.note { color: #555; font-style: italic; } .sub { color: #666; font-size: 11px; }
.bad { color: #a00; } .missing { color: #999; } .flag { color: #a60; font-size: 11px; }
details.item { border: 1px solid #ddd; border-radius: 4px; margin: .3rem 0; padding: .2rem .5rem; }
details.item > summary { cursor: pointer; } .prompt { font-weight: 600; }
td.thumb img { max-width: 160px; max-height: 160px; display: block; }
td.thumb { max-width: 170px; } td.thumb .sub { word-break: break-all; }
pre { white-space: pre-wrap; background: #f7f7f7; padding: .4rem; max-height: 24rem; overflow: auto; }
.plots { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
code { font-size: 12px; }
"""


def _matrix(g: Group) -> str:
    head = "".join(f"<th>#{j + 1}</th>" for j in range(len(g.runs)))
    rows = []
    for i, r in enumerate(g.runs):
        cells = []
        for j in range(len(g.runs)):
            if i == j:
                cells.append("<td>—</td>")
                continue
            pair = g.pairs.get((i, j))
            if pair is None:
                cells.append(f'<td class="missing">{escape(unpaired_reason(r, g.runs[j]) or "n/a")}</td>')
                continue
            cls = ""
            if pair.p_row_better is not None and pair.p_row_better < 0.05:
                cls = ' class="num sig-better"'
            elif pair.p_col_better is not None and pair.p_col_better < 0.05:
                cls = ' class="num sig-worse"'
            else:
                cls = ' class="num"'
            cells.append(f"<td{cls}>{fmt(pair.difference, 3, True)}<div class=\"sub\">"
                         f"{fmt_ci(pair.ci_low, pair.ci_high, 3, True)} {escape(fmt_p(pair.p_row_better))}</div></td>")
        rows.append(f"<tr><th>#{i + 1} {escape(r.label)}</th>{''.join(cells)}</tr>")
    return (f'<table class="matrix"><thead><tr><th>row − column</th>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def _leaderboard_table(g: Group) -> str:
    head = ("<tr><th>#</th><th></th><th>scorer</th><th>model</th><th>accuracy</th><th>95% CI</th><th>prompts</th>"
            "<th>pairs</th><th>unparsed</th><th>forced</th><th>error</th><th>images/s</th><th>date</th>"
            "<th>commit</th><th>run</th></tr>")
    rows = []
    for i, r in enumerate(g.runs):
        mark = g.mark(i)
        cls = f' class="{mark}"' if mark else ""
        nums = [fmt(r.accuracy), fmt_ci(r.ci_low, r.ci_high), str(r.n_prompts), str(r.n_pairs), count(r, "unparsed"),
                count(r, "forced"), count(r, "error"), fmt_rate(r.images_per_s)]
        rows.append(
            f'<tr{cls} data-run="{escape(r.path)}"><td>{i + 1}</td><td>{MARKS[mark]}</td><td>{escape(r.variant)}</td>'
            f"<td>{escape(r.model) if r.model else '—'}</td>"
            + "".join(f'<td class="num">{escape(v)}</td>' for v in nums)
            + f"<td>{escape(r.date or 'n/a')}</td><td><code>{escape(r.commit or 'n/a')}</code></td>"
            f"<td><code>{escape(r.path)}</code></td></tr>"
        )
    return f'<table class="leaderboard"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _tokens_table(g: Group) -> str:
    from prefbench.report.markdown import TOKENS_HEAD, TOKENS_NOTE, token_cells

    counted = [(i, r, r.tokens) for i, r in enumerate(g.runs) if r.tokens]
    if not counted:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in TOKENS_HEAD)
    rows = "".join(f"<tr><td>#{i + 1}</td><td>{escape(r.label)}</td>"
                   + "".join(f'<td class="num">{escape(c)}</td>' for c in token_cells(t)) + "</tr>"
                   for i, r, t in counted)
    return (f"<h3>Tokens and utilisation</h3><p>{escape(TOKENS_NOTE)}</p>"
            f'<table class="tokens"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')


def _plots(g: Group) -> str:
    plots = [ci_plot([(f"#{i + 1} {r.label}", r.accuracy, r.ci_low, r.ci_high) for i, r in enumerate(g.runs)],
                     f"{g.title}: accuracy with 95% CI", f"accuracy ({g.convention} convention)")]
    series = mean_at_k_series(g)
    if series:
        plots.append(line_plot([(s.label, [(k, r.accuracy, r.ci_low, r.ci_high) for k, r in s.points])
                                for s in series], f"{g.title}: Mean@k", "rollouts k (log scale)", "accuracy"))
    calibrated = [(f"#{i + 1} {r.label}", r.reliability) for i, r in enumerate(g.runs) if r.reliability]
    if calibrated:
        plots.append(reliability_plot(calibrated, f"{g.title}: reliability"))
    return '<div class="plots">' + "\n".join(plots) + "</div>"


def _section(g: Group, n_items: int) -> str:
    parts = [f'<section class="split" id="{escape(g.anchor)}">',
             f"<h2>{escape(g.title)} <span class=\"sub\">{escape(g.convention)} convention</span></h2>"]
    parts += [f'<p class="note">{escape(n)}</p>' for n in g.notes]
    parts.append(_leaderboard_table(g))
    parts.append(_plots(g))
    if len(g.runs) > 1:
        parts.append("<h3>Paired comparisons</h3><p class=\"sub\">Row − column accuracy difference, 95% CI and p "
                     "(paired cluster bootstrap over shared prompts): the share of resamples in which the row is not "
                     "better, a one-sided p-value, not the probability that it is better. Green: row significantly "
                     "better; red: significantly worse (p &lt; 0.05).</p>")
        parts.append(_matrix(g))
    tokens = _tokens_table(g)
    if tokens:  # no empty part: the page of runs without token counts stays byte-identical
        parts.append(tokens)
    calibrated = [(i, r) for i, r in enumerate(g.runs) if r.metrics.has("brier")]
    if calibrated:
        parts.append('<h3>Calibration</h3><table class="calibration"><thead><tr><th>#</th><th>scorer</th><th>Brier</th><th>ECE</th>'
                     "</tr></thead><tbody>" + "".join(
                         f"<tr><td>{i + 1}</td><td>{escape(r.label)}</td><td class=\"num\">"
                         f"{fmt(r.metrics.brier)}</td><td class=\"num\">{fmt(r.metrics.ece)}</td></tr>"
                         for i, r in calibrated) + "</tbody></table>")
    if n_items > 0:
        parts.append('<h3>Items</h3><div class="browser">')
        parts.append(render_browser(load_browser(g, n_items)))
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(board: Leaderboard, n_items: int = 30) -> str:
    """The whole page. ``n_items`` items per split go into the browser (0: no browser)."""
    toc = "".join(f'<li><a href="#{escape(g.anchor)}">{escape(g.title)}</a> ({len(g.runs)} runs)</li>'
                  for g in board.groups)
    toc += "".join(f'<li><a href="#{escape(r.anchor)}">{escape(r.title)}</a> (generator benchmark)</li>'
                   for r in board.generators)
    toc += "".join(f'<li><a href="#reproduce-{escape(t["table"])}">{escape(t["table"])}</a> (published vs measured)'
                   "</li>" for t in board.tables)
    body = [f"<h1>prefbench leaderboard</h1><p>{runs_count(board)}. Accuracy follows each split's official "
            "convention; 95% CIs are cluster bootstraps over prompts; comparisons are paired bootstraps "
            f"({board.n_resamples} resamples, seed 0). {escape(LEGEND)}</p><ul class=\"toc\">{toc}</ul>"]
    body += [_section(g, n_items) for g in board.groups]
    if board.unranked:
        rows = "".join(f"<tr><td>{escape(r.label)}</td><td>{escape(r.dataset)}/{escape(r.split)}</td>"
                       f"<td>{escape(r.status)}</td><td><code>{escape(r.path)}</code></td></tr>"
                       for r in board.unranked)
        body.append('<section id="unranked"><h2>Runs not ranked</h2><table class="unranked"><thead><tr>'
                    f"<th>scorer</th><th>split</th><th>status</th><th>run</th></tr></thead><tbody>{rows}</tbody>"
                    "</table></section>")
    if board.generators:
        from prefbench.report.generators import html_section

        body.append(html_section(board.generators))
    if board.tables:
        from prefbench.report.reproduce import html_section as reproduce_section

        body.append(reproduce_section(board.tables))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>prefbench leaderboard</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
